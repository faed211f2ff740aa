"""Written text → the words a person would say on the phone, just before synthesis.

The bot's replies keep their written form ("$42.17", "card ending in 4417",
"9 a.m. to 5 p.m.") in the call record, the agent desk and the handoff package,
where a person reads them.  Only the voice gets the spoken form: "forty-two
dollars and seventeen cents", "ending in four four one seven", "nine A M to five
P M".  Doing it here, in front of every engine, covers every source of text at
once (Rasa responses, custom actions, configured prompts) and both voices read
numbers the same way, instead of each engine guessing at "$42.17" or "4417".

Rules, in order:
* amounts: ``$1,234.56`` → "one thousand two hundred and thirty-four dollars and
  fifty-six cents";
* times: ``9 a.m.``, ``9:30pm``, ``17:00`` → "nine A M", "nine thirty P M",
  "seventeen hundred";
* dates: ``March 3``, ``March 3rd, 2026`` → "March third, twenty twenty-six";
* ordinals: ``21st`` → "twenty-first";
* grouped digits (``555-0100``) and runs of four or more digits (card or phone
  endings, references) are read digit by digit, "0" as "zero": people read such
  numbers that way, and "four thousand four hundred seventeen" is not what a
  caller checks their card against;
* other numbers ("30 minutes", "1,500", "2.5", "5%") as cardinals;
* abbreviations people say as a word: "PIN" → "pin" (both voices spelled it
  out, P-I-N, heard as "the I.N." or "end": scripts/bench_voice).
"""

from __future__ import annotations

import re

from num2words import num2words

_MONTHS = "January|February|March|April|May|June|July|August|September|October|November|December"
_DIGIT_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]

_MONEY = re.compile(r"(?<![\w$])\$(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d{2}))?(?![\d,]\d)")
_CLOCK_12 = re.compile(r"\b(\d{1,2})(?::(\d{2}))?\s?([ap])\.?\s?m\b(\.?)", re.IGNORECASE)
# "9am-5pm", "9 - 5 p.m.": a dash between times is "to".
_TIME_RANGE = re.compile(
    r"(?<=\d)(\s?[ap]\.?m\b\.?)?\s?[-–]\s?(?=\d{1,2}(?::\d\d)?\s?[ap]\.?m\b)", re.IGNORECASE
)
# "555-0100", "12-34-56": grouped digits, read digit by digit.
_DIGIT_GROUPS = re.compile(r"(?<![\d$.,])\d{2,}(?:-\d{2,})+(?![\d,])")
_CLOCK_24 = re.compile(r"\b([01]?\d|2[0-3]):([0-5]\d)\b")
_DATE = re.compile(rf"\b({_MONTHS})\s+(\d{{1,2}})(?:st|nd|rd|th)?\b(?:,?\s+(\d{{4}})\b)?")
_ORDINAL = re.compile(r"\b(\d+)(st|nd|rd|th)\b", re.IGNORECASE)
_DIGIT_RUN = re.compile(r"(?<![\d,.])\d{4,}(?![\d,]|\.\d)")
_PERCENT = re.compile(r"(?<![\d.,])(\d+(?:\.\d+)?)\s?%")
_SAID_AS_WORDS = re.compile(r"\bPINs?\b")
_NUMBER = re.compile(r"(?<![\d.,])(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?(?![\d,]\d)")


def cardinal(value: int) -> str:
    """``1234`` → "one thousand two hundred and thirty-four" (no commas: no pauses)."""
    return str(num2words(value)).replace(",", "")


def digit_by_digit(digits: str) -> str:
    """``"4417"`` → "four four one seven"."""
    return " ".join(_DIGIT_WORDS[int(d)] for d in digits if d.isdigit())


def money_words(dollars: int, cents: int) -> str:
    """42, 17 → "forty-two dollars and seventeen cents"; whole or cents-only amounts too."""
    dollar_text = f"{cardinal(dollars)} dollar{'' if dollars == 1 else 's'}"
    cent_text = f"{cardinal(cents)} cent{'' if cents == 1 else 's'}"
    if dollars and cents:
        return f"{dollar_text} and {cent_text}"
    return cent_text if cents else dollar_text


def clock_words(hour: int, minute: int, meridiem: str | None) -> str:
    """9, 30, "p" → "nine thirty P M"; minutes under ten as "oh five"."""
    words = cardinal(hour)
    if minute:
        words += f" {cardinal(minute)}" if minute >= 10 else f" oh {cardinal(minute)}"
    elif not meridiem:
        words += " o'clock" if hour <= 12 else " hundred"
    if meridiem:
        words += f" {meridiem.upper()} M"
    return words


def _money(match: re.Match[str]) -> str:
    return money_words(int(match.group(1).replace(",", "")), int(match.group(2) or 0))


def _clock_12(match: re.Match[str]) -> str:
    hour, minute, meridiem = int(match.group(1)), int(match.group(2) or 0), match.group(3)
    if not 1 <= hour <= 12 or minute > 59:
        return match.group(0)
    # "p.m." ending a sentence keeps its full stop; "a.m. to" loses its dot.
    rest = match.string[match.end() :]
    stop = "." if match.group(4) and (not rest.strip() or rest.lstrip()[:1].isupper()) else ""
    return clock_words(hour, minute, meridiem) + stop


def _clock_24(match: re.Match[str]) -> str:
    return clock_words(int(match.group(1)), int(match.group(2)), None)


def _date(match: re.Match[str]) -> str:
    month, day, year = match.group(1), int(match.group(2)), match.group(3)
    if not 1 <= day <= 31:
        return match.group(0)
    words = f"{month} {num2words(day, to='ordinal')}"
    return f"{words}, {num2words(int(year), to='year')}" if year else words


def _ordinal(match: re.Match[str]) -> str:
    return str(num2words(int(match.group(1)), to="ordinal"))


def _digit_groups(match: re.Match[str]) -> str:
    groups = match.group(0).split("-")
    if len(groups) == 2 and sum(map(len, groups)) < 6:  # "10-12": a range
        return " to ".join(cardinal(int(g)) for g in groups)
    return ", ".join(digit_by_digit(group) for group in groups)


def _percent(match: re.Match[str]) -> str:
    return f"{_number_text(match.group(1))} percent"


def _number_text(text: str) -> str:
    whole, _, fraction = text.replace(",", "").partition(".")
    words = cardinal(int(whole))
    return f"{words} point {digit_by_digit(fraction)}" if fraction else words


def _number(match: re.Match[str]) -> str:
    return _number_text(match.group(0))


def for_speech(text: str) -> str:
    """The text with every number written the way a voice should say it."""
    text = _MONEY.sub(_money, text)
    text = _TIME_RANGE.sub(lambda m: f"{m.group(1) or ''} to ", text)
    text = _CLOCK_12.sub(_clock_12, text)
    text = _CLOCK_24.sub(_clock_24, text)
    text = _DATE.sub(_date, text)
    text = _ORDINAL.sub(_ordinal, text)
    text = _DIGIT_GROUPS.sub(_digit_groups, text)
    text = _DIGIT_RUN.sub(lambda m: digit_by_digit(m.group(0)), text)
    text = _PERCENT.sub(_percent, text)
    text = _SAID_AS_WORDS.sub(lambda m: m.group(0).lower(), text)
    return _NUMBER.sub(_number, text)
