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

from voicebot.core.record import CallRecord

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
    # 2: transfers to agents (voicebot.handoff).  The package is written before
    # any phone rings; attempts, callbacks and agent availability survive a
    # restart so nothing a caller asked for is lost.
    """
    CREATE TABLE handoffs (
        call_id    TEXT PRIMARY KEY,
        caller_id  TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        reason     TEXT NOT NULL,
        status     TEXT NOT NULL,
        agent      TEXT,
        package    TEXT NOT NULL
    );
    CREATE INDEX handoffs_status ON handoffs(status, created_at);
    CREATE TABLE handoff_attempts (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        call_id    TEXT NOT NULL REFERENCES handoffs(call_id),
        agent      TEXT NOT NULL,
        started_at TEXT NOT NULL,
        ended_at   TEXT,
        result     TEXT
    );
    CREATE INDEX handoff_attempts_agent ON handoff_attempts(agent, call_id);
    CREATE TABLE callbacks (
        call_id      TEXT PRIMARY KEY,
        number       TEXT NOT NULL,
        confirmed_at TEXT NOT NULL,
        status       TEXT NOT NULL,
        handled_by   TEXT,
        handled_at   TEXT
    );
    CREATE TABLE agent_states (
        name       TEXT PRIMARY KEY,
        available  INTEGER NOT NULL,
        idle_since REAL,
        updated_at TEXT NOT NULL
    );
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

    # ------------------------------------------------ handoffs (owner: voicebot.handoff)
    # Statuses are opaque strings here; voicebot.handoff.store names them.  Times
    # are passed in so the handoff layer decides the clock (and tests fix it).

    def save_handoff(self, package: dict[str, Any], status: str, at: str) -> None:
        """Write (or rewrite) a handoff package; called before any phone rings."""
        with self._lock:
            self._db.execute(
                """INSERT INTO handoffs VALUES (?, ?, ?, ?, ?, ?, NULL, ?)
                   ON CONFLICT(call_id) DO UPDATE SET updated_at=excluded.updated_at,
                   reason=excluded.reason, status=excluded.status, package=excluded.package""",
                (
                    package["call_id"],
                    package.get("caller_id"),
                    package["created_at"],
                    at,
                    package["reason"],
                    status,
                    json.dumps(package),
                ),
            )

    def set_handoff_status(
        self, call_id: str, status: str, at: str, agent: str | None = None
    ) -> None:
        """Move a handoff on; ``agent`` (when given) is who has it now."""
        with self._lock:
            self._db.execute(
                """UPDATE handoffs SET status = ?, updated_at = ?,
                   agent = COALESCE(?, agent) WHERE call_id = ?""",
                (status, at, agent, call_id),
            )

    def mark_handoffs(self, from_statuses: list[str], to_status: str, at: str) -> list[str]:
        """Move every handoff in ``from_statuses`` on (e.g. calls cut by a restart)."""
        marks = ",".join("?" * len(from_statuses))
        with self._lock:
            rows = self._db.execute(
                f"SELECT call_id FROM handoffs WHERE status IN ({marks})", from_statuses
            ).fetchall()
            ids = [r[0] for r in rows]
            for call_id in ids:
                self._db.execute(
                    "UPDATE handoffs SET status = ?, updated_at = ? WHERE call_id = ?",
                    (to_status, at, call_id),
                )
                self._db.execute(
                    """UPDATE handoff_attempts SET result = ?, ended_at = ?
                       WHERE call_id = ? AND result IS NULL""",
                    (to_status, at, call_id),
                )
        return ids

    def add_handoff_attempt(self, call_id: str, agent: str, started_at: str) -> int:
        """Record that an agent's phone started ringing for this call."""
        with self._lock:
            cursor = self._db.execute(
                "INSERT INTO handoff_attempts (call_id, agent, started_at) VALUES (?, ?, ?)",
                (call_id, agent, started_at),
            )
        return int(cursor.lastrowid or 0)

    def finish_handoff_attempt(self, attempt_id: int, result: str, ended_at: str) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE handoff_attempts SET result = ?, ended_at = ? WHERE id = ?",
                (result, ended_at, attempt_id),
            )

    def get_handoff(self, call_id: str) -> dict[str, Any] | None:
        """The package with its status, ring attempts and callback request."""
        with self._lock:
            row = self._db.execute(
                f"SELECT {_HANDOFF_COLUMNS} FROM handoffs WHERE call_id = ?", (call_id,)
            ).fetchone()
            if row is None:
                return None
            return self._handoff_view(row)

    def list_handoffs(
        self,
        *,
        statuses: list[str] | None = None,
        agent: str | None = None,
        query: str | None = None,
        limit: int = 50,
    ) -> list[dict[str, Any]]:
        """Newest first.  ``agent`` keeps the calls that agent's phone rang for;
        ``query`` matches call ID, caller ID, the package or the call record."""
        where: list[str] = []
        args: list[Any] = []
        if statuses:
            where.append(f"status IN ({','.join('?' * len(statuses))})")
            args += statuses
        if agent is not None:
            where.append("call_id IN (SELECT call_id FROM handoff_attempts WHERE agent = ?)")
            args.append(agent)
        if query:
            where.append(
                "(call_id LIKE ? OR caller_id LIKE ? OR package LIKE ? OR call_id IN "
                "(SELECT call_id FROM calls WHERE record LIKE ?))"
            )
            args += [f"%{query}%"] * 4
        sql = f"SELECT {_HANDOFF_COLUMNS} FROM handoffs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at DESC LIMIT ?"
        args.append(limit)
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
            return [self._handoff_view(r) for r in rows]

    def _handoff_view(self, row: tuple[Any, ...]) -> dict[str, Any]:
        """Caller holds the lock."""
        call_id, status, agent, created_at, updated_at, package = row
        attempts = self._db.execute(
            """SELECT agent, started_at, ended_at, result FROM handoff_attempts
               WHERE call_id = ? ORDER BY id""",
            (call_id,),
        ).fetchall()
        callback = self._db.execute(
            f"SELECT {_CALLBACK_COLUMNS} FROM callbacks WHERE call_id = ?", (call_id,)
        ).fetchone()
        return {
            "call_id": call_id,
            "status": status,
            "agent": agent,
            "created_at": created_at,
            "updated_at": updated_at,
            "package": json.loads(package),
            "attempts": [
                dict(zip(("agent", "started_at", "ended_at", "result"), a, strict=True))
                for a in attempts
            ],
            "callback": _callback_dict(callback) if callback else None,
        }

    def save_callback(self, call_id: str, number: str, confirmed_at: str) -> None:
        """Keep a caller's confirmed callback request (status ``pending``)."""
        with self._lock:
            self._db.execute(
                """INSERT INTO callbacks VALUES (?, ?, ?, 'pending', NULL, NULL)
                   ON CONFLICT(call_id) DO UPDATE SET number=excluded.number,
                   confirmed_at=excluded.confirmed_at""",
                (call_id, number, confirmed_at),
            )

    def list_callbacks(self, status: str | None = "pending", limit: int = 100) -> list[dict]:
        """Oldest first: the caller who has waited longest is called back first."""
        sql = f"SELECT {_CALLBACK_COLUMNS} FROM callbacks"
        args: list[Any] = []
        if status is not None:
            sql += " WHERE status = ?"
            args.append(status)
        sql += " ORDER BY confirmed_at LIMIT ?"
        args.append(limit)
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [_callback_dict(r) for r in rows]

    def set_callback_status(self, call_id: str, status: str, agent: str, at: str) -> bool:
        """Mark a callback handled; False when there is no such request."""
        with self._lock:
            cursor = self._db.execute(
                """UPDATE callbacks SET status = ?, handled_by = ?, handled_at = ?
                   WHERE call_id = ?""",
                (status, agent, at, call_id),
            )
        return cursor.rowcount > 0

    def save_agent_state(
        self, name: str, available: bool, idle_since: float | None, at: str
    ) -> None:
        """Remember availability and idle time so a restart keeps the routing order."""
        with self._lock:
            self._db.execute(
                """INSERT INTO agent_states VALUES (?, ?, ?, ?)
                   ON CONFLICT(name) DO UPDATE SET available=excluded.available,
                   idle_since=excluded.idle_since, updated_at=excluded.updated_at""",
                (name, int(available), idle_since, at),
            )

    def agent_states(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT name, available, idle_since FROM agent_states"
            ).fetchall()
        return {n: {"available": bool(a), "idle_since": i} for n, a, i in rows}


_HANDOFF_COLUMNS = "call_id, status, agent, created_at, updated_at, package"
_CALLBACK_COLUMNS = "call_id, number, confirmed_at, status, handled_by, handled_at"


def _callback_dict(row: tuple[Any, ...]) -> dict[str, Any]:
    return dict(zip(_CALLBACK_COLUMNS.split(", "), row, strict=True))


class StoreMissingError(ValueError):
    """A read command was pointed at a call store that does not exist or is not one."""


def check_existing_store(path: str | Path) -> Path:
    """``path`` if it holds a voicebot call store; read-only, so nothing is ever created.

    ``calls list`` in the wrong place must say so, not show an empty list from
    a database it has just made.
    """
    path = Path(path)
    if not path.is_file():
        raise StoreMissingError(
            f"no call store at {path} (no call recorded there yet; "
            "choose one with --database or [storage] database)"
        )
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        raise StoreMissingError(f"{path} is not a voicebot call store: {exc}") from exc
    if "calls" not in tables:
        raise StoreMissingError(f"{path} is an SQLite database but not a voicebot call store")
    return path
