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
    AudioFrame,
    DtmfFrame,
    HangupFrame,
    InputFrame,
    silence,
    split_frames,
)

# Silence after each spoken turn: longer than any sane end-of-turn setting.
TRAILING_SILENCE_S = 1.5
# Silence after keyed digits: lets the inter-digit timer expire for short entries.
AFTER_DIGITS_SILENCE_S = 2.5


class FixtureError(ValueError):
    """A turn specification that cannot be played (bad path, bad digits, bad audio)."""


@dataclass(frozen=True)
class FixtureTurn:
    """One scripted caller turn: a recorded utterance or keyed digits."""

    source: str
    pcm: np.ndarray | None = None
    digits: str | None = None


def parse_turn(spec: str, base_dir: Path | None = None) -> FixtureTurn:
    """``dtmf:1234`` or a WAV path (absolute, or relative to ``base_dir``)."""
    if spec.startswith("dtmf:"):
        digits = spec.removeprefix("dtmf:")
        bad = sorted(set(digits) - DTMF_DIGITS)
        if not digits or bad:
            raise FixtureError(
                f"{spec!r}: DTMF turns take digits 0-9, *, #, A-D (got {bad or 'none'})"
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
    """Collects the bot's audio; play-out is instantaneous."""

    timeline: list[tuple[str, np.ndarray]] = field(default_factory=list)
    replies: list[list[np.ndarray]] = field(default_factory=lambda: [[]])

    def write(self, pcm: np.ndarray) -> None:
        self.timeline.append(("bot", pcm))
        self.replies[-1].append(pcm)

    def clear(self) -> None:
        self._close_reply()

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
        self.output = FixtureOutput()
        self.hung_up_by_bot = False
        self._turns = turns
        self._wait_idle: Callable[[], Awaitable[None]] | None = None

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
            for frame in self._turn_frames(turn):
                yield frame
        if not await self._until_bot_listens():
            yield HangupFrame("caller gave up waiting")
            return
        yield HangupFrame("scripted caller finished")

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
        return True

    async def hangup(self) -> None:
        self.hung_up_by_bot = True
