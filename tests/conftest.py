"""Shared fixtures: the real services (Whisper, pyttsx3, Silero, a real Rasa server).

Starting them takes seconds, so one set serves the whole test session.  When a
part is missing the tests fail with the part's own how-to-fix message — they
never skip, so CI cannot go green without the real pipeline.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import yaml

from voicebot.config import PROJECT_ROOT, Config, DialogueConfig, load_config
from voicebot.dialogue.rasa_client import RasaClient
from voicebot.dialogue.rasa_server import ManagedRasa
from voicebot.dialogue.training import train
from voicebot.session.services import Services

pytest_plugins = ["tests.pg_fixtures"]

FIXTURES = PROJECT_ROOT / "audio_fixtures"


@pytest.fixture(scope="session")
def config() -> Config:
    return load_config(None)


@pytest.fixture(scope="session")
def rasa_bank_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo bank database the test Rasa's actions read and write."""
    return tmp_path_factory.mktemp("bank") / "demo_bank.sqlite3"


@pytest.fixture(autouse=True)
def _pin_lockouts_cleared(rasa_bank_db: Path) -> Iterator[None]:
    """Wrong PINs count across calls (and so across tests sharing one Rasa): each
    test starts as if staff had cleared every lockout the previous one earned."""
    yield
    if rasa_bank_db.exists():
        with contextlib.closing(sqlite3.connect(rasa_bank_db)) as db, db:
            db.execute("DROP TABLE IF EXISTS pin_guard")


@pytest.fixture(scope="session")
async def managed_rasa(rasa_bank_db: Path) -> AsyncIterator[ManagedRasa]:
    """One real Rasa + actions server for the whole test session."""
    model = await asyncio.to_thread(train)  # idempotent: trains only if the project changed
    # A fresh DialogueConfig: tests always start their own Rasa, whatever the environment says.
    async with ManagedRasa(DialogueConfig(), model=model, bank_db=rasa_bank_db) as rasa:
        print(f"\nRasa started in {rasa.startup_s:.1f} s at {rasa.url}")
        yield rasa


@pytest.fixture
async def rasa_client(managed_rasa: ManagedRasa) -> AsyncIterator[RasaClient]:
    async with managed_rasa.client() as client:
        yield client


@pytest.fixture(scope="session")
async def services(
    config: Config, managed_rasa: ManagedRasa, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Services]:
    """Real Whisper, pyttsx3 and Silero, talking to the shared test Rasa."""
    from voicebot.runtime import open_services
    from voicebot.simulation import SimulatedAgentDialer, add_simulated_agent

    state = tmp_path_factory.mktemp("state")
    config.dialogue.rasa_url = managed_rasa.url
    config.dialogue.auth_token = managed_rasa.token
    async with open_services(
        config, database=state / "calls.sqlite3", dialer=SimulatedAgentDialer()
    ) as svc:
        add_simulated_agent(svc)
        yield svc


def _manifest() -> list[dict]:
    return yaml.safe_load((FIXTURES / "manifest.yaml").read_text())["utterances"]


def utterance(intent: str, index: int = 0, voice: str = "piper", **where: object) -> Path:
    """Path of the index-th fixture utterance with this intent (and voice/tags)."""
    matches = [
        u
        for u in _manifest()
        if u.get("intent") == intent
        and u.get("voice", "piper") == voice
        and all(u.get(k) == v for k, v in where.items())
    ]
    if len(matches) <= index:
        raise LookupError(f"no fixture #{index} for intent {intent!r} ({voice})")
    return FIXTURES / "utterances" / f"{matches[index]['id']}.wav"


def utterance_text(path: Path) -> str:
    entry = next(u for u in _manifest() if u["id"] == path.stem)
    return entry["text"]
