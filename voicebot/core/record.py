"""The call record: what happened on a call, in a form agents and auditors read.

The record is built turn by turn and saved after every turn, so a crash or a
hang-up never loses the transcript.  ``to_dict`` is the JSON that
``voicebot simulate --json`` prints and the call store keeps.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

from voicebot.core.redaction import scrub_numbers


def utc_now() -> str:
    """ISO-8601 UTC timestamp with milliseconds, the format of every record time."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass
class Turn:
    """One exchange: what the caller said or keyed, and what the bot answered.

    Turn 0 of every call is the disclosure, spoken before the caller says
    anything; its ``caller_text`` is ``None``.
    """

    index: int
    at: str
    offset_s: float  # seconds since the call was answered
    caller_text: str | None
    input: str  # "speech", "dtmf", "none" (the disclosure, silence prompts)
    intent: str | None = None
    confidence: float | None = None
    bot_text: str = ""
    bot_interrupted: bool = False
    redacted: bool = False
    # Seconds per stage (endpoint_wait_s, stt_s, stt_wait_s, dialogue_s,
    # tts_first_audio_s, first_packet_s), plus stt_early (1.0: the transcript was
    # taken at the caller's pause), stt_runs (STT runs for the turn, dropped ones too)
    # and reply_s (wall clock from the end of the turn to the reply's first packet out).
    timings: dict[str, float] = field(default_factory=dict)
    audio: dict[str, float] = field(default_factory=dict)
    error: str | None = None


@dataclass
class CallRecord:
    """Everything voicebot keeps about one call (never a PIN)."""

    call_id: str
    caller_id: str | None
    transport: str
    started_at: str = field(default_factory=utc_now)
    # The transport's own name for the call (SIP Call-ID, carrier callSid),
    # chosen by the caller's side: for correlating logs and traces only, never a key.
    wire_call_id: str | None = None
    ended_at: str | None = None
    disclosure: dict[str, str] | None = None
    turns: list[Turn] = field(default_factory=list)
    verified: dict[str, bool | None] = field(
        default_factory=lambda: {"caller_id_matched": None, "pin_verified": None}
    )
    transfer: dict[str, Any] | None = None
    outcome: str = "in_progress"
    end_reason: str | None = None
    errors: list[str] = field(default_factory=list)
    _t0: float = field(default_factory=time.monotonic, repr=False)
    # The caller's timeline when the transport has its own (a scripted caller
    # runs faster than real time); None = the wall clock since the call started.
    _clock: Callable[[], float] | None = field(default=None, repr=False)

    def offset(self) -> float:
        """Seconds since the call started, for turn offsets."""
        if self._clock is not None:
            return round(self._clock(), 3)
        return round(time.monotonic() - self._t0, 3)

    def add_turn(self, caller_text: str | None, input_kind: str, **fields: Any) -> Turn:
        """Record a turn; card numbers and PIN-like digit runs never enter the record."""
        turn = Turn(
            index=len(self.turns),
            at=utc_now(),
            offset_s=self.offset(),
            caller_text=scrub_numbers(caller_text) if caller_text else caller_text,
            input=input_kind,
            **fields,
        )
        self.turns.append(turn)
        return turn

    def caller_turns(self) -> list[Turn]:
        return [t for t in self.turns if t.caller_text is not None]

    def finish(self, outcome: str, reason: str) -> None:
        if self.ended_at is None:
            self.ended_at = utc_now()
            self.outcome = outcome
            self.end_reason = reason

    def to_dict(self) -> dict[str, Any]:
        data = {
            f.name: copy.deepcopy(getattr(self, f.name))
            for f in fields(self)
            if not f.name.startswith("_")
        }
        data["turns"] = [asdict(turn) for turn in self.turns]
        return data
