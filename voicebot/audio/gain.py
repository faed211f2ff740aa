"""A gain stage for audio on its way out: how a transport ducks the bot's voice.

Barge-in stops the bot only once the caller's voice is confirmed (a cough must
not cut it off), which takes ~0.2 s; ducking makes the bot quieter the moment
the voice *may* have begun, and full level comes back if it was not speech.

Why a ramp: a level step inside a word clicks; moving to the new gain across
one frame (20 ms) does not, and is still ten times quicker than confirmation.
Why the gain is applied as audio goes out, not when it is queued: a reply is
queued a sentence at a time, seconds ahead of play-out.
"""

from __future__ import annotations

import numpy as np


def db_to_ratio(db: float) -> float:
    """-20 dB → 0.1."""
    return float(10.0 ** (db / 20.0))


class GainStage:
    """The gain (dB) currently set, ramped in over the next chunk that passes through."""

    def __init__(self) -> None:
        self._current = 1.0
        self._target = 1.0
        self.db = 0.0

    def set_db(self, db: float) -> None:
        """Gain for audio from the next chunk on (0 dB: as written; negative: quieter)."""
        self.db = db
        self._target = db_to_ratio(db)

    def reset(self) -> None:
        """Back to 0 dB at once (nothing playing: no ramp needed)."""
        self.set_db(0.0)
        self._current = 1.0

    @property
    def unity(self) -> bool:
        """True while audio passes unchanged (nothing to ramp, 0 dB)."""
        return self._current == self._target == 1.0

    def apply(self, pcm: np.ndarray) -> np.ndarray:
        """``pcm`` at the gain set, ramping from the previous gain over this chunk."""
        start, end = self._current, self._target
        if self.unity or len(pcm) == 0:
            return pcm
        self._current = end
        gain: float | np.ndarray = end if start == end else np.linspace(start, end, len(pcm))
        scaled = np.rint(pcm.astype(np.float64) * gain)
        return np.clip(scaled, -32768, 32767).astype(np.int16)
