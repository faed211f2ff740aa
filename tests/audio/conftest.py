"""Shared audio fixtures: espeak-ng speech in the telephone band and one VAD model."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from voicebot.audio.vad import SileroVad
from voicebot.audio.wavfile import read_audio


def trim_silence(pcm: np.ndarray, level: int = 200) -> np.ndarray:
    """Cut espeak's leading/trailing silence so tests know where speech is."""
    loud = np.nonzero(np.abs(pcm.astype(np.int32)) > level)[0]
    return pcm[loud[0] : loud[-1] + 1]


@pytest.fixture(scope="session")
def speak(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], np.ndarray]:
    """Synthesize ``text`` with espeak-ng → 8 kHz int16, silence trimmed (cached)."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    folder = tmp_path_factory.mktemp("speech")
    cache: dict[str, np.ndarray] = {}

    def _speak(text: str) -> np.ndarray:
        if text not in cache:
            path = Path(folder) / f"{len(cache)}.wav"
            subprocess.run(["espeak-ng", "-w", str(path), text], check=True, timeout=30)
            cache[text] = trim_silence(read_audio(path))
        return cache[text]

    return _speak


@pytest.fixture(scope="session")
def vad() -> SileroVad:
    return SileroVad()
