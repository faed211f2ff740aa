"""The PostgreSQL store against a real server: parity with SQLite, full-text search
over scrubbed text, leases (migrations: test_migrations.py), agent claims, desk sessions."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from tests.handoff.handoff_builders import make_package
from voicebot.core.record import CallRecord
from voicebot.storage import open_store
from voicebot.storage.call_store import CallIdConflict, SqliteCallStore
from voicebot.storage.postgres import LEASE_S, PostgresStore

T0, T1 = "2026-12-01T10:00:00+00:00", "2026-12-01T10:01:00+00:00"


def record(call_id: str, text: str, caller: str = "+15550100") -> CallRecord:
    rec = CallRecord(call_id, caller, "sip")
    rec.add_turn(None, "none", bot_text="disclosure")
    rec.add_turn(text, "speech", intent="x", confidence=0.9, bot_text="ok")
    return rec


def expire(url: str, instance: str) -> None:
    """Make ``instance``'s heartbeat older than the lease (as after kill -9)."""
    with psycopg.connect(url, autocommit=True) as db:
        db.execute(
            "UPDATE instances SET heartbeat_at = now() - make_interval(secs => %s) WHERE id = %s",
            (LEASE_S + 1, instance),
        )


def test_open_store_picks_the_engine_by_url(pg_url: str, tmp_path: Path) -> None:
    assert isinstance(open_store(tmp_path / "a.sqlite3"), SqliteCallStore)
    store = open_store(pg_url, instance="i1")
    assert isinstance(store, PostgresStore) and store.instance == "i1"
    store.close()


def test_records_round_trip_and_search_is_full_text_over_scrubbed_words(pg_url: str) -> None:
    store = PostgresStore(pg_url)
    rec = record("a", "I lost my card, the number is 4111 1111 1111 1111")
    store.save(rec)
    rec.finish("contained", "caller hung up")
    store.save(rec)
    store.save(record("b", "what are your opening hours", caller="+15550199"))
    assert store.get("a")["outcome"] == "contained"
    assert store.get("nope") is None
    assert [r["call_id"] for r in store.list_calls(query="lost card")] == ["a"]
    assert [r["call_id"] for r in store.list_calls(query="hours")] == ["b"]
    assert [r["call_id"] for r in store.list_calls(query="+15550199")] == ["b"]
    # The card number is not searchable, digit by digit or whole.
    assert store.list_calls(query="4111") == []
    assert store.list_calls(query="4111 1111 1111 1111") == []
    assert {r["call_id"] for r in store.list_calls()} == {"a", "b"}
    store.close()


def test_handoffs_behave_as_in_sqlite(pg_url: str, tmp_path: Path) -> None:
    """The same calls on both engines give the same answers."""
    views = []
    packages = {c: make_package(c).to_dict() for c in "ab"}
    for store in (SqliteCallStore(tmp_path / "s.sqlite3"), PostgresStore(pg_url)):
        for call_id, agent, state in (("a", "alice", "answered"), ("b", "bob", "abandoned")):
            store.save_handoff(packages[call_id], "pending", T0)
            attempt = store.add_handoff_attempt(call_id, agent, T0)
            store.finish_handoff_attempt(attempt, "declined", T1)
            store.set_handoff_status(call_id, state, T1, agent)
        store.save_callback("b", "+15550100", T1)
        assert store.set_callback_status("b", "done", "bob", T1)
        assert not store.set_callback_status("zz", "done", "bob", T1)
        store.save_agent_state("alice", False, 12.5, T1)
        views.append(
            (
                store.get_handoff("b"),
                [h["call_id"] for h in store.list_handoffs(agent="alice")],
                [h["call_id"] for h in store.list_handoffs(statuses=["abandoned"])],
                store.list_callbacks(status=None),
                store.agent_states()["alice"]["available"],
            )
        )
        store.close()
    assert views[0] == views[1]
    assert views[0][1:3] == (["a"], ["b"])


def test_a_call_id_minted_twice_never_merges_two_calls(pg_url: str, tmp_path: Path) -> None:
    """Instances mint call IDs (also Rasa's conversation IDs) on their own: a clash
    is refused by the shared store as by SQLite, and the first record stays."""
    for store in (SqliteCallStore(tmp_path / "s.sqlite3"), PostgresStore(pg_url)):
        store.save(record("dup", "first caller"))
        other = record("dup", "second caller", caller="+15550666")
        other.started_at = "2030-01-01T00:00:00.000+00:00"
        with pytest.raises(CallIdConflict):
            store.save(other)
        assert store.get("dup")["caller_id"] == "+15550100"
        store.close()


