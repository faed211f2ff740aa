"""One call's RTP media: a paced sender, a jitter-buffered receiver, DTMF.

One task ticks every 20 ms on the event loop's monotonic clock and, on each
tick, sends one packet (the bot's audio or silence — carriers hang up on calls
that send no RTP) and takes one frame out of the jitter buffer for the
session.  Deadlines are absolute (``start + n × 20 ms``), so late wake-ups
never accumulate into drift; a stall shorter than ``MAX_CATCHUP_S`` is caught
up by sending back-to-back, a longer one is skipped (timestamps still advance,
so the peer sees a gap, not a time warp).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
import socket
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from voicebot.audio.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from voicebot.audio.gain import GainStage
from voicebot.core.frames import FRAME_MS, FRAME_SAMPLES
from voicebot.core.net import Addr
from voicebot.telephony.addresses import sendable
from voicebot.telephony.rtp.dtmf import DtmfDetector
from voicebot.telephony.rtp.jitter import JitterBuffer
from voicebot.telephony.rtp.latch import IP, SourceLatch, normalise
from voicebot.telephony.rtp.packet import RtpError, RtpPacket, is_rtcp

log = logging.getLogger("voicebot.telephony.rtp")

FRAME_S = FRAME_MS / 1000
MAX_CATCHUP_S = 0.1

MAX_RTP_DATAGRAM = 1500
# Datagrams read per wake-up of the RTP socket beyond the one asyncio hands us.
# asyncio reads one datagram per readiness event; whenever the loop thread is held
# up (STT and VAD threads want the GIL too), a flood of junk from a stranger can
# pile up in the socket ahead of the caller's own packets.  Draining a batch per
# wake-up keeps that backlog near zero (docs/SIP.md, "RTP backlog").
RTP_DRAIN_BATCH = 64
COMFORT_NOISE_PT = 13


def _ignore(*_: object) -> None:
    """What a stopped media session calls: nothing (its leg has ended)."""


@dataclass(frozen=True)
class Codec:
    """A negotiated audio codec: its name, payload type and G.711 functions."""

    name: str
    payload_type: int
    encode: Callable[[np.ndarray], bytes] = field(repr=False, compare=False)
    decode: Callable[[bytes], np.ndarray] = field(repr=False, compare=False)


_G711 = {
    "PCMU": (ulaw_encode, ulaw_decode),
    "PCMA": (alaw_encode, alaw_decode),
}


def codec_by_name(name: str, payload_type: int) -> Codec:
    """The codec for an SDP encoding name (PCMU/PCMA); KeyError otherwise."""
    encode, decode = _G711[name.upper()]
    return Codec(name.upper(), payload_type, encode, decode)


class PlayoutBuffer:
    """The bot's audio waiting to be sent: the SIP call's ``MediaOutput``.

    ``write`` only queues; the media task takes exactly one 20 ms frame per
    tick, so queued audio plays at real-time speed and ``clear`` (barge-in)
    silences the bot on the very next packet; ``set_gain`` (ducking) changes
    its level from the next packet on.
    """

    def __init__(self) -> None:
        self._chunks: deque[np.ndarray] = deque()
        self._gain = GainStage()
        self._idle = asyncio.Event()
        self._idle.set()
        self._sending = asyncio.Event()
        self._sending.set()
        self._closed = False

    def write(self, pcm: np.ndarray) -> None:
        pcm = np.asarray(pcm, dtype=np.int16).reshape(-1)
        if self._closed or len(pcm) == 0:
            return
        if not self._chunks:
            self._sending.clear()
        self._chunks.append(pcm)
        self._idle.clear()

    def clear(self) -> None:
        self._chunks.clear()
        self._idle.set()
        self._sending.set()

    def set_gain(self, db: float) -> None:
        self._gain.set_db(db)

    async def drained(self) -> None:
        """Resolve once everything written has gone out (or the call ended)."""
        await self._idle.wait()

    async def playing(self) -> None:
        """Resolve once the media clock has taken the first frame of what was written."""
        await self._sending.wait()

    @property
    def queued_samples(self) -> int:
        return sum(len(c) for c in self._chunks)

    def next_frame(self) -> np.ndarray:
        """Take the next 20 ms (silence-padded) — called by the media clock."""
        out = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        filled = 0
        while self._chunks and filled < FRAME_SAMPLES:
            chunk = self._chunks[0]
            take = min(len(chunk), FRAME_SAMPLES - filled)
            out[filled : filled + take] = chunk[:take]
            filled += take
            if take == len(chunk):
                self._chunks.popleft()
            else:
                self._chunks[0] = chunk[take:]
        if filled:
            self._sending.set()
            out = self._gain.apply(out)
        if not self._chunks:
            self._idle.set()
        return out

    def trim(self, max_samples: int) -> int:
        """Drop the oldest audio beyond ``max_samples``; returns how much went.

        A relay between two media clocks (a transfer bridge) must not let a
        stall on one side become delay for the rest of the call."""
        excess = self.queued_samples - max_samples
        dropped = 0
        while excess > 0 and self._chunks:
            chunk = self._chunks[0]
            if len(chunk) <= excess:
                self._chunks.popleft()
                taken = len(chunk)
            else:
                self._chunks[0] = chunk[excess:]
                taken = excess
            excess -= taken
            dropped += taken
        return dropped

    def close(self) -> None:
        self._closed = True
        self.clear()


class NoFreePortError(OSError):
    """Every port of the configured RTP range is taken."""


class PortAllocator:
    """Even RTP ports (RTCP on the odd one above) from the configured range."""

    def __init__(self, low: int, high: int) -> None:
        self.low, self.high = low + (low % 2), high
        self._in_use: set[int] = set()

    async def bind(
        self, host: str, factory: Callable[[], asyncio.DatagramProtocol]
    ) -> tuple[int, asyncio.DatagramTransport, asyncio.DatagramTransport]:
        """Bind an RTP/RTCP pair; ports other programs hold are skipped."""
        loop = asyncio.get_running_loop()
        ports = [p for p in range(self.low, self.high, 2) if p not in self._in_use]
        random.shuffle(ports)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        for port in ports:
            sock = socket.socket(family, socket.SOCK_DGRAM)
            try:
                sock.bind((host, port))
            except OSError:
                sock.close()
                continue
            rtp, receiver = await loop.create_datagram_endpoint(factory, sock=sock)
            if isinstance(receiver, _Receiver):
                receiver.sock = sock  # to drain the backlog per wake-up
            try:
                rtcp, _ = await loop.create_datagram_endpoint(
                    asyncio.DatagramProtocol, local_addr=(host, port + 1)
                )
            except OSError:
                rtp.close()
                continue
            self._in_use.add(port)
            return port, rtp, rtcp  # type: ignore[return-value]
        raise NoFreePortError(f"no free RTP port in {self.low}-{self.high}")

    def release(self, port: int) -> None:
        self._in_use.discard(port)

    @property
    def in_use(self) -> int:
        return len(self._in_use)


@dataclass
class MediaStats:
    sent: int = 0
    received: int = 0
    dtmf: int = 0
    ignored: int = 0  # foreign source, unknown payload type, malformed
    skipped_ticks: int = 0
    max_lag_ms: float = 0.0  # worst wake-up lateness of the media clock
    lag_sum_ms: float = 0.0
    ticks: int = 0

    @property
    def mean_lag_ms(self) -> float:
        return self.lag_sum_ms / self.ticks if self.ticks else 0.0


class _Receiver(asyncio.DatagramProtocol):
    def __init__(self, session: MediaSession) -> None:
        self.session = session
        self.sock: socket.socket | None = None  # the bound socket, once known

    def datagram_received(self, data: bytes, addr: Addr) -> None:
        self._handle(data, addr)
        for _ in range(RTP_DRAIN_BATCH if self.sock is not None else 0):
            if self.session.stopped:
                return
            try:
                data, addr = self.sock.recvfrom(65535)  # type: ignore[union-attr]
            except OSError:  # drained (BlockingIOError), or closed by the call's end
                return
            self._handle(data, addr)

    def _handle(self, data: bytes, addr: Addr) -> None:
        try:
            self.session.on_datagram(data, addr)
        except Exception:  # never let one bad packet kill the socket
            log.exception("event=rtp_receive_error")

    def error_received(self, exc: Exception) -> None:
        log.debug("event=rtp_socket_error error=%s", exc)


class MediaSession:
    """RTP for one call; reconfigured in place by re-INVITEs (hold/resume)."""

    def __init__(
        self,
        output: PlayoutBuffer,
        *,
        on_audio: Callable[[np.ndarray], None],
        on_dtmf: Callable[[str], None],
        on_timeout: Callable[[], None],
        jitter_ms: int = 60,
        max_jitter_ms: int = 200,
        timeout_s: float = 30.0,
        symmetric: bool = True,
        latch_probation: int = 4,
    ) -> None:
        self.output = output
        self._symmetric = symmetric
        self._on_audio, self._on_dtmf, self._on_timeout = on_audio, on_dtmf, on_timeout
        self._jitter = JitterBuffer(jitter_ms, max_jitter_ms)
        self._dtmf = DtmfDetector()
        self._timeout_s = timeout_s
        self.stats = MediaStats()
        self.codec: Codec | None = None
        self.dtmf_pt: int | None = None
        self.remote: Addr | None = None
        self._advertised: Addr | None = None  # the SDP's address, before latching
        self.send_enabled = self.recv_enabled = False
        self.port = 0
        self._sources: set[IP] = set()
        self.latch = SourceLatch(latch_probation)
        self._ssrc = secrets.randbits(32)
        self._seq = secrets.randbits(16)
        self._ts = secrets.randbits(32)
        self._first = True
        self._last_rx = 0.0
        self._timed_out = False
        self._rtp: asyncio.DatagramTransport | None = None
        self._rtcp: asyncio.DatagramTransport | None = None
        self._task: asyncio.Task[None] | None = None
        self._allocator: PortAllocator | None = None
        self.stopped = False

    async def bind(self, host: str, allocator: PortAllocator) -> int:
        """Take an RTP/RTCP port pair from the range; returns the RTP port."""
        self.port, self._rtp, self._rtcp = await allocator.bind(host, lambda: _Receiver(self))
        self._allocator = allocator
        if self.stopped:  # the call ended while we were binding
            self._release()
        return self.port

    def configure(
        self,
        codec: Codec,
        dtmf_pt: int | None,
        remote: Addr,
        *,
        send: bool,
        recv: bool,
        sources: set[str],
    ) -> None:
        """Apply an SDP negotiation (initial answer or re-INVITE)."""
        if self._advertised != remote or (self.codec and self.codec != codec):
            self._jitter.reset()
            self.latch.reset()
            self.remote = remote
        self._advertised = remote
        self.codec, self.dtmf_pt = codec, dtmf_pt
        # An address sendto cannot take would close this call's socket: never send there.
        self.send_enabled, self.recv_enabled = send and sendable(remote), recv
        hosts = (normalise(host) for host in {*sources, remote[0]})
        self._sources = {host for host in hosts if host is not None}
        self._last_rx = asyncio.get_running_loop().time()

    def start(self) -> None:
        if self._task is None and not self.stopped:
            self._last_rx = asyncio.get_running_loop().time()
            self._task = asyncio.create_task(self._run(), name=f"rtp-{self.port}")

    def stop(self) -> None:
        """Stop sending and receiving now and give the ports back (sync: the
        SIP layer ends calls from datagram callbacks)."""
        self.stopped = True
        if self._task:
            self._task.cancel()
            self._task = None  # a cancelled task's traceback holds our frame: another cycle
        self._release()
        # The callbacks are the owning leg's bound methods: dropping them breaks the
        # leg <-> media cycle, so an ended call is freed by reference counting at
        # once instead of by a later cycle collection (which, under a flood of short
        # calls, left glibc's heap fragmented).
        self._on_audio, self._on_dtmf, self._on_timeout = _ignore, _ignore, _ignore

    async def close(self) -> None:
        task = self._task
        self.stop()
        if task:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _release(self) -> None:
        for transport in (self._rtp, self._rtcp):
            if transport:
                transport.close()
        self._rtp = self._rtcp = None
        if self._allocator and self.port:
            self._allocator.release(self.port)
            self._allocator = None
        self.output.close()

    # ------------------------------------------------------------------ clock

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        start, n = loop.time(), 0
        while True:
            due = start + n * FRAME_S
            lag = loop.time() - due
            if lag < 0:
                await asyncio.sleep(-lag)
                lag = loop.time() - due
            elif lag > MAX_CATCHUP_S:
                skip = int(lag / FRAME_S)
                n += skip
                self._ts += skip * FRAME_SAMPLES
                self.stats.skipped_ticks += skip
                continue
            self._record_lag(lag)
            self._tick(loop.time())
            n += 1

    def _record_lag(self, lag: float) -> None:
        ms = max(0.0, lag) * 1000
        self.stats.ticks += 1
        self.stats.lag_sum_ms += ms
        self.stats.max_lag_ms = max(self.stats.max_lag_ms, ms)

    def _tick(self, now: float) -> None:
        pcm = self.output.next_frame()  # time passes for the bot's audio even on hold
        if self.send_enabled and self.remote and self.codec and self._rtp:
            self._send(self.codec.encode(pcm))
        self._ts = (self._ts + FRAME_SAMPLES) & 0xFFFFFFFF
        self._on_audio(self._jitter.pop())
        if self.recv_enabled and not self._timed_out and now - self._last_rx > self._timeout_s:
            self._timed_out = True
            self._on_timeout()

    def _send(self, payload: bytes) -> None:
        assert self.codec and self._rtp and self.remote
        packet = RtpPacket(
            payload_type=self.codec.payload_type,
            sequence_number=self._seq,
            timestamp=self._ts,
            ssrc=self._ssrc,
            payload=payload,
            marker=self._first,
        )
        self._first = False
        self._seq = (self._seq + 1) & 0xFFFF
        self._rtp.sendto(packet.serialize(), self.remote)
        self.stats.sent += 1

    # -------------------------------------------------------------- receiving

    def on_datagram(self, data: bytes, addr: Addr) -> None:
        """One datagram on the RTP port: junk and strangers cost a counter, nothing more."""
        if len(data) > MAX_RTP_DATAGRAM or is_rtcp(data) or normalise(addr[0]) not in self._sources:
            self.stats.ignored += 1
            return
        try:
            packet = RtpPacket.parse(data)
        except RtpError:
            self.stats.ignored += 1
            return
        now = asyncio.get_running_loop().time()
        latched = self.latch.latched
        if not self.latch.accept(addr, packet.ssrc, packet.sequence_number, now):
            self.stats.ignored += 1
            return
        self._last_rx = now
        if self.latch.latched != latched:
            self._on_latched()
        self._dispatch(packet)

    def _on_latched(self) -> None:
        """Symmetric RTP: answer where the peer's media really comes from (NAT)."""
        address = self.latch.address
        if self._symmetric and address and address != self.remote:
            log.info("event=rtp_latched port=%s remote=%s:%s", self.port, *address)
            self.remote = address

    def _dispatch(self, packet: RtpPacket) -> None:
        if self.dtmf_pt is not None and packet.payload_type == self.dtmf_pt:
            digit = self._dtmf.feed(packet)
            if digit:
                self.stats.dtmf += 1
                self._on_dtmf(digit)
        elif self.codec and packet.payload_type == self.codec.payload_type:
            self.stats.received += 1
            self._jitter.push(packet.timestamp, self.codec.decode(packet.payload), packet.ssrc)
        elif packet.payload_type != COMFORT_NOISE_PT:
            self.stats.ignored += 1

    @property
    def jitter(self) -> JitterBuffer:
        return self._jitter
