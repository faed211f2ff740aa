"""Row shapes both stores share: which columns a handoff view reads, and the
dictionaries the handoff layer and the desk get back (whatever the engine)."""

from __future__ import annotations

from typing import Any

HANDOFF_COLUMNS = "call_id, status, agent, created_at, updated_at, package"
CALLBACK_COLUMNS = "call_id, number, confirmed_at, status, handled_by, handled_at"
ATTEMPT_COLUMNS = "agent, started_at, ended_at, result"


def callback_dict(row: tuple[Any, ...]) -> dict[str, Any]:
    return dict(zip(CALLBACK_COLUMNS.split(", "), row, strict=True))


def handoff_dict(
    row: tuple[Any, ...],
    package: dict[str, Any],
    attempts: list[tuple[Any, ...]],
    callback: tuple[Any, ...] | None,
) -> dict[str, Any]:
    """A handoff with its ring attempts and callback request (``package`` decoded)."""
    call_id, status, agent, created_at, updated_at, _ = row
    return {
        "call_id": call_id,
        "status": status,
        "agent": agent,
        "created_at": created_at,
        "updated_at": updated_at,
        "package": package,
        "attempts": [dict(zip(ATTEMPT_COLUMNS.split(", "), a, strict=True)) for a in attempts],
        "callback": callback_dict(callback) if callback else None,
    }
