"""Early transcription and semantic end of turn, driven frame by frame like a live call.

The endpointer is the real one on a fake (energy) VAD; STT is a fake whose
answers are released by the test, so "STT finished before / after the caller
went on" is scripted exactly instead of raced.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from session_fakes import FakeVad, speech

from voicebot.audio.endpointing import (
    Endpointer,
    EndpointEvent,
    SpeechPaused,
    SpeechResumed,
    UtteranceEnded,
)
from voicebot.config import EndpointingConfig
from voicebot.core.frames import silence, split_frames
from voicebot.session.turn_taking import MAX_UNCLAIMED_TURNS, TurnTaking
from voicebot.speech.stt import Transcript

CONFIG = EndpointingConfig(
    speech_threshold=0.5, min_speech_s=0.15, pause_s=0.15, end_silence_s=1.0, pre_roll_s=0.1
)


class GatedStt:
    """Answers each transcription with the next text once the test releases it."""

    def __init__(self, *texts: str) -> None:
        self.texts = list(texts)
        self.calls: list[np.ndarray] = []
        self.release = asyncio.Event()
        self.release.set()

    async def transcribe(self, pcm: np.ndarray) -> Transcript:
        self.calls.append(pcm)
        text = self.texts.pop(0)
        await self.release.wait()
        return Transcript(text, -0.2, 0.01, len(pcm) / 8000, 0.0, 8.0)


class Call:
    """One call's turn taking with the events it produced, fed 20 ms at a time."""

    def __init__(self, stt: GatedStt, wait: float | str | None = "no judge") -> None:
        """``wait``: what every transcript's words ask of silence (None: unfinished)."""
        self.events: list[EndpointEvent] = []
        judge = None if wait == "no judge" else (lambda text: wait)
        self.turns = TurnTaking(
            Endpointer(CONFIG, FakeVad().stream()), stt, self.events.append, judge
        )

    async def feed(self, pcm: np.ndarray) -> None:
        for frame in split_frames(pcm):
            self.turns.push(frame)
            await asyncio.sleep(0)  # a live transport yields between packets

    async def feed_off_loop(self, pcm: np.ndarray) -> None:
        """As a live call feeds it: Silero on the VAD worker, one frame at a time."""
        for frame in split_frames(pcm):
            await self.turns.push_off_loop(frame)

    def of(self, kind: type) -> list:
        return [e for e in self.events if isinstance(e, kind)]


async def test_transcript_taken_at_the_pause_is_the_turns_transcript() -> None:
    stt = GatedStt("What's my balance?")
    call = Call(stt)
    await call.feed(np.concatenate([speech(1.0), silence(1.2)]))
    (paused,) = call.of(SpeechPaused)
    (ended,) = call.of(UtteranceEnded)
    assert np.array_equal(paused.utterance.pcm, ended.utterance.pcm)
    heard = await call.turns.transcript(ended.utterance)
    assert heard.transcript.text == "What's my balance?"
    assert heard.early and heard.stt_runs == 1 and len(stt.calls) == 1
    assert np.array_equal(stt.calls[0], ended.utterance.pcm)
    assert ended.utterance.endpoint_wait_s == pytest.approx(1.0, abs=0.04)  # no early end


async def test_caller_going_on_drops_the_early_transcript() -> None:
    stt = GatedStt("My card was", "My card was stolen yesterday.")
    stt.release.clear()
    call = Call(stt)
    await call.feed(np.concatenate([speech(0.8), silence(0.5)]))
    first_early = call.turns._current
    assert first_early is not None and len(stt.calls) == 1
    await call.feed(np.concatenate([speech(0.8), silence(1.2)]))
    assert first_early.task.cancelled()
    assert len(call.of(SpeechResumed)) == 1 and len(call.of(SpeechPaused)) == 2
    (ended,) = call.of(UtteranceEnded)
    stt.release.set()
    heard = await call.turns.transcript(ended.utterance)
    assert heard.transcript.text == "My card was stolen yesterday."
    assert heard.early and heard.stt_runs == 2


async def test_finished_words_end_the_turn_without_waiting_out_the_silence() -> None:
    stt = GatedStt("What are your opening hours?")
    stt.release.clear()
    call = Call(stt, wait=0.0)
    await call.feed(np.concatenate([speech(1.0), silence(0.3)]))
    assert call.of(SpeechPaused) and not call.of(UtteranceEnded)
    stt.release.set()
    await asyncio.sleep(0.01)
    (ended,) = call.of(UtteranceEnded)
    assert ended.utterance.endpoint_wait_s < 0.4
    assert call.turns.early_ends == 1
    heard = await call.turns.transcript(ended.utterance)
    assert heard.early and heard.transcript.text == "What are your opening hours?"
    await call.feed(silence(1.2))
    assert len(call.of(UtteranceEnded)) == 1  # the silence rule does not end it twice


async def test_unfinished_words_wait_for_the_full_silence() -> None:
    stt = GatedStt("My card was")
    call = Call(stt, wait=None)
    await call.feed(np.concatenate([speech(1.0), silence(0.6)]))
    assert not call.of(UtteranceEnded) and call.turns.early_ends == 0
    await call.feed(silence(0.6))
    (ended,) = call.of(UtteranceEnded)
    assert ended.utterance.endpoint_wait_s == pytest.approx(1.0, abs=0.04)


