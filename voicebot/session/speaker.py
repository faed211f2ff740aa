"""Spoken replies as interruptible handles (the LiveKit ``SpeechHandle`` idea).

The session never blocks on the bot talking: it starts a reply, keeps
listening, and interrupts the handle when the caller barges in.
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
        handle = SpeechHandle(text, interruptible=interruptible)
        handle._start(asyncio.create_task(self._play(handle)), self._output)
        self.current = handle
        return handle

    def interrupt(self) -> bool:
        """Barge-in: stop the current reply if it may be interrupted."""
        handle = self.current
        return bool(handle and handle.interruptible and handle.interrupt())

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
