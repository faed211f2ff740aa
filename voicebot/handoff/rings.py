"""Ringing an agent: the pluggable :class:`Dialer` and the board of live rings.

The queue decides *who* rings and for how long; a Dialer makes a phone ring
(SIP REFER or a bridged INVITE, in voicebot.telephony.sip) and reports how it
ended.  Meanwhile the agent desk can answer for the agent: a Decline ends the
ring at once whatever the dialer is doing; an Accept is handed to the dialer
through the :class:`RingBoard` (the desk-only dialer treats it as the answer,
a SIP dialer may keep waiting for the phone to be picked up).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Literal, Protocol

from voicebot.handoff.config import AgentConfig
from voicebot.handoff.package import HandoffPackage

RingResult = Literal["answered", "declined", "timeout", "failed"]
RING_RESULTS: tuple[RingResult, ...] = ("answered", "declined", "timeout", "failed")


class Dialer(Protocol):
    """Makes one agent's phone ring for one call.

    Return "answered" once the caller is connected (REFER accepted and the
    agent picked up, or the bridge is up), "declined" when the agent rejected
    it (SIP 486/603), "timeout" when it rang out, "failed" on any error.  The
    queue *cancels* ``ring`` on its ring timeout, on a desk decline, when the
    caller hangs up and at the maximum wait: stop the ringing then (CANCEL).
    ``package.call_id`` identifies the call (e.g. in a Refer-To header) so the
    desk can match it.  Exceptions count as "failed".
    """

    async def ring(self, agent: AgentConfig, package: HandoffPackage) -> RingResult: ...


class RingError(Exception):
    """Base for desk answers that cannot be applied."""


class NoSuchRing(RingError):
    """Nothing is ringing for that call (it ended, or never rang)."""


class NotYourRing(RingError):
    """The ring belongs to another agent: nobody answers for someone else."""


@dataclass
class Ring:
    """One agent's phone ringing for one call."""

    call_id: str
    agent: str
    package: HandoffPackage
    started_at: str
    timeout_s: float
    # The instance holding the call when it is not this one (a cluster's desk
    # shows rings of calls held elsewhere and forwards the answer there).
    owner: str | None = None
    accepted: asyncio.Event = field(default_factory=asyncio.Event)
    declined: asyncio.Event = field(default_factory=asyncio.Event)

    def to_dict(self) -> dict[str, object]:
        return {
            "call_id": self.call_id,
            "agent": self.agent,
            "started_at": self.started_at,
            "timeout_s": self.timeout_s,
            "accepted": self.accepted.is_set(),
            "package": self.package.to_dict(),
        }


class RingBoard:
    """Live rings by call ID (one agent rings for a call at a time)."""

    def __init__(self) -> None:
        self._rings: dict[str, Ring] = {}

    def open(self, ring: Ring) -> None:
        self._rings[ring.call_id] = ring

    def close(self, call_id: str) -> None:
        self._rings.pop(call_id, None)

    def get(self, call_id: str) -> Ring | None:
        return self._rings.get(call_id)

    def for_agent(self, agent: str) -> list[Ring]:
        return [r for r in self._rings.values() if r.agent == agent]

    def respond(self, agent: str, call_id: str, accept: bool) -> Ring:
        """Apply a desk Accept/Decline; only the ringing agent may answer."""
        ring = self._rings.get(call_id)
        if ring is None:
            raise NoSuchRing(call_id)
        if ring.agent != agent:
            raise NotYourRing(call_id)
        (ring.accepted if accept else ring.declined).set()
        return ring


class DeskDialer:
    """A dialer with no phone: the agent answers by clicking Accept on the desk.

    For trials without softphones and for tests; the queue itself turns a
    desk Decline into "declined", and its timer into "timeout".
    """

    def __init__(self, board: RingBoard) -> None:
        self.board = board

    async def ring(self, agent: AgentConfig, package: HandoffPackage) -> RingResult:
        ring = self.board.get(package.call_id)
        if ring is None or ring.agent != agent.name:
            return "failed"
        await ring.accepted.wait()
        return "answered"
