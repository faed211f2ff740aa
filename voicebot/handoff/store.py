"""What the handoff layer needs from the call store, and the words it stores.

A Protocol rather than the SQLite class, so the PostgreSQL store of a cluster
provides the same methods; only a shared store also provides :class:`AgentClaims`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Protocol

# Handoff statuses.  OPEN ones mean a caller may still be on the line.
PENDING = "pending"  # package stored, no phone ringing yet
RINGING = "ringing"
WAITING = "waiting"  # nobody free at the moment; caller on hold
ANSWERED = "answered"
NO_AGENT = "no_agent"  # max wait passed; the caller was offered a callback
CALLBACK = "callback"  # the caller confirmed a callback request
ABANDONED = "abandoned"  # the caller hung up on hold
INTERRUPTED = "interrupted"  # voicebot stopped while the caller was on hold
DONE = "done"  # an agent followed it up
OPEN_STATUSES = [PENDING, RINGING, WAITING]
# Shown to every agent as work to follow up.
FOLLOW_UP_STATUSES = [NO_AGENT, CALLBACK, ABANDONED, INTERRUPTED]


@dataclass(frozen=True)
class CallbackRequest:
    """A caller nobody could answer asked to be called back on this number."""

    call_id: str
    number: str
    confirmed_at: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class HandoffStore(Protocol):
    """Implemented by :class:`voicebot.storage.call_store.SqliteCallStore`."""

    def get(self, call_id: str) -> dict[str, Any] | None: ...

    def list_calls(self, limit: int = 50, query: str | None = None) -> list[dict[str, Any]]: ...

    def save_handoff(self, package: dict[str, Any], status: str, at: str) -> None: ...

    def set_handoff_status(
        self, call_id: str, status: str, at: str, agent: str | None = None
    ) -> None: ...

    def mark_handoffs(self, from_statuses: list[str], to_status: str, at: str) -> list[str]: ...

    def add_handoff_attempt(self, call_id: str, agent: str, started_at: str) -> int: ...

    def finish_handoff_attempt(self, attempt_id: int, result: str, ended_at: str) -> None: ...

    def get_handoff(self, call_id: str) -> dict[str, Any] | None: ...

    def list_handoffs(
        self,
        *,
        statuses: list[str] | None = None,
        agent: str | None = None,
        query: str | None = None,
        limit: int = 50,
    ) -> list[dict[str, Any]]: ...

    def save_callback(self, call_id: str, number: str, confirmed_at: str) -> None: ...

    def list_callbacks(self, status: str | None = "pending", limit: int = 100) -> list[dict]: ...

    def set_callback_status(self, call_id: str, status: str, agent: str, at: str) -> bool: ...

    def save_agent_state(
        self, name: str, available: bool, idle_since: float | None, at: str
    ) -> None: ...

    def agent_states(self) -> dict[str, dict[str, Any]]: ...


class AgentClaims(Protocol):
    """One agent, one call, across every instance sharing the store.

    Implemented by :class:`voicebot.storage.postgres.PostgresStore`; a single
    process needs none (its own agent states are the whole truth)."""

    def claim_agent(self, name: str, call_id: str) -> bool: ...

    def release_agent(self, name: str, call_id: str) -> None: ...

    def agent_states(self) -> dict[str, dict[str, Any]]: ...
