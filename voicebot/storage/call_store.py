"""The call store: call records in SQLite (WAL), schema from :mod:`voicebot.storage.schema`.

The session saves the record after every turn, so the transcript survives a
crash or a hang-up mid-call.  Records are stored whole as JSON (the shape
``voicebot simulate --json`` prints) beside a few indexed columns for listing
and search; PINs never reach this layer (the record scrubs every turn).

Privacy and operations API (a PostgreSQL store implements the same):
``search`` runs over a scrubbed text column (FTS5), never over raw JSON;
``purge_older_than`` applies the retention setting; ``delete_caller`` answers
a data-subject request; ``reconcile_interrupted`` closes the records of calls
cut by a crash.  The files are created 0600 (SQLite gives the WAL and shared
memory files the database file's mode).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from voicebot.core.record import CallRecord, utc_now
from voicebot.storage.migrate import migrate_sqlite
from voicebot.storage.search import package_search_text, search_text

# Records in progress longer than this cannot be live (calls end at max_call_s).
STALE_CALL_S = 3 * 3600
INTERRUPTED = "interrupted"


class CallStore(Protocol):
    def save(self, record: CallRecord) -> None: ...

    def get(self, call_id: str) -> dict[str, Any] | None: ...

    def list_calls(self, limit: int = 50, query: str | None = None) -> list[dict[str, Any]]: ...


class CallIdConflict(RuntimeError):
    """A different call already holds this call ID: its record is not overwritten."""


def _enable_wal(db: sqlite3.Connection, attempts: int = 50) -> None:
    """Switch a database to WAL, retrying while another process does the same.

    Changing the journal mode needs an exclusive lock and SQLite does not call
    the busy handler for it, so two processes opening a fresh file can see
    "database is locked" at once; the loser simply tries again.
    """
    for attempt in range(attempts):
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(0.05)


class SqliteCallStore:
    """A thread-safe SQLite call store (one connection, serialised).

    ``save_later`` hands writes to one writer thread, in order, so a turn's
    fsync never runs on the event loop that clocks every call's audio.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _create_private(self.path)
        self.owner = f"{socket.gethostname()}:{os.getpid()}"
        self._lock = threading.Lock()
        self._writer: ThreadPoolExecutor | None = None
        self._db = sqlite3.connect(
            self.path, check_same_thread=False, isolation_level=None, timeout=30.0
        )
        self._db.create_function("digits", 1, _digits, deterministic=True)
        _enable_wal(self._db)
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA secure_delete=ON")  # deleted rows leave no readable trace
        self._migrate()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """Caller holds the lock.  IMMEDIATE: take the write lock up front, so two
        processes never both read a state and then both act on it."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    @property
    def schema_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        """Under one write lock (the shared runner's ``BEGIN IMMEDIATE``): a second
        process opening a fresh database waits, then finds the schema current."""
        with self._lock:
            migrate_sqlite(self._db, str(self.path))

    def _index(self, table: str, call_id: str, text: str) -> None:
        """Caller holds the lock (and a transaction)."""
        self._db.execute(f"DELETE FROM {table} WHERE call_id = ?", (call_id,))
        self._db.execute(f"INSERT INTO {table} VALUES (?, ?)", (call_id, text))

    def save(self, record: CallRecord) -> None:
        self.save_dict(record.to_dict())

    def save_later(self, record: CallRecord) -> Future[None]:
        """Snapshot now, write on the writer thread (in submission order)."""
        if self._writer is None:
            self._writer = ThreadPoolExecutor(1, thread_name_prefix="call-store-writer")
        return self._writer.submit(self.save_dict, record.to_dict())

    def flush(self) -> None:
        """Block until every ``save_later`` so far is on disk."""
        if self._writer is not None:
            self._writer.submit(lambda: None).result()

    def save_dict(self, data: dict[str, Any]) -> None:
        """Insert or update one record.  A record is only ever updated by the call
        that created it (same transport and start time): a caller who picks an
        existing call ID gets :class:`CallIdConflict`, the old record stays."""
        call_id = data["call_id"]
        with self._lock, self._transaction():
            cursor = self._db.execute(
                """INSERT INTO calls VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                       ON CONFLICT(call_id) DO UPDATE SET ended_at=excluded.ended_at,
                       outcome=excluded.outcome, record=excluded.record
                       WHERE calls.transport = excluded.transport
                       AND calls.started_at = excluded.started_at""",
                (
                    call_id,
                    data.get("caller_id"),
                    data["transport"],
                    data["started_at"],
                    data.get("ended_at"),
                    data["outcome"],
                    json.dumps(data),
                    self.owner,
                ),
            )
            if cursor.rowcount == 0:
                raise CallIdConflict(f"call ID {call_id!r} belongs to another call")
            self._index("calls_fts", call_id, search_text(data))

    def get(self, call_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT record FROM calls WHERE call_id = ?", (call_id,)
            ).fetchone()
        return json.loads(row[0]) if row else None

    def list_calls(self, limit: int = 50, query: str | None = None) -> list[dict[str, Any]]:
        """Newest first; ``query`` matches caller ID, call ID or the scrubbed transcript."""
        sql = "SELECT record FROM calls"
        args: list[Any] = []
        if query:
            sql += f" WHERE {_CALL_MATCH}"
            args += _call_match_args(query)
        sql += " ORDER BY started_at DESC LIMIT ?"
        args.append(limit)
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [json.loads(r[0]) for r in rows]

    def search(self, text: str, limit: int = 50) -> list[dict[str, Any]]:
        """Calls whose scrubbed transcript, caller ID or call ID matches ``text``."""
        return self.list_calls(limit=limit, query=text)

    def purge_older_than(self, days: float, now: datetime | None = None) -> dict[str, int]:
        """Retention: delete calls, packages, ring attempts and callbacks older than ``days``."""
        cutoff = ((now or datetime.now(UTC)) - timedelta(days=days)).isoformat()
        with self._lock:
            return self._delete_where(
                "SELECT call_id FROM calls WHERE started_at < ?1 "
                "UNION SELECT call_id FROM handoffs WHERE created_at < ?1 "
                "UNION SELECT call_id FROM callbacks WHERE confirmed_at < ?1",
                (cutoff,),
            )

    def delete_caller(self, number: str) -> dict[str, int]:
        """A data-subject request: everything about one caller number, matched on its
        digits (``+1 555-0100`` and ``15550100`` are the same caller)."""
        wanted = _digits(number)
        if not wanted:
            raise ValueError(f"not a phone number: {number!r}")
        with self._lock:
            return self._delete_where(
                "SELECT call_id FROM calls WHERE digits(caller_id) = ?1 "
                "UNION SELECT call_id FROM handoffs WHERE digits(caller_id) = ?1 "
                "UNION SELECT call_id FROM callbacks WHERE digits(number) = ?1",
                (wanted,),
            )

    def _delete_where(self, select_ids: str, args: tuple[Any, ...]) -> dict[str, int]:
        """Caller holds the lock.  One transaction, then the WAL is truncated so
        the deleted text is gone from every file."""
        counts: dict[str, int] = {}
        with self._transaction():
            self._db.execute(f"CREATE TEMP TABLE doomed AS {select_ids}", args)
            for table in (*_FTS_TABLES, "calls", "handoff_attempts", "callbacks", "handoffs"):
                cursor = self._db.execute(
                    f"DELETE FROM {table} WHERE call_id IN (SELECT call_id FROM doomed)"
                )
                counts[table] = cursor.rowcount
            self._db.execute("DROP TABLE doomed")
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return {k: v for k, v in counts.items() if k not in _FTS_TABLES}

    def reconcile_interrupted(self, stale_after_s: float = STALE_CALL_S) -> list[str]:
        """At start-up: close records left ``in_progress`` by a crash.  A record is
        ours to close when its process is gone (same host, dead PID), it predates
        owners, or it is older than any call can last; a sibling's live calls stay."""
        cutoff = (datetime.now(UTC) - timedelta(seconds=stale_after_s)).isoformat()
        with self._lock:
            rows = self._db.execute(
                "SELECT call_id, owner, started_at FROM calls WHERE outcome = 'in_progress'"
            ).fetchall()
        ids = [c for c, owner, started in rows if started < cutoff or not _owner_alive(owner)]
        for call_id in ids:
            data = self.get(call_id)
            if data is None or data.get("outcome") != "in_progress":
                continue
            data.update(outcome=INTERRUPTED, ended_at=data.get("ended_at") or utc_now())
            data["end_reason"] = "voicebot stopped during the call (crash or kill)"
            self.save_dict(data)
        return ids

    def close(self) -> None:
        if self._writer is not None:
            self._writer.shutdown(wait=True)
        with self._lock:
            self._db.close()

    # ------------------------------------------------ handoffs (owner: voicebot.handoff)
    # Statuses are opaque strings here; voicebot.handoff.store names them.  Times
    # are passed in so the handoff layer decides the clock (and tests fix it).

    def save_handoff(self, package: dict[str, Any], status: str, at: str) -> None:
        """Write (or rewrite) a handoff package; called before any phone rings."""
        with self._lock, self._transaction():
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
            self._index("handoffs_fts", package["call_id"], package_search_text(package))

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
                f"(call_id IN (SELECT call_id FROM calls WHERE {_CALL_MATCH}) OR call_id IN "
                "(SELECT call_id FROM handoffs_fts WHERE handoffs_fts MATCH ?) "
                "OR digits(caller_id) = ? AND ? != '' OR call_id LIKE ? ESCAPE '\\')"
            )
            args += [*_call_match_args(query), _fts_query(query)]
            args += [_digits(query), _digits(query), _like(query)]
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
_CALL_MATCH = (
    "(call_id LIKE ? ESCAPE '\\' OR caller_id LIKE ? ESCAPE '\\' OR call_id IN "
    "(SELECT call_id FROM calls_fts WHERE calls_fts MATCH ?))"
)


