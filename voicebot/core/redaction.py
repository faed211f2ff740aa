"""Keep secrets out of every transcript, record, log line and handoff package.

A PIN can arrive spoken ("four three two one", which Whisper writes as
"4321"), keyed, or volunteered mid-sentence.  Whenever a turn may carry one,
every digit run and spoken number word in it is masked before the text is
stored or logged.  Masking is deliberately broad: a lost digit of context is
cheap, a leaked PIN is not.

A handoff package is copied to the store, a browser and possibly a carrier
webhook, so it is scrubbed again (:func:`scrub`) rather than trusting every
upstream path: card numbers keep only their last four digits.
"""

from __future__ import annotations

import re

PIN_MASK = "[PIN]"

_NUMBER_WORDS = (
    "zero|oh|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|"
    "fourteen|fifteen|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|"
    "sixty|seventy|eighty|ninety|hundred|thousand"
)
_DIGIT_RUN = re.compile(r"\d(?:[\s,.-]*\d)*")
_WORD_RUN = re.compile(rf"\b(?:{_NUMBER_WORDS})(?:[\s,.-]+(?:{_NUMBER_WORDS}))*\b", re.IGNORECASE)


def mask_pin(text: str) -> str:
    """Replace every digit run and run of number words with ``[PIN]``."""
    masked = _DIGIT_RUN.sub(PIN_MASK, text)
    return _WORD_RUN.sub(PIN_MASK, masked)


# Whatever the intent, and whether or not the dialogue answered, a turn is
# recorded only after this: a PIN volunteered inside another request ("my PIN is
# four three two one, what's my balance") or a card number read out.
PIN_LIKE_DIGITS = 4  # runs this long or longer may be a PIN (or an account number)
CARD_DIGITS = range(13, 20)
_RUN_NOT_KEPT_LAST4 = re.compile(r"(?<!\d)(?<!•••• )\d(?:[\s,.-]*\d)*")
_UNIT_WORDS = frozenset(
    ["zero", "oh", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
)
_TENS_WORDS = frozenset(
    ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
)


def scrub_numbers(text: str) -> str:
    """Mask card numbers (keeping the last four) and PIN-like runs, digits or words."""
    text = _RUN_NOT_KEPT_LAST4.sub(_mask_digit_run, text)
    return _WORD_RUN.sub(_mask_word_run, text)


def _mask_digit_run(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group())
    if len(digits) in CARD_DIGITS:
        return "•••• " + digits[-4:]
    return PIN_MASK if len(digits) >= PIN_LIKE_DIGITS else match.group()


def _mask_word_run(match: re.Match[str]) -> str:
    return PIN_MASK if spoken_digit_count(match.group()) >= PIN_LIKE_DIGITS else match.group()


def spoken_digit_count(words: str) -> int:
    """How many digits a run of number words stands for: "four three two one" 4,
    "forty three twenty one" 4, "forty three" 2 (a unit after a tens word adds none)."""
    count, after_tens = 0, False
    for word in re.findall(r"[a-z]+", words.lower()):
        if word in _UNIT_WORDS:
            count += 0 if after_tens else 1
        else:
            count += 3 if word == "thousand" else 2
        after_tens = word in _TENS_WORDS
    return count


def mask_keyed_digits(digits: str) -> str:
    """A keyed PIN is shown only by its length, e.g. ``****``."""
    return "*" * len(digits)


# 13–19 digits, optionally grouped by spaces or dashes (how Whisper writes a
# card number read aloud, and how people type them).
_CARD = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")
# Intents on which the caller is expected to say a secret.
SECRET_INTENTS = frozenset({"provide_pin"})


def mask_card_numbers(text: str) -> str:
    """Keep only the last four digits of anything shaped like a card number."""
    return _CARD.sub(_mask_card, text)


def _mask_card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return "•••• " + digits[-4:]


def scrub(text: str | None, *, secret: bool = False) -> str | None:
    """Mask card numbers always, and every number when the text may hold a PIN."""
    if text is None:
        return None
    text = mask_card_numbers(text)
    return mask_pin(text) if secret else text
