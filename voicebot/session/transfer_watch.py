"""Consulting the transfer policy after every caller turn.

The mapping from a dialogue turn to the policy's vocabulary (redacted text
only) is one short function, :func:`observe`; :class:`TransferWatch` feeds it
to the policy and, when the policy decides, writes the decision and its
one-line summary into the call record.
"""

from __future__ import annotations

from collections.abc import Collection

from voicebot.core.logs import CallLogger
from voicebot.core.record import CallRecord, Turn
from voicebot.dialogue.intents import IntentCatalog
from voicebot.dialogue.rasa_client import DialogueReply
from voicebot.session.outcome import is_progress
from voicebot.transfer import (
    TransferConfig,
    TransferDecision,
    TransferPolicy,
    TurnObservation,
    VerifiedFacts,
    summary,
)

# Why the dialogue cannot go on when it is known to be down (being restarted):
# the caller goes to a person at once instead of hearing apologies.
DIALOGUE_UNAVAILABLE = "dialogue_unavailable"


def observe(
    turn: Turn,
    reply: DialogueReply | None,
    dtmf: str | None,
    failed: bool = False,
    *,
    progress: Collection[str] = (),
    gave_up: str | None = None,
) -> TurnObservation:
    """What the transfer policy needs to know about this turn (redacted text only).

    ``progress``: intents whose answer got the caller something done (the
    project's intents.yml); ``gave_up``: why the dialogue cannot go on, when
    the session knows better than Rasa's reply."""
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
        made_progress=is_progress(turn.intent, progress) if not failed else False,
        dialogue_gave_up=gave_up or _gave_up(reply),
    )


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

    def __init__(
        self, config: TransferConfig, log: CallLogger, intents: IntentCatalog | None = None
    ) -> None:
        self.config = config
        self.policy = TransferPolicy(config)
        self.log = log
        self.intents = intents or IntentCatalog()

    def decide(
        self,
        record: CallRecord,
        turn: Turn,
        reply: DialogueReply | None,
        dtmf: str | None,
        *,
        failed: bool = False,
        gave_up: str | None = None,
    ) -> TransferDecision | None:
        """Observe the turn; on a decision, record it (with its summary) and return it."""
        seen = observe(turn, reply, dtmf, failed, progress=self.intents.progress, gave_up=gave_up)
        decision = self.policy.observe(seen)
        if decision is None:
            return None
        facts = VerifiedFacts(record.caller_id, **record.verified)
        labels = self.intents.labels
        line = summary(self.policy.state.turns, decision, facts, self.config, labels)
        record.transfer = self.policy.state.record(line)
        self.log.event("transfer_decided", reason=decision.reason, trigger=decision.trigger)
        return decision
