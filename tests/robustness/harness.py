"""Driving a live SipServer with hostile datagrams, and checking it afterwards.

Used by the robustness tests and by ``scripts/fuzz``/``scripts/soak``; the
server runs in this process so its tables (transactions, calls) and its
memory can be read directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import sys
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from voicebot.telephony.sip import SipServer

SIP_LOGGER = "voicebot.telephony"
CRASH_EVENTS = ("sip_internal_error", "rtp_receive_error", "handler_error")


class EventCounter(logging.Handler):
    """Counts log events by name; crashes are the events no input may cause."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.events: Counter[str] = Counter()
        self.tracebacks = 0

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        name = message.partition("event=")[2].split(" ", 1)[0]
        self.events[name] += 1
        self.tracebacks += record.exc_info is not None

    @property
    def crashes(self) -> int:
        return sum(self.events[e] for e in CRASH_EVENTS)

    def __enter__(self) -> EventCounter:
        logger = logging.getLogger(SIP_LOGGER)
        logger.addHandler(self)
        self._level = logger.level
        logger.setLevel(logging.INFO)
        return self

    def __exit__(self, *exc: object) -> None:
        logger = logging.getLogger(SIP_LOGGER)
        logger.removeHandler(self)
        logger.setLevel(self._level)


def rss_kib() -> int:
    """Resident memory of this process (KiB)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def python_blocks() -> int:
    """Memory blocks Python's live objects hold: a leak grows it, heap
    fragmentation (which grows RSS only) does not."""
    return sys.getallocatedblocks()


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def options_request(n: int, port: int) -> bytes:
    return (
        f"OPTIONS sip:bot@127.0.0.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKping{n};rport\r\n"
        f"From: <sip:ping@127.0.0.1>;tag=p{n}\r\nTo: <sip:bot@127.0.0.1>\r\n"
        f"Call-ID: ping-{n}@127.0.0.1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


async def answers_options(server_port: int, n: int = 0, timeout_s: float = 5.0) -> bool:
    """Whether the listener still answers OPTIONS with 200 (it is alive)."""
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        request = options_request(n, sock.getsockname()[1])
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            sock.sendto(request, ("127.0.0.1", server_port))
            try:
                data = await asyncio.wait_for(loop.sock_recv(sock, 65535), 0.5)
            except TimeoutError:
                continue
            if data.startswith(b"SIP/2.0 200"):
                return True
    return False


@dataclass
class FuzzReport:
    datagrams: int = 0
    batches: int = 0
    alive_after_every_batch: bool = True
    crashes: int = 0
    tracebacks: int = 0
    answered_500: int = 0
    seconds: float = 0.0
    rss_kib: list[int] = field(default_factory=list)
    python_blocks: list[int] = field(default_factory=list)
    events: dict[str, int] = field(default_factory=dict)

    @property
    def rss_growth(self) -> float:
        """Growth from the first batch to the end (warm-up excluded)."""
        if len(self.rss_kib) < 2:
            return 0.0
        return (self.rss_kib[-1] - self.rss_kib[0]) / self.rss_kib[0]


async def spray(
    server: SipServer,
    datagrams: Iterable[bytes],
    *,
    batch: int = 1000,
    pace: int = 20,
) -> FuzzReport:
    """Send every datagram to ``server``, ``pace`` at a time between yields to
    the loop; after each batch, check the listener answers OPTIONS."""
    report = FuzzReport()
    started = time.perf_counter()
    with EventCounter() as counter, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        target = ("127.0.0.1", server.port)
        for report.datagrams, data in enumerate(datagrams, 1):
            with contextlib.suppress(OSError):  # our send buffer full: lost, as on a network
                sock.sendto(data, target)
            if report.datagrams % pace == 0:
                await asyncio.sleep(0.001)
                _drain(sock)
            if report.datagrams % batch == 0:
                report.batches += 1
                alive = await answers_options(server.port, report.batches)
                report.alive_after_every_batch &= alive
                report.rss_kib.append(rss_kib())
                report.python_blocks.append(python_blocks())
        report.alive_after_every_batch &= await answers_options(server.port, -1)
        report.rss_kib.append(rss_kib())
        report.crashes, report.tracebacks = counter.crashes, counter.tracebacks
        report.answered_500 = counter.events["sip_request_failed"]
        report.events = dict(counter.events.most_common(12))
    report.seconds = round(time.perf_counter() - started, 2)
    return report


def _drain(sock: socket.socket) -> None:
    """Read and drop the server's answers so our receive buffer never fills."""
    while True:
        try:
            sock.recv(65535)
        except (BlockingIOError, OSError):
            return


