"""One versioned migration runner for both stores (SQLite and PostgreSQL).

The versions live in :mod:`voicebot.storage.schema`: a tuple of
:class:`Migration`, entry *n* upgrades version *n-1* to *n* on either engine.
The runner holds an exclusive lock while it reads the version and applies
what is missing, so several instances starting at once migrate the database
exactly once; the others wait, then find it current:

* SQLite: ``BEGIN IMMEDIATE`` (the write lock, waited for through the busy
  timeout), version in ``PRAGMA user_version``;
* PostgreSQL: a transaction-scoped advisory lock, version rows in
  ``schema_version``.

The version check and every script run in that one transaction (DDL is
transactional on both engines): a failure leaves the database as it was.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any, Protocol

from voicebot.storage.schema import MIGRATIONS, Dialect, Migration
from voicebot.storage.search import register_sqlite_functions

# Any constant works; all voicebot processes must agree on it.
PG_MIGRATION_LOCK = 0x766F6963  # "voic"


class SchemaTooNew(RuntimeError):
    """The database was migrated by a newer voicebot."""


class MigrationTarget(Protocol):
    """One database, seen by the runner while it holds the migration lock."""

    dialect: Dialect

    def version(self) -> int: ...

    def apply(self, script: str, version: int) -> None: ...


def migrate(target: MigrationTarget, migrations: Sequence[Migration], where: str) -> int:
    """Bring ``target`` up to ``len(migrations)``; returns the version found first.
    The caller holds the lock and the transaction."""
    found = target.version()
    if found > len(migrations):
        raise SchemaTooNew(
            f"{where} has schema version {found}, newer than this voicebot "
            f"({len(migrations)}): upgrade voicebot"
        )
    for number, migration in enumerate(migrations[found:], start=found + 1):
        target.apply(migration.script(target.dialect), number)
    return found


# --------------------------------------------------------------------- SQLite


class _SqliteTarget:
    dialect: Dialect = "sqlite"

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def version(self) -> int:
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    def apply(self, script: str, version: int) -> None:
        for statement in sql_statements(script):
            self.db.execute(statement)
        self.db.execute(f"PRAGMA user_version = {int(version)}")


def migrate_sqlite(
    db: sqlite3.Connection, where: str, migrations: Sequence[Migration] = MIGRATIONS
) -> int:
    """``db`` is in autocommit mode (``isolation_level=None``) with a busy timeout:
    a second process opening a fresh file waits at ``BEGIN IMMEDIATE``."""
    register_sqlite_functions(db)
    db.execute("BEGIN IMMEDIATE")
    try:
        found = migrate(_SqliteTarget(db), migrations, where)
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    return found


def sql_statements(script: str) -> list[str]:
    """Split a script into complete SQL statements (sqlite decides where one ends):
    ``executescript`` would commit first and drop the lock."""
    statements, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    return [s for s in statements if s.rstrip(";").strip()]


# ----------------------------------------------------------------- PostgreSQL


class _PgTarget:
    dialect: Dialect = "postgres"

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def version(self) -> int:
        self.conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = self.conn.execute("SELECT max(version) FROM schema_version").fetchone()
        return int(row[0] or 0)

    def apply(self, script: str, version: int) -> None:
        if script.strip():
            self.conn.execute(script)
        self.conn.execute("INSERT INTO schema_version VALUES (%s)", (version,))


def migrate_postgres(conn: Any, where: str, migrations: Sequence[Migration] = MIGRATIONS) -> int:
    """``conn`` is a psycopg connection; everything runs in one transaction."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (PG_MIGRATION_LOCK,))
        return migrate(_PgTarget(conn), migrations, where)
