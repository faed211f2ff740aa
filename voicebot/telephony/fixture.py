"""A scripted caller that plays recorded WAV turns and keypad digits into a call.

It is a transport like SIP or the media stream, so ``voicebot simulate`` and
the end-to-end tests exercise the same session code a phone call does.  It
runs on compressed time: audio is fed as fast as the session consumes it, and
between turns the caller politely waits until the bot has finished answering.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from voicebot.audio.wavfile import read_audio, write_wav
from voicebot.core.frames import (
    DTMF_DIGITS,
    SAMPLE_RATE,
    AudioFrame,
    DtmfFrame,
    HangupFrame,
    InputFrame,
    silence,
    split_frames,
)

# A phone's keypad: DTMF's A-D exist on the wire but no caller can press them,
# and the session would drop them (they are neither digits nor * or #).
KEYPAD_DIGITS = DTMF_DIGITS - frozenset("ABCD")

# Silence after each spoken turn: longer than any sane end-of-turn setting.
TRAILING_SILENCE_S = 1.5
# Silence after keyed digits: lets the inter-digit timer expire for short entries.
AFTER_DIGITS_SILENCE_S = 2.5
# After the script the caller stays on the line, silent, like a real caller who
# stopped talking: the bot's silence prompt and goodbye end the call.  This cap
# only stops a bot that never would.
SILENT_CALLER_CAP_S = 120.0
HANGUP_TURN = "hangup"


class FixtureError(ValueError):
    """A turn specification that cannot be played (bad path, bad digits, bad audio)."""


@dataclass(frozen=True)
class FixtureTurn:
    """One scripted caller turn: a recorded utterance or keyed digits."""

    source: str
    pcm: np.ndarray | None = None
    digits: str | None = None
    hangup: bool = False  # the caller hangs up here


def parse_turn(spec: str, base_dir: Path | None = None) -> FixtureTurn:
    """``dtmf:1234``, ``hangup``, or a WAV path (absolute, or relative to ``base_dir``)."""
    if spec == HANGUP_TURN:
        return FixtureTurn(spec, hangup=True)
    if spec.startswith("dtmf:"):
        digits = spec.removeprefix("dtmf:")
        bad = sorted(set(digits) - KEYPAD_DIGITS)
        if not digits or bad:
            raise FixtureError(
                f"{spec!r}: DTMF turns take the phone keypad's 0-9, * and # "
                f"(got {''.join(bad) or 'no digits'})"
            )
        return FixtureTurn(spec, digits=digits)
    path = Path(spec)
    if base_dir is not None and not path.is_absolute():
        path = base_dir / path
    try:
        pcm = read_audio(path)
    except ValueError as exc:
        raise FixtureError(f"{spec}: {exc}") from exc
    return FixtureTurn(spec, pcm=pcm)


@dataclass
class FixtureOutput:
    """Collects the bot's audio; play-out is instantaneous, but ``played_until``
    says when it would have ended on the caller's timeline (``clock``)."""

    timeline: list[tuple[str, np.ndarray]] = field(default_factory=list)
    replies: list[list[np.ndarray]] = field(default_factory=lambda: [[]])
    clock: Callable[[], float] = lambda: 0.0
    played_until: float = 0.0

    def write(self, pcm: np.ndarray) -> None:
        self.timeline.append(("bot", pcm))
        self.replies[-1].append(pcm)
        self.played_until = max(self.played_until, self.clock()) + len(pcm) / SAMPLE_RATE

    def clear(self) -> None:
        self._close_reply()

    def set_gain(self, db: float) -> None:
        """Play-out is instantaneous: everything written has already been "heard"."""

    async def drained(self) -> None:
        self._close_reply()

    async def playing(self) -> None:
        """Play-out is instantaneous."""

    def _close_reply(self) -> None:
        if self.replies[-1]:
            self.replies.append([])

    def save(self, out_dir: Path) -> list[Path]:
        """Write ``bot-NN.wav`` per reply and ``conversation.wav`` with both sides."""
        out_dir.mkdir(parents=True, exist_ok=True)
        written = []
        for i, chunks in enumerate(r for r in self.replies if r):
            path = out_dir / f"bot-{i:02d}.wav"
            write_wav(path, np.concatenate(chunks))
            written.append(path)
        if self.timeline:
            gap = silence(0.3)
            parts = [p for _, pcm in self.timeline for p in (pcm, gap)]
            path = out_dir / "conversation.wav"
            write_wav(path, np.concatenate(parts))
            written.append(path)
        return written


