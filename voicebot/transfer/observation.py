"""What the session tells the transfer policy about one caller turn.

A plain value with no reference to Rasa, the endpointer or the transport: the
session copies the facts in, so the policy can be tested from hand-written
turns and replayed from a stored call record.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

_WORD = re.compile(r"[A-Za-z0-9]+(?:['’][A-Za-z]+)?")


def count_words(text: str) -> int:
    """Spoken words in a transcript; "don't" is one word, "4321" is one."""
    return len(_WORD.findall(text))


@dataclass(frozen=True)
class TurnObservation:
    """One caller turn as the policy sees it.

    ``index`` is the call record's turn index (strictly increasing; gaps are
    fine).  ``at_s`` is seconds since the call was answered.  ``audio_stats``
    comes from the endpointer: ``rms_dbfs`` (level of the voiced frames),
    ``voiced_s`` (seconds of speech) and ``duration_s``; it is empty for DTMF.
    ``bot_text`` is what the bot answered to this turn.  ``dialogue_failed``
    marks a turn where Rasa or STT errored.  ``made_progress`` is True when
    this turn completed something for the caller (balance told, card blocked),
    False when it clearly did not, None when the session cannot tell.
    """

    index: int
    at_s: float
    caller_text: str = ""
    intent: str | None = None
    confidence: float | None = None
    intent_ranking: Sequence[tuple[str, float]] = ()
    dtmf: str | None = None
    audio_stats: Mapping[str, float] = field(default_factory=dict)
    bot_text: str = ""
    dialogue_failed: bool = False
    made_progress: bool | None = None
    # The dialogue itself cannot go on (e.g. "identity_failed" after three wrong
    # PINs): a complexity category in its own words, not an intent to re-judge.
    dialogue_gave_up: str | None = None

    def __post_init__(self) -> None:
        # Freeze the containers too, so a stored turn cannot change under the
        # policy's history.
        ranking = tuple((str(name), float(prob)) for name, prob in self.intent_ranking)
        object.__setattr__(self, "intent_ranking", ranking)
        object.__setattr__(self, "audio_stats", dict(self.audio_stats))
        object.__setattr__(self, "caller_text", self.caller_text or "")

    def __hash__(self) -> int:
        return hash((self.index, self.at_s, self.caller_text))

    @property
    def rms_dbfs(self) -> float | None:
        value = self.audio_stats.get("rms_dbfs")
        return None if value is None else float(value)

    @property
    def voiced_s(self) -> float | None:
        value = self.audio_stats.get("voiced_s")
        return None if value is None else float(value)

    @property
    def words_per_s(self) -> float | None:
        """Words per second of *voiced* audio: pauses do not count, so a
        caller who hesitates does not look slow and one who rushes shows."""
        voiced = self.voiced_s
        if not voiced or voiced <= 0 or not self.caller_text:
            return None
        return count_words(self.caller_text) / voiced

    @property
    def is_keypad(self) -> bool:
        """A DTMF turn with nothing spoken."""
        return self.dtmf is not None and not self.caller_text.strip()

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form, for replaying a call into the policy."""
        return {
            "index": self.index,
            "at_s": self.at_s,
            "caller_text": self.caller_text,
            "intent": self.intent,
            "confidence": self.confidence,
            "intent_ranking": [list(pair) for pair in self.intent_ranking],
            "dtmf": self.dtmf,
            "audio_stats": dict(self.audio_stats),
            "bot_text": self.bot_text,
            "dialogue_failed": self.dialogue_failed,
            "made_progress": self.made_progress,
            "dialogue_gave_up": self.dialogue_gave_up,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TurnObservation:
        ranking = [(str(name), float(prob)) for name, prob in data.get("intent_ranking", ())]
        return cls(**{**data, "intent_ranking": ranking})
