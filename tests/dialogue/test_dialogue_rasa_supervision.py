"""A managed Rasa that dies is noticed, reported and restarted; the client keeps working.

Its own Rasa (not the session's shared one): these tests kill it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time

import pytest

from voicebot.config import DialogueConfig
from voicebot.dialogue.rasa_server import ManagedRasa
from voicebot.dialogue.training import train

pytestmark = pytest.mark.slow


async def _until(condition, timeout_s: float) -> float:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout_s, "timed out"
        await asyncio.sleep(0.05)
    return time.monotonic() - started


@pytest.mark.timeout(240)
async def test_killed_rasa_and_action_server_are_restarted(
    caplog: pytest.LogCaptureFixture, tmp_path
) -> None:
    caplog.set_level(logging.INFO, "voicebot")
    model = await asyncio.to_thread(train)
    config = DialogueConfig(health_interval_s=0.25, restart_backoff_s=0.5)
    async with ManagedRasa(config, model=model, bank_db=tmp_path / "bank.sqlite3") as rasa:
        client = rasa.client()
        assert (await client.send("before", "what are your opening hours")).intent
        for role in ("rasa", "actions"):
            os.kill(rasa.pids()[role], signal.SIGKILL)
            noticed_s = await _until(lambda: not client.available, timeout_s=5)
            assert noticed_s < 1.0 and not rasa.available
            await _until(lambda: client.available, timeout_s=120)
            reply = await client.send(f"after-{role}", "what are your opening hours")
            assert reply.intent == "opening_hours" and "open" in reply.text.lower()
        assert rasa.restarts == 2
        await client.close()
    messages = [r.getMessage() for r in caplog.records]
    assert sum("event=dialogue_down" in m for m in messages) == 2
    assert sum("event=rasa_restart" in m for m in messages) == 2
    assert sum("event=dialogue_available" in m for m in messages) == 2
    assert not rasa.pids()  # stopped on exit, restarted children included
