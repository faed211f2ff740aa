"""The shared store of a voicebot cluster: PostgreSQL through psycopg 3.

Same methods as :class:`~voicebot.storage.call_store.SqliteCallStore` (call
records, handoff packages and attempts, callbacks, agent availability), plus
what several instances need to share one agent queue and one desk:

* **instances** – each process registers with a heartbeat; an instance whose
  lease ran out is reaped by whichever instance notices first, and only *its*
  calls and handoffs are marked interrupted;
* **agent claims** – a conditional ``UPDATE`` that only one instance can win,
  so an agent is offered one call at a time across the cluster;
* **desk sessions** – an agent's browser stays signed in whichever instance
  serves the page;
* **events** – ``pg_notify`` on one channel; :mod:`voicebot.cluster.bus` listens.

Search runs PostgreSQL full-text search over ``search_text``, a scrubbed copy
of the transcript (card numbers masked), never over the JSON record.
Calls are synchronous like the SQLite store: one connection, serialised.
"""

from __future__ import annotations

import contextlib
import json
import threading
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from voicebot.core.record import CallRecord
from voicebot.storage.call_store import CallIdConflict
from voicebot.storage.migrate import migrate_postgres
from voicebot.storage.rows import (
    ATTEMPT_COLUMNS,
    CALLBACK_COLUMNS,
    HANDOFF_COLUMNS,
    callback_dict,
    handoff_dict,
)
from voicebot.storage.search import record_search_text

EVENT_CHANNEL = "voicebot_events"
LEASE_S = 10.0  # an instance silent this long is gone (heartbeat every LEASE_S / 4)

_OPEN_CALL = "in_progress"
INTERRUPTED_CALL = "interrupted"
STALE_CALL_S = 3 * 3600  # no call lasts this long: an older in_progress record is stale
_DIGITS = "regexp_replace(COALESCE({}, ''), '[^0-9]', '', 'g')"


class StoreUnavailableError(ConnectionError):
    """The shared store cannot be reached (the message names it, without password)."""


