"""The agent-desk test rig: three agents with tokens, and a served desk."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestClient

from voicebot.agent_desk.app import DESK
from voicebot.agent_desk.hub import DeskHub
from voicebot.handoff import AgentConfig, TransferQueue
from voicebot.storage.call_store import SqliteCallStore

# The record/decision builders live beside the handoff tests.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "handoff"))

TOKENS = {
    "alice": "alice-token-0123456789abcdef",
    "bob": "bob-token-0123456789abcdef",
    "sam": "sam-token-0123456789abcdef",
}


@dataclass
class DeskRig:
    store: SqliteCallStore
    queue: TransferQueue
    app: web.Application
    client: TestClient

    @property
    def hub(self) -> DeskHub:
        return self.app[DESK].hub

    def auth(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {TOKENS[name]}"}


def desk_agents() -> list[AgentConfig]:
    return [
        AgentConfig("alice", "sip:alice@127.0.0.1", ["fraud"], TOKENS["alice"], available=True),
        AgentConfig("bob", "sip:bob@127.0.0.1", [], TOKENS["bob"], available=True),
        AgentConfig("sam", "sip:sam@127.0.0.1", [], TOKENS["sam"], supervisor=True),
    ]
