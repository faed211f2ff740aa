"""Who is asking: every desk request is tied to one agent, or refused with 401.

Agents sign in once with their personal token; the browser then holds an
HttpOnly, SameSite=Strict session cookie (a WebSocket cannot carry an
Authorization header, a cookie it can).  Scripts may instead send
``Authorization: Bearer <token>`` on every request.  Sessions live in memory:
a restart signs everyone out, which is the safe direction.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable
from urllib.parse import urlsplit

from aiohttp import web

from voicebot.agent_desk.ratelimit import SignInLimiter
from voicebot.core.logs import format_event
from voicebot.handoff.agents import Agent
from voicebot.handoff.queue import TransferQueue

log = logging.getLogger("voicebot.agent_desk")
COOKIE = "voicebot_desk"
SESSION_TTL_S = 12 * 3600  # one working day


@runtime_checkable
class SessionTable(Protocol):
    """Session hash → (agent, expiry in wall-clock seconds)."""

    def put_desk_session(self, id_hash: str, agent: str, expires_at: float) -> None: ...

    def desk_session(self, id_hash: str) -> tuple[str, float] | None: ...

    def delete_desk_session(self, id_hash: str) -> None: ...

    def prune_desk_sessions(self, now: float) -> int: ...

    def count_desk_sessions(self) -> int: ...


@dataclass
class MemorySessions:
    """One process's sessions (the embedded default)."""

    _by_hash: dict[str, tuple[str, float]] = field(default_factory=dict)

    def put_desk_session(self, id_hash: str, agent: str, expires_at: float) -> None:
        self._by_hash[id_hash] = (agent, expires_at)

    def desk_session(self, id_hash: str) -> tuple[str, float] | None:
        return self._by_hash.get(id_hash)

    def delete_desk_session(self, id_hash: str) -> None:
        self._by_hash.pop(id_hash, None)

    def prune_desk_sessions(self, now: float) -> int:
        expired = [h for h, (_, exp) in self._by_hash.items() if now > exp]
        for id_hash in expired:
            del self._by_hash[id_hash]
        return len(expired)

    def count_desk_sessions(self) -> int:
        return len(self._by_hash)


def session_hash(session_id: str) -> str:
    """Only the hash is kept: a leaked table signs nobody in."""
    return hashlib.sha256(session_id.encode()).hexdigest()


@dataclass
class Sessions:
    """Browser sessions: opaque random id → agent name, with expiry."""

    queue: TransferQueue
    ttl_s: float = SESSION_TTL_S
    limiter: SignInLimiter = field(default_factory=SignInLimiter)
    table: SessionTable = field(default_factory=MemorySessions)

    def sign_in(self, token: str) -> tuple[Agent, str] | None:
        agent = self.queue.agent_by_token(token)
        if agent is None:
            return None
        self.prune()
        session_id = secrets.token_urlsafe(32)
        self.table.put_desk_session(session_hash(session_id), agent.name, time.time() + self.ttl_s)
        return agent, session_id

    def prune(self) -> None:
        """Drop expired sessions (a sign-in would otherwise leave one behind forever)."""
        self.table.prune_desk_sessions(time.time())

    def __len__(self) -> int:
        return self.table.count_desk_sessions()

    def sign_out(self, session_id: str) -> None:
        self.table.delete_desk_session(session_hash(session_id))

    def agent(self, session_id: str) -> Agent | None:
        if not session_id:
            return None
        entry = self.table.desk_session(session_hash(session_id))
        if entry is None:
            return None
        name, expires = entry
        if time.time() > expires or name not in self.queue.agents:
            self.table.delete_desk_session(session_hash(session_id))
            return None
        return self.queue.agents[name]


def unauthorized() -> web.HTTPUnauthorized:
    return web.HTTPUnauthorized(
        text='{"error": "sign in with your agent token"}',
        content_type="application/json",
        headers={"WWW-Authenticate": 'Bearer realm="agent desk"'},
    )


def authenticate(request: web.Request, sessions: Sessions) -> Agent:
    """The agent behind this request (bearer token or session cookie) or 401."""
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        token = token.strip()
        throttle(sessions, request.remote, token)
        agent = sessions.queue.agent_by_token(token) if scheme == "Bearer" else None
        if agent is None:
            sessions.limiter.failed(request.remote, token)
            raise unauthorized()
        return agent
    agent = sessions.agent(request.cookies.get(COOKIE, ""))
    if agent is None:
        raise unauthorized()
    return agent


def throttle(sessions: Sessions, source: str | None, token: str) -> None:
    """429 while this source or token prefix is serving a back-off for failures."""
    wait = sessions.limiter.retry_after(source, token)
    if wait:
        log.warning(format_event("desk_signin_throttled", remote=source, retry_s=round(wait)))
        raise web.HTTPTooManyRequests(
            text='{"error": "too many failed sign-ins; try again later"}',
            content_type="application/json",
            headers={"Retry-After": str(max(1, round(wait)))},
        )


def same_origin(request: web.Request) -> bool:
    """Browsers send Origin on POSTs and WebSocket handshakes; a page from any
    other site must not drive an agent's desk (CSRF, WebSocket hijacking)."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True  # not a browser (scripts use the bearer token)
    # Compare hosts only: behind a TLS proxy the scheme seen here is http.
    return urlsplit(origin).netloc == request.host