class EchoHandler:
    """A call session stand-in for latency runs: every caller frame is played
    straight back, so reply latency = the server's media path (RTP in, jitter
    buffer, clock, RTP out) without STT or Rasa."""

    def __init__(self) -> None:
        self.calls = 0
        self.hangups: Counter[str] = Counter()

    async def __call__(self, channel: object) -> None:
        from voicebot.core.frames import AudioFrame, HangupFrame

        self.calls += 1
        async for frame in channel.frames():  # type: ignore[attr-defined]
            if isinstance(frame, AudioFrame):
                channel.output.write(frame.pcm)  # type: ignore[attr-defined]
            elif isinstance(frame, HangupFrame):
                self.hangups[frame.reason] += 1


class SoakHandler:
    """Plays a clip and reads every frame, keeping only counts (memory stays flat)."""

    def __init__(self, clip: object) -> None:
        self.clip = clip
        self.calls = 0
        self.frames = 0
        self.active = 0
        self.max_active = 0
        self.hangups: Counter[str] = Counter()

    async def __call__(self, channel: object) -> None:
        from voicebot.core.frames import AudioFrame, HangupFrame

        self.calls += 1
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            channel.output.write(self.clip)  # type: ignore[attr-defined]
            async for frame in channel.frames():  # type: ignore[attr-defined]
                if isinstance(frame, AudioFrame):
                    self.frames += 1
                elif isinstance(frame, HangupFrame):
                    self.hangups[frame.reason] += 1
        finally:
            self.active -= 1


async def soak(
    workdir: Path, minutes: float, calls: int = 8, sample_s: float = 5.0
) -> dict[str, Any]:
    """``calls`` simultaneous SIPp calls (4 s of RTP each, back to back) for
    ``minutes``, sampling RSS and open descriptors; the growth report."""
    from sip_peers import RATE, noise_clip, run_sipp, sip_server, wait_until

    from voicebot.audio.wavfile import write_wav

    write_wav(workdir / "caller_ulaw.wav", noise_clip(3.0, seed=3), RATE, "ulaw")
    handler = SoakHandler(noise_clip(2.0, seed=9))
    total = max(calls, int(minutes * 60 / 4.6 * calls))
    samples: list[dict[str, float]] = []
    async with sip_server(handler, source_rate=0) as server:
        fds_before = open_fds()
        started = time.monotonic()
        sipp = asyncio.create_task(
            run_sipp(
                "call_rtp.xml", workdir, calls=total, concurrent=calls,
                rate=max(1, round(calls / 4.5)), timeout_s=minutes * 60 + 120,
            )
        )  # fmt: skip
        while not sipp.done():
            await asyncio.wait({sipp}, timeout=sample_s)
            if sipp.done():  # what follows is the harness reading SIPp's output, not the server
                break
            samples.append(
                {
                    "t_s": round(time.monotonic() - started, 1),
                    "rss_kib": rss_kib(),
                    "fds": open_fds(),
                    "active": len(server.calls),
                }
            )
        result = sipp.result()
        await wait_until(lambda: handler.active == 0 and not server.calls, 10)
        await asyncio.sleep(0.5)
        fds_after = open_fds()
        rss_after = rss_kib()
    warm = samples[len(samples) // 5] if samples else {"rss_kib": rss_kib()}
    last = samples[-1] if samples else warm
    dropped = sum(n for reason, n in handler.hangups.items() if reason != "caller hung up")
    return {
        "minutes": minutes,
        "simultaneous_calls": calls,
        "calls_placed": total,
        "calls_answered": handler.calls,
        "max_active": handler.max_active,
        "dropped_calls": dropped + (total - handler.calls),
        "hangup_reasons": dict(handler.hangups),
        "sipp_returncode": result.returncode,
        "frames_received": handler.frames,
        "rss_growth": round((last["rss_kib"] - warm["rss_kib"]) / warm["rss_kib"], 4),
        "fds_before": fds_before,
        "fds_after": fds_after,
        "rss_kib_after_run": rss_after,  # the harness's own SIPp output parsing included
        "samples": samples,
    }
