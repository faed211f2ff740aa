"""Versioned schema migrations for the PostgreSQL store.

The same rule as the SQLite store (``call_store.py``, under ``BEGIN IMMEDIATE``
with the version in ``PRAGMA user_version``): a tuple of scripts, script *n*
upgrades version *n-1* to *n* and is never edited once shipped, and the runner
holds an exclusive lock while it reads the version and applies what is missing,
so several instances starting at once migrate the database exactly once.
Here the lock is a transaction-scoped advisory lock and the version lives in
``schema_version``.

The version check and every script run in that one transaction: a failure
leaves the database as it was.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

# Any constant works; all voicebot processes must agree on it.
PG_MIGRATION_LOCK = 0x766F6963  # "voic"


class SchemaTooNew(RuntimeError):
    """The database was migrated by a newer voicebot."""


class MigrationTarget(Protocol):
    """One database, seen by the runner while it holds the migration lock."""

    def version(self) -> int: ...

    def apply(self, script: str, version: int) -> None: ...


def migrate(target: MigrationTarget, scripts: Sequence[str], where: str) -> int:
    """Bring ``target`` up to ``len(scripts)``; returns the version found first."""
    found = target.version()
    if found > len(scripts):
        raise SchemaTooNew(
            f"{where} has schema version {found}, newer than this voicebot "
            f"({len(scripts)}): upgrade voicebot"
        )
    for number, script in enumerate(scripts[found:], start=found + 1):
        target.apply(script, number)
    return found


# ----------------------------------------------------------------- PostgreSQL


class _PgTarget:
    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def version(self) -> int:
        self.conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = self.conn.execute("SELECT max(version) FROM schema_version").fetchone()
        return int(row[0] or 0)

    def apply(self, script: str, version: int) -> None:
        self.conn.execute(script)
        self.conn.execute("INSERT INTO schema_version VALUES (%s)", (version,))


def migrate_postgres(conn: Any, scripts: Sequence[str], where: str) -> int:
    """``conn`` is a psycopg connection; everything runs in one transaction."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (PG_MIGRATION_LOCK,))
        return migrate(_PgTarget(conn), scripts, where)