def test_recovery_touches_only_handoffs_and_calls_of_instances_that_are_gone(
    pg_url: str,
) -> None:
    alive, dead, starting = (PostgresStore(pg_url, instance=n) for n in ("alive", "dead", "new"))
    for store, call_id in ((alive, "live-call"), (dead, "dead-call")):
        store.save(record(call_id, "agent please"))
        store.save_handoff(make_package(call_id).to_dict(), "ringing", T0)
        store.add_handoff_attempt(call_id, "alice", T0)
    # Before the lease runs out nothing is touched.
    assert starting.mark_handoffs(["pending", "ringing", "waiting"], "interrupted", T1) == []
    expire(pg_url, "dead")
    assert starting.mark_handoffs(["pending", "ringing", "waiting"], "interrupted", T1) == [
        "dead-call"
    ]
    assert starting.reconcile_interrupted() == ["dead-call"]
    assert starting.get("dead-call")["outcome"] == "interrupted"
    assert starting.get("dead-call")["ended_at"]
    assert "instance lost" in starting.get("dead-call")["end_reason"]
    assert starting.get("live-call")["outcome"] == "in_progress"
    assert starting.get_handoff("live-call")["status"] == "ringing"
    assert starting.get_handoff("dead-call")["attempts"][0]["result"] == "interrupted"
    # Exactly one reaper gets the dead instance.
    assert starting.reap_instances() == ["dead"]
    assert alive.reap_instances() == []
    assert {i["id"] for i in alive.live_instances()} == {"alive", "new"}
    for store in (alive, dead, starting):
        store.close()


def test_an_agent_is_claimed_by_one_call_at_a_time_across_instances(pg_url: str) -> None:
    a, b = PostgresStore(pg_url, instance="a"), PostgresStore(pg_url, instance="b")
    results: list[tuple[str, bool]] = []
    barrier = threading.Barrier(8)

    def claim(store: PostgresStore, call_id: str) -> None:
        barrier.wait()
        results.append((call_id, store.claim_agent("alice", call_id)))

    threads = [threading.Thread(target=claim, args=((a, b)[n % 2], f"call-{n}")) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [c for c, won in results if won]
    assert len(winners) == 1
    assert a.agent_states()["alice"]["busy_with"] == winners[0]
    b.release_agent("alice", "not-the-holder")  # only the holder releases
    assert not b.claim_agent("alice", "other")
    holder = a if int(winners[0].split("-")[1]) % 2 == 0 else b
    holder.release_agent("alice", winners[0])
    assert b.claim_agent("alice", "other")
    # A claim held by an instance that is gone can be taken over.
    expire(pg_url, "b")
    assert a.claim_agent("alice", "after-crash")
    a.close()
    b.close()


def test_desk_sessions_are_shared(pg_url: str) -> None:
    a, b = PostgresStore(pg_url), PostgresStore(pg_url)
    a.put_desk_session("h1", "alice", 100.0)
    assert b.desk_session("h1") == ("alice", 100.0)
    assert b.prune_desk_sessions(now=50.0) == 0
    b.delete_desk_session("h1")
    assert a.desk_session("h1") is None
    a.put_desk_session("h2", "bob", 10.0)
    assert a.prune_desk_sessions(now=50.0) == 1
    a.close()
    b.close()


def test_retention_and_data_subject_deletion(pg_url: str) -> None:
    store = PostgresStore(pg_url)
    store.save(record("old", "hello", caller="+1 999-0100"))
    store.save(record("keep", "hello", caller="+1888"))
    store.save_handoff(make_package("old").to_dict(), "done", T0)
    store.add_handoff_attempt("old", "alice", T0)
    counts = store.delete_caller("19990100")  # matched on the digits
    assert counts == {"calls": 1, "handoff_attempts": 1, "callbacks": 0, "handoffs": 1}
    assert store.get("old") is None and store.get_handoff("old") is None
    assert store.get("keep") is not None
    try:
        store.delete_caller("anonymous")
    except ValueError as exc:
        assert "not a phone number" in str(exc)
    else:
        raise AssertionError("no digits: nothing to match")
    assert store.purge_older_than(30)["calls"] == 0  # started just now
    future = datetime.now(UTC) + timedelta(days=31)
    assert store.purge_older_than(30, now=future)["calls"] == 1
    assert store.list_calls() == []
    store.close()


def test_writes_off_the_caller_thread_and_stale_records(pg_url: str) -> None:
    store = PostgresStore(pg_url)
    rec = record("later", "opening hours")
    done = store.save_later(rec)
    rec.add_turn("changed after the snapshot", "speech")
    store.flush()
    assert done.done() and len(store.get("later")["turns"]) == 2  # the snapshot was stored
    assert [r["call_id"] for r in store.search("opening hours")] == ["later"]
    old = record("ancient", "hello")
    old.started_at = "2000-01-01T00:00:00+00:00"
    store.save(old)  # owned by a live instance, but older than any call lasts
    assert store.reconcile_interrupted() == ["ancient"]
    store.close()


def test_a_bad_url_is_one_clear_error() -> None:
    try:
        PostgresStore("postgresql://nobody:secret@127.0.0.1:1/none?connect_timeout=2")
    except ConnectionError as exc:
        assert "cannot connect to postgresql://nobody@127.0.0.1:1/none" in str(exc)
        assert "secret" not in str(exc)
    else:
        raise AssertionError("an unreachable database must raise ConnectionError")
