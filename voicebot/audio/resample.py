"""Sample-rate conversion with soxr (no ``audioop.ratecv``, which is gone in 3.13).

soxr's default high-quality filter keeps the telephone band clean when TTS
(22.05 kHz) or microphones (16/44.1/48 kHz) are brought down to 8 kHz, and its
int16 path rounds and clips for us, so callers keep their dtype.
"""

from __future__ import annotations

import numpy as np
import soxr

_SUPPORTED = (np.int16, np.float32)


def resample(pcm: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Convert mono ``pcm`` between rates; int16 in → int16 out, float32 → float32.

    Returns the input unchanged when the rates match (no copy, no filtering),
    so an 8 kHz path costs nothing.
    """
    if from_rate <= 0 or to_rate <= 0:
        raise ValueError(f"sample rates must be positive, got {from_rate} → {to_rate}")
    arr = np.asarray(pcm)
    if arr.dtype not in _SUPPORTED:
        raise TypeError(f"resample needs int16 or float32 audio, got {arr.dtype}")
    if from_rate == to_rate or arr.size == 0:
        return arr
    return np.asarray(soxr.resample(arr, from_rate, to_rate), dtype=arr.dtype)
