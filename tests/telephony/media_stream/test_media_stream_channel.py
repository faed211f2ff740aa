"""Frame re-cutting, outbound pacing and the channel's ending rules (no sockets)."""

from __future__ import annotations

import asyncio
import base64
import json
import time

import numpy as np
import pytest

from voicebot.audio.g711 import ulaw_decode, ulaw_encode
from voicebot.core.frames import FRAME_SAMPLES, AudioFrame, DtmfFrame, HangupFrame
from voicebot.telephony.channel import MediaOutput
from voicebot.telephony.media_stream import (
    MediaStreamChannel,
    MediaStreamOutput,
    Start,
    TwilioSerializer,
    UlawFrameAssembler,
    caller_id_from,
)


def test_assembler_splits_and_merges_payloads() -> None:
    pcm = (np.arange(1000) * 37 % 20000 - 10000).astype(np.int16)
    ulaw = ulaw_encode(pcm)
    assembler = UlawFrameAssembler()
    frames = assembler.push(ulaw[:100]) + assembler.push(ulaw[100:500]) + assembler.push(ulaw[500:])
    assert [len(f) for f in frames] == [FRAME_SAMPLES] * 6
    tail = assembler.flush()
    assert len(tail) == 1 and not tail[0][40:].any()
    np.testing.assert_array_equal(np.concatenate(frames + tail)[:1000], ulaw_decode(ulaw))
    assert assembler.flush() == []


def test_caller_id_prefers_the_caller_parameter() -> None:
    start = Start("MZ1", "CA1", custom_parameters={"From": "+1999", "caller": " +15550100 "})
    assert caller_id_from(start) == "+15550100"
    assert caller_id_from(Start("MZ1", "CA1", custom_parameters={"From": "+1999"})) == "+1999"
    assert caller_id_from(Start("MZ1", "CA1")) is None


class Wire:
    """Collects what the output sends, with timestamps."""

    def __init__(self) -> None:
        self.sent: list[tuple[float, dict]] = []

    async def send(self, text: str) -> None:
        self.sent.append((time.monotonic(), json.loads(text)))

    def events(self) -> list[str]:
        return [m["event"] for _, m in self.sent]


async def test_output_paces_media_and_marks_each_write() -> None:
    wire = Wire()
    out = MediaStreamOutput(wire.send, TwilioSerializer("MZ1"), lead_s=0.1)
    assert isinstance(out, MediaOutput)
    sender = asyncio.create_task(out.run())
    started = time.monotonic()
    out.write(np.zeros(4000, np.int16))  # 0.5 s
    out.write(np.zeros(800, np.int16))  # 0.1 s
    await asyncio.sleep(0.05)
    assert out.queued_s > 0.3  # not flooded to the carrier
    while "mark" not in wire.events()[-1:] or wire.events().count("mark") < 2:
        await asyncio.sleep(0.01)
    elapsed = time.monotonic() - started
    assert 0.6 - 0.1 - 0.05 <= elapsed <= 0.6 + 0.15
    assert wire.events() == ["media"] * 25 + ["mark"] + ["media"] * 5 + ["mark"]
    marks = [m["mark"]["name"] for _, m in wire.sent if m["event"] == "mark"]
    assert len(set(marks)) == 2
    # drained() waits for the carrier to echo the last mark.
    waiter = asyncio.create_task(out.drained())
    await asyncio.sleep(0.05)
    assert not waiter.done()
    out.on_mark(marks[0])
    await asyncio.sleep(0.01)
    assert not waiter.done()
    out.on_mark(marks[1])
    await asyncio.wait_for(waiter, 0.5)
    out.close()
    await asyncio.wait_for(sender, 0.5)


async def test_clear_drops_the_queue_and_tells_the_carrier() -> None:
    wire = Wire()
    out = MediaStreamOutput(wire.send, TwilioSerializer("MZ1"), lead_s=0.1)
    sender = asyncio.create_task(out.run())
    out.write(np.zeros(8000, np.int16))  # 1 s
    await asyncio.sleep(0.15)
    out.clear()
    await asyncio.wait_for(out.drained(), 0.05)  # nothing left to play
    await asyncio.sleep(0.1)
    events = wire.events()
    assert events[-1] == "clear" and "mark" not in events
    assert events.count("media") <= 15  # ~lead + 150 ms of 20 ms messages, not the whole second
    out.write(np.zeros(160, np.int16))  # the next reply after barge-in still plays
    await asyncio.sleep(0.05)
    assert wire.events()[-2:] == ["media", "mark"]
    out.close()
    await asyncio.wait_for(sender, 0.5)


