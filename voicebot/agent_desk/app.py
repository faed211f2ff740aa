"""The agent desk: an aiohttp app with a JSON API, a WebSocket and a static page.

Mount it in ``voicebot serve`` with :func:`mount_desk` (under ``/desk``).
Every API route and the WebSocket resolve the agent first (401 otherwise);
an agent acts only on rings offered to them (403) and reads only calls the
desk lets them see (404): transfers offered to them, the team's follow-up
list, or everything for a supervisor.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

from voicebot.agent_desk.auth import (
    COOKIE,
    MemorySessions,
    Sessions,
    SessionTable,
    authenticate,
    same_origin,
    throttle,
)
from voicebot.agent_desk.hub import Connection, DeskHub
from voicebot.core.logs import format_event
from voicebot.handoff import store as status
from voicebot.handoff.agents import Agent
from voicebot.handoff.config import AgentConfig
from voicebot.handoff.package import public_transcript
from voicebot.handoff.queue import TransferQueue
from voicebot.handoff.rings import NoSuchRing, NotYourRing
from voicebot.handoff.store import HandoffStore

log = logging.getLogger("voicebot.agent_desk")
STATIC = Path(__file__).parent / "static"
STATIC_FILES = {
    "desk.js": "text/javascript",
    "desk.css": "text/css",
}
SECURITY_HEADERS = {
    # Only our own script and style; no inline code, so injected markup is inert.
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
HISTORY_LIMIT = 50


@dataclass
class Desk:
    store: HandoffStore
    queue: TransferQueue
    sessions: Sessions
    hub: DeskHub
    # Behind a TLS-terminating proxy the request looks like plain HTTP: this
    # setting (http.tls_proxy) marks the session cookie Secure anyway.
    secure_cookie: bool = False


DESK = web.AppKey("desk", Desk)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def create_desk_app(
    store: HandoffStore,
    queue: TransferQueue,
    agents: Iterable[AgentConfig] = (),
    *,
    secure_cookie: bool = False,
) -> web.Application:
    """The desk as its own app.  Agents are ``queue.agents``; ``agents`` not yet
    on the queue are added to it (signed in and available, like ``--agent``)."""
    for extra in agents:
        if extra.name not in queue.agents:
            queue.add_agent(extra.name, extra.sip_uri, extra.skills, extra.token)
    app = web.Application(middlewares=[guard])
    # A cluster's shared store keeps sessions, so any instance serves the page.
    table = store if isinstance(store, SessionTable) else MemorySessions()
    sessions = Sessions(queue, table=table)
    desk = Desk(store, queue, sessions, DeskHub(queue), secure_cookie=secure_cookie)
    app[DESK] = desk
    app.router.add_get("/", index)
    app.router.add_get("/static/{name}", static_file)
    app.router.add_post("/api/signin", sign_in)
    app.router.add_post("/api/signout", sign_out)
    app.router.add_get("/api/me", me)
    app.router.add_post("/api/availability", availability)
    app.router.add_post("/api/finish", finish)
    app.router.add_post("/api/rings/{call_id}/{action:accept|decline}", respond)
    app.router.add_get("/api/calls", history)
    app.router.add_get("/api/calls/{call_id}", call_detail)
    app.router.add_get("/api/followups", followups)
    app.router.add_post("/api/followups/{call_id}/done", followup_done)
    app.router.add_get("/ws", websocket)
    app.on_shutdown.append(_close_sockets)
    app.on_cleanup.append(_unsubscribe)
    return app


def mount_desk(
    app: web.Application,
    store: HandoffStore,
    queue: TransferQueue,
    prefix: str = "/desk",
    agents: Iterable[AgentConfig] = (),
    *,
    secure_cookie: bool = False,
) -> web.Application:
    """Serve the desk under ``prefix`` of ``app`` (``/desk`` → ``/desk/``)."""
    desk = create_desk_app(store, queue, agents, secure_cookie=secure_cookie)

    async def redirect(_: web.Request) -> web.Response:
        raise web.HTTPFound(prefix + "/")

    # Before the sub-app: its prefix resource would otherwise claim the bare path.
    app.router.add_get(prefix, redirect)
    app.add_subapp(prefix, desk)
    return desk


# ---------------------------------------------------------------- middleware


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse cross-site writes and WebSocket handshakes; add security headers."""
    if (request.method != "GET" or request.path.endswith("/ws")) and not same_origin(request):
        raise web.HTTPForbidden(text="cross-origin request refused")
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        exc.headers.update(SECURITY_HEADERS)
        raise
    if not response.prepared:
        response.headers.update(SECURITY_HEADERS)
    return response


def _desk(request: web.Request) -> Desk:
    return request.config_dict[DESK]


