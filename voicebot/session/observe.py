"""What the transfer policy learns from one caller turn (redacted text only).

Kept apart from the session so the mapping from a dialogue turn to the
policy's vocabulary is one short, testable function.
"""

from __future__ import annotations

from voicebot.dialogue.rasa_client import DialogueReply
from voicebot.session.record import Turn
from voicebot.transfer import TurnObservation

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
        made_progress=(turn.intent in PROGRESS_INTENTS) if not failed else False,
        dialogue_gave_up=_gave_up(reply),
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
