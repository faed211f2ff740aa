"""Typed frames: everything that flows between a transport and a call session.

Audio inside voicebot is always *telephone band*: 16-bit signed PCM, mono,
8 kHz, carried as ``numpy.int16`` arrays.  Transports convert at their edge
(μ-law/A-law, 16 kHz microphones, 22 kHz TTS) so the session never has to
think about formats.  A frame of ``FRAME_SAMPLES`` is 20 ms, the RTP packet
size every carrier uses.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SAMPLE_RATE = 8000
FRAME_MS = 20
FRAME_SAMPLES = SAMPLE_RATE * FRAME_MS // 1000

DTMF_DIGITS = frozenset("0123456789*#ABCD")


@dataclass(frozen=True, slots=True)
class AudioFrame:
    """20 ms (or any length) of caller audio, 8 kHz int16 mono."""

    pcm: np.ndarray

    @property
    def duration_s(self) -> float:
        return len(self.pcm) / SAMPLE_RATE


@dataclass(frozen=True, slots=True)
class DtmfFrame:
    """One keypad digit (RFC 4733 event, Twilio ``dtmf`` or a fixture)."""

    digit: str

    def __post_init__(self) -> None:
        if self.digit not in DTMF_DIGITS:
            raise ValueError(f"not a DTMF digit: {self.digit!r}")


@dataclass(frozen=True, slots=True)
class HangupFrame:
    """The caller (or the network) ended the call."""

    reason: str = "caller hung up"


InputFrame = AudioFrame | DtmfFrame | HangupFrame


@dataclass(frozen=True, slots=True)
class Utterance:
    """One endpointed stretch of caller speech, ready for STT."""

    pcm: np.ndarray
    started_at: float  # media-clock seconds since the call began
    ended_at: float
    # Seconds of trailing silence the endpointer waited before closing the turn.
    endpoint_wait_s: float = 0.0
    stats: dict[str, float] = field(default_factory=dict)  # loudness, speaking rate…


def silence(duration_s: float) -> np.ndarray:
    """Telephone-band digital silence of the given length."""
    return np.zeros(round(duration_s * SAMPLE_RATE), dtype=np.int16)


def split_frames(pcm: np.ndarray) -> list[np.ndarray]:
    """Cut PCM into 20 ms frames, zero-padding the last one."""
    n = -(-len(pcm) // FRAME_SAMPLES)
    padded = np.zeros(n * FRAME_SAMPLES, dtype=np.int16)
    padded[: len(pcm)] = pcm
    return list(padded.reshape(n, FRAME_SAMPLES)) if n else []
