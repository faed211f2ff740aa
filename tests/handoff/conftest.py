"""Fixtures for handoff tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from voicebot.storage.call_store import SqliteCallStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteCallStore]:
    db = SqliteCallStore(tmp_path / "calls.sqlite3")
    yield db
    db.close()
