"""aiohttp WebSocket endpoint for carrier media streams (Twilio ``<Connect><Stream>``).

Each WebSocket becomes one :class:`MediaStreamChannel` handed to ``on_call``
— the same coroutine the SIP transport calls — so the endpoint knows nothing
about dialogue.  It is a list of routes, not an app, so ``voicebot serve`` can
mount it beside the agent desk on one HTTP port::

    endpoint = MediaStreamEndpoint(on_call)
    app.add_routes(endpoint.routes("/media-stream"))
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable

from aiohttp import WSMsgType, web

from voicebot.core.logs import CallLogger, format_event
from voicebot.telephony.media_stream.auth import StreamAuth
from voicebot.telephony.media_stream.channel import (
    CALLER_ID_PARAMETERS,
    DEFAULT_LEAD_S,
    MediaStreamChannel,
    MediaStreamOutput,
    caller_id_from,
)
from voicebot.telephony.media_stream.limits import RealtimeBudget, safe_call_id
from voicebot.telephony.media_stream.serializer import (
    Connected,
    Dtmf,
    Mark,
    Media,
    MediaStreamEvent,
    MediaStreamProtocolError,
    Start,
    Stop,
    TwilioSerializer,
    UnknownEventError,
)

log = logging.getLogger("voicebot.telephony.media_stream")

OnCall = Callable[[MediaStreamChannel], Awaitable[None]]
Authorize = Callable[[web.Request], bool]

# A socket that never says ``start`` is not a call; don't hold it open forever.
START_TIMEOUT_S = 10.0
# Log this many bad messages per call in full, then only count them (no log floods).
BAD_MESSAGES_LOGGED = 5
MAX_MESSAGE_BYTES = 1 << 20


class _Stream:
    """Per-connection bookkeeping for logs."""

    def __init__(self, logger: CallLogger, burst_s: float) -> None:
        self.log = logger
        self.bad_messages = 0
        self.media_messages = 0
        self.budget = RealtimeBudget(burst_s)

    def bad(self, exc: MediaStreamProtocolError) -> None:
        self.bad_messages += 1
        level = logging.DEBUG if isinstance(exc, UnknownEventError) else logging.WARNING
        if self.bad_messages > BAD_MESSAGES_LOGGED:
            level = logging.DEBUG
        self.log.event("media_stream_bad_message", level, error=str(exc)[:200])


class MediaStreamEndpoint:
    """Serves Twilio Media Streams WebSockets, one ``on_call`` task per call."""

    def __init__(
        self,
        on_call: OnCall,
        *,
        lead_s: float = DEFAULT_LEAD_S,
        caller_id_parameters: tuple[str, ...] = CALLER_ID_PARAMETERS,
        authorize: Authorize | None = None,
        start_timeout_s: float = START_TIMEOUT_S,
        auth: StreamAuth | None = None,
        require_auth: bool = False,
        max_streams: int = 16,
        burst_s: float = 2.0,
    ) -> None:
        """``auth`` checks the handshake signature and the call's token;
        ``require_auth`` without ``auth`` refuses every stream (not configured)."""
        self._on_call = on_call
        self._lead_s = lead_s
        self._caller_id_parameters = caller_id_parameters
        self._authorize = authorize
        self._start_timeout_s = start_timeout_s
        self.auth = auth
        self._require_auth = require_auth
        self._max_streams = max_streams
        self._burst_s = burst_s
        self.open_streams = 0
        self.active: dict[str, MediaStreamChannel] = {}  # call_id → channel, for shutdown

    def routes(self, path: str = "/media-stream") -> list[web.RouteDef]:
        return [web.get(path, self.handle)]

    async def close_all(self) -> None:
        """Hang up every stream still open: the last step of a clean shutdown,
        after the sessions have said goodbye (aiohttp would otherwise wait on
        the open sockets, then cancel them)."""
        channels = list(self.active.values())
        await asyncio.gather(*(c.hangup() for c in channels), return_exceptions=True)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """One carrier WebSocket, from ``connected`` to ``stop`` or close."""
        self._check_handshake(request)
        self.open_streams += 1
        try:
            ws = web.WebSocketResponse(max_msg_size=MAX_MESSAGE_BYTES)
            await ws.prepare(request)
            serializer = TwilioSerializer()
            start = await self._wait_for_start(ws, serializer, request.remote)
            if start is not None:
                admitted, caller = self._admit(start, request.remote)
                if admitted:
                    await self._serve(ws, serializer, start, caller)
            await ws.close()
            return ws
        finally:
            self.open_streams -= 1

    def _check_handshake(self, request: web.Request) -> None:
        """Refuse before the upgrade: unauthenticated, or too many streams open."""
        peer = request.remote
        if self._require_auth and self.auth is None:
            log.warning(format_event("media_stream_refused", peer=peer, reason="not configured"))
            raise web.HTTPServiceUnavailable(text="media streams are not configured")
        authorised = self.auth.handshake_ok(request) if self.auth is not None else True
        if not authorised or (self._authorize is not None and not self._authorize(request)):
            log.warning(format_event("media_stream_refused", peer=peer, reason="signature"))
            raise web.HTTPForbidden(text="media stream not authorised")
        if self.open_streams >= self._max_streams:
            log.warning(format_event("media_stream_refused", peer=peer, reason="capacity"))
            raise web.HTTPServiceUnavailable(text="too many media streams")

    def _admit(self, start: Start, peer: str | None) -> tuple[bool, str | None]:
        """(admitted, caller ID to trust): with auth, only a live token minted
        for this CallSid admits the stream, and the caller ID is the webhook's."""
        if self.auth is None:
            return True, caller_id_from(start, self._caller_id_parameters)
        grant = self.auth.redeem(start.custom_parameters, start.call_sid)
        if grant is None:
            log.warning(format_event("media_stream_refused", peer=peer, reason="token"))
            return False, None
        return True, grant.caller_id

    # ------------------------------------------------------------------ phases

    async def _wait_for_start(
        self, ws: web.WebSocketResponse, serializer: TwilioSerializer, peer: str | None
    ) -> Start | None:
        """Skip ``connected`` (and anything early) until ``start`` names the call."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._start_timeout_s
        while (remaining := deadline - loop.time()) > 0:
            try:
                msg = await ws.receive(timeout=remaining)
            except TimeoutError:
                break
            if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                return None
            if msg.type != WSMsgType.TEXT:
                continue
            with contextlib.suppress(MediaStreamProtocolError):
                event = serializer.parse(msg.data)
                if isinstance(event, Start):
                    return event if self._usable(event) else None
        log.warning(format_event("media_stream_no_start", peer=peer))
        return None

    def _usable(self, start: Start) -> bool:
        if start.media_format.is_telephone_ulaw:
            return True
        log.error(
            format_event(
                "media_stream_bad_format",
                call_id=start.call_sid,
                format=start.media_format,
                expected="audio/x-mulaw 8000 Hz mono",
            )
        )
        return False

    async def _serve(
        self,
        ws: web.WebSocketResponse,
        serializer: TwilioSerializer,
        start: Start,
        caller_id: str | None,
    ) -> None:
        """Run the call: the receive pump here, ``on_call`` and the sender as tasks."""
        # Our own call ID: a client-chosen callSid must never name another call's
        # record or Rasa conversation.
        call_id = safe_call_id("ms", start.call_sid, secrets.token_hex(4))
        stream = _Stream(CallLogger(call_id, log), self._burst_s)
        output = MediaStreamOutput(ws.send_str, serializer, lead_s=self._lead_s, logger=stream.log)
        channel = MediaStreamChannel(start, output, ws.close, caller_id=caller_id, call_id=call_id)
        stream.log.event(
            "media_stream_started",
            call_sid=start.call_sid,
            stream_sid=start.stream_sid,
            caller=caller_id,
            parameters=",".join(sorted(start.custom_parameters)) or None,
        )
        self.active[channel.call_id] = channel
        name = channel.call_id
        sender = asyncio.create_task(output.run(), name=f"media-send-{name}")
        call = asyncio.create_task(self._run_call(channel, stream), name=f"media-call-{name}")
        try:
            channel.end(await self._pump(ws, serializer, channel, stream))
            await call  # let the session say its last words to the log and save its record
        finally:
            await self._cleanup(channel, sender, call, stream)

    async def _pump(
        self,
        ws: web.WebSocketResponse,
        serializer: TwilioSerializer,
        channel: MediaStreamChannel,
        stream: _Stream,
    ) -> str:
        """Carrier → channel until ``stop`` or the socket closes; returns why it ended."""
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                try:
                    event = serializer.parse(msg.data)
                except MediaStreamProtocolError as exc:
                    stream.bad(exc)
                    continue
                if self._dispatch(event, channel, stream):
                    return "carrier sent stop"
                if stream.budget.abusive:
                    stream.log.event("media_stream_too_fast", logging.WARNING)
                    return "audio faster than real time"
            elif msg.type == WSMsgType.ERROR:
                return f"socket error: {ws.exception()!r}"
            else:
                stream.bad(MediaStreamProtocolError(f"unexpected {msg.type.name} message"))
        return "bot hung up" if channel.hung_up_by_bot else "socket closed"

    @staticmethod
    def _dispatch(event: MediaStreamEvent, channel: MediaStreamChannel, stream: _Stream) -> bool:
        """Route one event; True when the stream is over."""
        match event:
            case Media(track=track) if track not in ("inbound", ""):
                pass  # <Start><Stream tracks="both_tracks"> echoes our own audio: not the caller
            case Media(payload=payload):
                stream.media_messages += 1
                if stream.budget.admit(len(payload)):
                    channel.feed_audio(payload)
            case Dtmf(digit=digit):
                stream.log.event("dtmf_received", logging.DEBUG)  # digits may be a PIN: not logged
                channel.feed_dtmf(digit)
            case Mark(name=name):
                channel.output.on_mark(name)
            case Stop():
                return True
            case Start() | Connected():
                stream.log.event("media_stream_repeated_setup", logging.DEBUG)
        return False

    async def _run_call(self, channel: MediaStreamChannel, stream: _Stream) -> None:
        try:
            await self._on_call(channel)
        except Exception as exc:  # one broken call must not take the server down
            stream.log.error("on_call_failed", error=repr(exc))
            log.debug("on_call traceback", exc_info=True)
        finally:
            with contextlib.suppress(Exception):
                await channel.hangup()

    async def _cleanup(
        self,
        channel: MediaStreamChannel,
        sender: asyncio.Task[None],
        call: asyncio.Task[None],
        stream: _Stream,
    ) -> None:
        channel.output.close()
        for task in (sender, call):
            if not task.done():
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.active.pop(channel.call_id, None)
        stream.log.event(
            "media_stream_ended",
            reason=channel.ended_reason,
            media_in=stream.media_messages,
            messages_out=channel.output.messages_sent,
            bad_messages=stream.bad_messages or None,
            dropped_audio_s=round(stream.budget.dropped_s, 2) or None,
        )


def media_stream_routes(
    on_call: OnCall,
    path: str = "/media-stream",
    *,
    lead_s: float = DEFAULT_LEAD_S,
    authorize: Authorize | None = None,
) -> list[web.RouteDef]:
    """Routes to mount beside the agent desk: ``app.add_routes(media_stream_routes(on_call))``.

    Build a :class:`MediaStreamEndpoint` yourself to reach its ``active``
    calls (e.g. to say goodbye to each on SIGTERM).
    """
    return MediaStreamEndpoint(on_call, lead_s=lead_s, authorize=authorize).routes(path)


def media_stream_app(on_call: OnCall, path: str = "/media-stream") -> web.Application:
    """A stand-alone app serving only the media stream (tests, a separate port)."""
    app = web.Application()
    app.add_routes(media_stream_routes(on_call, path))
    return app
