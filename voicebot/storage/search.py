"""The text a store indexes for search: the words of a record, scrubbed.

Search must never find what an agent may not read, so the indexed column is
built from the transcript and summary with card numbers and digits masked
(the session already masks PINs before a record is saved).  Only words people said or the
bot wrote are kept: timings, flags and JSON keys are not searchable.
"""

from __future__ import annotations

from typing import Any

from voicebot.core.redaction import mask_card_numbers

# Keys whose string values are words worth finding.
TEXT_KEYS = frozenset(
    {"caller_text", "bot_text", "text", "summary", "reason", "category", "intent", "intents"}
)


def record_search_text(data: dict[str, Any]) -> str:
    """One line of scrubbed words from a call record or a handoff package: card
    numbers masked, then every digit (none can be probed one at a time)."""
    words: list[str] = []
    _collect(data, None, words)
    return mask_card_numbers(" ".join(words)).translate(_NO_DIGITS)


_NO_DIGITS = str.maketrans("0123456789", "##########")


def _collect(value: Any, key: str | None, out: list[str]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _collect(v, k, out)
    elif isinstance(value, list):
        for item in value:
            _collect(item, key, out)
    elif isinstance(value, str) and key in TEXT_KEYS:
        out.append(value)
