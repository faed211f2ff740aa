"""RTP send pacing, measured at a receiver on 127.0.0.1.

The media clock must send one 20 ms packet per 20 ms with consecutive
sequence numbers and timestamps, keep sending (silence) when the bot is
quiet, and never drift: deadlines are absolute, so a late wake-up is not
carried into the next packet, and a short stall of the event loop is caught
up rather than lost.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time

import numpy as np
import pytest

from voicebot.telephony.rtp.packet import RtpPacket, seq_diff
from voicebot.telephony.rtp.session import MediaSession, PlayoutBuffer, PortAllocator, codec_by_name

log = logging.getLogger(__name__)


class Sink(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.arrivals: list[tuple[float, RtpPacket]] = []

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.arrivals.append((time.monotonic(), RtpPacket.parse(data)))


async def _sending_session(seconds: float, during=None) -> tuple[Sink, MediaSession]:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    transport, sink = await loop.create_datagram_endpoint(Sink, local_addr=("127.0.0.1", 0))
    port = transport.get_extra_info("sockname")[1]
    session = MediaSession(
        PlayoutBuffer(), on_audio=lambda pcm: None, on_dtmf=print, on_timeout=lambda: None
    )
    await session.bind("127.0.0.1", PortAllocator(41000, 41999))
    session.configure(
        codec_by_name("PCMU", 0), 101, ("127.0.0.1", port), send=True, recv=False, sources=set()
    )
    session.start()
    try:
        if during:
            await during(session)
        await asyncio.sleep(seconds)
    finally:
        await session.close()
        transport.close()
    return sink, session


async def test_packets_are_consecutive_and_paced_without_drift() -> None:
    async def speak(session: MediaSession) -> None:
        await asyncio.sleep(1.0)
        session.output.write(np.full(8000, 1000, np.int16))  # 1 s of "speech" mid-call

    sink, session = await _sending_session(3.0, speak)
    packets = [p for _, p in sink.arrivals]
    times = np.array([t for t, _ in sink.arrivals])
    assert 195 <= len(packets) <= 206  # ~4 s of continuous media: silence, speech, silence
    assert all(len(p.payload) == 160 and p.payload_type == 0 for p in packets)
    assert len({p.ssrc for p in packets}) == 1
    assert [p.marker for p in packets].count(True) == 1 and packets[0].marker
    assert all(
        seq_diff(b.sequence_number, a.sequence_number) == 1 for a, b in itertools.pairwise(packets)
    )
    assert all(
        seq_diff(b.timestamp, a.timestamp, 32) == 160 for a, b in itertools.pairwise(packets)
    )
    assert sum(p.payload != b"\xff" * 160 for p in packets) == 50  # exactly the 1 s written

    intervals_ms = np.diff(times) * 1000
    schedule_error_ms = (times - times[0] - np.arange(len(times)) * 0.020) * 1000
    log.warning(
        "pacing: %d packets, interval mean %.3f ms, std %.3f ms, p99 |dev| %.2f ms, "
        "max |dev| %.2f ms, "
        "end drift %.2f ms, worst wake-up lag %.2f ms",
        len(times), intervals_ms.mean(), intervals_ms.std(),
        np.percentile(np.abs(intervals_ms - 20), 99), np.abs(intervals_ms - 20).max(),
        schedule_error_ms[-1], session.stats.max_lag_ms,
    )  # fmt: skip
    assert abs(intervals_ms.mean() - 20) < 0.1  # no accumulated drift…
    assert abs(schedule_error_ms[-1]) < 10  # …the last packet is on the absolute schedule
    assert np.percentile(np.abs(intervals_ms - 20), 90) < 5


async def test_a_short_stall_is_caught_up_and_a_long_one_skipped() -> None:
    async def stall(session: MediaSession) -> None:
        await asyncio.sleep(0.5)
        time.sleep(0.06)  # block the event loop: 3 packets fall due
        await asyncio.sleep(0.5)
        time.sleep(0.3)  # beyond MAX_CATCHUP_S: skip, timestamps jump

    sink, session = await _sending_session(0.5, stall)
    packets = [p for _, p in sink.arrivals]
    ts_steps = [seq_diff(b.timestamp, a.timestamp, 32) for a, b in itertools.pairwise(packets)]
    seq_steps = {
        seq_diff(b.sequence_number, a.sequence_number) for a, b in itertools.pairwise(packets)
    }
    assert seq_steps == {1}  # sequence numbers never skip: nothing was lost on our side
    assert session.stats.skipped_ticks >= 10
    assert max(ts_steps) >= 160 * 10  # the long stall shows up as a timestamp gap
    elapsed = sink.arrivals[-1][0] - sink.arrivals[0][0]
    expected = (sum(ts_steps)) / 8000
    assert elapsed == pytest.approx(expected, abs=0.03)  # timestamps still track real time
