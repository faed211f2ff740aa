"""Who may open /media-stream, and what a stream may cost: a real aiohttp server
on 127.0.0.1, real WebSocket clients, Twilio's signatures computed as Twilio does."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re

import aiohttp
import pytest
from aiohttp import web
from media_stream_replay import recorded_session, serve

from voicebot.config import MediaStreamConfig
from voicebot.core.logs import format_event
from voicebot.telephony.media_stream import MediaStreamChannel, MediaStreamEndpoint, StreamAuth
from voicebot.telephony.media_stream.auth import (
    TOKEN_PARAMETER,
    request_signature,
    twilio_signature,
)

AUTH_TOKEN = "12345678901234567890123456789012"
SESSION = recorded_session()
ENDPOINT = web.AppKey("endpoint", MediaStreamEndpoint)
START = json.loads(SESSION[1])


class Calls:
    """The stand-in ``on_call``: which channels got through."""

    def __init__(self) -> None:
        self.channels: list[MediaStreamChannel] = []
        self.audio_frames = 0

    async def __call__(self, channel: MediaStreamChannel) -> None:
        self.channels.append(channel)
        async for _ in channel.frames():
            self.audio_frames += 1


def app_with(calls: Calls, auth: StreamAuth | None, **options: object) -> web.Application:
    endpoint = MediaStreamEndpoint(calls, auth=auth, **options)  # type: ignore[arg-type]
    app = web.Application()
    app.add_routes(endpoint.routes())
    if auth is not None:
        app.add_routes(auth.routes())
    app[ENDPOINT] = endpoint
    return app


def start_message(call_sid: str, **parameters: str) -> str:
    msg = json.loads(json.dumps(START))
    msg["start"]["callSid"] = call_sid
    msg["start"]["customParameters"] = parameters
    return json.dumps(msg)


def media_message(seconds: float) -> str:
    payload = base64.b64encode(b"\xff" * round(seconds * 8000)).decode()  # μ-law silence
    return json.dumps({"event": "media", "streamSid": "MZ1", "media": {"payload": payload}})


async def voice_webhook(
    http: aiohttp.ClientSession, base: str, call_sid: str, caller: str, *, sign: bool = True
) -> aiohttp.ClientResponse:
    form = {"CallSid": call_sid, "From": caller, "To": "+15559999"}
    headers = {"X-Twilio-Signature": request_signature(AUTH_TOKEN, base + "/voice", form)}
    return await http.post(base + "/voice", data=form, headers=headers if sign else {})


def token_from(twiml: str) -> str:
    match = re.search(rf'name="{TOKEN_PARAMETER}" value="([^"]+)"', twiml)
    assert match, twiml
    return match.group(1)


async def stream(
    http: aiohttp.ClientSession,
    base: str,
    messages: list[str],
    *,
    signature: str | None = None,
) -> int | None:
    """Open a stream (signed as Twilio signs it), send, and wait for the server to close."""
    url = base.replace("http://", "ws://") + "/media-stream"
    sig = twilio_signature(AUTH_TOKEN, url) if signature is None else signature
    async with http.ws_connect(url, headers={"X-Twilio-Signature": sig}) as ws:
        for text in messages:
            if ws.closed:
                break
            await ws.send_str(text)
        if not ws.closed:
            await ws.send_str(json.dumps({"event": "stop", "stop": {"callSid": "x"}}))
        async for _ in ws:
            pass
        return ws.close_code


@pytest.fixture
async def signed_server():
    calls = Calls()
    # The public URL is the server's own, known once it listens.
    auth = StreamAuth(AUTH_TOKEN, "http://placeholder")
    app = app_with(calls, auth)
    async with serve(app) as server:
        base = str(server.make_url("")).rstrip("/")
        auth.public_url = base
        async with aiohttp.ClientSession() as http:
            yield calls, base, http, app[ENDPOINT]


async def test_a_signed_webhook_token_admits_one_stream_with_the_webhooks_caller(
    signed_server,
) -> None:
    calls, base, http, _ = signed_server
    response = await voice_webhook(http, base, "CA1", "+15550100")
    assert response.status == 200 and response.content_type == "text/xml"
    twiml = await response.text()
    assert "<Connect><Stream url=" in twiml and "/media-stream" in twiml
    token = token_from(twiml)

    # The stream claims another caller ID: the signed webhook's is the one believed.
    start = start_message("CA1", **{TOKEN_PARAMETER: token, "caller": "+15550199"})
    await stream(http, base, [SESSION[0], start, media_message(0.1)])
    await asyncio.sleep(0.05)
    assert len(calls.channels) == 1
    channel = calls.channels[0]
    assert (channel.call_sid, channel.caller_id) == ("CA1", "+15550100")

    # The same token again (a replayed start) is refused: it was spent.
    await stream(http, base, [SESSION[0], start])
    await asyncio.sleep(0.05)
    assert len(calls.channels) == 1


async def test_tokens_are_bound_to_their_call(signed_server) -> None:
    calls, base, http, _ = signed_server
    token = token_from(await (await voice_webhook(http, base, "CA1", "+15550100")).text())
    await stream(http, base, [start_message("CA2", **{TOKEN_PARAMETER: token})])
    await stream(http, base, [start_message("CA3", **{TOKEN_PARAMETER: "made-up"})])
    await stream(http, base, [start_message("CA4")])
    await asyncio.sleep(0.05)
    assert calls.channels == []


async def test_unsigned_requests_are_refused(signed_server) -> None:
    calls, base, http, _ = signed_server
    assert (await voice_webhook(http, base, "CA1", "+1", sign=False)).status == 403
    url = base.replace("http://", "ws://") + "/media-stream"
    for headers in ({}, {"X-Twilio-Signature": "bm90IGl0"}, {"X-Twilio-Signature": "é∂ƒ"}):
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(url, headers=headers)
        assert refused.value.status == 403  # a non-ASCII header is a refusal, not a 500
    assert calls.channels == []


async def test_authentication_required_but_not_configured_refuses_every_stream() -> None:
    calls = Calls()
    async with (
        serve(app_with(calls, None, require_auth=True)) as server,
        aiohttp.ClientSession() as http,
    ):
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(server.make_url("/media-stream"))
    assert refused.value.status == 503


async def test_concurrent_streams_are_capped() -> None:
    calls = Calls()
    async with serve(app_with(calls, None, max_streams=2)) as server:
        url = server.make_url("/media-stream")
        async with aiohttp.ClientSession() as http:
            first, second = await http.ws_connect(url), await http.ws_connect(url)
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await http.ws_connect(url)
            assert refused.value.status == 503
            await first.close()
            await asyncio.sleep(0.05)
            third = await http.ws_connect(url)  # a slot came free
            await asyncio.gather(second.close(), third.close())


async def test_audio_faster_than_real_time_is_dropped_then_the_stream_closed() -> None:
    calls = Calls()
    async with serve(app_with(calls, None, burst_s=1.0)) as server:
        base = str(server.make_url("")).rstrip("/")
        async with aiohttp.ClientSession() as http:
            # 60 s of audio pushed as fast as the socket takes it.
            flood = [media_message(1.0)] * 60
            await stream(http, base, [start_message("CA9"), *flood])
    assert len(calls.channels) == 1
    assert calls.channels[0].ended_reason == "audio faster than real time"
    # About the 1 s burst (plus the little real time that passed) reached the call.
    assert calls.audio_frames * 0.02 < 3.0


async def test_a_reused_call_sid_gets_its_own_call_id() -> None:
    """Without auth (local trials), two streams naming the same callSid are
    still two calls: neither can reach the other's record or Rasa tracker."""
    calls = Calls()
    async with serve(app_with(calls, None)) as server:
        base = str(server.make_url("")).rstrip("/")
        async with aiohttp.ClientSession() as http:
            await stream(http, base, [start_message("CA1")])
            await stream(http, base, [start_message("CA1")])
    ids = [c.call_id for c in calls.channels]
    assert len(ids) == 2 and len(set(ids)) == 2
    assert all(i.startswith("ms-CA1-") for i in ids)