async def test_words_that_may_go_on_end_the_turn_after_their_own_wait() -> None:
    """ "Yeah, go ahead" without a full stop: a shorter silence than the full one."""
    stt = GatedStt("Yeah, go ahead")
    call = Call(stt, wait=0.5)
    await call.feed(np.concatenate([speech(1.0), silence(0.4)]))
    await asyncio.sleep(0.01)
    assert call.of(SpeechPaused) and not call.of(UtteranceEnded)  # transcript in, still waiting
    await call.feed(silence(0.2))
    (ended,) = call.of(UtteranceEnded)
    assert ended.utterance.endpoint_wait_s == pytest.approx(0.5, abs=0.04)
    assert call.turns.early_ends == 1


async def test_the_live_path_also_ends_the_turn_after_the_words_own_wait() -> None:
    """Calls feed audio through ``push_off_loop``: a wait the transcript asked for must be
    checked on every frame there too, not only when the transcript arrives (else the
    turn waited out the full end silence)."""
    stt = GatedStt("Yeah, go ahead")
    call = Call(stt, wait=0.5)
    await call.feed_off_loop(np.concatenate([speech(1.0), silence(0.4)]))
    await asyncio.sleep(0.01)
    assert call.of(SpeechPaused) and not call.of(UtteranceEnded)
    await call.feed_off_loop(silence(0.2))
    (ended,) = call.of(UtteranceEnded)
    assert ended.utterance.endpoint_wait_s == pytest.approx(0.5, abs=0.04)
    assert call.turns.early_ends == 1


async def test_a_wait_cut_short_by_more_words_ends_nothing() -> None:
    stt = GatedStt("No", "No, that's not what I said.")
    call = Call(stt, wait=0.5)
    await call.feed(np.concatenate([speech(0.5), silence(0.3), speech(0.6), silence(0.2)]))
    await asyncio.sleep(0.01)
    assert not call.of(UtteranceEnded)
    await call.feed(silence(0.5))
    (ended,) = call.of(UtteranceEnded)
    heard = await call.turns.transcript(ended.utterance)
    assert heard.transcript.text == "No, that's not what I said."


async def test_a_transcript_arriving_after_the_caller_went_on_ends_nothing() -> None:
    stt = GatedStt("I'd like to check.", "I'd like to check my balance, please.")
    stt.release.clear()
    call = Call(stt, wait=0.0)
    await call.feed(np.concatenate([speech(0.8), silence(0.3), speech(0.1)]))
    stt.release.set()
    await asyncio.sleep(0.01)
    assert not call.of(UtteranceEnded) and call.turns.early_ends == 0
    await call.feed(np.concatenate([speech(0.6), silence(0.3)]))
    await asyncio.sleep(0.01)
    (ended,) = call.of(UtteranceEnded)
    heard = await call.turns.transcript(ended.utterance)
    assert heard.transcript.text == "I'd like to check my balance, please."


async def test_an_ended_turn_keeps_its_transcript_while_the_caller_talks_on() -> None:
    """The bot may still be busy with turn one when turn two pauses."""
    stt = GatedStt("Hello.", "What's my balance?")
    call = Call(stt)
    await call.feed(np.concatenate([speech(0.5), silence(1.2), speech(0.8), silence(1.2)]))
    first, second = (e.utterance for e in call.of(UtteranceEnded))
    assert (await call.turns.transcript(first)).transcript.text == "Hello."
    assert (await call.turns.transcript(second)).transcript.text == "What's my balance?"
    assert len(stt.calls) == 2


async def test_audio_without_an_early_transcript_is_transcribed_at_the_end() -> None:
    stt = GatedStt("Agent.")
    call = Call(stt)
    await call.feed(np.concatenate([speech(0.6), silence(0.1)]))
    (utterance,) = [e.utterance for e in call.turns.endpointer.flush()]
    heard = await call.turns.transcript(utterance)
    assert heard.transcript.text == "Agent." and not heard.early and heard.stt_runs == 1


async def test_close_cancels_queued_transcriptions() -> None:
    stt = GatedStt("Hello.")
    stt.release.clear()
    call = Call(stt)
    await call.feed(np.concatenate([speech(0.5), silence(0.3)]))
    early = call.turns._current
    assert early is not None
    call.turns.close()
    await asyncio.sleep(0)
    assert early.task.cancelled()


async def test_on_hold_nothing_is_transcribed_and_unclaimed_turns_are_bounded() -> None:
    stt = GatedStt(*(f"Turn {i}." for i in range(10)))
    call = Call(stt)
    call.turns.transcribing = False
    await call.feed(np.concatenate([speech(0.5), silence(1.2)]))
    assert stt.calls == [] and len(call.of(UtteranceEnded)) == 1
    call.turns.transcribing = True
    for _ in range(MAX_UNCLAIMED_TURNS + 2):
        await call.feed(np.concatenate([speech(0.5), silence(1.2)]))
    assert len(call.turns._ended) == MAX_UNCLAIMED_TURNS
    latest = call.of(UtteranceEnded)[-1].utterance
    assert (await call.turns.transcript(latest)).early
