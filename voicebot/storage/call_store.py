"""The call store: call records in SQLite (WAL), with versioned migrations.

The session saves the record after every turn, so the transcript survives a
crash or a hang-up mid-call.  Records are stored whole as JSON (the shape
``voicebot simulate --json`` prints) beside a few indexed columns for listing
and search; PINs never reach this layer (the session redacts them).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any, Protocol

from voicebot.session.record import CallRecord

# Each entry upgrades the schema by one version; never edit a shipped one.
MIGRATIONS: tuple[str, ...] = (
    """
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
)


class CallStore(Protocol):
    def save(self, record: CallRecord) -> None: ...

    def get(self, call_id: str) -> dict[str, Any] | None: ...

    def list_calls(self, limit: int = 50, query: str | None = None) -> list[dict[str, Any]]: ...


class SqliteCallStore:
    """A thread-safe SQLite call store (one connection, serialised)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._migrate()

    @property
    def schema_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        with self._lock:
            version = self.schema_version
            if version > len(MIGRATIONS):
                raise RuntimeError(
                    f"{self.path} has schema version {version}, newer than this voicebot "
                    f"({len(MIGRATIONS)}): upgrade voicebot"
                )
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                self._db.executescript(f"BEGIN; {script}; PRAGMA user_version = {number}; COMMIT;")

    def save(self, record: CallRecord) -> None:
        data = record.to_dict()
        with self._lock:
            self._db.execute(
                """INSERT INTO calls VALUES (?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT(call_id) DO UPDATE SET ended_at=excluded.ended_at,
                   outcome=excluded.outcome, record=excluded.record""",
                (
                    record.call_id,
                    record.caller_id,
                    record.transport,
                    record.started_at,
                    record.ended_at,
                    record.outcome,
                    json.dumps(data),
                ),
            )

    def get(self, call_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT record FROM calls WHERE call_id = ?", (call_id,)
            ).fetchone()
        return json.loads(row[0]) if row else None

    def list_calls(self, limit: int = 50, query: str | None = None) -> list[dict[str, Any]]:
        """Newest first; ``query`` matches caller ID, call ID or transcript text."""
        sql = "SELECT record FROM calls"
        args: list[Any] = []
        if query:
            sql += " WHERE call_id LIKE ? OR caller_id LIKE ? OR record LIKE ?"
            args += [f"%{query}%"] * 3
        sql += " ORDER BY started_at DESC LIMIT ?"
        args.append(limit)
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [json.loads(r[0]) for r in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()
