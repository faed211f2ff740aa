"""Amounts, card digits and dates in the bot's replies, written the way people read them.

The reply text is what the call record, the agent desk and the handoff package
show, so it keeps the usual written forms ("$1,234.56", "ending in 4417").
voicebot turns them into the words a person says on the phone just before
synthesis ("one thousand two hundred and thirty-four dollars and fifty-six
cents", "four four one seven": ``voicebot/speech/spoken.py``), for every voice.
Dates are already words ("Monday, March 3rd").
"""

from __future__ import annotations

import datetime as dt


def money(cents: int) -> str:
    """``123456`` → "$1,234.56", ``4200`` → "$42"; the sign is the caller's business."""
    dollars, rest = divmod(abs(int(cents)), 100)
    return f"${dollars:,}.{rest:02d}" if rest else f"${dollars:,}"


def digits(text: str) -> str:
    """``"+1 555-0100"`` → ``"15550100"``: card and phone endings as one digit string."""
    return "".join(ch for ch in text if ch.isdigit())


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
