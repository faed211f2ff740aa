"""``voicebot serve``: the SIP listener and the HTTP side (media streams) in one process.

Every transport hands its calls to :meth:`VoicebotServer.on_call`, which runs
one :class:`CallSession` per call and keeps track of them, so SIGTERM can
give each caller a goodbye and a proper hang-up before the process exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from voicebot.config import Config, ConfigError, serve_pid_file
from voicebot.core.logs import format_event
from voicebot.session.call_session import CallSession
from voicebot.session.services import Services
from voicebot.storage import retention
from voicebot.telephony.channel import CallChannel

if TYPE_CHECKING:
    from voicebot.handoff import Dialer
    from voicebot.ops.metrics import CallMetrics
    from voicebot.telephony.media_stream import MediaStreamEndpoint

log = logging.getLogger("voicebot.server")

SHUTDOWN_MESSAGE = (
    "I'm sorry, this service is restarting and I have to end the call now. "
    "Please call back in a minute. Goodbye."
)


class VoicebotServer:
    """Owns the running calls of one voicebot process."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.sessions: dict[str, CallSession] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.draining = False  # SIGTERM: no new calls

    async def on_call(self, channel: CallChannel) -> None:
        """Run one call to its end (every transport calls this).

        The call ID names the Rasa conversation and the record, so every
        transport mints its own (``sip-…``, ``ms-…-nonce``); what the caller's
        side calls the call (SIP Call-ID, callSid) is kept as ``wire_call_id``
        for correlation only.  A call ID already live is still refused, as a
        last guard: a second call under it would join the first caller's
        dialogue (their PIN-verified state included)."""
        if channel.call_id in self.sessions:
            log.warning(format_event("call_id_in_use", call_id=channel.call_id))
            await channel.hangup()
            return
        session = CallSession(channel, self.services)
        session.record.wire_call_id = wire_call_id(channel)
        self.sessions[channel.call_id] = session
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            await session.run()
        finally:
            self.sessions.pop(channel.call_id, None)
            if task is not None:
                self._tasks.discard(task)

    def taking_calls(self) -> bool:
        """Ready for a new call: not draining and below the configured capacity."""
        return not self.draining and len(self.sessions) < self.services.config.sip.max_calls

    async def drain(
        self,
        limit_s: float = 0.0,
        hurry: asyncio.Event | None = None,
        timeout_s: float = 15.0,
        bridged: Callable[[], list[Awaitable[object]]] = list,
    ) -> None:
        """Let calls in progress end by themselves for up to ``limit_s`` (or until
        ``hurry`` is set: a second signal), then say goodbye on the rest.

        ``bridged`` gives the ends of calls an agent now owns (their sessions are
        over): they too may run to the limit; the transport then BYEs both legs."""
        self.draining = True
        waiting = set(self._tasks) | {asyncio.ensure_future(w) for w in bridged()}
        if waiting and limit_s > 0:
            log.info(format_event("draining", calls=len(waiting), limit_s=limit_s))
            waits = {asyncio.ensure_future(asyncio.wait(waiting))}
            if hurry is not None:
                waits.add(asyncio.ensure_future(hurry.wait()))
            await asyncio.wait(waits, timeout=limit_s, return_when=asyncio.FIRST_COMPLETED)
            for waiter in waits:
                waiter.cancel()
        for waiter in waiting - self._tasks:
            waiter.cancel()
        for session in list(self.sessions.values()):
            session.request_shutdown(SHUTDOWN_MESSAGE)
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=timeout_s)
            for task in pending:
                task.cancel()


def wire_call_id(channel: CallChannel) -> str | None:
    """The caller's side's name for the call, printable and at most 128 characters."""
    chosen = getattr(channel, "sip_call_id", None) or getattr(channel, "call_sid", None)
    if not chosen:
        return None
    return "".join(c if c.isprintable() else "?" for c in str(chosen))[:128]


