"""The PIN rules of a call: when to expect one, and what may be written down.

Rasa says when it asked for a PIN (``expects_pin``); from then on spoken
numbers are normalised to digits for Rasa, and every text of that turn is
masked before it is stored or logged.  A turn Rasa reads as a PIN is masked
too, even when no PIN was asked for.
"""

from __future__ import annotations

from voicebot.core.redaction import mask_keyed_digits, mask_pin
from voicebot.dialogue.dtmf import dtmf_message
from voicebot.dialogue.rasa_client import DialogueReply
from voicebot.speech.numbers import normalize_digits

_PIN_HINTS = ("pin", "code", "number is")
VERIFIED_SLOTS = ("caller_id_matched", "pin_verified")


class PinGuard:
    """One call's PIN state (no I/O)."""

    def __init__(self) -> None:
        self.expects_pin = False

    def heard(self, text: str) -> str:
        """The caller's words as Rasa should get them ("four three…" → "43…")."""
        if self.expects_pin or any(h in text.lower() for h in _PIN_HINTS):
            return normalize_digits(text)
        return text

    def keyed(self, digits: str) -> tuple[str, str]:
        """A finished keypad entry: ``(shown in the record, message for Rasa)``."""
        shown = mask_keyed_digits(digits) if self.expects_pin else digits
        return shown, dtmf_message(digits, expects_pin=self.expects_pin)

    def must_redact(self, reply: DialogueReply | None, *, pin_context: bool) -> bool:
        """Mask this turn: a PIN was asked for, or Rasa read the words as one."""
        return pin_context or (reply is not None and _mentions_pin(reply))

    @staticmethod
    def caller_text(text: str, input_kind: str, shown: str | None, *, redact: bool) -> str:
        """What the record keeps of the caller's turn."""
        if input_kind == "dtmf":
            return f"[keypad: {shown if shown is not None else text}]"
        return mask_pin(text) if redact else text

    def apply(self, reply: DialogueReply, verified: dict[str, bool | None]) -> None:
        """Take Rasa's view after a turn: PIN expected next? identity checks passed?"""
        self.expects_pin = reply.expects_pin
        for key in VERIFIED_SLOTS:
            value = getattr(reply, key)
            if value is not None:
                verified[key] = value


def _mentions_pin(reply: DialogueReply) -> bool:
    return reply.intent == "provide_pin" or any(e.get("entity") == "pin" for e in reply.entities)
