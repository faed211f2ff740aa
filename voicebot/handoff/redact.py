"""Last line of defence before a package leaves the bot: no card number, no PIN.

The session already masks PINs in the record; the package is copied to the
store, a browser and possibly a carrier webhook, so it is scrubbed again here
rather than trusting every upstream path.
"""

from __future__ import annotations

import re

from voicebot.session.redaction import mask_pin

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
