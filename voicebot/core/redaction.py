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
