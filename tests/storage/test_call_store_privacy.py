"""The call store keeps no secret and nothing longer than needed: a real SQLite
file (WAL), read back through SQLite and as raw bytes."""

from __future__ import annotations

import json
import multiprocessing
import os
import socket
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from voicebot.core.record import CallRecord
from voicebot.storage.call_store import CallIdConflict, SqliteCallStore
from voicebot.storage.schema import MIGRATIONS

PIN_SENTENCE = "my PIN is four three two one, what's my balance"
CARD_SENTENCE = "my card 4111 1111 1111 1234 was stolen"


def record(call_id: str, caller: str = "+15550100", *texts: str, days_ago: float = 0) -> CallRecord:
    rec = CallRecord(call_id, caller, "fixture")
    rec.started_at = (datetime.now(UTC) - timedelta(days=days_ago)).isoformat()
    rec.add_turn(None, "none", bot_text="disclosure")
    for text in texts or ("what time do you open",):
        # Not a PIN intent, not flagged redacted: the record scrubs regardless.
        rec.add_turn(text, "speech", intent="check_balance", bot_text="Your balance is 1,234.56")
    return rec


def raw_bytes(path) -> bytes:
    return b"".join(p.read_bytes() for p in path.parent.iterdir() if p.name.startswith(path.name))


def package(call_id: str, caller: str, days_ago: float = 0) -> dict:
    at = (datetime.now(UTC) - timedelta(days=days_ago)).isoformat()
    return {
        "call_id": call_id,
        "caller_id": caller,
        "created_at": at,
        "reason": "caller asked for a person",
        "summary": "lost card, wants a person",
    }


def test_database_and_wal_files_are_private(tmp_path) -> None:
    old = os.umask(0o022)
    try:
        path = tmp_path / "calls.sqlite3"
        store = SqliteCallStore(path)
        store.save(record("a"))
        files = [p for p in tmp_path.iterdir() if p.name.startswith("calls.sqlite3")]
        assert {p.name for p in files} >= {"calls.sqlite3", "calls.sqlite3-wal"}
        for p in files:
            assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
        store.close()
    finally:
        os.umask(old)


def test_pins_and_card_numbers_never_reach_the_file(tmp_path) -> None:
    path = tmp_path / "calls.sqlite3"
    store = SqliteCallStore(path)
    store.save(record("a", "+15550100", PIN_SENTENCE, CARD_SENTENCE, "my PIN is 4-3-2-1"))
    turns = [t["caller_text"] for t in store.get("a")["turns"][1:]]  # type: ignore[index]
    assert turns == [
        "my PIN is [PIN], what's my balance",
        "my card •••• 1234 was stolen",
        "my PIN is [PIN]",
    ]
    data = raw_bytes(path)
    for secret in (b"four three two one", b"4111", b"4-3-2-1", b"4321"):
        assert secret not in data, secret


def test_search_runs_over_scrubbed_text_only(tmp_path) -> None:
    store = SqliteCallStore(tmp_path / "calls.sqlite3")
    store.save(record("a", "+15550100", CARD_SENTENCE))
    store.save(record("b", "+15550101", "opening hours please"))
    assert [r["call_id"] for r in store.search("stolen")] == ["a"]
    assert [r["call_id"] for r in store.search("card stolen")] == ["a"]
    # No digit of the masked card (or of a balance) can be probed by search.
    for probe in ("1234", "4111", "1111", "234.56"):
        assert store.search(probe) == [], probe
    # LIKE wildcards and FTS syntax are literal text, not patterns.
    for probe in ("%", "_", 'stolen" OR "hours', "NEAR(card", "*"):
        assert store.search(probe) == [], probe
    assert [r["call_id"] for r in store.search("+15550101")] == ["b"]  # caller ID still works


