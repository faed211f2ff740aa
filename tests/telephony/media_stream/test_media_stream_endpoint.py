"""The media-stream endpoint against a replayed Twilio session, over a real
aiohttp server on 127.0.0.1 (no mocks: real WebSockets, real pacing)."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp
import numpy as np
import pytest
from aiohttp import web
from media_stream_replay import FakeCarrier, connect, recorded_session, serve

from voicebot.audio.g711 import ulaw_decode, ulaw_encode
from voicebot.core.frames import FRAME_SAMPLES, AudioFrame, DtmfFrame, HangupFrame, InputFrame
from voicebot.telephony.channel import CallChannel
from voicebot.telephony.media_stream import (
    MediaStreamChannel,
    MediaStreamEndpoint,
    media_stream_app,
    media_stream_routes,
    twilio_signature,
    twilio_signature_authorizer,
)
from voicebot.telephony.media_stream import channel as channel_module

SESSION = recorded_session()
START = json.loads(SESSION[1])["start"]
STREAM_SID, CALL_SID = START["streamSid"], START["callSid"]
LEAD_S = 0.2


def recorded_ulaw(lines: list[str] = SESSION) -> bytes:
    media = [json.loads(t) for t in lines if '"event":"media"' in t]
    return b"".join(base64.b64decode(m["media"]["payload"]) for m in media)


def tone(seconds: float, hz: float = 440.0) -> np.ndarray:
    t = np.arange(round(seconds * 8000)) / 8000
    return (8000 * np.sin(2 * np.pi * hz * t)).astype(np.int16)


@dataclass
class Seen:
    """What the stand-in call handler observed."""

    channel: MediaStreamChannel | None = None
    frames: list[InputFrame] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    notes: dict[str, float] = field(default_factory=dict)

    @property
    def audio(self) -> list[np.ndarray]:
        return [f.pcm for f in self.frames if isinstance(f, AudioFrame)]

    @property
    def digits(self) -> str:
        return "".join(f.digit for f in self.frames if isinstance(f, DtmfFrame))


Handler = Callable[[MediaStreamChannel, Seen], Awaitable[None]]


async def collect(channel: MediaStreamChannel, seen: Seen) -> None:
    async for frame in channel.frames():
        seen.frames.append(frame)


def app_for(seen: Seen, body: Handler = collect, **options: object) -> web.Application:
    async def on_call(channel: MediaStreamChannel) -> None:
        seen.channel = channel
        try:
            await body(channel, seen)
        finally:
            seen.done.set()

    options.setdefault("burst_s", 600.0)  # most replays here run faster than real time
    app = web.Application()
    app.add_routes(MediaStreamEndpoint(on_call, **options).routes())  # type: ignore[arg-type]
    return app


async def finish(seen: Seen, carrier: FakeCarrier) -> None:
    await asyncio.wait_for(seen.done.wait(), 10)
    await asyncio.wait_for(carrier.closed_by_server.wait(), 10)


# ------------------------------------------------------------------ inbound


async def test_replayed_session_reaches_the_handler() -> None:
    seen = Seen()
    async with serve(app_for(seen)) as server, connect(server) as carrier:
        await carrier.replay(SESSION, realtime=False)
        await finish(seen, carrier)

    channel = seen.channel
    assert isinstance(channel, CallChannel)
    assert (channel.call_sid, channel.caller_id, channel.transport) == (
        CALL_SID,
        "+15550100",
        "media-stream",
    )
    assert channel.call_id.startswith(f"ms-{CALL_SID}-")  # ours, not the client's
    assert channel.custom_parameters["campaign"] == "fixture"
    assert all(len(pcm) == FRAME_SAMPLES and pcm.dtype == np.int16 for pcm in seen.audio)
    np.testing.assert_array_equal(np.concatenate(seen.audio), ulaw_decode(recorded_ulaw()))
    assert seen.digits == "4321"
    # Digits arrive where they were keyed: after the media sent before them.
    media_before_digit = sum(
        '"event":"media"' in t
        for t in SESSION[: SESSION.index(next(t for t in SESSION if '"event":"dtmf"' in t))]
    )
    first_digit = next(i for i, f in enumerate(seen.frames) if isinstance(f, DtmfFrame))
    assert first_digit == media_before_digit
    assert seen.frames[-1] == HangupFrame("carrier sent stop")


async def test_payloads_of_any_size_become_20ms_frames() -> None:
    ulaw = recorded_ulaw()[:8000]  # 1 s
    sizes = [100, 60, 400, 1, 159, 7, 320] * 40
    chunks, at = [], 0
    for size in sizes:
        if at >= len(ulaw):
            break
        chunks.append(ulaw[at : at + size])
        at += size
    media = [
        json.dumps(
            {
                "event": "media",
                "streamSid": STREAM_SID,
                "media": {
                    "track": "inbound",
                    "chunk": str(i + 1),
                    "timestamp": "0",
                    "payload": base64.b64encode(c).decode(),
                },
            }
        )
        for i, c in enumerate(chunks)
    ]
    seen = Seen()
    async with serve(app_for(seen)) as server, connect(server) as carrier:
        await carrier.replay([*SESSION[:2], *media, SESSION[-1]], realtime=False)
        await finish(seen, carrier)
    assert [len(p) for p in seen.audio] == [FRAME_SAMPLES] * 50
    np.testing.assert_array_equal(np.concatenate(seen.audio), ulaw_decode(ulaw))


async def test_malformed_and_unknown_messages_are_skipped() -> None:
    outbound_echo = json.dumps(
        {
            "event": "media",
            "streamSid": STREAM_SID,
            "media": {
                "track": "outbound",
                "chunk": "1",
                "timestamp": "0",
                "payload": base64.b64encode(b"\x00" * 160).decode(),
            },
        }
    )
    junk: list[str | bytes] = [
        "not json at all",
        "[]",
        "{}",
        '{"event": "media"}',
        '{"event": "media", "media": {"payload": "***"}}',
        '{"event": "dtmf", "dtmf": {"digit": "x"}}',
        '{"event": "some_future_event", "streamSid": "MZ1"}',
        b"\x00\x01binary",
        outbound_echo,
    ]
    seen = Seen()
    async with serve(app_for(seen)) as server, connect(server) as carrier:
        await carrier.replay(SESSION, realtime=False, inject={1: junk, 2: junk, 120: junk})
        await finish(seen, carrier)
    np.testing.assert_array_equal(np.concatenate(seen.audio), ulaw_decode(recorded_ulaw()))
    assert seen.digits == "4321"
    assert seen.frames[-1] == HangupFrame("carrier sent stop")


async def test_socket_closed_without_stop_is_a_hangup() -> None:
    seen = Seen()
    endpoint_app = app_for(seen)
    async with serve(endpoint_app) as server:
        async with connect(server) as carrier:
            await carrier.replay(SESSION[:50], realtime=False)
        await asyncio.wait_for(seen.done.wait(), 5)
    assert seen.frames[-1] == HangupFrame("socket closed")
    assert len(seen.audio) == 48


# ----------------------------------------------------------------- outbound


async def test_reply_is_paced_media_with_marks_and_drained_waits_for_playout() -> None:
    clip = tone(1.2)

    async def speak_then_listen(channel: MediaStreamChannel, seen: Seen) -> None:
        frames = channel.frames()
        seen.frames.append(await anext(frames))
        started = time.monotonic()
        channel.output.write(clip)
        await channel.output.drained()
        seen.notes["drained_after"] = time.monotonic() - started
        async for frame in frames:
            seen.frames.append(frame)

    seen = Seen()
    async with serve(app_for(seen, speak_then_listen)) as server, connect(server) as carrier:
        await carrier.replay(SESSION, realtime=True)
        await finish(seen, carrier)

    media = carrier.of("media")
    assert media and all(r.msg["streamSid"] == STREAM_SID for r in carrier.received)
    assert all(len(base64.b64decode(r.msg["media"]["payload"])) <= FRAME_SAMPLES for r in media)
    heard = ulaw_decode(carrier.media_bytes())
    np.testing.assert_array_equal(heard, ulaw_decode(ulaw_encode(clip)))
    # Real-time pacing: never more than the lead ahead, spread over the clip.
    assert carrier.max_ahead_s <= LEAD_S + 0.06
    assert media[-1].at - media[0].at >= 1.2 - LEAD_S - 0.1
    # One mark after the audio, echoed once played; drained() waited for it.
    marks = carrier.of("mark")
    assert len(marks) == 1 and marks[0].at >= media[-1].at
    assert carrier.marks_echoed == [marks[0].msg["mark"]["name"]]
    assert 1.2 - 0.05 <= seen.notes["drained_after"] <= 1.2 + 0.5
    assert seen.digits == "4321"


async def test_barge_in_sends_clear_and_stops_the_audio() -> None:
    clip = tone(4.0)

    async def talk_over_caller(channel: MediaStreamChannel, seen: Seen) -> None:
        loud = 0
        async for frame in channel.frames():
            seen.frames.append(frame)
            if len(seen.frames) == 1:
                channel.output.write(clip)
                seen.notes["wrote_at"] = time.monotonic()
            if isinstance(frame, AudioFrame) and "cleared_at" not in seen.notes:
                loud = loud + 1 if np.abs(frame.pcm.astype(np.int32)).mean() > 300 else 0
                if loud == 3:  # 60 ms of caller speech: barge-in
                    channel.output.clear()
                    seen.notes["cleared_at"] = time.monotonic()
                    await channel.output.drained()
                    seen.notes["drained_after"] = time.monotonic() - seen.notes["cleared_at"]

    seen = Seen()
    async with serve(app_for(seen, talk_over_caller)) as server, connect(server) as carrier:
        await carrier.replay(SESSION, realtime=True)
        await finish(seen, carrier)

    clears = carrier.of("clear")
    assert len(clears) == 1 and clears[0].msg["streamSid"] == STREAM_SID
    assert clears[0].at - seen.notes["cleared_at"] < 0.1
    assert not [r for r in carrier.of("media") if r.at > clears[0].at]
    sent_s = len(carrier.media_bytes()) / 8000
    talked_s = seen.notes["cleared_at"] - seen.notes["wrote_at"]
    assert sent_s <= talked_s + LEAD_S + 0.06, "more than the lead was queued at the carrier"
    assert sent_s < 1.0 < 4.0
    assert seen.notes["drained_after"] < 0.05
    assert carrier.of("mark") == []  # the reply's mark was still queued locally: dropped


async def test_drained_gives_up_when_the_carrier_never_echoes_marks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(channel_module, "MARK_GRACE_S", 0.3)

    async def speak(channel: MediaStreamChannel, seen: Seen) -> None:
        started = time.monotonic()
        channel.output.write(tone(0.2))
        await channel.output.drained()
        seen.notes["drained_after"] = time.monotonic() - started

    seen = Seen()
    async with serve(app_for(seen, speak)) as server, connect(server, echo_marks=False) as c:
        await c.replay(SESSION[:2], realtime=False)
        await finish(seen, c)
    assert 0.4 <= seen.notes["drained_after"] < 1.0


# --------------------------------------------------------------- lifecycle


async def test_bot_hangup_closes_the_socket() -> None:
    async def hang_up_at_once(channel: MediaStreamChannel, seen: Seen) -> None:
        frames = channel.frames()
        seen.frames.append(await anext(frames))
        await channel.hangup()
        seen.frames.extend([f async for f in frames])

    seen = Seen()
    async with serve(app_for(seen, hang_up_at_once)) as server, connect(server) as carrier:
        await carrier.replay(SESSION, realtime=False)
        await finish(seen, carrier)
    assert seen.channel is not None and seen.channel.hung_up_by_bot
    assert not any(isinstance(f, HangupFrame) for f in seen.frames)


async def test_a_failing_handler_does_not_take_the_server_down() -> None:
    calls = 0

    async def on_call(channel: MediaStreamChannel) -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("session bug")

    app = web.Application()
    app.add_routes(media_stream_routes(on_call))
    async with serve(app) as server:
        for _ in range(2):
            async with connect(server) as carrier:
                await carrier.replay(SESSION[:10], realtime=False)
                await asyncio.wait_for(carrier.closed_by_server.wait(), 5)
    assert calls == 2


async def test_socket_without_start_or_with_another_codec_gets_no_call() -> None:
    calls = 0

    async def on_call(channel: MediaStreamChannel) -> None:
        nonlocal calls
        calls += 1

    app = web.Application()
    app.add_routes(MediaStreamEndpoint(on_call, start_timeout_s=0.3).routes())
    wideband = json.loads(SESSION[1])
    wideband["start"]["mediaFormat"] = {"encoding": "audio/l16", "sampleRate": 16000, "channels": 1}
    async with serve(app) as server:
        async with connect(server) as carrier:
            await carrier.ws.send_str(SESSION[0])
            await asyncio.wait_for(carrier.closed_by_server.wait(), 5)
        async with connect(server) as carrier:
            await carrier.replay([SESSION[0], json.dumps(wideband), *SESSION[2:5]], realtime=False)
            await asyncio.wait_for(carrier.closed_by_server.wait(), 5)
    assert calls == 0


async def test_unauthorised_connection_is_refused() -> None:
    async def on_call(channel: MediaStreamChannel) -> None:
        raise AssertionError("must not be called")

    app = web.Application()
    app.add_routes(media_stream_routes(on_call, authorize=lambda request: False))
    async with serve(app) as server, aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(server.make_url("/media-stream"))
    assert refused.value.status == 403


async def test_standalone_app_serves_the_default_path() -> None:
    seen = Seen()

    async def on_call(channel: MediaStreamChannel) -> None:
        await collect(channel, seen)
        seen.done.set()

    async with serve(media_stream_app(on_call)) as server, connect(server) as carrier:
        await carrier.replay(SESSION, realtime=False)
        await finish(seen, carrier)
    assert seen.digits == "4321"


async def test_twilio_signature_is_checked_on_the_handshake() -> None:
    public_url = "wss://bot.example.com/media-stream"
    seen = Seen()
    app = app_for(seen, authorize=twilio_signature_authorizer("secret-token", public_url))
    good = {"X-Twilio-Signature": twilio_signature("secret-token", public_url)}
    forged = {"X-Twilio-Signature": twilio_signature("guessed-token", public_url)}
    async with serve(app) as server, aiohttp.ClientSession() as http:
        for headers in (forged, {}):
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await http.ws_connect(server.make_url("/media-stream"), headers=headers)
            assert refused.value.status == 403
        async with http.ws_connect(server.make_url("/media-stream"), headers=good) as ws:
            for text in SESSION:
                await ws.send_str(text)
            await asyncio.wait_for(seen.done.wait(), 5)
    assert seen.digits == "4321"


async def test_close_all_hangs_up_open_streams() -> None:
    seen = Seen()

    async def on_call(channel: MediaStreamChannel) -> None:
        seen.channel = channel
        await collect(channel, seen)
        seen.done.set()

    endpoint = MediaStreamEndpoint(on_call)
    app = web.Application()
    app.add_routes(endpoint.routes())
    async with serve(app) as server, connect(server) as carrier:
        await carrier.replay(SESSION[:20], realtime=False)
        while not endpoint.active:
            await asyncio.sleep(0.01)
        await endpoint.close_all()
        await finish(seen, carrier)
        await asyncio.sleep(0.05)
        assert endpoint.active == {}
    assert seen.channel is not None and seen.channel.hung_up_by_bot