class FixtureChannel:
    """A call from a scripted caller."""

    transport = "fixture"

    def __init__(
        self,
        turns: list[FixtureTurn],
        caller_id: str | None = None,
        call_id: str | None = None,
        patience_s: float | None = None,
    ) -> None:
        """``patience_s``: hang up when the bot keeps us waiting longer (on hold)."""
        self.call_id = call_id or f"sim-{uuid.uuid4().hex[:12]}"
        self.patience_s = patience_s
        self.caller_id = caller_id
        self.output = FixtureOutput(clock=self.clock)
        self.hung_up_by_bot = False
        self._turns = turns
        self._wait_idle: Callable[[], Awaitable[None]] | None = None
        self._caller_s = 0.0  # the caller's own timeline (see clock)

    def clock(self) -> float:
        """Seconds since the call started on the caller's timeline, not the run's.

        The run is compressed (audio goes in as fast as the session reads it,
        the bot's audio "plays" at once); a caller would have spent the length
        of their audio talking and the length of each reply listening.
        """
        return self._caller_s

    def attach(self, wait_idle: Callable[[], Awaitable[None]]) -> None:
        """Give the caller a way to know the bot has finished answering."""
        self._wait_idle = wait_idle

    async def frames(self) -> AsyncIterator[InputFrame]:
        for turn in self._turns:
            if not await self._until_bot_listens():
                yield HangupFrame("caller gave up waiting")
                return
            if self.hung_up_by_bot:
                return
            if turn.hangup:
                yield HangupFrame("caller hung up")
                return
            for frame in self._turn_frames(turn):
                yield self._advance(frame)
        async for frame in self._stay_silent():
            yield frame

    async def _stay_silent(self) -> AsyncIterator[InputFrame]:
        """The script is over: listen in silence until the bot ends the call."""
        waited = 0.0
        while waited < SILENT_CALLER_CAP_S:
            if not await self._until_bot_listens():
                yield HangupFrame("caller gave up waiting")
                return
            if self.hung_up_by_bot:
                return
            for frame in split_frames(silence(1.0)):
                yield self._advance(AudioFrame(frame))
            waited += 1.0
        yield HangupFrame("scripted caller gave up: the bot never ended the call")

    def _advance(self, frame: InputFrame) -> InputFrame:
        if isinstance(frame, AudioFrame):
            self._caller_s += frame.duration_s
        return frame

    def _turn_frames(self, turn: FixtureTurn) -> list[InputFrame]:
        frames: list[InputFrame] = []
        if turn.digits is not None:
            frames += [DtmfFrame(d) for d in turn.digits]
            tail = AFTER_DIGITS_SILENCE_S
        else:
            assert turn.pcm is not None
            self.output.timeline.append(("caller", turn.pcm))
            frames += [AudioFrame(f) for f in split_frames(turn.pcm)]
            tail = TRAILING_SILENCE_S
        frames += [AudioFrame(f) for f in split_frames(silence(tail))]
        return frames

    async def _until_bot_listens(self) -> bool:
        """False when our patience ran out first."""
        if self._wait_idle is None:
            return True
        try:
            await asyncio.wait_for(self._wait_idle(), self.patience_s)
        except TimeoutError:
            return False
        # The caller listened to the whole reply before going on.
        self._caller_s = max(self._caller_s, self.output.played_until)
        return True

    async def hangup(self) -> None:
        self.hung_up_by_bot = True
