"""Where call records and handoffs are kept: SQLite (embedded) or PostgreSQL (a cluster)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def is_postgres_url(target: object) -> bool:
    return isinstance(target, str) and target.startswith(("postgresql://", "postgres://"))


def open_store(target: str | Path, *, instance: str | None = None, address: str = "") -> Any:
    """A ``postgresql://`` URL opens the shared cluster store; anything else is a
    SQLite file (the embedded default, which needs no other service)."""
    if is_postgres_url(target):
        from voicebot.storage.postgres import PostgresStore

        return PostgresStore(str(target), instance=instance, address=address)
    from voicebot.storage.call_store import SqliteCallStore

    return SqliteCallStore(target)
