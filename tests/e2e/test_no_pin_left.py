"""No PIN text outlives the call: not in the store (record, search column, raw
file), not in the logs, not in Rasa's tracker.  Real STT, TTS, VAD and Rasa."""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import FIXTURES
from voicebot.dialogue.rasa_client import RasaClient
from voicebot.dialogue.rasa_server import ManagedRasa, free_port
from voicebot.session.services import Services
from voicebot.simulation import simulate_call
from voicebot.storage.call_store import SqliteCallStore
from voicebot.telephony.fixture import FixtureTurn, parse_turn

pytestmark = pytest.mark.slow
PIN_TEXT = re.compile(r"4\W*3\W*2\W*1|four\W+three\W+two\W+one", re.IGNORECASE)
MY_PIN_IS = FIXTURES / "utterances" / "pin_my_pin_is.wav"  # "My pin is four three two one."


def leaks(path: Path) -> list[str]:
    """PIN text anywhere in the database's files (main, WAL, shared memory)."""
    found = []
    for part in path.parent.glob(path.name + "*"):
        if PIN_TEXT.search(part.read_bytes().decode("latin-1")):
            found.append(part.name)
    return found


async def spoken(services: Services, text: str) -> FixtureTurn:
    """A caller turn spoken by espeak-ng (a PIN volunteered mid-request)."""
    return FixtureTurn(text, pcm=await services.synthesizer.synthesize(text))


async def test_a_volunteered_pin_leaves_no_trace(
    services: Services, managed_rasa: ManagedRasa, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    store = SqliteCallStore(tmp_path / "calls.sqlite3")
    local = dataclasses.replace(services, store=store)
    turns = [
        await spoken(services, "My PIN is four three two one, what's my balance?"),
        parse_turn(str(MY_PIN_IS)),
    ]
    record = await simulate_call(local, turns, "+15550100")
    store.close()

    said = [t.caller_text or "" for t in record.caller_turns()]
    assert "[PIN]" in said[0], said  # STT heard the digits; the record masked them
    saved = SqliteCallStore(tmp_path / "calls.sqlite3").get(record.call_id)
    assert saved is not None and not PIN_TEXT.search(json.dumps(saved))
    assert leaks(tmp_path / "calls.sqlite3") == []
    assert not PIN_TEXT.search(caplog.text)

    url = f"{managed_rasa.url}/conversations/{record.call_id}/tracker"
    headers = {"Authorization": f"Bearer {managed_rasa.token}"}
    async with (
        aiohttp.ClientSession(headers=headers) as http,
        http.get(url, params={"include_events": "ALL"}) as resp,
    ):
        tracker = await resp.text()
    assert resp.status == 200 and not PIN_TEXT.search(tracker)  # forgotten at hang-up


async def test_with_rasa_down_the_pin_is_still_masked(services: Services, tmp_path: Path) -> None:
    store = SqliteCallStore(tmp_path / "calls.sqlite3")
    dead = RasaClient(f"http://127.0.0.1:{free_port()}", "t", timeout_s=2)
    local = dataclasses.replace(services, store=store, dialogue=dead)
    record = await simulate_call(local, [parse_turn(str(MY_PIN_IS))], "+15550100")
    store.close()
    await dead.close()
    said = [t.caller_text or "" for t in record.caller_turns()]
    assert any("[PIN]" in s for s in said), said
    assert leaks(tmp_path / "calls.sqlite3") == []