def _agent(request: web.Request) -> Agent:
    desk = _desk(request)
    return authenticate(request, desk.sessions)


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        data = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise web.HTTPBadRequest(text="expected a JSON object") from exc
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(text="expected a JSON object")
    return data


# ------------------------------------------------------------------- static


async def index(_: web.Request) -> web.FileResponse:
    """The page holds no data: everything comes from the authenticated API."""
    return web.FileResponse(STATIC / "index.html", headers={"Content-Type": "text/html"})


async def static_file(request: web.Request) -> web.FileResponse:
    name = request.match_info["name"]
    if name not in STATIC_FILES:
        raise web.HTTPNotFound()
    return web.FileResponse(STATIC / name, headers={"Content-Type": STATIC_FILES[name]})


# ---------------------------------------------------------------- sign-in


async def sign_in(request: web.Request) -> web.Response:
    desk = _desk(request)
    token = str((await _body(request)).get("token", ""))
    source = request.remote
    throttle(desk.sessions, source, token)
    signed = desk.sessions.sign_in(token)
    if signed is None:
        desk.sessions.limiter.failed(source, token)
        log.warning(format_event("desk_signin_refused", remote=source))
        raise web.HTTPUnauthorized(
            text='{"error": "unknown token"}', content_type="application/json"
        )
    desk.sessions.limiter.succeeded(source)
    agent, session_id = signed
    log.info(format_event("desk_signin", agent=agent.name))
    response = web.json_response({"agent": agent.public()})
    secure = request.secure or desk.secure_cookie
    response.set_cookie(
        COOKIE, session_id, httponly=True, samesite="Strict", path="/", secure=secure
    )
    return response


async def sign_out(request: web.Request) -> web.Response:
    desk = _desk(request)
    _agent(request)
    session_id = request.cookies.get(COOKIE, "")
    desk.sessions.sign_out(session_id)
    for group in list(desk.hub.connections.values()):
        for connection in list(group):
            if session_id and connection.session == session_id:
                await connection.ws.close()
    response = web.json_response({"ok": True})
    response.del_cookie(COOKIE, path="/")
    return response


async def me(request: web.Request) -> web.Response:
    agent = _agent(request)
    rings = _desk(request).queue.board.for_agent(agent.name)
    return web.json_response({"agent": agent.public(), "rings": [r.to_dict() for r in rings]})


# ------------------------------------------------------------ agent actions


async def availability(request: web.Request) -> web.Response:
    agent = _agent(request)
    available = (await _body(request)).get("available")
    if not isinstance(available, bool):
        raise web.HTTPBadRequest(text='"available" must be true or false')
    agent = _desk(request).queue.set_available(agent.name, available)
    return web.json_response({"agent": agent.public()})


async def finish(request: web.Request) -> web.Response:
    agent = _desk(request).queue.finish(_agent(request).name)
    return web.json_response({"agent": agent.public()})


async def respond(request: web.Request) -> web.Response:
    """Accept or decline a ring — only the agent whose phone rings may."""
    agent = _agent(request)
    call_id, accept = request.match_info["call_id"], request.match_info["action"] == "accept"
    try:
        _desk(request).queue.respond(agent.name, call_id, accept)
    except NotYourRing as exc:
        raise web.HTTPForbidden(text="this call is ringing for another agent") from exc
    except NoSuchRing as exc:
        raise web.HTTPNotFound(text="nothing is ringing for that call") from exc
    # call_id comes from the URL: format_event escapes what could forge a log line.
    log.info(format_event("desk_response", agent=agent.name, call_id=call_id, accept=accept))
    return web.json_response({"call_id": call_id, "accepted": accept})


# ----------------------------------------------------------------- history


async def history(request: web.Request) -> web.Response:
    agent, desk = _agent(request), _desk(request)
    query = request.query.get("q", "").strip()[:200] or None
    supervisor = agent.config.supervisor
    # Searches run on a worker thread: the loop clocks every call's audio.
    handoffs = await asyncio.to_thread(
        desk.store.list_handoffs,
        agent=None if supervisor else agent.name,
        query=query,
        limit=HISTORY_LIMIT,
    )
    items = {h["call_id"]: handoff_item(h) for h in handoffs}
    if supervisor:
        records = await asyncio.to_thread(desk.store.list_calls, HISTORY_LIMIT, query)
        for record in records:
            items.setdefault(record["call_id"], record_item(record))
    ordered = sorted(items.values(), key=lambda i: i["created_at"] or "", reverse=True)
    return web.json_response({"calls": ordered[:HISTORY_LIMIT]})