async def test_a_call_sid_with_a_newline_cannot_forge_a_log_line(caplog) -> None:
    calls = Calls()
    forged = "CA1\n2026-01-01 INFO voicebot.call event=pin_verified call_id=CAvictim"
    caplog.set_level(logging.INFO, logger="voicebot")
    async with serve(app_with(calls, None)) as server:
        base = str(server.make_url("")).rstrip("/")
        async with aiohttp.ClientSession() as http:
            await stream(http, base, [start_message(forged)])
    lines = [r.getMessage() for r in caplog.records if "media_stream_started" in r.getMessage()]
    assert lines and all("\n" not in line for line in lines)
    assert "\\n2026-01-01" in lines[0]
    assert format_event("e", v="a\u2028b\x1b") == 'event=e v="a\\u2028b\\x1b"'


def test_authentication_off_only_on_a_loopback_listener() -> None:
    trial = MediaStreamConfig(authentication=False)
    for host in ("127.0.0.1", "::1", "[::1]", "localhost"):
        trial.check_listener(host)
    for host in ("0.0.0.0", "192.0.2.1", "bot.example.com"):
        with pytest.raises(ValueError, match="loopback"):
            trial.check_listener(host)
    MediaStreamConfig().check_listener("0.0.0.0")  # authenticated: anywhere