def test_retention_purges_old_calls_and_packages(tmp_path) -> None:
    path = tmp_path / "calls.sqlite3"
    store = SqliteCallStore(path)
    store.save(record("old", "+15550100", "an old secret sentence", days_ago=40))
    store.save(record("new", "+15550100", "a new sentence"))
    store.save_handoff(package("old", "+15550100", days_ago=40), "no_agent", "t")
    store.save_callback("old", "+15550100", (datetime.now(UTC) - timedelta(days=40)).isoformat())
    store.save_handoff(package("new", "+15550100"), "no_agent", "t")

    counts = store.purge_older_than(30)
    assert counts == {"calls": 1, "handoff_attempts": 0, "callbacks": 1, "handoffs": 1}
    assert store.get("old") is None and store.get_handoff("old") is None
    assert store.get("new") is not None and store.get_handoff("new") is not None
    assert b"an old secret sentence" not in raw_bytes(path)


def test_delete_caller_erases_everything_about_one_number(tmp_path) -> None:
    path = tmp_path / "calls.sqlite3"
    store = SqliteCallStore(path)
    store.save(record("a1", "+15550100", "please delete this sentence"))
    store.save(record("a2", "15550100", "and this one"))
    store.save(record("b1", "+15550199", "keep me"))
    store.save_handoff(package("a1", "+15550100"), "no_agent", "t")
    store.save_callback("a1", "+15550100", "t")

    counts = store.delete_caller("+1 555-0100")
    assert counts == {"calls": 2, "handoff_attempts": 0, "callbacks": 1, "handoffs": 1}
    assert [r["call_id"] for r in store.list_calls()] == ["b1"]
    assert store.list_handoffs() == [] and store.list_callbacks() == []
    data = raw_bytes(path)
    assert b"please delete this sentence" not in data and b"and this one" not in data
    with pytest.raises(ValueError, match="phone number"):
        store.delete_caller("anonymous")


def test_a_chosen_call_id_cannot_overwrite_another_calls_record(tmp_path) -> None:
    store = SqliteCallStore(tmp_path / "calls.sqlite3")
    store.save(record("CA1", "+15550100", "the first caller"))
    intruder = record("CA1", "+15550666", "the second caller")
    intruder.started_at = "2030-01-01T00:00:00.000+00:00"
    with pytest.raises(CallIdConflict):
        store.save(intruder)
    assert store.get("CA1")["caller_id"] == "+15550100"  # type: ignore[index]


def test_writes_on_the_writer_thread_land_in_order(tmp_path) -> None:
    store = SqliteCallStore(tmp_path / "calls.sqlite3")
    rec = record("a")
    for n in range(20):
        rec.add_turn(f"turn {n}", "speech")
        store.save_later(rec)
    store.flush()
    assert len(store.get("a")["turns"]) == 22  # type: ignore[index]
    store.close()


def test_reconcile_closes_calls_of_a_dead_process_only(tmp_path) -> None:
    path = tmp_path / "calls.sqlite3"
    store = SqliteCallStore(path)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    host = socket.gethostname()
    store.owner = f"{host}:{int(dead.stdout)}"
    store.save(record("crashed"))
    store.owner = f"{host}:{os.getppid()}"  # a sibling process, still running
    store.save(record("live"))
    store.close()

    store = SqliteCallStore(path)
    assert store.reconcile_interrupted() == ["crashed"]
    crashed = store.get("crashed")
    assert crashed["outcome"] == "interrupted" and crashed["ended_at"]  # type: ignore[index]
    assert store.get("live")["outcome"] == "in_progress"  # type: ignore[index]
    # A record older than any call can last is closed whoever wrote it.
    assert store.reconcile_interrupted(stale_after_s=0) == ["live"]


def _open_store(path: str, barrier) -> int:
    barrier.wait()
    return SqliteCallStore(path).schema_version


def test_two_processes_opening_a_fresh_database_both_succeed(tmp_path) -> None:
    path = str(tmp_path / "calls.sqlite3")
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager:
        barrier = manager.Barrier(4)
        with ctx.Pool(4) as pool:
            versions = pool.starmap(_open_store, [(path, barrier)] * 4)
    assert versions == [len(MIGRATIONS)] * 4
    store = SqliteCallStore(path)
    store.save(record("a"))
    assert json.loads(json.dumps(store.get("a")))["call_id"] == "a"
