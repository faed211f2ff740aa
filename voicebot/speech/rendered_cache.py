"""Rendered sentences kept on disk, so a restart (or a new phrase said once) is instant.

A slow engine (Piper) needs about a minute of one core to render the fixed
replies at start-up, and 0.2-0.7 s for a phrase it has not said since; kept
here, each costs that once per voice and machine.  The synthesizer keeps only
sentences written without digits (``keepable``): amounts, card endings and
dates are personal, rarely repeat, and would only grow the folder.  The key is
the spoken text plus everything that changes the sound (engine, voice, rate,
pitch, word gap), so a new setting never plays an old recording.  Any I/O
problem is a cache miss, never an error.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
from pathlib import Path

import numpy as np

from voicebot.config import TtsConfig, cache_dir

log = logging.getLogger(__name__)

_DIGIT = re.compile(r"\d")
MAX_FILES = 4096  # ~200 MB at most; the fixed replies are ~90 sentences


def keepable(written: str) -> bool:
    """A sentence worth keeping on disk: no amount, card ending, date or reference in it."""
    return not _DIGIT.search(written)


def voice_key(config: TtsConfig, voice_id: str) -> str:
    """What makes one engine's audio differ from another's (folder name)."""
    parts = (config.engine, voice_id, config.piper_model or "", config.rate_wpm, config.pitch)
    text = "|".join(map(str, (*parts, config.word_gap_ms)))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class RenderedCache:
    """8 kHz int16 sentences as ``.npy`` files under ``<cache>/tts/<voice key>/``."""

    def __init__(self, folder: Path, max_files: int = MAX_FILES) -> None:
        self.folder = folder
        self.max_files = max_files
        self._files: int | None = None  # counted on the first write

    @classmethod
    def for_voice(cls, config: TtsConfig, voice_id: str, root: Path | None = None) -> RenderedCache:
        return cls((root or cache_dir()) / "tts" / voice_key(config, voice_id))

    def _path(self, spoken: str) -> Path:
        return self.folder / f"{hashlib.sha256(spoken.encode()).hexdigest()[:32]}.npy"

    def has(self, spoken: str) -> bool:
        return self._path(spoken).is_file()

    def get(self, spoken: str) -> np.ndarray | None:
        path = self._path(spoken)
        if not path.is_file():
            return None
        try:
            pcm = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            log.debug("unreadable rendered sentence %s: %s", path, exc)
            return None
        return pcm if pcm.dtype == np.int16 and pcm.ndim == 1 else None

    def put(self, spoken: str, pcm: np.ndarray) -> None:
        """Keep a sentence (written to a temporary file, then renamed)."""
        if not len(pcm) or self._full():
            return
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.folder, suffix=".tmp")
            with os.fdopen(fd, "wb") as out:
                np.save(out, np.ascontiguousarray(pcm, dtype=np.int16), allow_pickle=False)
            os.replace(tmp, self._path(spoken))
            self._files = (self._files or 0) + 1
        except OSError as exc:
            log.debug("cannot keep rendered sentence in %s: %s", self.folder, exc)

    def _full(self) -> bool:
        """A bound on the folder, should replies ever carry words that never repeat."""
        if self._files is None:
            self._files = len(list(self.folder.glob("*.npy"))) if self.folder.is_dir() else 0
        return self._files >= self.max_files
