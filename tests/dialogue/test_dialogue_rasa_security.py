"""The Rasa processes voicebot starts: only voicebot may talk to them, their
token is on no command line, and they die with voicebot (even on kill -9).
Real Rasa, real actions server, real processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

from voicebot.dialogue.rasa_server import ManagedRasa
from voicebot.dialogue.training import train

ROOT = Path(__file__).resolve().parents[2]
WEBHOOK_BODY = {
    "next_action": "action_account_request",
    "sender_id": "intruder",
    "tracker": {"sender_id": "intruder", "slots": {}, "latest_message": {}, "events": []},
    "domain": {},
}


async def test_nothing_answers_without_the_token(managed_rasa: ManagedRasa) -> None:
    assert managed_rasa.action_url is not None
    probes = [
        ("GET", f"{managed_rasa.url}/status", None),
        ("GET", f"{managed_rasa.url}/conversations/x/tracker", None),
        # Rasa's own --auth-token leaves the REST channel open; ours does not.
        ("POST", f"{managed_rasa.url}/webhooks/rest/webhook", {"sender": "x", "message": "hi"}),
        ("POST", f"{managed_rasa.action_url}/webhook", WEBHOOK_BODY),
        ("GET", f"{managed_rasa.action_url}/actions", None),
    ]
    async with aiohttp.ClientSession() as http:
        for method, url, body in probes:
            for extra in ({}, {"params": {"token": managed_rasa.token}},
                          {"headers": {"Authorization": "Bearer wrong"}}):  # fmt: skip
                async with http.request(method, url, json=body, **extra) as resp:
                    assert resp.status == 401, (url, extra)
        auth = {"Authorization": f"Bearer {managed_rasa.token}"}
        async with http.get(f"{managed_rasa.action_url}/actions", headers=auth) as resp:
            assert resp.status == 200  # the right token opens it


def test_the_token_is_on_no_command_line(managed_rasa: ManagedRasa) -> None:
    assert managed_rasa.token
    for process in managed_rasa._processes:
        cmdline = Path(f"/proc/{process.proc.pid}/cmdline").read_bytes()
        assert managed_rasa.token.encode() not in cmdline
        environ = Path(f"/proc/{process.proc.pid}/environ")
        assert environ.stat().st_mode & 0o077 == 0  # the environment is private


PARENT = """
import asyncio, json, sys
from pathlib import Path
from voicebot.config import DialogueConfig
from voicebot.dialogue.rasa_server import ManagedRasa

async def main():
    async with ManagedRasa(DialogueConfig(), model=Path(sys.argv[1])) as rasa:
        print(json.dumps([p.proc.pid for p in rasa._processes]), flush=True)
        await asyncio.sleep(3600)

asyncio.run(main())
"""


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for its reaper counts as dead)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def test_rasa_dies_with_voicebot_on_kill_9() -> None:
    model = train()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(model)], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert parent.stdout is not None
        line = parent.stdout.readline()
        assert line, "the stand-in voicebot did not start Rasa"
        children = json.loads(line)
        assert len(children) == 2 and all(_alive(pid) for pid in children)
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(pid) for pid in children), "Rasa outlived voicebot"
    finally:
        if parent.poll() is None:
            parent.kill()
