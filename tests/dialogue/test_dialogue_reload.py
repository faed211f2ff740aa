"""A retrained model goes live without dropping a call or its place in the conversation.

A call in the middle of the PIN form keeps its Rasa (its tracker lives there)
while new calls get the new model; the old Rasa stops once that call ends.
The new intent comes from docs/CUSTOMISING.md's walk-through.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from tests.cli.doc_blocks import apply, customising_steps
from voicebot.config import DEFAULT_RASA_PROJECT, DialogueConfig
from voicebot.dialogue.rasa_server import DialogueHost
from voicebot.dialogue.training import train

pytestmark = pytest.mark.slow
CALLER = {"caller_id": "+15550100"}


@pytest.mark.timeout(600)
async def test_reload_keeps_calls_in_progress_on_their_model(tmp_path: Path) -> None:
    project = tmp_path / "rasa_project"
    shutil.copytree(
        DEFAULT_RASA_PROJECT, project,
        ignore=shutil.ignore_patterns("models", ".rasa", "__pycache__", "*.sqlite3*"),
    )  # fmt: skip
    await asyncio.to_thread(train, project_dir=project)
    options = {"project_dir": project, "bank_db": tmp_path / "bank.sqlite3"}
    async with DialogueHost(DialogueConfig(), **options) as host:
        before = host.client
        assert before is not None
        asking = await before.send("call-a", "What's my balance?", CALLER)
        assert asking.expects_pin  # call A is in the middle of the PIN form
        old_pids = host.rasa.pids()

        for step in customising_steps():  # the walk-through's edits, not its commands
            if step.action != "run":
                apply(step, project, tmp_path)
        await asyncio.to_thread(train, project_dir=project)
        call_a_active = True
        done = await host.reload(in_use=lambda client: client is before and call_a_active)
        assert "loaded" in done and host.client is not before

        new = await host.client.send("call-b", "What are your mortgage rates?", CALLER)
        assert new.intent == "mortgage_rates" and "mortgage" in new.text.lower()
        kept = await before.send("call-a", "4321", CALLER)  # still the PIN form
        assert kept.intent == "provide_pin" and "balance" in kept.text.lower(), kept.text
        assert set(old_pids.values()) <= _alive(old_pids)

        call_a_active = False  # call A hangs up: its Rasa retires
        for _ in range(100):
            if not _alive(old_pids):
                break
            await asyncio.sleep(0.1)
        assert not _alive(old_pids)
        again = await host.client.send("call-c", "When are you open?", CALLER)
        assert again.intent == "opening_hours"
        assert "already loaded" in await host.reload(in_use=lambda client: False)


def _alive(pids: dict[str, int]) -> set[int]:
    return {pid for pid in pids.values() if Path(f"/proc/{pid}").exists()}
