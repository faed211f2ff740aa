import sqlite3

from voicebot.core.record import CallRecord
from voicebot.storage.call_store import SqliteCallStore
from voicebot.storage.schema import MIGRATIONS


def make_record(call_id: str = "c1", text: str = "what time do you open") -> CallRecord:
    record = CallRecord(call_id, "+15550100", "fixture")
    record.add_turn(None, "none", bot_text="disclosure")
    record.add_turn(text, "speech", intent="opening_hours", confidence=0.9, bot_text="9 to 5")
    return record


def test_save_is_an_upsert_and_keeps_the_latest_transcript(tmp_path) -> None:
    store = SqliteCallStore(tmp_path / "calls.sqlite3")
    record = make_record()
    store.save(record)
    record.add_turn("thanks", "speech", intent="thank_you", bot_text="you're welcome")
    record.finish("served", "caller hung up")
    store.save(record)
    saved = store.get("c1")
    assert saved is not None
    assert [t["caller_text"] for t in saved["turns"]] == [None, "what time do you open", "thanks"]
    assert saved["outcome"] == "served"
    assert len(store.list_calls()) == 1


def test_database_is_wal_and_versioned(tmp_path) -> None:
    path = tmp_path / "calls.sqlite3"
    store = SqliteCallStore(path)
    assert store.schema_version == len(MIGRATIONS)
    store.close()
    mode = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    # Re-opening an up-to-date database runs no migration twice.
    assert SqliteCallStore(path).schema_version == len(MIGRATIONS)


def test_search_finds_calls_by_transcript_text(tmp_path) -> None:
    store = SqliteCallStore(tmp_path / "calls.sqlite3")
    store.save(make_record("a", "I lost my card"))
    store.save(make_record("b", "opening hours please"))
    assert [r["call_id"] for r in store.list_calls(query="lost")] == ["a"]


def test_newer_schema_is_refused(tmp_path) -> None:
    path = tmp_path / "calls.sqlite3"
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    db.close()
    try:
        SqliteCallStore(path)
    except RuntimeError as exc:
        assert "upgrade voicebot" in str(exc)
    else:
        raise AssertionError("a newer schema must be refused")
