"""What every speech engine offers the synthesizer: one text in, int16 samples out.

The synthesizer (``tts.Synthesizer``) does what all engines share — sentence
splitting, spoken formatting, the prompt cache, resampling to 8 kHz — so an
engine only renders one sentence at its own sample rate, on its own thread.
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import NamedTuple, Protocol

import numpy as np


class TtsError(RuntimeError):
    """Speech synthesis is unavailable or failed; the message says what to do."""


class Rendered(NamedTuple):
    """One sentence as the engine made it (converted to 8 kHz by the synthesizer)."""

    pcm: np.ndarray  # int16 mono
    sample_rate: int


class TtsEngine(Protocol):
    """A local voice.  ``submit`` must not block: it queues on the engine's thread."""

    name: str
    # True when a new sentence takes noticeably long (Piper): the synthesizer then
    # plays a new sentence's opening words from the cache while it renders the rest.
    slow: bool

    @property
    def voice_id(self) -> str: ...

    def submit(self, text: str) -> Future[Rendered]: ...

    def close(self) -> None: ...
