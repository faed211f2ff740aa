"""Handoff tables in the call store: migration, round trips, follow-up queries."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from handoff_builders import fraud_record, make_package

from voicebot.storage.call_store import SqliteCallStore
from voicebot.storage.schema import MIGRATIONS

T0 = "2026-01-01T10:00:00.000+00:00"
T1 = "2026-01-01T10:00:05.000+00:00"


def test_a_version_1_database_upgrades_and_keeps_its_calls(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    old = sqlite3.connect(path, isolation_level=None)
    old.executescript(f"BEGIN; {MIGRATIONS[0].sqlite}; PRAGMA user_version = 1; COMMIT;")
    old.execute(
        "INSERT INTO calls VALUES ('old', '+1555', 'sip', ?, NULL, 'served', ?)",
        (T0, '{"call_id": "old", "turns": []}'),
    )
    old.close()
    store = SqliteCallStore(path)
    assert store.schema_version == len(MIGRATIONS) >= 2
    assert store.get("old") == {"call_id": "old", "turns": []}
    tables = {r[0] for r in store._db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"handoffs", "handoff_attempts", "callbacks", "agent_states"} <= tables
    store.save_handoff(make_package("new").to_dict(), "pending", T0)
    assert store.get_handoff("new") is not None
    store.close()


def test_handoff_round_trip_with_attempts_and_callback(store: SqliteCallStore) -> None:
    package = make_package("c1").to_dict()
    store.save_handoff(package, "pending", T0)
    attempt = store.add_handoff_attempt("c1", "alice", T0)
    store.set_handoff_status("c1", "ringing", T0, agent="alice")
    store.finish_handoff_attempt(attempt, "declined", T1)
    store.set_handoff_status("c1", "no_agent", T1)
    store.save_callback("c1", "+15550100", T1)
    got = store.get_handoff("c1")
    assert got is not None
    assert got["package"] == package
    assert (got["status"], got["agent"]) == ("no_agent", "alice")  # last agent kept
    assert got["attempts"] == [
        {"agent": "alice", "started_at": T0, "ended_at": T1, "result": "declined"}
    ]
    assert got["callback"]["number"] == "+15550100" and got["callback"]["status"] == "pending"
    assert [c["call_id"] for c in store.list_callbacks()] == ["c1"]
    assert store.set_callback_status("c1", "done", "bob", T1)
    assert store.list_callbacks() == []
    assert not store.set_callback_status("nope", "done", "bob", T1)


def test_list_handoffs_filters_by_status_agent_and_text(store: SqliteCallStore) -> None:
    for call_id, agent, state in (("a", "alice", "answered"), ("b", "bob", "abandoned")):
        store.save_handoff(make_package(call_id).to_dict(), "pending", T0)
        store.add_handoff_attempt(call_id, agent, T0)
        store.set_handoff_status(call_id, state, T1, agent)
    record = fraud_record("b")
    record.add_turn("the reference is zebra-crossing", "speech")
    store.save(record)
    assert [h["call_id"] for h in store.list_handoffs(agent="alice")] == ["a"]
    assert [h["call_id"] for h in store.list_handoffs(statuses=["abandoned"])] == ["b"]
    assert [h["call_id"] for h in store.list_handoffs(query="zebra")] == ["b"]  # record text
    assert {h["call_id"] for h in store.list_handoffs(query="don't recognise")} == {"a", "b"}


def test_open_handoffs_are_marked_after_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "calls.sqlite3"
    store = SqliteCallStore(path)
    store.save_handoff(make_package("ringing").to_dict(), "pending", T0)
    store.add_handoff_attempt("ringing", "alice", T0)
    store.set_handoff_status("ringing", "ringing", T0, "alice")
    store.save_handoff(make_package("done").to_dict(), "answered", T0)
    store.close()
    reopened = SqliteCallStore(path)
    assert reopened.mark_handoffs(["pending", "ringing"], "interrupted", T1) == ["ringing"]
    got = reopened.get_handoff("ringing")
    assert got is not None and got["status"] == "interrupted"
    assert got["attempts"][0]["result"] == "interrupted"
    assert reopened.get_handoff("done")["status"] == "answered"  # type: ignore[index]


def test_agent_state_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "calls.sqlite3"
    store = SqliteCallStore(path)
    store.save_agent_state("alice", True, 1234.5, T0)
    store.save_agent_state("alice", False, 1240.0, T1)
    store.close()
    assert SqliteCallStore(path).agent_states() == {
        "alice": {"available": False, "idle_since": 1240.0}
    }
