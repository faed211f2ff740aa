"""One migration runner for both engines, on a real SQLite file and a real
PostgreSQL server: processes starting at once migrate exactly once, an old
database upgrades, a failing script changes nothing, a newer schema is refused."""

from __future__ import annotations

import json
import multiprocessing
import sqlite3
from pathlib import Path

import psycopg
import pytest

from voicebot.storage import is_postgres_url, open_store
from voicebot.storage.migrate import SchemaTooNew, migrate_postgres, migrate_sqlite
from voicebot.storage.schema import MIGRATIONS, Migration

STARTS = 6  # instances starting together


@pytest.fixture(params=["sqlite", "postgres"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database of either engine: a file path or a ``postgresql://`` URL."""
    if request.param == "sqlite":
        return str(tmp_path / "calls.sqlite3")
    return str(request.getfixturevalue("pg_url"))


def _start(target: str, barrier) -> int:
    barrier.wait()
    store = open_store(target)
    version = store.schema_version
    store.close()
    return version


def start_together(target: str, count: int = STARTS) -> list[int]:
    """``count`` processes open the store at the same instant; their schema versions."""
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager:
        barrier = manager.Barrier(count)
        with ctx.Pool(count) as pool:
            return pool.starmap(_start, [(target, barrier)] * count)


def history(target: str) -> list[int]:
    """The versions a database went through (SQLite keeps only the last)."""
    if is_postgres_url(target):
        with psycopg.connect(target) as db:
            return [r[0] for r in db.execute("SELECT version FROM schema_version ORDER BY 1")]
    return [sqlite3.connect(target).execute("PRAGMA user_version").fetchone()[0]]


def migrate_to(target: str, migrations: tuple[Migration, ...]) -> None:
    """Run the shared runner directly, as a store would."""
    if is_postgres_url(target):
        with psycopg.connect(target, autocommit=True) as db:
            migrate_postgres(db, target, migrations)
    else:
        db = sqlite3.connect(target, isolation_level=None)
        try:
            migrate_sqlite(db, target, migrations)
        finally:
            db.close()


def test_every_version_is_defined_for_both_engines() -> None:
    # Version 1 creates a schema on each engine; later entries may be empty on one.
    assert MIGRATIONS[0].sqlite.strip() and MIGRATIONS[0].postgres.strip()
    assert all(m.summary for m in MIGRATIONS)


def test_instances_starting_at_once_on_a_fresh_database_migrate_exactly_once(
    target: str,
) -> None:
    assert start_together(target) == [len(MIGRATIONS)] * STARTS
    expected = list(range(1, len(MIGRATIONS) + 1)) if is_postgres_url(target) else [len(MIGRATIONS)]
    assert history(target) == expected  # each version recorded once
    store = open_store(target)
    store.save_dict(
        {"call_id": "c", "transport": "sip", "started_at": "2026-12-01T10:00:00+00:00",
         "outcome": "in_progress", "turns": [{"caller_text": "lost my card"}]}
    )  # fmt: skip
    assert [r["call_id"] for r in store.search("card")] == ["c"]
    store.close()


def test_an_old_database_upgrades_once_when_instances_start_together(target: str) -> None:
    migrate_to(target, MIGRATIONS[:1])
    assert history(target) == [1]
    assert start_together(target) == [len(MIGRATIONS)] * STARTS
    expected = list(range(1, len(MIGRATIONS) + 1)) if is_postgres_url(target) else [len(MIGRATIONS)]
    assert history(target) == expected


def test_sqlite_upgrade_indexes_the_calls_already_stored(tmp_path: Path) -> None:
    """Version 3 adds search: the calls stored before it become searchable, once."""
    path = str(tmp_path / "old.sqlite3")
    migrate_to(path, MIGRATIONS[:2])
    record = {"call_id": "old", "turns": [{"caller_text": "card 4111 1111 1111 1111 stolen"}]}
    with sqlite3.connect(path) as db:
        db.execute(
            "INSERT INTO calls VALUES ('old', '+1555', 'sip', '2026-01-01', NULL, 'served', ?)",
            (json.dumps(record),),
        )
    assert start_together(path, 3) == [len(MIGRATIONS)] * 3
    store = open_store(path)
    assert [r["call_id"] for r in store.search("stolen")] == ["old"]
    assert store.search("4111") == []  # indexed scrubbed
    assert store._db.execute("SELECT count(*) FROM calls_fts").fetchone()[0] == 1
    store.close()


def test_a_failing_migration_leaves_the_database_as_it_was(target: str) -> None:
    migrate_to(target, MIGRATIONS)
    broken = Migration(
        "broken",
        sqlite="CREATE TABLE extra (x INTEGER); SELECT nonsense FROM nowhere;",
        postgres="CREATE TABLE extra (x INTEGER); SELECT nonsense FROM nowhere;",
    )
    error = psycopg.Error if is_postgres_url(target) else sqlite3.Error
    with pytest.raises(error):
        migrate_to(target, (*MIGRATIONS, broken))
    assert history(target)[-1] == len(MIGRATIONS)
    store = open_store(target)  # still opens, and the half-applied table is gone
    with pytest.raises(error):
        store._db.execute("SELECT * FROM extra")
    store.close()


def test_a_newer_schema_is_refused_with_the_fix(target: str) -> None:
    later = Migration("from a newer voicebot", sqlite="SELECT 1;", postgres="SELECT 1;")
    migrate_to(target, (*MIGRATIONS, later))
    with pytest.raises(SchemaTooNew, match="upgrade voicebot"):
        open_store(target)