class PostgresStore:
    """A call/handoff store shared by every instance of a cluster."""

    def __init__(self, url: str, *, instance: str | None = None, address: str = "") -> None:
        self.url = url
        self.instance = instance or uuid.uuid4().hex[:12]
        self.draining = False
        self._writer: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        try:
            self._db = psycopg.connect(url, autocommit=True)
        except psycopg.Error as exc:
            raise StoreUnavailableError(
                f"cannot connect to {redact_url(url)}: {' '.join(str(exc).split())}"
            ) from exc
        migrate_postgres(self._db, redact_url(url))
        self.register(address)

    @property
    def path(self) -> str:
        """Where the records are (shown in messages)."""
        return redact_url(self.url)

    @property
    def schema_version(self) -> int:
        return int(self._one("SELECT max(version) FROM schema_version")[0])

    def close(self) -> None:
        if self._writer is not None:
            self._writer.shutdown(wait=True)
        with self._lock:
            if not self._db.closed:
                self._db.execute("DELETE FROM instances WHERE id = %s", (self.instance,))
                self._db.close()

    # ------------------------------------------------------------------ helpers

    def _exec(self, sql: str, args: Any = ()) -> psycopg.Cursor[Any]:
        with self._lock:
            return self._db.execute(sql, args)

    def _one(self, sql: str, args: Any = ()) -> Any:
        with self._lock:
            return self._db.execute(sql, args).fetchone()

    def _all(self, sql: str, args: Any = ()) -> list[Any]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # -------------------------------------------------------------------- calls

    def save(self, record: CallRecord) -> None:
        self.save_dict(record.to_dict())

    def save_later(self, record: CallRecord) -> Future[None]:
        """Snapshot now, write on the writer thread (in submission order)."""
        if self._writer is None:
            self._writer = ThreadPoolExecutor(1, thread_name_prefix="pg-store-writer")
        return self._writer.submit(self.save_dict, record.to_dict())

    def flush(self) -> None:
        """Block until every ``save_later`` so far is stored."""
        if self._writer is not None:
            self._writer.submit(lambda: None).result()

    def save_dict(self, data: dict[str, Any]) -> None:
        """Insert or update one record (the shape ``CallRecord.to_dict`` gives).  As in
        SQLite, only the call that created a record updates it (same transport and
        start time): every instance mints call IDs, and a clash must not merge two
        calls — :class:`CallIdConflict`, the stored record stays."""
        cursor = self._exec(
            """INSERT INTO calls (call_id, caller_id, transport, started_at, ended_at,
                   outcome, record, owner, search_text)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
               ON CONFLICT (call_id) DO UPDATE SET ended_at = excluded.ended_at,
               outcome = excluded.outcome, record = excluded.record,
               search_text = excluded.search_text
               WHERE calls.transport = excluded.transport
                 AND calls.started_at = excluded.started_at""",
            (
                data["call_id"],
                data.get("caller_id"),
                data["transport"],
                data["started_at"],
                data.get("ended_at"),
                data["outcome"],
                Jsonb(data),
                self.instance,
                record_search_text(data),
            ),
        )
        if cursor.rowcount == 0:
            raise CallIdConflict(f"call ID {data['call_id']!r} belongs to another call")

    def get(self, call_id: str) -> dict[str, Any] | None:
        row = self._one("SELECT record FROM calls WHERE call_id = %s", (call_id,))
        return dict(row[0]) if row else None

    def list_calls(self, limit: int = 50, query: str | None = None) -> list[dict[str, Any]]:
        """Newest first; ``query``: words in the scrubbed transcript, or a caller/call ID."""
        if not query:
            rows = self._all("SELECT record FROM calls ORDER BY started_at DESC LIMIT %s", (limit,))
        else:
            rows = self._all(
                """SELECT record FROM calls
                   WHERE search @@ plainto_tsquery('simple', %s)
                      OR call_id = %s OR caller_id = %s
                   ORDER BY started_at DESC LIMIT %s""",
                (query, query, query, limit),
            )
        return [dict(r[0]) for r in rows]

    def search(self, text: str, limit: int = 50) -> list[dict[str, Any]]:
        """Full-text search over the scrubbed words; the query is words, not syntax."""
        return self.list_calls(limit=limit, query=text)

    def purge_older_than(self, days: float, now: datetime | None = None) -> dict[str, int]:
        """Retention: delete calls, packages, ring attempts and callbacks older than ``days``."""
        cutoff = ((now or datetime.now(UTC)) - timedelta(days=days)).isoformat()
        return self._delete_where(
            "SELECT call_id FROM calls WHERE started_at < %(v)s "
            "UNION SELECT call_id FROM handoffs WHERE created_at < %(v)s "
            "UNION SELECT call_id FROM callbacks WHERE confirmed_at < %(v)s",
            cutoff,
        )

    def delete_caller(self, number: str) -> dict[str, int]:
        """A data-subject request: everything about one caller number, matched on its
        digits (``+1 555-0100`` and ``15550100`` are the same caller)."""
        wanted = "".join(c for c in number if c.isascii() and c.isdigit())
        if not wanted:
            raise ValueError(f"not a phone number: {number!r}")
        return self._delete_where(
            f"SELECT call_id FROM calls WHERE {_DIGITS.format('caller_id')} = %(v)s "
            f"UNION SELECT call_id FROM handoffs WHERE {_DIGITS.format('caller_id')} = %(v)s "
            f"UNION SELECT call_id FROM callbacks WHERE {_DIGITS.format('number')} = %(v)s",
            wanted,
        )

    def _delete_where(self, select_ids: str, value: str) -> dict[str, int]:
        counts: dict[str, int] = {}
        with self._lock, self._db.transaction():
            ids = [r[0] for r in self._db.execute(select_ids, {"v": value}).fetchall()]
            for table in ("calls", "handoff_attempts", "callbacks", "handoffs"):
                cursor = self._db.execute(f"DELETE FROM {table} WHERE call_id = ANY(%s)", (ids,))
                counts[table] = cursor.rowcount
        return counts

    def reconcile_interrupted(self, stale_after_s: float = STALE_CALL_S) -> list[str]:
        """Close records left ``in_progress`` by instances that are gone (lease run
        out), or older than any call can last; live instances' calls stay."""
        now = datetime.now(UTC)
        rows = self._all(
            f"""UPDATE calls SET outcome = %(to)s, ended_at = COALESCE(ended_at, %(at)s),
                   record = record || jsonb_build_object(
                       'outcome', %(to)s::text, 'end_reason', %(why)s::text,
                       'ended_at', COALESCE(ended_at, %(at)s))
               WHERE outcome = %(open)s
                 AND ({_NOT_LIVE.replace("%s", "%(lease)s")} OR started_at < %(stale)s)
               RETURNING call_id""",
            {
                "to": INTERRUPTED_CALL,
                "at": now.isoformat(timespec="milliseconds"),
                "why": "voicebot stopped during the call (instance lost)",
                "open": _OPEN_CALL,
                "lease": LEASE_S,
                "stale": (now - timedelta(seconds=stale_after_s)).isoformat(),
            },
        )
        return [r[0] for r in rows]

    # ----------------------------------------------------------------- handoffs

    def save_handoff(self, package: dict[str, Any], status: str, at: str) -> None:
        self._exec(
            """INSERT INTO handoffs (call_id, caller_id, created_at, updated_at, reason,
                   status, agent, package, owner, search_text)
               VALUES (%s, %s, %s, %s, %s, %s, NULL, %s, %s, %s)
               ON CONFLICT (call_id) DO UPDATE SET updated_at = excluded.updated_at,
               reason = excluded.reason, status = excluded.status,
               package = excluded.package, owner = excluded.owner,
               search_text = excluded.search_text""",
            (
                package["call_id"],
                package.get("caller_id"),
                package["created_at"],
                at,
                package["reason"],
                status,
                Jsonb(package),
                self.instance,
                record_search_text(package),
            ),
        )

    def set_handoff_status(
        self, call_id: str, status: str, at: str, agent: str | None = None
    ) -> None:
        self._exec(
            """UPDATE handoffs SET status = %s, updated_at = %s,
               agent = COALESCE(%s, agent) WHERE call_id = %s""",
            (status, at, agent, call_id),
        )

    def mark_handoffs(self, from_statuses: list[str], to_status: str, at: str) -> list[str]:
        """Move open handoffs on — only those whose owning instance is gone."""
        with self._lock, self._db.transaction():
            rows = self._db.execute(
                f"""UPDATE handoffs SET status = %s, updated_at = %s
                    WHERE status = ANY(%s) AND ({_NOT_LIVE}) RETURNING call_id""",
                (to_status, at, from_statuses, LEASE_S),
            ).fetchall()
            ids = [r[0] for r in rows]
            self._db.execute(
                """UPDATE handoff_attempts SET result = %s, ended_at = %s
                   WHERE call_id = ANY(%s) AND result IS NULL""",
                (to_status, at, ids),
            )
        return ids

    def add_handoff_attempt(self, call_id: str, agent: str, started_at: str) -> int:
        row = self._one(
            "INSERT INTO handoff_attempts (call_id, agent, started_at) VALUES (%s, %s, %s) "
            "RETURNING id",
            (call_id, agent, started_at),
        )
        return int(row[0])

    def finish_handoff_attempt(self, attempt_id: int, result: str, ended_at: str) -> None:
        self._exec(
            "UPDATE handoff_attempts SET result = %s, ended_at = %s WHERE id = %s",
            (result, ended_at, attempt_id),
        )

    def get_handoff(self, call_id: str) -> dict[str, Any] | None:
        row = self._one(f"SELECT {HANDOFF_COLUMNS} FROM handoffs WHERE call_id = %s", (call_id,))
        return self._handoff_view(row) if row else None

    def list_handoffs(
        self,
        *,
        statuses: list[str] | None = None,
        agent: str | None = None,
        query: str | None = None,
        limit: int = 50,
    ) -> list[dict[str, Any]]:
        """Newest first, filtered like the SQLite store; ``query`` is full-text."""
        where: list[str] = []
        args: list[Any] = []
        if statuses:
            where.append("status = ANY(%s)")
            args.append(statuses)
        if agent is not None:
            where.append("call_id IN (SELECT call_id FROM handoff_attempts WHERE agent = %s)")
            args.append(agent)
        if query:
            where.append(
                "(search @@ plainto_tsquery('simple', %s) OR call_id = %s OR caller_id = %s"
                " OR call_id IN (SELECT call_id FROM calls"
                " WHERE search @@ plainto_tsquery('simple', %s)))"
            )
            args += [query] * 4
        sql = f"SELECT {HANDOFF_COLUMNS} FROM handoffs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at DESC LIMIT %s"
        args.append(limit)
        return [self._handoff_view(r) for r in self._all(sql, args)]

    def _handoff_view(self, row: tuple[Any, ...]) -> dict[str, Any]:
        attempts = self._all(
            f"SELECT {ATTEMPT_COLUMNS} FROM handoff_attempts WHERE call_id = %s ORDER BY id",
            (row[0],),
        )
        callback = self._one(
            f"SELECT {CALLBACK_COLUMNS} FROM callbacks WHERE call_id = %s", (row[0],)
        )
        return handoff_dict(row, dict(row[5]), attempts, callback)

    def save_callback(self, call_id: str, number: str, confirmed_at: str) -> None:
        self._exec(
            """INSERT INTO callbacks VALUES (%s, %s, %s, 'pending', NULL, NULL)
               ON CONFLICT (call_id) DO UPDATE SET number = excluded.number,
               confirmed_at = excluded.confirmed_at""",
            (call_id, number, confirmed_at),
        )

    def list_callbacks(self, status: str | None = "pending", limit: int = 100) -> list[dict]:
        sql, args = f"SELECT {CALLBACK_COLUMNS} FROM callbacks", []
        if status is not None:
            sql += " WHERE status = %s"
            args.append(status)
        sql += " ORDER BY confirmed_at LIMIT %s"
        args.append(limit)
        return [callback_dict(r) for r in self._all(sql, args)]

    def set_callback_status(self, call_id: str, status: str, agent: str, at: str) -> bool:
        cur = self._exec(
            """UPDATE callbacks SET status = %s, handled_by = %s, handled_at = %s
               WHERE call_id = %s""",
            (status, agent, at, call_id),
        )
        return cur.rowcount > 0

    # ------------------------------------------------------------------- agents

    def save_agent_state(
        self, name: str, available: bool, idle_since: float | None, at: str
    ) -> None:
        self._exec(
            """INSERT INTO agent_states (name, available, idle_since, updated_at)
               VALUES (%s, %s, %s, %s)
               ON CONFLICT (name) DO UPDATE SET available = excluded.available,
               idle_since = excluded.idle_since, updated_at = excluded.updated_at""",
            (name, available, idle_since, at),
        )

    def agent_states(self) -> dict[str, dict[str, Any]]:
        rows = self._all(
            f"""SELECT name, available, idle_since,
                   CASE WHEN busy_owner IN ({_LIVE_IDS}) THEN busy_with END
                FROM agent_states""",
            (LEASE_S,),
        )
        return {n: {"available": a, "idle_since": i, "busy_with": b} for n, a, i, b in rows}

    def claim_agent(self, name: str, call_id: str) -> bool:
        """Reserve ``name`` for ``call_id``; False when another call holds them."""
        cur = self._exec(
            f"""INSERT INTO agent_states (name, available, updated_at, busy_with, busy_owner)
                VALUES (%s, true, now()::text, %s, %s)
                ON CONFLICT (name) DO UPDATE SET busy_with = excluded.busy_with,
                busy_owner = excluded.busy_owner
                WHERE agent_states.busy_with IS NULL
                   OR agent_states.busy_with = excluded.busy_with
                   OR agent_states.busy_owner IS NULL
                   OR agent_states.busy_owner NOT IN ({_LIVE_IDS})""",
            (name, call_id, self.instance, LEASE_S),
        )
        return cur.rowcount == 1

    def release_agent(self, name: str, call_id: str) -> None:
        self._exec(
            "UPDATE agent_states SET busy_with = NULL, busy_owner = NULL "
            "WHERE name = %s AND busy_with = %s",
            (name, call_id),
        )

    # ---------------------------------------------------------------- instances

    def register(self, address: str = "") -> None:
        self._exec(
            """INSERT INTO instances (id, address) VALUES (%s, %s)
               ON CONFLICT (id) DO UPDATE SET heartbeat_at = now()""",
            (self.instance, address),
        )

    def set_draining(self) -> None:
        """SIGTERM: the cluster sees this instance as draining from now on."""
        self.draining = True
        with contextlib.suppress(psycopg.Error):
            self.heartbeat()

    def heartbeat(self) -> None:
        """Renew this instance's lease (re-registering if it was reaped meanwhile)."""
        cur = self._exec(
            "UPDATE instances SET heartbeat_at = now(), draining = %s WHERE id = %s",
            (self.draining, self.instance),
        )
        if cur.rowcount == 0:
            self.register()

    def live_instances(self) -> list[dict[str, Any]]:
        rows = self._all(
            f"SELECT id, address, draining FROM instances WHERE id IN ({_LIVE_IDS}) ORDER BY id",
            (LEASE_S,),
        )
        return [{"id": i, "address": a, "draining": d} for i, a, d in rows]

    def reap_instances(self) -> list[str]:
        """Remove instances whose lease ran out; exactly one caller gets each."""
        rows = self._all(
            "DELETE FROM instances WHERE heartbeat_at < now() - make_interval(secs => %s) "
            "RETURNING id",
            (LEASE_S,),
        )
        return [r[0] for r in rows]

    # ------------------------------------------------------------ desk sessions

    def put_desk_session(self, id_hash: str, agent: str, expires_at: float) -> None:
        self._exec(
            "INSERT INTO desk_sessions VALUES (%s, %s, %s) ON CONFLICT (id_hash) DO NOTHING",
            (id_hash, agent, expires_at),
        )

    def desk_session(self, id_hash: str) -> tuple[str, float] | None:
        row = self._one(
            "SELECT agent, expires_at FROM desk_sessions WHERE id_hash = %s", (id_hash,)
        )
        return (row[0], float(row[1])) if row else None

    def delete_desk_session(self, id_hash: str) -> None:
        self._exec("DELETE FROM desk_sessions WHERE id_hash = %s", (id_hash,))

    def count_desk_sessions(self) -> int:
        return int(self._one("SELECT count(*) FROM desk_sessions")[0])

    def prune_desk_sessions(self, now: float) -> int:
        return self._exec("DELETE FROM desk_sessions WHERE expires_at < %s", (now,)).rowcount

    # ------------------------------------------------------------------- events

    def notify(self, message: dict[str, Any]) -> None:
        """Publish one event to every instance (delivered after commit, in order)."""
        self._exec("SELECT pg_notify(%s, %s)", (EVENT_CHANNEL, json.dumps(message)))


# An owner is live while its heartbeat is fresher than the lease.
_LIVE_IDS = "SELECT id FROM instances WHERE heartbeat_at >= now() - make_interval(secs => %s)"
_NOT_LIVE = f"owner IS NULL OR owner NOT IN ({_LIVE_IDS})"


def redact_url(url: str) -> str:
    """The URL without its password, for messages and logs."""
    info = psycopg.conninfo.conninfo_to_dict(url)
    info.pop("password", None)
    return (
        f"postgresql://{info.get('user', '')}@{info.get('host', '')}:"
        f"{info.get('port', '')}/{info.get('dbname', '')}"
    )
