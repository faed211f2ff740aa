"""The text a store indexes for search: the words of a record, scrubbed.

Search must never find what an agent may not read, so the indexed column is
built from the transcript and summary with card numbers and digits masked
(the session already masks PINs before a record is saved).  Only words people said or the
bot wrote are kept: timings, flags and JSON keys are not searchable.
"""

from __future__ import annotations

import json
from typing import Any

from voicebot.core.redaction import mask_card_numbers, scrub_numbers

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


# The SQLite store indexes these (FTS5); PostgreSQL uses record_search_text.


def search_text(data: dict[str, Any]) -> str:
    """What search sees of a record: both sides of every turn and the transfer
    summary, scrubbed again (digits masked, so none can be probed one at a time)."""
    parts: list[str] = []
    for turn in data.get("turns") or []:
        parts += [turn.get("caller_text") or "", turn.get("bot_text") or ""]
    transfer = data.get("transfer") or {}
    parts += [str(transfer.get("summary") or ""), str(transfer.get("reason") or "")]
    return scrub_numbers(" ".join(p for p in parts if p)).translate(_NO_DIGITS)


def package_search_text(package: dict[str, Any]) -> str:
    """Every text in a handoff package (summary, reason, transcript…), scrubbed the same way."""
    return scrub_numbers(" ".join(_strings(package))).translate(_NO_DIGITS)


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def register_sqlite_functions(db: Any) -> None:
    """``search_text(record_json)`` and ``package_search_text(package_json)`` in SQL,
    so a SQLite migration can index the rows already stored."""
    db.create_function("search_text", 1, lambda r: search_text(json.loads(r)), deterministic=True)
    db.create_function(
        "package_search_text", 1, lambda p: package_search_text(json.loads(p)), deterministic=True
    )