async def call_detail(request: web.Request) -> web.Response:
    agent, desk = _agent(request), _desk(request)
    call_id = request.match_info["call_id"]
    handoff = await asyncio.to_thread(desk.store.get_handoff, call_id)
    record = await asyncio.to_thread(desk.store.get, call_id)
    if not may_read(agent, handoff, record):
        raise web.HTTPNotFound(text="no such call on your desk")
    return web.json_response(
        {
            "call_id": call_id,
            "handoff": handoff,
            "record": record_view(record) if record else None,
        }
    )


def may_read(agent: Agent, handoff: dict | None, record: dict | None) -> bool:
    """Supervisors read everything; agents their own transfers and the
    team's follow-up list (someone has to call those callers back)."""
    if handoff is None and record is None:
        return False
    if agent.config.supervisor:
        return True
    if handoff is None:
        return False
    rang = any(a["agent"] == agent.name for a in handoff["attempts"])
    return (
        rang or handoff["agent"] == agent.name or (handoff["status"] in status.FOLLOW_UP_STATUSES)
    )


def handoff_item(handoff: dict[str, Any]) -> dict[str, Any]:
    package = handoff["package"]
    return {
        "call_id": handoff["call_id"],
        "caller_id": package.get("caller_id"),
        "created_at": handoff["created_at"],
        "status": handoff["status"],
        "agent": handoff["agent"],
        "reason": package.get("reason"),
        "summary": package.get("summary"),
        "callback": handoff["callback"],
    }


def record_item(record: dict[str, Any]) -> dict[str, Any]:
    transfer = record.get("transfer") or {}
    return {
        "call_id": record["call_id"],
        "caller_id": record.get("caller_id"),
        "created_at": record.get("started_at"),
        "status": record.get("outcome"),
        "agent": None,
        "reason": transfer.get("reason"),
        "summary": transfer.get("summary"),
        "callback": None,
    }


def record_view(record: dict[str, Any]) -> dict[str, Any]:
    """The stored record as an agent reads it: scrubbed transcript, no internals."""
    verified = record.get("verified") or {}
    return {
        "call_id": record["call_id"],
        "caller_id": record.get("caller_id"),
        "transport": record.get("transport"),
        "started_at": record.get("started_at"),
        "ended_at": record.get("ended_at"),
        "outcome": record.get("outcome"),
        "end_reason": record.get("end_reason"),
        "verified": {k: verified.get(k) for k in ("caller_id_matched", "pin_verified")},
        "transcript": public_transcript(record.get("turns", [])),
    }


# --------------------------------------------------------------- follow-ups


async def followups(request: web.Request) -> web.Response:
    """Unanswered transfers and callback requests, kept across restarts."""
    _agent(request)
    store = _desk(request).store
    handoffs = await asyncio.to_thread(
        store.list_handoffs, statuses=status.FOLLOW_UP_STATUSES, limit=200
    )
    return web.json_response({"followups": [handoff_item(h) for h in handoffs]})


async def followup_done(request: web.Request) -> web.Response:
    agent = _agent(request)
    call_id = request.match_info["call_id"]
    handoff = _desk(request).store.get_handoff(call_id)
    if handoff is None or handoff["status"] not in status.FOLLOW_UP_STATUSES:
        raise web.HTTPNotFound(text="no such follow-up")
    _desk(request).queue.follow_up_done(call_id, agent.name)
    return web.json_response({"call_id": call_id, "status": status.DONE})


# ---------------------------------------------------------------- websocket


async def websocket(request: web.Request) -> web.WebSocketResponse:
    """Live events for one agent; authenticated before the upgrade."""
    agent, desk = _agent(request), _desk(request)
    ws = web.WebSocketResponse(heartbeat=20.0)
    await ws.prepare(request)
    connection = Connection(agent.name, ws, session=request.cookies.get(COOKIE))
    desk.hub.add(connection)
    rings = [r.to_dict() for r in desk.queue.board.for_agent(agent.name)]
    connection.send({"type": "hello", "agent": agent.public(), "rings": rings})
    connection.send(desk.hub.team_message())
    pump = asyncio.create_task(_pump(connection))
    try:
        async for message in ws:
            if message.type == WSMsgType.ERROR:
                break
    finally:
        desk.hub.remove(connection)
        pump.cancel()
    return ws


async def _pump(connection: Connection) -> None:
    while not connection.ws.closed:
        message = await connection.outbox.get()
        with contextlib.suppress(ConnectionResetError):
            await connection.ws.send_json(message)


async def _close_sockets(app: web.Application) -> None:
    for group in list(app[DESK].hub.connections.values()):
        for connection in list(group):
            await connection.ws.close(message=b"server shutting down")


async def _unsubscribe(app: web.Application) -> None:
    app[DESK].hub.close()
