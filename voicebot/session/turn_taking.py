"""Turn taking for one call: endpointing, early transcription, semantic end of turn.

The slow part of a reply is not Rasa or TTS but waiting — for the caller to be
surely finished, then for Whisper.  This overlaps the two::

    caller stops ─ pause_s ─► STT starts on the words so far (SpeechPaused)
                                 │
                                 ├─ caller talks again ──► result dropped (SpeechResumed)
                                 ├─ reads finished ───────► turn ends now (end_turn), or once
                                 │                          the silence reaches the words'
                                 │                          own wait ("No." may go on)
                                 └─ reads unfinished ─────► turn ends at end_silence_s,
                                                            transcript already there

The audio at the pause is exactly the audio at the end of the turn (the
endpointer keeps ``pause_s`` of trailing silence either way), so an early
transcript is reused as is, never approximated.

On compressed time (fixtures) a whole caller turn is pushed in one go, so the
endpointer's silence rule ends the turn before any early transcript returns:
the result is the same on every run, and the early STT still saves the wait.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import NamedTuple, Protocol

import numpy as np

from voicebot.audio.endpointing import (
    Endpointer,
    EndpointEvent,
    SpeechPaused,
    SpeechResumed,
    UtteranceEnded,
)
from voicebot.core.frames import Utterance
from voicebot.speech.stt import Transcript

# Ended turns whose transcript nobody has asked for yet (the bot still busy with an
# earlier one).  More than this means nobody is listening (the caller on hold).
MAX_UNCLAIMED_TURNS = 4


class SpeechToText(Protocol):
    """What turn taking needs from STT (``Transcriber`` satisfies it)."""

    async def transcribe(self, pcm: np.ndarray) -> Transcript: ...


@dataclass
class _Early:
    """One transcription started at a pause, keyed by the audio it reads."""

    key: tuple[float, float]
    task: asyncio.Task[Transcript]


@dataclass(frozen=True, slots=True)
class TurnTranscript:
    """A caller turn's transcript and what it cost the caller in waiting."""

    transcript: Transcript
    wait_s: float  # from the end of the turn to the transcript (what the caller hears)
    early: bool  # taken at the pause, before the turn ended
    stt_runs: int  # transcriptions started for this turn, including dropped ones
    ended_at: float  # perf_counter() when the turn ended (the reply's clock starts here)

    def timings(self, utterance: Utterance) -> dict[str, float]:
        """The turn's listening and STT timings, as the call record keeps them."""
        return {
            "endpoint_wait_s": utterance.endpoint_wait_s,
            "stt_s": self.transcript.elapsed_s,  # compute, incl. queueing for a worker
            "stt_wait_s": self.wait_s,  # what the caller waited after the turn ended
            "stt_early": float(self.early),
            "stt_runs": float(self.stt_runs),
        }


class _EndedTurn(NamedTuple):
    """A turn that has ended and whose transcript the session has not asked for yet."""

    early: _Early | None  # the transcription started at the pause, if it read this audio
    runs: int  # STT runs started for the turn
    ended_at: float  # perf_counter() when it ended


def _key(utterance: Utterance) -> tuple[float, float]:
    return (utterance.started_at, utterance.ended_at)


# One thread for every call's VAD, beside STT's own: inference is ~1 ms a window,
# and ONNX Runtime releases the GIL while it runs.
_VAD_WORKER = ThreadPoolExecutor(1, thread_name_prefix="vad")


