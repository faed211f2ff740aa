"""Who is asking: every desk request is tied to one agent, or refused with 401.

Agents sign in once with their personal token; the browser then holds an
HttpOnly, SameSite=Strict session cookie (a WebSocket cannot carry an
Authorization header, a cookie it can).  Scripts may instead send
``Authorization: Bearer <token>`` on every request.  Sessions live in memory:
a restart signs everyone out, which is the safe direction.
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from aiohttp import web

from voicebot.agent_desk.ratelimit import SignInLimiter
from voicebot.core.logs import format_event
from voicebot.handoff.agents import Agent
from voicebot.handoff.queue import TransferQueue

log = logging.getLogger("voicebot.agent_desk")
COOKIE = "voicebot_desk"
SESSION_TTL_S = 12 * 3600  # one working day


@dataclass
class Sessions:
    """Browser sessions: opaque random id → agent name, with expiry."""

    queue: TransferQueue
    ttl_s: float = SESSION_TTL_S
    limiter: SignInLimiter = field(default_factory=SignInLimiter)
    _by_id: dict[str, tuple[str, float]] = field(default_factory=dict)

    def sign_in(self, token: str) -> tuple[Agent, str] | None:
        agent = self.queue.agent_by_token(token)
        if agent is None:
            return None
        self.prune()
        session_id = secrets.token_urlsafe(32)
        self._by_id[session_id] = (agent.name, time.monotonic() + self.ttl_s)
        return agent, session_id

    def prune(self) -> None:
        """Drop expired sessions (a sign-in would otherwise leave one behind forever)."""
        now = time.monotonic()
        for session_id in [s for s, (_, exp) in self._by_id.items() if now > exp]:
            del self._by_id[session_id]

    def __len__(self) -> int:
        return len(self._by_id)

    def sign_out(self, session_id: str) -> None:
        self._by_id.pop(session_id, None)

    def agent(self, session_id: str) -> Agent | None:
        entry = self._by_id.get(session_id)
        if entry is None:
            return None
        name, expires = entry
        if time.monotonic() > expires or name not in self.queue.agents:
            self._by_id.pop(session_id, None)
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
