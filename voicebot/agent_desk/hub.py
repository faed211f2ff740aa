"""Queue events → the WebSocket of each agent they concern.

The queue calls listeners synchronously from inside a transfer; a slow or
dead browser must never hold a caller up, so each connection has its own
outbox drained by its own task.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from voicebot.handoff.queue import (
    AgentChanged,
    HandoffChanged,
    QueueEvent,
    RingEnded,
    Ringing,
    TransferQueue,
)

log = logging.getLogger("voicebot.agent_desk")
OUTBOX_LIMIT = 256


@dataclass(eq=False)
class Connection:
    agent: str
    ws: web.WebSocketResponse
    session: str | None = None  # the browser session it belongs to (closed on sign-out)
    outbox: asyncio.Queue[dict[str, Any]] = field(
        default_factory=lambda: asyncio.Queue(OUTBOX_LIMIT)
    )

    def send(self, message: dict[str, Any]) -> None:
        try:
            self.outbox.put_nowait(message)
        except asyncio.QueueFull:  # the browser stopped reading; it reloads state on reconnect
            log.warning("event=desk_outbox_full agent=%s", self.agent)


class DeskHub:
    """Live desk connections by agent name."""

    def __init__(self, queue: TransferQueue) -> None:
        self.queue = queue
        self.connections: dict[str, set[Connection]] = defaultdict(set)
        self._connected = asyncio.Event()
        self._unsubscribe = queue.subscribe(self.on_event)

    def add(self, connection: Connection) -> None:
        self.connections[connection.agent].add(connection)
        self._connected.set()
        self._connected = asyncio.Event()

    def remove(self, connection: Connection) -> None:
        self.connections[connection.agent].discard(connection)

    def connected(self, agent: str) -> int:
        return len(self.connections.get(agent, ()))

    async def wait_connected(self, agent: str, timeout: float = 10.0) -> None:
        """Until ``agent`` has a live desk (tests push only after this)."""
        async with asyncio.timeout(timeout):
            while not self.connected(agent):
                await self._connected.wait()

    def close(self) -> None:
        self._unsubscribe()

    # ------------------------------------------------------------------ events

    def on_event(self, event: QueueEvent) -> None:
        if isinstance(event, Ringing):
            self._to(event.agent, {"type": "ring", "ring": event.ring.to_dict()})
        elif isinstance(event, RingEnded):
            self._to(event.agent, ring_ended(event))
        elif isinstance(event, AgentChanged):
            self._to(event.agent.name, {"type": "agent", "agent": event.agent.public()})
            self._to_all(self.team_message())
        elif isinstance(event, HandoffChanged):
            self._to_all({"type": "handoff", "call_id": event.call_id, "status": event.status})

    def team_message(self) -> dict[str, Any]:
        team = [{"name": a.name, "status": a.status} for a in self.queue.agents.values()]
        return {"type": "team", "agents": team}

    def _to(self, agent: str, message: dict[str, Any]) -> None:
        for connection in list(self.connections.get(agent, ())):
            connection.send(message)

    def _to_all(self, message: dict[str, Any]) -> None:
        for group in list(self.connections.values()):
            for connection in list(group):
                connection.send(message)


def ring_ended(event: RingEnded) -> dict[str, Any]:
    return {"type": "ring_ended", "call_id": event.call_id, "result": event.result}