async def test_close_releases_waiters_and_ignores_later_writes() -> None:
    wire = Wire()
    out = MediaStreamOutput(wire.send, TwilioSerializer("MZ1"))
    out.write(np.zeros(1600, np.int16))
    waiter = asyncio.create_task(out.drained())
    await asyncio.sleep(0.01)
    out.close()
    await asyncio.wait_for(waiter, 0.1)
    out.write(np.zeros(160, np.int16))
    out.write(np.zeros(0, np.int16))
    assert out.queued_s == 0
    await asyncio.wait_for(out.run(), 0.1)  # returns at once when closed


async def test_send_failure_ends_the_sender_quietly() -> None:
    async def broken(text: str) -> None:
        raise ConnectionResetError("socket gone")

    out = MediaStreamOutput(broken, TwilioSerializer("MZ1"))
    out.write(np.zeros(160, np.int16))
    await asyncio.wait_for(out.run(), 0.5)
    await asyncio.wait_for(out.drained(), 0.1)


def _channel(closed: list[bool]) -> MediaStreamChannel:
    async def close() -> None:
        closed.append(True)

    out = MediaStreamOutput(Wire().send, TwilioSerializer("MZ1"))
    return MediaStreamChannel(Start("MZ1", "CA1"), out, close, caller_id="+15550100")


async def test_carrier_end_flushes_audio_then_hangs_up() -> None:
    channel = _channel([])
    channel.feed_audio(ulaw_encode(np.full(200, 1000, np.int16)))
    channel.feed_dtmf("5")
    channel.end("carrier sent stop")
    channel.end("socket closed")  # only the first reason counts
    frames = [f async for f in channel.frames()]
    assert [type(f).__name__ for f in frames] == [
        "AudioFrame",
        "DtmfFrame",
        "AudioFrame",
        "HangupFrame",
    ]
    assert isinstance(frames[2], AudioFrame) and not frames[2].pcm[40:].any()
    assert frames[-1] == HangupFrame("carrier sent stop")


async def test_bot_hangup_closes_and_ends_frames_without_a_caller_hangup() -> None:
    closed: list[bool] = []
    channel = _channel(closed)
    channel.feed_audio(bytes([0xFF]) * 160)
    await channel.hangup()
    frames = [f async for f in channel.frames()]
    assert len(frames) == 1 and isinstance(frames[0], AudioFrame)
    assert closed == [True] and channel.hung_up_by_bot
    assert channel.ended_reason == "bot hung up"


async def test_a_stalled_session_cannot_grow_the_inbox_without_bound() -> None:
    from voicebot.telephony.media_stream.channel import MAX_INBOX_FRAMES

    channel = _channel([])
    second = ulaw_encode(np.full(8000, 1000, np.int16))
    for _ in range(20):  # 20 s of audio and nobody reading
        channel.feed_audio(second)
    assert channel._inbox.qsize() == MAX_INBOX_FRAMES
    assert channel.dropped_frames == 20 * 50 - MAX_INBOX_FRAMES
    channel.feed_dtmf("5")  # control frames still get through
    channel.end("carrier sent stop")
    frames = [f async for f in channel.frames()]
    assert frames[-2:] == [DtmfFrame("5"), HangupFrame("carrier sent stop")]


async def test_ducking_applies_to_messages_not_yet_sent() -> None:
    """The carrier's lead plays as sent; everything after the duck goes out quieter."""
    wire = Wire()
    out = MediaStreamOutput(wire.send, TwilioSerializer("MZ1"), lead_s=0.04)
    sender = asyncio.create_task(out.run())
    t = np.arange(8000)
    out.write((10000 * np.sin(t * 0.3)).astype(np.int16))  # 1 s
    await asyncio.sleep(0.1)
    out.set_gain(-15)
    await asyncio.sleep(0.2)
    out.close()
    await asyncio.wait_for(sender, 0.5)
    levels = [
        20 * np.log10(np.sqrt(np.mean(ulaw_decode(base64_payload(m)).astype(float) ** 2)))
        for _, m in wire.sent
        if m["event"] == "media"
    ]
    assert levels[0] - levels[-1] == pytest.approx(15, abs=0.6)  # μ-law rounds a little
    assert max(levels[:2]) > levels[0] - 0.5  # what went out before it was not touched


def base64_payload(message: dict) -> bytes:
    return base64.b64decode(message["media"]["payload"])
