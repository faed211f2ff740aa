"""Keep PIN digits out of every transcript, record and log line.

A PIN can arrive spoken ("four three two one", which Whisper writes as
"4321"), keyed, or volunteered mid-sentence.  Whenever a turn may carry one,
every digit run and spoken number word in it is masked before the text is
stored or logged.  Masking is deliberately broad: a lost digit of context is
cheap, a leaked PIN is not.
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
