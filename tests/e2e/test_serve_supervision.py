"""Rasa killed under a running `voicebot serve`: not ready, callers reach a person,
Rasa restarted, ready again, the next caller served by the bot.

Runs inside ``unshare -n`` like the other SIP tests (see ``sip_call_rig``).
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import numpy as np
import pytest
from sip_call_rig import (
    RATE,
    SERVER_HTTP_PORT,
    VoicebotProcess,
    in_netns,
    netns_proxy,
    run_sipp_callers,
    silence,
)

from tests.conftest import utterance
from voicebot.audio.wavfile import read_audio, write_wav

pytestmark = [pytest.mark.slow, pytest.mark.sip, pytest.mark.netns]

# Long enough that a whole call fits in the outage; the default is 1 s.
BACKOFF_S = 40.0
FIRST_SPEECH_AT_S = 12.0  # after the ~10.7 s disclosure


async def _ready(http: aiohttp.ClientSession) -> tuple[int, dict]:
    async with http.get(f"http://127.0.0.1:{SERVER_HTTP_PORT}/ready") as response:
        return response.status, await response.json()


async def _until_ready(http: aiohttp.ClientSession, want: int, timeout_s: float) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        status, body = await _ready(http)
        if status == want:
            return body
        assert time.monotonic() < deadline, f"/ready stayed {status} {body}"
        await asyncio.sleep(0.2)


def _caller_wav(tmp_path: Path, name: str) -> Path:
    speech = read_audio(utterance("check_balance"))
    pcm = np.concatenate([silence(FIRST_SPEECH_AT_S), speech, silence(12.0)])
    return write_wav(tmp_path / name, pcm, RATE, "ulaw")


@pytest.mark.timeout(400)
async def test_rasa_killed_then_restarted(tmp_path: Path) -> None:
    server = VoicebotProcess(
        tmp_path / "serve", extra_config=f"[dialogue]\nrestart_backoff_s = {BACKOFF_S}\n"
    )
    server.start()
    try:
        async with aiohttp.ClientSession() as http:
            assert (await _ready(http))[0] == 200
            pid = int(re.findall(r"event=rasa_ready .*rasa_pid=(\d+)", server.stderr())[-1])
            os.kill(pid, signal.SIGKILL)
            down = await _until_ready(http, 503, timeout_s=5)
            assert down["dialogue"] == "down"

            during = await run_sipp_callers(
                tmp_path, _caller_wav(tmp_path, "a.wav"), calls=1, pause_ms=26000,
                caller_prefix="+1555030",
            )  # fmt: skip
            assert during.returncode == 0, during.output[-3000:]
            assert (await _ready(http))[0] == 503  # still inside the back-off

            await _until_ready(http, 200, timeout_s=BACKOFF_S + 60)
            after = await run_sipp_callers(
                tmp_path, _caller_wav(tmp_path, "b.wav"), calls=1, pause_ms=26000,
                caller_prefix="+1555031",
            )  # fmt: skip
            assert after.returncode == 0, after.output[-3000:]

            assert server.proc is not None  # `voicebot reload` reaches it by SIGHUP
            reload = subprocess.run(
                [sys.executable, "-m", "voicebot", "reload", "--pid", str(server.proc.pid)],
                capture_output=True, text=True, timeout=120,
            )  # fmt: skip
            assert reload.returncode == 0, reload.stderr
            line = await server.wait_for_log(["event=reload_done"], timeout_s=30, what="the reload")
            assert "already loaded" in line  # nothing retrained: the same model stays
            assert (await _ready(http))[0] == 200
    finally:
        assert server.stop() == 0, server.logs()
    records = {r["caller_id"]: r for r in server.records()}
    outage = records["+15550301"]
    assert outage["transfer"] is not None, outage
    assert "dialogue_unavailable" in str(outage["transfer"]["signals"]), outage["transfer"]
    assert outage["transfer"]["turn"] == 1  # the first thing the caller said: no apologies
    assert outage["outcome"] in ("transferred", "callback", "no_agent"), outage["outcome"]
    served = records["+15550311"]
    assert served["outcome"] == "served", served
    assert served["turns"][1]["intent"] == "check_balance"
    log = server.stderr()
    assert "event=dialogue_down" in log and "event=rasa_restart" in log
    assert "event=dialogue_available" in log


if not in_netns():
    for _name, _test in list(globals().items()):
        if _name.startswith("test_") and callable(_test):
            globals()[_name] = netns_proxy(_test)
