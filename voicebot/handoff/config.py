"""Agents and queue timing, as configuration.

Plain mutable dataclasses so ``voicebot.config`` can fold ``[handoff]`` from
TOML into them (``[[handoff.agents]]`` tables arrive as dicts: ``validate``
turns them into :class:`AgentConfig`).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

# A desk token is the only thing between the internet and a caller's
# transcript: long enough that guessing is hopeless.
MIN_TOKEN_CHARS = 16


@dataclass
class AgentConfig:
    """One human agent: where their phone is, what they know, how they sign in."""

    name: str
    sip_uri: str
    skills: list[str] = field(default_factory=list)
    # Personal agent-desk token; empty means "generate one at start-up".
    token: str = ""
    # Supervisors may read every call's history, not only their own transfers.
    supervisor: bool = False
    # Available before the agent first signs in (the desk's saved state wins).
    available: bool = False

    @classmethod
    def from_mapping(cls, data: dict[str, Any]) -> AgentConfig:
        known = {"name", "sip_uri", "skills", "token", "supervisor", "available"}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown agent setting(s) {sorted(unknown)}")
        agent = cls(**data)
        agent.skills = [str(s).lower() for s in agent.skills]
        return agent


@dataclass
class HandoffConfig:
    """How long a phone rings and a caller waits, and who can answer."""

    # One agent's phone rings this long before the next agent is tried.
    ring_timeout_s: float = 20.0
    # A caller on hold longer than this is offered a callback instead.
    max_wait_s: float = 90.0
    # "Redirect on no answer": an agent who lets a call ring out is probably
    # away from the desk, so they are set unavailable until they come back.
    missed_ring_makes_unavailable: bool = True
    agents: list[AgentConfig] = field(default_factory=list)

    def validate(self) -> None:
        """Normalise agents from TOML and refuse settings that would lose callers."""
        if self.ring_timeout_s <= 0 or self.max_wait_s <= 0:
            raise ValueError("handoff.ring_timeout_s and handoff.max_wait_s must be positive")
        self.agents = [
            a if isinstance(a, AgentConfig) else AgentConfig.from_mapping(a) for a in self.agents
        ]
        for agent in self.agents:
            ensure_token(agent)
        names = [a.name for a in self.agents]
        if len(set(names)) != len(names):
            raise ValueError("handoff.agents: agent names must be unique")
        tokens = [a.token for a in self.agents]
        if len(set(tokens)) != len(tokens):
            raise ValueError("handoff.agents: every agent needs their own token")


def ensure_token(agent: AgentConfig) -> None:
    """Generate a token when none is configured; refuse guessable ones."""
    if not agent.name.strip():
        raise ValueError("an agent needs a name")
    if not agent.token:
        agent.token = secrets.token_urlsafe(24)
    elif len(agent.token) < MIN_TOKEN_CHARS:
        raise ValueError(
            f"agent {agent.name!r}: token must be at least {MIN_TOKEN_CHARS} characters"
        )


def parse_agent_option(text: str) -> tuple[str, str]:
    """``NAME=SIP_URI`` from ``voicebot serve --agent`` → (name, uri)."""
    name, sep, uri = text.partition("=")
    name, uri = name.strip(), uri.strip()
    if not sep or not name or not uri.startswith(("sip:", "sips:")):
        raise ValueError(f"expected NAME=sip:user@host, got {text!r}")
    return name, uri
