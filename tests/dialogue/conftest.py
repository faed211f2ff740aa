"""A real Rasa server + actions server for the dialogue tests (session-scoped).

Self-contained so it can move to tests/conftest.py as is.  It trains the model
first when rasa_project/ changed (a no-op otherwise), and runs the actions
server on a throw-away copy of the demo bank so tests can inspect and change it.
Nothing is skipped: without the Rasa venv the fixture fails with "run
scripts/setup".
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from voicebot.config import DialogueConfig
from voicebot.dialogue.rasa_client import RasaClient
from voicebot.dialogue.rasa_server import ManagedRasa
from voicebot.dialogue.training import train


@pytest.fixture(scope="session")
def rasa_bank_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo bank database the test Rasa's actions read and write."""
    return tmp_path_factory.mktemp("bank") / "demo_bank.sqlite3"


@pytest.fixture(scope="session")
async def managed_rasa(rasa_bank_db: Path) -> AsyncIterator[ManagedRasa]:
    model = await asyncio.to_thread(train)  # idempotent: trains only if the project changed
    # A fresh DialogueConfig: tests always start their own Rasa, whatever the environment says.
    async with ManagedRasa(DialogueConfig(), model=model, bank_db=rasa_bank_db) as rasa:
        print(f"\nRasa started in {rasa.startup_s:.1f} s at {rasa.url}")
        yield rasa


@pytest.fixture
async def rasa_client(managed_rasa: ManagedRasa) -> AsyncIterator[RasaClient]:
    async with managed_rasa.client() as client:
        yield client
