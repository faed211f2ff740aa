"""The schema of both stores, one version list for SQLite and PostgreSQL.

Version *n* names the same schema on both engines; each :class:`Migration`
carries the script per engine, and ``""`` where an engine has nothing to do.
PostgreSQL joined at version 3, so its version-1 script creates the whole
schema of that time (plus what only a cluster needs: instances with leases,
agent claims, desk sessions) and its scripts 2 and 3 are empty.  From
version 4 on, a change is written once per engine in the same entry.

Rules: append, never edit a shipped entry (a database at version *n* has run
entries 1..*n* exactly once).  SQLite scripts may call ``search_text(record)``
and ``package_search_text(package)`` (registered by the runner, from
:mod:`voicebot.storage.search`) to index the rows already stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Dialect = Literal["sqlite", "postgres"]


@dataclass(frozen=True)
class Migration:
    """One schema version: its script per engine (``""``: nothing to do there)."""

    summary: str
    sqlite: str = ""
    postgres: str = ""

    def script(self, dialect: Dialect) -> str:
        return self.sqlite if dialect == "sqlite" else self.postgres


# Text shared by both engines' scripts (part of shipped migrations: never edit).
_CALLBACKS = """CREATE TABLE callbacks (
            call_id      TEXT PRIMARY KEY,
            number       TEXT NOT NULL,
            confirmed_at TEXT NOT NULL,
            status       TEXT NOT NULL,
            handled_by   TEXT,
            handled_at   TEXT
        );"""
_HANDOFFS_HEAD = """CREATE TABLE handoffs (
            call_id    TEXT PRIMARY KEY,
            caller_id  TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            reason     TEXT NOT NULL,
            status     TEXT NOT NULL,
            agent      TEXT,"""
_ATTEMPTS_TAIL = """agent      TEXT NOT NULL,
            started_at TEXT NOT NULL,
            ended_at   TEXT,
            result     TEXT
        );
        CREATE INDEX handoff_attempts_agent ON handoff_attempts(agent, call_id);"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        "calls",
        sqlite="""
        CREATE TABLE calls (
            call_id    TEXT PRIMARY KEY,
            caller_id  TEXT,
            transport  TEXT NOT NULL,
            started_at TEXT NOT NULL,
            ended_at   TEXT,
            outcome    TEXT NOT NULL,
            record     TEXT NOT NULL
        );
        CREATE INDEX calls_started ON calls(started_at);
        """,
        postgres=f"""
        CREATE TABLE calls (
            call_id     TEXT PRIMARY KEY,
            caller_id   TEXT,
            transport   TEXT NOT NULL,
            started_at  TEXT NOT NULL,
            ended_at    TEXT,
            outcome     TEXT NOT NULL,
            record      JSONB NOT NULL,
            owner       TEXT,
            search_text TEXT NOT NULL DEFAULT '',
            search      tsvector GENERATED ALWAYS AS (to_tsvector('simple', search_text)) STORED
        );
        CREATE INDEX calls_started ON calls(started_at);
        CREATE INDEX calls_search ON calls USING GIN (search);
        CREATE INDEX calls_open ON calls(owner) WHERE outcome = 'in_progress';
        {_HANDOFFS_HEAD}
            package    JSONB NOT NULL,
            owner      TEXT,
            search_text TEXT NOT NULL DEFAULT '',
            search     tsvector GENERATED ALWAYS AS (to_tsvector('simple', search_text)) STORED
        );
        CREATE INDEX handoffs_status ON handoffs(status, created_at);
        CREATE INDEX handoffs_search ON handoffs USING GIN (search);
        CREATE TABLE handoff_attempts (
            id         BIGSERIAL PRIMARY KEY,
            call_id    TEXT NOT NULL REFERENCES handoffs(call_id) ON DELETE CASCADE,
            {_ATTEMPTS_TAIL}
        {_CALLBACKS}
        CREATE TABLE agent_states (
            name       TEXT PRIMARY KEY,
            available  BOOLEAN NOT NULL,
            idle_since DOUBLE PRECISION,
            updated_at TEXT NOT NULL,
            busy_with  TEXT,
            busy_owner TEXT
        );
        CREATE TABLE instances (
            id           TEXT PRIMARY KEY,
            address      TEXT NOT NULL DEFAULT '',
            started_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
            heartbeat_at TIMESTAMPTZ NOT NULL DEFAULT now(),
            draining     BOOLEAN NOT NULL DEFAULT false
        );
        CREATE TABLE desk_sessions (
            id_hash    TEXT PRIMARY KEY,
            agent      TEXT NOT NULL,
            expires_at DOUBLE PRECISION NOT NULL
        );
        """,
    ),
    # Transfers to agents (voicebot.handoff).  The package is written before
    # any phone rings; attempts, callbacks and agent availability survive a
    # restart so nothing a caller asked for is lost.
    Migration(
        "handoffs, ring attempts, callbacks, agent availability",
        sqlite=f"""
        {_HANDOFFS_HEAD}
            package    TEXT NOT NULL
        );
        CREATE INDEX handoffs_status ON handoffs(status, created_at);
        CREATE TABLE handoff_attempts (
            id         INTEGER PRIMARY KEY AUTOINCREMENT,
            call_id    TEXT NOT NULL REFERENCES handoffs(call_id),
            {_ATTEMPTS_TAIL}
        {_CALLBACKS}
        CREATE TABLE agent_states (
            name       TEXT PRIMARY KEY,
            available  INTEGER NOT NULL,
            idle_since REAL,
            updated_at TEXT NOT NULL
        );
        """,
    ),
    # Search over scrubbed text only (FTS5, existing rows indexed), and which
    # process owns a live call (a restart reconciles its own interrupted calls,
    # not a sibling's live ones).
    Migration(
        "full-text search over scrubbed text; call owner",
        sqlite="""
        CREATE VIRTUAL TABLE calls_fts USING fts5(call_id UNINDEXED, text, tokenize='unicode61');
        CREATE VIRTUAL TABLE handoffs_fts USING fts5(call_id UNINDEXED, text, tokenize='unicode61');
        ALTER TABLE calls ADD COLUMN owner TEXT;
        CREATE INDEX calls_outcome ON calls(outcome);
        CREATE INDEX calls_caller ON calls(caller_id);
        INSERT INTO calls_fts SELECT call_id, search_text(record) FROM calls;
        INSERT INTO handoffs_fts SELECT call_id, package_search_text(package) FROM handoffs;
        """,
    ),
)