def http_app(
    server: VoicebotServer, media: MediaStreamEndpoint, metrics: CallMetrics | None = None
) -> web.Application:
    """The HTTP side: media streams, the agent desk, /health, /ready, /metrics."""
    from voicebot.agent_desk import mount_desk

    app = web.Application()
    app.add_routes(media.routes("/media-stream"))
    if media.auth is not None:
        app.add_routes(media.auth.routes("/voice"))
    services = server.services
    if services.queue is not None and services.store is not None:
        secure = services.config.http.tls_proxy
        mount_desk(app, services.store, services.queue, secure_cookie=secure)  # type: ignore[arg-type]

    app.router.add_get("/health", lambda _: health(server))
    app.router.add_get("/ready", lambda _: ready(server))
    if metrics is not None:
        from voicebot.ops.http import metrics_route

        app.add_routes([metrics_route(metrics)])
    return app


def _state(server: VoicebotServer) -> dict[str, Any]:
    dialogue = "up" if server.services.dialogue.available else "down"
    return {
        "calls": len(server.sessions),
        "dialogue": dialogue,
        "draining": server.draining,
        "full": len(server.sessions) >= server.services.config.sip.max_calls,
    }


async def health(server: VoicebotServer) -> web.Response:
    """Liveness: the process answers (200) and says what works; ``degraded`` while
    the dialogue is down (callers then go straight to a person)."""
    state = _state(server)
    status = "ok" if state["dialogue"] == "up" and not server.draining else "degraded"
    return web.json_response({"status": status, **state})


async def ready(server: VoicebotServer) -> web.Response:
    """Readiness: 200 when a new caller would be served by the bot, else 503
    (dialogue down, draining on SIGTERM, or at ``[sip] max_calls``)."""
    state = _state(server)
    is_ready = state["dialogue"] == "up" and server.taking_calls()
    return web.json_response({"ready": is_ready, **state}, status=200 if is_ready else 503)


async def serve(services: Services, config: Config, announce: Callable[[str], None]) -> None:
    """Run SIP and HTTP until SIGTERM/SIGINT, then end every call politely."""
    from voicebot.telephony.sip import SipServer

    metrics = watch(services)
    server = VoicebotServer(services)
    if services.queue is not None:
        services.queue.dialer = channel_dialer(server, services, config)
    media = media_endpoint(server, config)
    sip = SipServer(config.sip, server.on_call)
    sip.transport.sent_watchers.append(metrics.on_sip_sent)
    await _listen("SIP on udp", config.sip.listen_host, config.sip.listen_port, sip.start())
    runner = web.AppRunner(http_app(server, media, metrics), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, config.http.listen_host, config.http.listen_port)
    await _listen("HTTP on tcp", config.http.listen_host, config.http.listen_port, site.start())
    http_port = runner.addresses[0][1] if runner.addresses else config.http.listen_port
    announce(
        f"voicebot ready: SIP udp {config.sip.listen_host}:{sip.port}, "
        f"HTTP http://{config.http.listen_host}:{http_port} (/media-stream, /desk/)"
    )
    pid_file = write_pid_file()
    reloads = Reloader(server, config)
    days = config.storage.retention_days if services.store is not None else None
    housekeeping = asyncio.create_task(retention.purge_daily(services.store, days))  # type: ignore[arg-type]
    signals = StopSignals(reloads.request)
    try:
        await signals.first.wait()
    finally:
        remove_pid_file(pid_file)
        await reloads.close()
        housekeeping.cancel()
        sip.stop_accepting()
        draining = getattr(services.store, "set_draining", None)
        if draining is not None:  # a cluster's store: the others see us draining
            draining()
        await server.drain(
            config.cluster.drain_limit_s, hurry=signals.second, bridged=sip.bridge_ends
        )
        await sip.close(grace_s=2.0)
        await media.close_all()
        await runner.cleanup()


class ListenError(OSError):
    """A listener could not be opened; the message names the address and port."""


async def _listen(what: str, host: str, port: int, start: Coroutine[Any, Any, None]) -> None:
    try:
        await start
    except OSError as exc:
        raise ListenError(f"cannot listen for {what} {host}:{port}: {exc.strerror or exc}") from exc


def media_endpoint(server: VoicebotServer, config: Config) -> MediaStreamEndpoint:
    """/media-stream as configured: authenticated (the default) or, for local
    trials on a loopback listener only, open."""
    from voicebot.telephony.media_stream import MediaStreamEndpoint, StreamAuth

    settings = config.media_stream
    try:
        settings.check_listener(config.http.listen_host)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    auth = StreamAuth.from_config(settings) if settings.authentication else None
    if settings.authentication and auth is None:
        log.warning(
            "event=media_streams_disabled reason=%s",
            "set media_stream.twilio_auth_token (or $VOICEBOT_TWILIO_AUTH_TOKEN) and "
            "media_stream.public_url; or media_stream.authentication=false for local trials",
        )
    return MediaStreamEndpoint(
        server.on_call,
        auth=auth,
        require_auth=settings.authentication,
        max_streams=settings.max_streams,
        burst_s=settings.burst_s,
    )


