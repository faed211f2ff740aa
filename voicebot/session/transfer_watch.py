"""Consulting the transfer policy after every caller turn.

The mapping from a dialogue turn to the policy's vocabulary (redacted text
only) is one short function, :func:`observe`; :class:`TransferWatch` feeds it
to the policy and, when the policy decides, writes the decision and its
one-line summary into the call record.
"""

from __future__ import annotations

from voicebot.core.logs import CallLogger
from voicebot.core.record import CallRecord, Turn
from voicebot.dialogue.rasa_client import DialogueReply
from voicebot.transfer import (
    TransferConfig,
    TransferDecision,
    TransferPolicy,
    TurnObservation,
    VerifiedFacts,
    summary,
)
from voicebot.transfer.summary import KB_PREFIX

# A turn with one of these intents got the caller something done (for the
# transfer policy's "long call without progress" signal).
PROGRESS_INTENTS = frozenset(
    {
        "opening_hours",
        "check_balance",
        "recent_transactions",
        "lost_card",
        "reset_password",
        "provide_pin",
        "what_can_you_do",
        "affirm",
        "thank_you",
    }
)


def observe(
    turn: Turn, reply: DialogueReply | None, dtmf: str | None, failed: bool = False
) -> TurnObservation:
    """What the transfer policy needs to know about this turn (redacted text only)."""
    ranking = [_ranked(r) for r in (reply.intent_ranking if reply else [])][:5]
    return TurnObservation(
        index=turn.index,
        at_s=turn.offset_s,
        caller_text="" if turn.input == "dtmf" else (turn.caller_text or ""),
        intent=turn.intent,
        confidence=turn.confidence,
        intent_ranking=ranking,
        dtmf=dtmf,
        audio_stats=turn.audio,
        bot_text=turn.bot_text,
        dialogue_failed=failed,
        made_progress=_progress(turn.intent) if not failed else False,
        dialogue_gave_up=_gave_up(reply),
    )


def _progress(intent: str | None) -> bool:
    """A served skill, or an answer from the knowledge base (kb_<topic>)."""
    return intent in PROGRESS_INTENTS or (intent or "").startswith(KB_PREFIX)


def _gave_up(reply: DialogueReply | None) -> str | None:
    """Rasa locked identification (three wrong PINs): only a person can help now."""
    return "identity_failed" if reply is not None and reply.slots.get("pin_locked") else None


def _ranked(entry: object) -> tuple[str, float]:
    """Rasa's ranking entries are ``{"name", "confidence"}``; tuples pass through."""
    if isinstance(entry, dict):
        return str(entry.get("name")), float(entry.get("confidence") or 0.0)
    name, confidence = entry  # type: ignore[misc]
    return str(name), float(confidence)


class TransferWatch:
    """One call's transfer policy, fed turn by turn."""

    def __init__(self, config: TransferConfig, log: CallLogger) -> None:
        self.config = config
        self.policy = TransferPolicy(config)
        self.log = log

    def decide(
        self,
        record: CallRecord,
        turn: Turn,
        reply: DialogueReply | None,
        dtmf: str | None,
        *,
        failed: bool = False,
    ) -> TransferDecision | None:
        """Observe the turn; on a decision, record it (with its summary) and return it."""
        decision = self.policy.observe(observe(turn, reply, dtmf, failed=failed))
        if decision is None:
            return None
        facts = VerifiedFacts(record.caller_id, **record.verified)
        line = summary(self.policy.state.turns, decision, facts, self.config)
        record.transfer = self.policy.state.record(line)
        self.log.event("transfer_decided", reason=decision.reason, trigger=decision.trigger)
        return decision
