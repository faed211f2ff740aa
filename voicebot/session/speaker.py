"""Spoken replies as interruptible handles (the LiveKit ``SpeechHandle`` idea).

The session never blocks on the bot talking: it starts a reply, keeps
listening, and interrupts the handle when the caller barges in.  Before that,
the moment the caller's voice may have begun, the handle is *ducked* (played
quieter from the next frame out) and restored if the voice was not confirmed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Protocol

import numpy as np

from voicebot.telephony.channel import MediaOutput


class SentenceSynthesizer(Protocol):
    def synthesize_sentences(self, text: str) -> AsyncIterator[np.ndarray]: ...


class SpeechHandle:
    """One reply on its way to the caller."""

    def __init__(self, text: str, *, interruptible: bool) -> None:
        self.text = text
        self.interruptible = interruptible
        self.interrupted = False
        self.ducked = False  # playing quieter: the caller may be barging in
        self.ducks = 0  # how often this reply gave way to a possible barge-in
        self.first_audio_s: float | None = None  # synthesis latency of sentence one
        self.first_packet_s: float | None = None  # from that audio to its first packet out
        self.first_packet_at: float | None = None  # perf_counter() when it went out
        self.samples_written = 0
        self._task: asyncio.Task[None] | None = None
        self._output: MediaOutput | None = None

    def _start(self, task: asyncio.Task[None], output: MediaOutput) -> None:
        self._task, self._output = task, output

    @property
    def done(self) -> bool:
        return self._task is None or self._task.done()

    def interrupt(self) -> bool:
        """Stop talking now: cancel synthesis and flush queued audio."""
        if self.done:
            return False
        self.interrupted = True
        assert self._task is not None and self._output is not None
        self._task.cancel()
        self._output.clear()
        self.restore()  # what plays next (hold music, the next reply) at full level
        return True

    def duck(self, db: float) -> bool:
        """The caller may be talking: play the rest ``db`` quieter, from the next frame.

        Only an interruptible reply gives way (the disclosure is said in full).
        """
        if self.done or not self.interruptible or self.ducked or db <= 0:
            return False
        assert self._output is not None
        self.ducked = True
        self.ducks += 1
        self._output.set_gain(-db)
        return True

    def restore(self) -> bool:
        """It was not speech after all (a cough): back to full level."""
        if not self.ducked:
            return False
        assert self._output is not None
        self.ducked = False
        self._output.set_gain(0.0)
        return True

    async def wait(self) -> None:
        """Wait until the reply has been fully played (or interrupted)."""
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(self._task)


class Speaker:
    """Turns text into queued audio on one call's output."""

    def __init__(self, synthesizer: SentenceSynthesizer, output: MediaOutput) -> None:
        self._synthesizer = synthesizer
        self._output = output
        self.current: SpeechHandle | None = None

    def say(self, text: str, *, interruptible: bool = True) -> SpeechHandle:
        if self.current is not None:
            self.current.restore()  # a reply that ended while ducked
        handle = SpeechHandle(text, interruptible=interruptible)
        handle._start(asyncio.create_task(self._play(handle)), self._output)
        self.current = handle
        return handle

    def interrupt(self) -> bool:
        """Barge-in: stop the current reply if it may be interrupted."""
        handle = self.current
        return bool(handle and handle.interruptible and handle.interrupt())

    def duck(self, db: float) -> bool:
        """Possible barge-in: the current reply gives way (see ``SpeechHandle.duck``)."""
        return bool(self.current and self.current.duck(db))

    def restore(self) -> bool:
        """The possible barge-in faded: the reply (if ducked) back to full level."""
        return bool(self.current and self.current.restore())

    @property
    def speaking(self) -> bool:
        return self.current is not None and not self.current.done

    async def _play(self, handle: SpeechHandle) -> None:
        started = time.perf_counter()
        async for pcm in self._synthesizer.synthesize_sentences(handle.text):
            self._output.write(pcm)
            if handle.first_audio_s is None:
                written = time.perf_counter()
                handle.first_audio_s = round(written - started, 4)
                await self._output.playing()
                handle.first_packet_at = time.perf_counter()
                handle.first_packet_s = round(handle.first_packet_at - written, 4)
            handle.samples_written += len(pcm)
        await self._output.drained()