def _call_match_args(query: str) -> list[str]:
    return [_like(query), _like(query), _fts_query(query)]


def _like(text: str) -> str:
    """A LIKE pattern matching ``text`` literally anywhere (``%`` and ``_`` escaped)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _fts_query(text: str) -> str:
    """Every word of ``text`` as a quoted FTS5 phrase: no query syntax from users."""
    words = [w for w in text.split() if w.strip()]
    return " ".join('"' + w.replace('"', '""') + '"' for w in words) or '""'


_FTS_TABLES = ("calls_fts", "handoffs_fts")


def _digits(value: object) -> str:
    return "".join(c for c in str(value or "") if c.isascii() and c.isdigit())


def _create_private(path: Path) -> None:
    """The database holds transcripts: readable by this user only, from the first byte."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)
    for suffix in ("", "-wal", "-shm"):
        with_suffix = path.with_name(path.name + suffix)
        if with_suffix.exists():
            os.chmod(with_suffix, 0o600)


def _owner_alive(owner: str | None) -> bool:
    """Whether the process that wrote a record may still be running it."""
    host, _, pid = (owner or "").rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return bool(owner) and host != socket.gethostname()  # another host: not ours to close
    if int(pid) == os.getpid():
        return False  # a previous run that had our PID: we have just started
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
