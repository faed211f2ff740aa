"""RTP packets, RFC 4733 DTMF, the jitter buffer and the playout buffer."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

import numpy as np
import pytest

from voicebot.core.frames import FRAME_SAMPLES
from voicebot.telephony.rtp.dtmf import DtmfDetector, TelephoneEvent
from voicebot.telephony.rtp.jitter import JitterBuffer
from voicebot.telephony.rtp.packet import RtpError, RtpExtension, RtpPacket, is_rtcp, seq_diff
from voicebot.telephony.rtp.session import PlayoutBuffer

DATA = Path(__file__).parent / "data"


def captured_packets() -> list[bytes]:
    """baresip → server during the key press '4' (audio and telephone-event interleaved)."""
    lines = (DATA / "baresip_dtmf_4.rtp.hex").read_text().split()
    return [bytes.fromhex(line) for line in lines]


# ------------------------------------------------------------------ packets


def test_captured_packets_round_trip() -> None:
    for raw in captured_packets():
        assert RtpPacket.parse(raw).serialize() == raw


def test_captured_stream_fields() -> None:
    packets = [RtpPacket.parse(raw) for raw in captured_packets()]
    assert {p.ssrc for p in packets} == {packets[0].ssrc}
    assert {p.payload_type for p in packets} == {0, 101}
    audio = [p for p in packets if p.payload_type == 0]
    assert all(len(p.payload) == 160 for p in audio)
    seqs = [p.sequence_number for p in packets]
    assert all(seq_diff(b, a) == 1 for a, b in itertools.pairwise(seqs))


def test_header_options_round_trip() -> None:
    packet = RtpPacket(
        payload_type=8,
        sequence_number=65535,
        timestamp=2**32 - 1,
        ssrc=0xDEADBEEF,
        payload=b"\xd5" * 160,
        marker=True,
        csrc=(1, 2),
        extension=RtpExtension(0xBEDE, b"\x10\x01\x00\x00"),
    )
    assert RtpPacket.parse(packet.serialize()) == packet


def test_padding_is_stripped() -> None:
    raw = bytearray(RtpPacket(0, 1, 2, 3, b"abc").serialize())
    raw[0] |= 0x20
    raw += b"\x00\x00\x03"
    assert RtpPacket.parse(bytes(raw)).payload == b"abc"


@pytest.mark.parametrize(
    "raw",
    [b"", b"\x80\x00", bytes([0x40]) + bytes(11), bytes([0x8F]) + bytes(11),
     bytes([0x90]) + bytes(13),
     bytes([0xA0]) + bytes(10) + b"\x00\x00", bytes([0xA0]) + bytes(11) + b"\x40"],
    ids=["empty", "short", "version 1", "csrc truncated", "extension truncated", "zero padding",
         "padding too long"],
)  # fmt: skip
def test_malformed_packets_raise(raw: bytes) -> None:
    with pytest.raises(RtpError):
        RtpPacket.parse(raw)


def test_rtcp_is_told_apart() -> None:
    assert is_rtcp(bytes([0x80, 200]) + bytes(26))
    assert not is_rtcp(RtpPacket(0, 1, 2, 3, b"x").serialize())
    assert not is_rtcp(RtpPacket(101, 1, 2, 3, b"x", marker=True).serialize())


def test_seq_diff_wraps() -> None:
    assert seq_diff(2, 65534) == 4
    assert seq_diff(65534, 2) == -4
    assert seq_diff(5, 2**32 - 5, bits=32) == 10


# --------------------------------------------------------------------- DTMF


def test_captured_key_press_is_one_digit() -> None:
    detector = DtmfDetector()
    digits = [
        detector.feed(p) for p in map(RtpPacket.parse, captured_packets()) if p.payload_type == 101
    ]
    assert [d for d in digits if d] == ["4"]
    assert len(digits) == 12  # 9 updates + 3 end retransmits, all one event


def _event_packets(digit_event: int, timestamp: int, seq: int) -> list[RtpPacket]:
    events = [TelephoneEvent(digit_event, end=False, duration=d) for d in (160, 320, 480)]
    events += [TelephoneEvent(digit_event, end=True, duration=640)] * 3
    return [RtpPacket(101, seq + i, timestamp, 7, e.serialize()) for i, e in enumerate(events)]


def test_repeated_digit_is_two_events_and_lost_start_still_counts() -> None:
    detector = DtmfDetector()
    first = _event_packets(1, 1000, 0)
    second = _event_packets(1, 2000, 10)[3:]  # start packets lost: only the ends arrive
    digits = [detector.feed(p) for p in first + second]
    assert [d for d in digits if d] == ["1", "1"]


def test_event_codes_map_to_keypad() -> None:
    assert [TelephoneEvent(e).digit for e in (0, 9, 10, 11, 12, 15, 16)] == [
        "0",
        "9",
        "*",
        "#",
        "A",
        "D",
        None,
    ]
    event = TelephoneEvent(11, end=True, volume=10, duration=800)
    assert TelephoneEvent.parse(event.serialize()) == event


# ---------------------------------------------------------------- jitter


def frames_of(n: int, start: int = 0) -> list[np.ndarray]:
    """Frames whose samples all equal their index+1, so the output tells its story."""
    return [np.full(FRAME_SAMPLES, start + i + 1, np.int16) for i in range(n)]


def labels(out: list[np.ndarray]) -> list[int]:
    return [int(f[0]) if np.all(f == f[0]) else -1 for f in out]


def test_in_order_stream_plays_after_the_target_delay() -> None:
    jb = JitterBuffer(target_ms=40, max_ms=200)
    out = []
    for i, frame in enumerate(frames_of(10)):
        jb.push(1000 + i * FRAME_SAMPLES, frame, ssrc=1)
        out.append(jb.pop())
    assert labels(out) == [0, 0, 1, 2, 3, 4, 5, 6, 7, 8]
    assert jb.stats.concealed == 0 and jb.stats.late == 0


def test_reordered_packets_play_in_order() -> None:
    jb = JitterBuffer(target_ms=60, max_ms=200)
    order = [0, 2, 1, 3, 5, 4, 6, 7, 8, 9]
    frames = frames_of(10)
    out = []
    for i in order:
        jb.push(i * FRAME_SAMPLES, frames[i], ssrc=1)
        out.append(jb.pop())
    out += [jb.pop() for _ in range(3)]
    assert labels(out)[3:] == list(range(1, 11))
    assert jb.stats.late == 0


def test_loss_is_concealed_with_silence_and_playout_moves_on() -> None:
    jb = JitterBuffer(target_ms=40, max_ms=200)
    out = []
    for i, frame in enumerate(frames_of(10)):
        if i not in (4, 5):
            jb.push(i * FRAME_SAMPLES, frame, ssrc=1)
        out.append(jb.pop())
    assert labels(out) == [0, 0, 1, 2, 3, 4, 0, 0, 7, 8]
    assert jb.stats.concealed == 2


def test_too_late_packet_is_dropped() -> None:
    jb = JitterBuffer(target_ms=20, max_ms=200)
    frames = frames_of(6)
    out = []
    for i in (0, 1, 3, 4, 5):
        jb.push(i * FRAME_SAMPLES, frames[i], ssrc=1)
        out.append(jb.pop())
    jb.push(2 * FRAME_SAMPLES, frames[2], ssrc=1)  # its slot has been played already
    out.append(jb.pop())
    assert jb.stats.late == 1
    assert 3 not in labels(out)


def test_underrun_holds_playout_instead_of_skipping() -> None:
    jb = JitterBuffer(target_ms=20, max_ms=200)
    frames = frames_of(4)
    jb.push(0, frames[0], ssrc=1)
    out = [jb.pop(), jb.pop()]
    out += [jb.pop() for _ in range(5)]  # sender stalls 100 ms: nothing queued
    jb.push(FRAME_SAMPLES, frames[1], ssrc=1)  # …then resumes where it left off
    out.append(jb.pop())
    assert labels(out) == [0, 1, 0, 0, 0, 0, 0, 2]
    assert jb.stats.late == 0 and jb.stats.underruns == 5


def test_latency_is_bounded_when_packets_pile_up() -> None:
    jb = JitterBuffer(target_ms=40, max_ms=100)
    for i, frame in enumerate(frames_of(20)):  # a 400 ms burst with no pops
        jb.push(i * FRAME_SAMPLES, frame, ssrc=1)
    assert jb.buffered_ms <= 100
    assert jb.stats.resyncs >= 1
    assert labels([jb.pop(), jb.pop()]) == [19, 20]


def test_new_ssrc_and_timestamp_wrap() -> None:
    jb = JitterBuffer(target_ms=20, max_ms=200)
    frames = frames_of(6)
    base = 2**32 - 2 * FRAME_SAMPLES
    out = []
    for i in range(3):
        jb.push((base + i * FRAME_SAMPLES) % 2**32, frames[i], ssrc=1)
        out.append(jb.pop())
    for i in range(3, 6):
        jb.push(555 + i * FRAME_SAMPLES, frames[i], ssrc=2)  # a new source restarts playout
        out.append(jb.pop())
    assert labels(out) == [0, 1, 2, 0, 4, 5]


def test_30ms_packets_come_out_as_20ms_frames() -> None:
    jb = JitterBuffer(target_ms=60, max_ms=200)
    signal = np.arange(1, 241 * 4, dtype=np.int16)[: 240 * 4]
    out = []
    for i in range(4):
        jb.push(i * 240, signal[i * 240 : (i + 1) * 240], ssrc=1)
        out.append(jb.pop())
    out += [jb.pop() for _ in range(5)]
    played = np.concatenate(out)
    start = int(np.argmax(played != 0))
    assert np.array_equal(played[start : start + 960], signal)


# ---------------------------------------------------------------- playout


async def test_playout_buffer_cuts_frames_and_drains() -> None:
    buffer = PlayoutBuffer()
    await buffer.drained()  # nothing queued: resolves at once
    buffer.write(np.arange(1, 401, dtype=np.int16))  # 2.5 frames
    frames = [buffer.next_frame() for _ in range(3)]
    assert frames[0][0] == 1 and frames[1][0] == 161 and frames[2][0] == 321
    assert np.all(frames[2][80:] == 0)  # padded with silence
    await buffer.drained()


async def test_clear_silences_at_once_and_releases_drained() -> None:
    buffer = PlayoutBuffer()
    buffer.write(np.ones(8000, np.int16))
    buffer.next_frame()
    buffer.clear()
    await buffer.drained()
    assert not buffer.next_frame().any()


async def test_playing_resolves_when_the_media_clock_takes_the_first_frame() -> None:
    buffer = PlayoutBuffer()
    await asyncio.wait_for(buffer.playing(), 1)  # idle: nothing to wait for
    buffer.write(np.ones(800, np.int16))
    waiter = asyncio.ensure_future(buffer.playing())
    await asyncio.sleep(0.01)
    assert not waiter.done()  # queued, not yet on the wire
    buffer.write(np.ones(800, np.int16))  # more audio does not re-arm it
    buffer.next_frame()
    await asyncio.wait_for(waiter, 1)
    buffer.clear()
    buffer.write(np.ones(160, np.int16))
    stalled = asyncio.ensure_future(buffer.playing())
    buffer.close()  # a call that ends releases anyone waiting
    await asyncio.wait_for(stalled, 1)
