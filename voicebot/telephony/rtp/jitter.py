"""A small receive jitter buffer, indexed by RTP timestamp.

Why timestamps and not sequence numbers: peers may send 10, 20 or 30 ms
packets, and the session wants exact 20 ms frames on our own clock.  Keeping
samples by timestamp lets one ``pop`` per 20 ms tick cut any packetisation
into frames, and makes reordering free (a late-but-not-too-late packet simply
lands where it belongs).

Policy, deliberately simple:

* playout starts ``target_ms`` behind the first packet (headroom for jitter);
* a gap with later audio already queued is a loss: it plays as silence and
  playout moves on;
* an empty buffer is an underrun: playout *holds* (silence, no advance), so a
  sender whose clock runs slow, or a pause (hold, DTMF), never turns every
  following packet into a "late" one;
* if queued audio grows beyond ``max_ms`` (a fast sender clock, a burst after
  a stall, a timestamp jump) playout jumps forward to ``target_ms`` behind the
  newest audio, bounding the latency the caller's words can pick up.

Adaptive depth: ``target_ms`` is only where playout starts.  Every packet's
*lead* (how far ahead of playout it arrived) is kept for the last second; when
even the smallest lead leaves a whole frame more than ``SAFETY_MS``, the line is
steadier than the depth assumes and playout skips one quiet 20 ms frame (never
one carrying speech).  A late packet is still dropped, but playout then holds
for as long as it was late (plus ``SAFETY_MS``), so the next ones are in time.
On a clean line the buffer settles at 10–30 ms of lead, i.e. 20–40 ms from a
packet's arrival to the session with the 20 ms tick's phase; every 20 ms it
does not hold is 20 ms off the time before the session hears the caller stop.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from voicebot.core.frames import FRAME_SAMPLES, SAMPLE_RATE
from voicebot.telephony.rtp.packet import seq_diff

# A packet this far behind playout is a sender restart, not a late packet.
RESTART_SAMPLES = SAMPLE_RATE
SAFETY_MS = 10  # lead kept beyond the smallest seen (arrival jitter the window missed)
LEAD_WINDOW = 50  # packets whose lead decides a shrink (1 s of 20 ms packets)
QUIET_PEAK = 330  # a frame under this peak (-40 dBFS) may be skipped unheard


@dataclass
class JitterStats:
    received: int = 0
    late: int = 0  # arrived after their time had been played
    concealed: int = 0  # 20 ms frames played as silence because audio was missing
    underruns: int = 0  # ticks with nothing queued at all
    resyncs: int = 0  # playout jumps (latency bound, restart, new SSRC)
    shrinks: int = 0  # quiet frames skipped because the line proved steadier than the depth
    holds: int = 0  # frames held back after a late packet


class JitterBuffer:
    """Packets in (any order, any size), exact 20 ms frames out."""

    def __init__(self, target_ms: int = 60, max_ms: int = 200) -> None:
        self.target = target_ms * SAMPLE_RATE // 1000
        self.max = max(max_ms * SAMPLE_RATE // 1000, self.target + FRAME_SAMPLES)
        self.stats = JitterStats()
        self._chunks: dict[int, np.ndarray] = {}
        self._play: int | None = None  # extended timestamp of the next sample out
        self._last_raw = 0
        self._last_ext = 0
        self._ssrc: int | None = None
        self._playing = False
        self._safety = SAFETY_MS * SAMPLE_RATE // 1000
        self._leads: deque[int] = deque(maxlen=LEAD_WINDOW)
        self._hold = 0  # frames to play as silence without advancing (after a late packet)

    def reset(self) -> None:
        """Forget everything (new SSRC, re-INVITE to a new source)."""
        self._chunks.clear()
        self._play = None
        self._ssrc = None

    def push(self, timestamp: int, pcm: np.ndarray, ssrc: int | None = None) -> None:
        """Queue one packet's decoded audio."""
        if ssrc != self._ssrc or self._play is None:
            self._start(timestamp, ssrc)
        ext = self._extend(timestamp)
        self.stats.received += 1
        assert self._play is not None
        if ext + len(pcm) <= self._play:
            if self._play - ext > RESTART_SAMPLES:
                self.stats.resyncs += 1
                self._start(timestamp, ssrc)
                self.push(timestamp, pcm, ssrc)
                self.stats.received -= 1
            else:
                self.stats.late += 1
                self._grow(self._play - ext)
            return
        self._leads.append(ext - self._play)
        self._chunks[ext] = pcm
        newest_end = ext + len(pcm)
        if newest_end - self._play > self.max:
            self._jump(newest_end - self.target)

    def pop(self) -> np.ndarray:
        """The next 20 ms of audio (silence where nothing arrived in time)."""
        out = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        if self._play is None:
            return out
        if self._hold:
            self._hold -= 1
            self.stats.holds += 1
            return out
        self._maybe_shrink()
        filled, ahead = self._fill(out, self._play)
        if not filled and not ahead:
            self.stats.underruns += 1
            return out
        if filled:
            self._playing = True
        elif self._playing:  # the pre-roll before the first packet is not a loss
            self.stats.concealed += 1
        self._play += FRAME_SAMPLES
        return out

    @property
    def buffered_ms(self) -> float:
        """How much audio is queued ahead of playout."""
        if self._play is None or not self._chunks:
            return 0.0
        newest = max(ext + len(pcm) for ext, pcm in self._chunks.items())
        return max(0, newest - self._play) * 1000 / SAMPLE_RATE

    def _fill(self, out: np.ndarray, lo: int) -> tuple[bool, bool]:
        hi = lo + len(out)
        filled = ahead = False
        for ext in sorted(self._chunks):
            pcm = self._chunks[ext]
            end = ext + len(pcm)
            if ext >= hi:
                ahead = True
                continue
            if end > lo:
                start, stop = max(ext, lo), min(end, hi)
                out[start - lo : stop - lo] = pcm[start - ext : stop - ext]
                filled = True
            if end <= hi:
                del self._chunks[ext]
        return filled, ahead

    def _grow(self, late_by: int) -> None:
        """A packet missed its turn by ``late_by`` samples: hold playout that long and more."""
        frames = -(-(late_by + self._safety) // FRAME_SAMPLES)
        room = (self.max - self.target) // FRAME_SAMPLES
        self._hold = max(self._hold, min(frames, room))
        self._leads.clear()

    def _maybe_shrink(self) -> None:
        """Skip a quiet frame when a second of packets all arrived a frame earlier than needed."""
        if len(self._leads) < LEAD_WINDOW or min(self._leads) < FRAME_SAMPLES + self._safety:
            return
        assert self._play is not None
        probe = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        self._peek(probe, self._play)
        if np.abs(probe.astype(np.int32)).max() >= QUIET_PEAK:
            return
        self._drop_before(self._play + FRAME_SAMPLES)
        self._play += FRAME_SAMPLES
        self.stats.shrinks += 1
        self._leads = deque((lead - FRAME_SAMPLES for lead in self._leads), maxlen=LEAD_WINDOW)

    def _peek(self, out: np.ndarray, lo: int) -> None:
        """Copy the audio queued at ``[lo, lo + len(out))`` into ``out``, keeping it queued."""
        hi = lo + len(out)
        for ext, pcm in self._chunks.items():
            start, stop = max(ext, lo), min(ext + len(pcm), hi)
            if start < stop:
                out[start - lo : stop - lo] = pcm[start - ext : stop - ext]

    def _drop_before(self, play: int) -> None:
        for ext in [e for e, pcm in self._chunks.items() if e + len(pcm) <= play]:
            del self._chunks[ext]

    def _start(self, timestamp: int, ssrc: int | None) -> None:
        if self._play is not None:
            self.stats.resyncs += 1
        self._chunks.clear()
        self._leads.clear()
        self._hold = 0
        self._ssrc = ssrc
        self._playing = False
        self._last_raw = timestamp
        self._last_ext = timestamp
        self._play = timestamp - self.target

    def _extend(self, timestamp: int) -> int:
        """Unwrap the 32-bit timestamp against the newest one seen."""
        ext = self._last_ext + seq_diff(timestamp, self._last_raw, 32)
        if ext > self._last_ext:
            self._last_raw, self._last_ext = timestamp, ext
        return ext

    def _jump(self, play: int) -> None:
        self.stats.resyncs += 1
        self._play = play
        self._leads.clear()
        self._drop_before(play)
