"""Agents at run time and the routing rule that picks one.

Routing: among agents who are available and not ringing or on a call, pick
the one idle longest, preferring those whose skills match the call (its
reason, complexity category or intents).  Fairness first within the skilled
group, so specialists share the load; a skill match never leaves a caller
waiting while someone else is free.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from voicebot.handoff.config import AgentConfig
from voicebot.handoff.package import HandoffPackage

AgentStatus = Literal["offline", "available", "ringing", "on_call"]


@dataclass
class Agent:
    """One agent's live state; ``idle_since`` is wall-clock seconds."""

    config: AgentConfig
    available: bool
    idle_since: float
    ringing: str | None = None  # call ID of the ring in progress
    on_call: str | None = None  # call ID they answered

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def status(self) -> AgentStatus:
        if not self.available:
            return "offline"
        if self.ringing:
            return "ringing"
        return "on_call" if self.on_call else "available"

    @property
    def free(self) -> bool:
        return self.status == "available"

    def public(self) -> dict[str, Any]:
        """What the desk may show about an agent (never the token)."""
        return {
            "name": self.name,
            "sip_uri": self.config.sip_uri,
            "skills": list(self.config.skills),
            "supervisor": self.config.supervisor,
            "status": self.status,
            "available": self.available,
            "idle_since": self.idle_since,
            "ringing": self.ringing,
            "on_call": self.on_call,
        }


def skill_match(agent: Agent, package: HandoffPackage) -> bool:
    return bool(package.skill_tags() & {s.lower() for s in agent.config.skills})


def choose_agent(
    agents: Iterable[Agent], package: HandoffPackage, exclude: set[str]
) -> Agent | None:
    """The free agent idle longest, skilled ones first; ties go to config order."""
    free = [a for a in agents if a.free and a.name not in exclude]
    pool = [a for a in free if skill_match(a, package)] or free
    return min(pool, key=lambda a: a.idle_since, default=None)
