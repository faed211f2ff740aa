"""A desk served on 127.0.0.1 with three agents and a desk-only dialer."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from desk_rig import DeskRig, desk_agents

from voicebot.agent_desk import create_desk_app
from voicebot.handoff import HandoffConfig, TransferQueue
from voicebot.storage.call_store import SqliteCallStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteCallStore]:
    db = SqliteCallStore(tmp_path / "calls.sqlite3")
    yield db
    db.close()


@pytest.fixture
def queue(store: SqliteCallStore) -> TransferQueue:
    config = HandoffConfig(ring_timeout_s=5.0, max_wait_s=10.0, agents=desk_agents())
    return TransferQueue(store, config)


@pytest.fixture
async def rig(store: SqliteCallStore, queue: TransferQueue) -> AsyncIterator[DeskRig]:
    app = create_desk_app(store, queue)
    client = TestClient(TestServer(app, host="127.0.0.1", port=0))
    await client.start_server()
    yield DeskRig(store, queue, app, client)
    await client.close()
