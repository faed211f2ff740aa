"""``voicebot serve``: the SIP listener and the HTTP side (media streams) in one process.

Every transport hands its calls to :meth:`VoicebotServer.on_call`, which runs
one :class:`CallSession` per call and keeps track of them, so SIGTERM can
give each caller a goodbye and a proper hang-up before the process exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web

from voicebot.config import Config, ConfigError
from voicebot.core.logs import format_event
from voicebot.session.call_session import CallSession
from voicebot.session.services import Services
from voicebot.storage import retention
from voicebot.telephony.channel import CallChannel

if TYPE_CHECKING:
    from voicebot.handoff import Dialer
    from voicebot.telephony.media_stream import MediaStreamEndpoint

log = logging.getLogger("voicebot.server")

SHUTDOWN_MESSAGE = (
    "I'm sorry, this service is restarting and I have to end the call now. "
    "Please call back in a minute. Goodbye."
)


@dataclass(frozen=True)
class Listen:
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> Listen:
        host, sep, port = text.rpartition(":")
        if not sep or not port.isdigit():
            raise ValueError(f"expected HOST:PORT, got {text!r}")
        return cls(host or "127.0.0.1", int(port))


class VoicebotServer:
    """Owns the running calls of one voicebot process."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.sessions: dict[str, CallSession] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def on_call(self, channel: CallChannel) -> None:
        """Run one call to its end (every transport calls this).

        A call ID already live is refused: the call ID names the Rasa conversation
        and the record, so a second call under it would join the first caller's
        dialogue (their PIN-verified state included)."""
        if channel.call_id in self.sessions:
            log.warning(format_event("call_id_in_use", call_id=channel.call_id))
            await channel.hangup()
            return
        session = CallSession(channel, self.services)
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

    async def drain(self, timeout_s: float = 15.0) -> None:
        """Say goodbye on every call in progress and wait for them to end."""
        for session in list(self.sessions.values()):
            session.request_shutdown(SHUTDOWN_MESSAGE)
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=timeout_s)
            for task in pending:
                task.cancel()


def http_app(server: VoicebotServer, media: MediaStreamEndpoint) -> web.Application:
    """The HTTP side: carrier media streams, the agent desk, and /health."""
    from voicebot.agent_desk import mount_desk

    app = web.Application()
    app.add_routes(media.routes("/media-stream"))
    if media.auth is not None:
        app.add_routes(media.auth.routes("/voice"))
    services = server.services
    if services.queue is not None and services.store is not None:
        secure = services.config.http.tls_proxy
        mount_desk(app, services.store, services.queue, secure_cookie=secure)  # type: ignore[arg-type]

    async def health(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "calls": len(server.sessions)})

    app.router.add_get("/health", health)
    return app


async def serve(services: Services, config: Config, announce: Callable[[str], None]) -> None:
    """Run SIP and HTTP until SIGTERM/SIGINT, then end every call politely."""
    from voicebot.telephony.sip import SipServer

    server = VoicebotServer(services)
    if services.queue is not None:
        services.queue.dialer = channel_dialer(server, services, config)
    media = media_endpoint(server, config)
    sip = SipServer(config.sip, server.on_call)
    await sip.start()
    runner = web.AppRunner(http_app(server, media), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, config.http.listen_host, config.http.listen_port)
    await site.start()
    http_port = runner.addresses[0][1] if runner.addresses else config.http.listen_port
    announce(
        f"voicebot ready: SIP udp {config.sip.listen_host}:{sip.port}, "
        f"HTTP http://{config.http.listen_host}:{http_port} (/media-stream, /desk/)"
    )
    days = config.storage.retention_days if services.store is not None else None
    housekeeping = asyncio.create_task(retention.purge_daily(services.store, days))  # type: ignore[arg-type]
    try:
        await wait_for_stop_signal()
    finally:
        housekeeping.cancel()
        sip.stop_accepting()
        await server.drain()
        await sip.close(grace_s=2.0)
        await media.close_all()
        await runner.cleanup()


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


async def wait_for_stop_signal() -> None:
    """Resolve on SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("event=stop_signal")
