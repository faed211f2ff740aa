"""Keypad entry: the digits a caller keys in, and when an entry is complete.

An entry ends on the PIN's length (when a PIN was asked for), on ``#``, or
after ``interdigit_s`` with no further key (counted on the media clock, so a
fixture call times out exactly like a phone call).  A lone ``0`` when nothing
is being keyed in and no PIN is expected is the "press zero for a person"
shortcut and ends at once.
"""

from __future__ import annotations

PIN_LENGTH = 4


class KeypadEntry:
    """One call's keypad state (the session asks it; it does no I/O)."""

    def __init__(self, interdigit_s: float, pin_length: int = PIN_LENGTH) -> None:
        self.interdigit_s = interdigit_s
        self.pin_length = pin_length
        self._digits = ""
        self._last_press_at = float("inf")

    @property
    def pending(self) -> bool:
        """Digits are being keyed in (the caller is mid-entry)."""
        return bool(self._digits)

    def pressed_at(self, at: float) -> None:
        """A key arrived at media time ``at`` (the inter-digit clock restarts)."""
        self._last_press_at = at

    def press(self, digit: str, *, expects_pin: bool) -> str | None:
        """Add a key; return the finished entry when this key completes it."""
        if digit == "0" and not self._digits and not expects_pin:
            return "0"
        if digit == "#":
            return self.take()
        self._digits += digit
        if expects_pin and len(self._digits) >= self.pin_length:
            return self.take()
        return None

    def timed_out(self, now: float) -> bool:
        """True once when keys stopped coming for ``interdigit_s`` mid-entry."""
        if self._digits and now - self._last_press_at >= self.interdigit_s:
            self._last_press_at = float("inf")
            return True
        return False

    def take(self) -> str:
        """The digits so far (maybe empty); the entry starts over."""
        digits, self._digits = self._digits, ""
        return digits