def channel_dialer(server: VoicebotServer, services: Services, config: Config) -> Dialer:
    """Rings agents by moving the caller's own call: SIP REFER/bridge, the carrier
    webhook for media streams, the agent desk for everything else."""
    from voicebot.handoff import DeskDialer
    from voicebot.handoff.dialer import ChannelDialer
    from voicebot.telephony.media_stream.webhook import TransferWebhook

    assert services.queue is not None

    def lookup(call_id: str) -> CallChannel | None:
        session = server.sessions.get(call_id)
        return session.channel if session is not None else None

    return ChannelDialer(
        lookup,
        fallback=DeskDialer(services.queue.board),
        media_stream=TransferWebhook(config.media_stream_transfer),
    )


class StopSignals:
    """SIGTERM/SIGINT: the first starts the drain, a second one hurries it;
    SIGHUP calls ``on_reload`` (until the drain starts)."""

    def __init__(self, on_reload: Callable[[], None] | None = None) -> None:
        self.first = asyncio.Event()
        self.second = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._reload = on_reload
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError):
                self._loop.add_signal_handler(sig, self._on_signal)
        if on_reload is not None:
            self._loop.add_signal_handler(signal.SIGHUP, on_reload)

    def _on_signal(self) -> None:
        log.info("event=stop_signal")
        if self.first.is_set():
            self.second.set()
            return
        self.first.set()
        if self._reload is not None:
            self._loop.remove_signal_handler(signal.SIGHUP)


def watch(services: Services) -> CallMetrics:
    """Metrics observe the store, the queue and the transcriber from outside."""
    from voicebot.ops.metrics import CallMetrics, ObservedStore

    metrics = CallMetrics()
    if services.store is not None:
        services.store = ObservedStore(services.store, metrics)
    if services.queue is not None:
        services.queue.subscribe(metrics.on_queue_event)  # type: ignore[attr-defined]
    metrics.watch_stt_queue(lambda: services.transcriber.queued)
    return metrics


def write_pid_file() -> Path:
    """``voicebot reload`` finds this process here."""
    path = serve_pid_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{os.getpid()}\n")
    return path


def remove_pid_file(path: Path) -> None:
    """Only our own: another serve may have started since and written its PID."""
    with contextlib.suppress(OSError):
        if path.read_text().split() == [str(os.getpid())]:
            path.unlink()


class Reloader:
    """SIGHUP: the newest trained model (and intents.yml) for new calls; calls in
    progress finish on the Rasa they started with."""

    def __init__(self, server: VoicebotServer, config: Config) -> None:
        self.server = server
        self.config = config
        self._task: asyncio.Task[None] | None = None

    def request(self) -> None:
        if self._task is not None and not self._task.done():
            log.warning('event=reload_ignored why="a reload is already running"')
            return
        self._task = asyncio.create_task(self._reload(), name="dialogue-reload")

    async def _reload(self) -> None:
        from voicebot.dialogue.intents import IntentCatalogError, load_intents
        from voicebot.dialogue.paths import RasaSetupError
        from voicebot.dialogue.rasa_client import DialogueError

        services = self.server.services
        host = services.dialogue_host
        if host is None:
            log.warning('event=reload_ignored why="no reloadable dialogue"')
            return
        log.info("event=reload_started")
        try:
            intents = load_intents(self.config.dialogue.project_path())
            done = await host.reload(in_use=self._in_use)
        except (DialogueError, RasaSetupError, IntentCatalogError) as exc:
            log.error(format_event("reload_failed", error=str(exc).splitlines()[0]))
            return
        assert host.client is not None
        services.dialogue = host.client
        self.config.intents = intents
        log.info(format_event("reload_done", result=done))

    def _in_use(self, client: object) -> bool:
        return any(s.dialogue_client is client for s in self.server.sessions.values())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