class TurnTaking:
    """Feeds caller audio to the endpointer and STT; reports events to ``on_event``.

    ``end_wait`` judges an early transcript: ``None`` when it reads unfinished,
    else the seconds of silence after the words at which they end the turn (0:
    at once).  While the caller stays quiet the turn ends then, without waiting
    out the endpointer's full silence; the wait runs on the media clock.
    Ended turns keep their early transcript until the session asks for it, so
    a caller who talks on while the bot is busy does not cost a re-run.
    """

    def __init__(
        self,
        endpointer: Endpointer,
        stt: SpeechToText,
        on_event: Callable[[EndpointEvent], None],
        end_wait: Callable[[str], float | None] | None = None,
    ) -> None:
        self.endpointer = endpointer
        self._stt = stt
        self._on_event = on_event
        self._end_wait = end_wait
        self._current: _Early | None = None  # for the turn still open
        self._ends_after: float | None = None  # the current early transcript's wait
        self._runs = 0  # early runs for the turn still open
        self._ended: dict[tuple[float, float], _EndedTurn] = {}
        self.early_ends = 0  # turns ended on their words, not on silence
        self.transcribing = True  # False while nobody will read the words (on hold)

    def push(self, pcm: np.ndarray) -> None:
        """Feed caller audio; events go to ``on_event`` in order."""
        for event in self.endpointer.push(pcm):
            self._handle(event)
        self._end_if_waited()

    async def push_off_loop(self, pcm: np.ndarray) -> None:
        """``push`` with Silero's inference on the VAD worker thread: the loop keeps
        clocking every call's audio meanwhile.  Frames of one call stay in order
        (the caller awaits each); only this call's VAD state is touched there."""
        loop = asyncio.get_running_loop()
        probs = await loop.run_in_executor(_VAD_WORKER, self.endpointer.vad.push, pcm)
        for event in self.endpointer.push_scored(pcm, probs):
            self._handle(event)
        self._end_if_waited()

    async def transcript(self, utterance: Utterance) -> TurnTranscript:
        """The turn's transcript: the early one when it read this very audio."""
        asked = time.perf_counter()
        turn = self._ended.pop(_key(utterance), None) or _EndedTurn(None, 0, asked)
        if turn.early is not None:
            transcript = await turn.early.task
            wait_s = time.perf_counter() - asked
            return TurnTranscript(transcript, wait_s, True, turn.runs, turn.ended_at)
        transcript = await self._stt.transcribe(utterance.pcm)
        wait_s = time.perf_counter() - asked
        return TurnTranscript(transcript, wait_s, False, turn.runs + 1, turn.ended_at)

    def close(self) -> None:
        """Drop every transcription still queued (the call is over)."""
        for turn in self._ended.values():
            _drop(turn.early)
        self._ended.clear()
        _drop(self._current)
        self._current = None

    # ------------------------------------------------------------------ events

    def _handle(self, event: EndpointEvent) -> None:
        if isinstance(event, SpeechPaused):
            self._start_early(event.utterance)
        elif isinstance(event, SpeechResumed):
            _drop(self._current)
            self._current = None
            self._ends_after = None
        elif isinstance(event, UtteranceEnded):
            self._keep_for(event.utterance)
        self._on_event(event)

    def _keep_for(self, utterance: Utterance) -> None:
        current, self._current = self._current, None
        self._ends_after = None
        if current is not None and current.key != _key(utterance):
            _drop(current)  # a forced end (max length) cut different audio
            current = None
        self._ended[_key(utterance)] = _EndedTurn(current, self._runs, time.perf_counter())
        self._runs = 0
        while len(self._ended) > MAX_UNCLAIMED_TURNS:
            oldest = next(iter(self._ended))
            _drop(self._ended.pop(oldest).early)

    def _start_early(self, utterance: Utterance) -> None:
        _drop(self._current)
        self._current = None
        self._ends_after = None
        if not self.transcribing:
            return
        task = asyncio.ensure_future(self._stt.transcribe(utterance.pcm))
        self._current = _Early(_key(utterance), task)
        self._runs += 1
        if self._end_wait is not None:
            task.add_done_callback(self._judge)

    def _judge(self, task: asyncio.Task[Transcript]) -> None:
        """An early transcript is in: note how long its words want of silence."""
        current = self._current
        if current is None or current.task is not task or task.cancelled():
            return
        if task.exception() is not None or self._end_wait is None:
            return
        self._ends_after = self._end_wait(task.result().text)
        self._end_if_waited()

    def _end_if_waited(self) -> None:
        """End the turn once the caller has been quiet as long as the words asked."""
        wait = self._ends_after
        if wait is None or self._current is None or not self.endpointer.paused:
            return
        if self.endpointer.quiet_s() + 1e-9 >= wait:
            self._ends_after = None
            self.early_ends += 1
            for event in self.endpointer.end_turn():
                self._handle(event)


def _drop(early: _Early | None) -> None:
    """Forget a stale transcription; one still queued never runs."""
    if early is not None:
        early.task.add_done_callback(_retrieve)
        early.task.cancel()


def _retrieve(task: asyncio.Task[Transcript]) -> None:
    """Mark a dropped task's outcome as seen (no 'exception never retrieved')."""
    if not task.cancelled():
        task.exception()


def unreadable(utterance: Utterance, transcript: Transcript) -> dict[str, float]:
    """What to log about speech STT could not read (to tell noise from a bad line)."""
    return {
        "voiced_s": round(utterance.stats.get("voiced_s", 0.0), 2),
        "audio_s": round(transcript.audio_s, 2),
        "rms_dbfs": round(utterance.stats.get("rms_dbfs", 0.0), 1),
        "no_speech_prob": round(transcript.no_speech_prob, 2),
        "avg_logprob": round(transcript.avg_logprob, 2),
    }
