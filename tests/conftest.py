"""Shared fixtures: the real services (Whisper, pyttsx3, Silero, a real Rasa server).

Starting them takes seconds, so one set serves the whole test session.  When a
part is missing the tests fail with the part's own how-to-fix message — they
never skip, so CI cannot go green without the real pipeline.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml

from voicebot.config import PROJECT_ROOT, Config, load_config
from voicebot.session.services import Services

FIXTURES = PROJECT_ROOT / "audio_fixtures"


@pytest.fixture(scope="session")
def config() -> Config:
    return load_config(None)


@pytest.fixture(scope="session")
async def services(
    config: Config, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Services]:
    from voicebot.runtime import open_services
    from voicebot.simulation import SimulatedAgentDialer, add_simulated_agent

    state = tmp_path_factory.mktemp("state")
    async with open_services(
        config,
        database=state / "calls.sqlite3",
        dialer=SimulatedAgentDialer(),
        bank_db=state / "bank.sqlite3",
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
