"""Turn numbers and dates into text that a TTS voice reads naturally on a phone.

Everything the bot says is spoken, so amounts are "1,234 dollars and 56
cents" (espeak reads "1,234" as a number), card and phone digits are spaced
so they are read one by one, and dates are "Monday, March 3rd".
"""

from __future__ import annotations

import datetime as dt


def money(cents: int) -> str:
    """``123456`` → "1,234 dollars and 56 cents"; the sign is the caller's business."""
    cents = abs(int(cents))
    dollars, rest = divmod(cents, 100)
    dollar_text = f"{dollars:,} dollar{'' if dollars == 1 else 's'}"
    cent_text = f"{rest} cent{'' if rest == 1 else 's'}"
    if dollars and rest:
        return f"{dollar_text} and {cent_text}"
    if rest:
        return cent_text
    return dollar_text


def digits(text: str) -> str:
    """``"4417"`` → ``"4 4 1 7"`` so a voice reads digits, not a number."""
    return " ".join(ch for ch in text if ch.isdigit())


def _ordinal(day: int) -> str:
    suffix = "th" if 11 <= day % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


def day(iso_date: str, today: dt.date | None = None) -> str:
    """A date as people say it: "today", "yesterday", or "Monday, March 3rd"."""
    date = dt.date.fromisoformat(iso_date[:10])
    today = today or dt.date.today()
    if date == today:
        return "today"
    if date == today - dt.timedelta(days=1):
        return "yesterday"
    return f"{date.strftime('%A, %B')} {_ordinal(date.day)}"


def join_words(items: list[str]) -> str:
    """["a", "b", "c"] → "a, b and c" (no lists on a phone)."""
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]
