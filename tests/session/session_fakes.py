"""Test doubles shared by the session tests: a tone the fake VAD calls speech."""

from __future__ import annotations

import numpy as np

SPEECH_LEVEL = 8000


def speech(seconds: float) -> np.ndarray:
    """A loud tone the fake VAD calls speech."""
    t = np.arange(round(seconds * 8000)) / 8000
    return (SPEECH_LEVEL * np.sin(2 * np.pi * 440 * t)).astype(np.int16)


class EnergyVadStream:
    """Probability 1.0 for a loud 32 ms window, 0.0 otherwise (Silero's interface)."""

    window_samples = 256
    latency_samples = 0

    def __init__(self) -> None:
        self._buf = np.zeros(0, dtype=np.int16)

    def push(self, pcm: np.ndarray) -> list[float]:
        self._buf = np.concatenate([self._buf, pcm])
        probs = []
        while len(self._buf) >= self.window_samples:
            win, self._buf = self._buf[: self.window_samples], self._buf[self.window_samples :]
            probs.append(1.0 if np.abs(win.astype(np.int32)).mean() > 1000 else 0.0)
        return probs

    def reset(self) -> None:
        self._buf = np.zeros(0, dtype=np.int16)


class FakeVad:
    def stream(self) -> EnergyVadStream:
        return EnergyVadStream()
