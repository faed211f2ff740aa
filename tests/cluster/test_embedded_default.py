"""The embedded default needs no PostgreSQL: nothing on its path imports psycopg."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from voicebot.config import PROJECT_ROOT

PROBE = """
import sys
sys.modules["psycopg"] = None  # as if PostgreSQL's driver were not installed at all
import voicebot.cli, voicebot.runtime, voicebot.server, voicebot.agent_desk
from voicebot.config import load_config
from voicebot.handoff import TransferQueue
from voicebot.storage import open_store
config = load_config(None)
assert config.storage.url == "" and str(config.storage.path()).endswith(".sqlite3")
store = open_store(sys.argv[1])  # as open_services does with no [storage] url
queue = TransferQueue(store, config.handoff)
assert queue.claims is None  # one process: its own agent states are the truth
print(type(store).__name__)
"""


def test_sqlite_default_runs_without_the_postgresql_driver(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path / "calls.sqlite3")],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "SqliteCallStore"
