"""``voicebot calls delete --caller`` and ``calls purge`` as a user runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from voicebot.core.record import CallRecord
from voicebot.storage.call_store import SqliteCallStore

ROOT = Path(__file__).resolve().parents[2]


def voicebot(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "voicebot", *args], capture_output=True, text=True, env=env,
        timeout=60,
    )  # fmt: skip


def saved(path: Path, call_id: str, caller: str, days_ago: float = 0) -> None:
    store = SqliteCallStore(path)
    record = CallRecord(call_id, caller, "fixture")
    record.started_at = (datetime.now(UTC) - timedelta(days=days_ago)).isoformat()
    record.add_turn("hello there", "speech")
    store.save(record)
    store.close()


def test_delete_caller_command(tmp_path) -> None:
    db = tmp_path / "calls.sqlite3"
    saved(db, "a", "+15550100")
    saved(db, "b", "+15550199")
    done = voicebot("calls", "--database", str(db), "delete", "--caller", "+1 (555) 0100")
    assert done.returncode == 0, done.stderr
    assert "calls 1" in done.stdout
    listing = voicebot("calls", "--database", str(db), "list")
    assert " b " in listing.stdout and " a " not in listing.stdout

    refused = voicebot("calls", "--database", str(db), "delete", "--caller", "nobody")
    assert refused.returncode == 2 and refused.stderr.startswith("voicebot: not a phone number")


def test_purge_command(tmp_path) -> None:
    db = tmp_path / "calls.sqlite3"
    saved(db, "old", "+15550100", days_ago=10)
    saved(db, "new", "+15550100")
    done = voicebot("calls", "--database", str(db), "purge", "--days", "7")
    assert done.returncode == 0, done.stderr
    assert [r["call_id"] for r in SqliteCallStore(db).list_calls()] == ["new"]
