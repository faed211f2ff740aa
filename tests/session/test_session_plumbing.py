"""The session's plumbing, each part alone: the inbox, the ear (media clock) and replies."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import numpy as np

from voicebot.audio.endpointing import SpeechConfirmed, SpeechStarted, UtteranceEnded
from voicebot.core.frames import AudioFrame, DtmfFrame, HangupFrame, Utterance, silence
from voicebot.core.logs import CallLogger
from voicebot.core.record import CallRecord
from voicebot.session.events import DigitsTimedOut, Inbox, SilenceTimedOut
from voicebot.session.keypad import KeypadEntry
from voicebot.session.listening import Listening
from voicebot.session.record_keeper import RecordKeeper
from voicebot.session.replies import Replies
from voicebot.session.speaker import Speaker


async def test_inbox_busy_until_handled_and_get_unless_loses_nothing() -> None:
    inbox = Inbox()
    inbox.idle.set()
    inbox.post(HangupFrame("bye"))
    assert not inbox.idle.is_set()  # a posted event makes the bot busy
    assert await inbox.get_unless(asyncio.Event().wait()) == HangupFrame("bye")
    finished = asyncio.ensure_future(asyncio.sleep(0))
    assert await inbox.get_unless(finished) is None
    inbox.requeue(DtmfFrame("1"))  # an event arriving after a race is still there
    assert await inbox.get() == DtmfFrame("1") and inbox.empty()


class Channel:
    call_id, caller_id, transport = "c", "+1", "test"

    def __init__(self, frames: list) -> None:
        self._frames = frames

    async def frames(self) -> AsyncIterator:
        for frame in self._frames:
            yield frame


def _ear(silence_s: float = 1.0) -> tuple[Listening, Inbox]:
    inbox = Inbox()
    return Listening(inbox, KeypadEntry(0.5), silence_s, CallLogger("c")), inbox


def _drain(inbox: Inbox) -> list:
    events = []
    while not inbox.empty():
        events.append(inbox._events.get_nowait())
    return events


async def _ignore(pcm: np.ndarray) -> None:
    """A turn-taking stand-in that discards the audio."""


async def test_the_ear_counts_media_time_and_posts_keys_and_the_hangup() -> None:
    ear, inbox = _ear()
    pushed: list[int] = []
    frames = [
        AudioFrame(silence(0.02)),
        DtmfFrame("5"),
        AudioFrame(silence(0.02)),
        HangupFrame("bye"),
    ]

    async def push(pcm: np.ndarray) -> None:
        pushed.append(len(pcm))

    await ear.read(Channel(frames), push)
    assert pushed == [160, 160] and round(ear.media_time, 3) == 0.04
    assert _drain(inbox) == [DtmfFrame("5"), HangupFrame("bye")]


async def test_media_ending_is_a_hangup() -> None:
    ear, inbox = _ear()
    await ear.read(Channel([]), _ignore)
    assert _drain(inbox) == [HangupFrame("media ended")]


async def test_silence_and_interdigit_timeouts_run_on_the_media_clock() -> None:
    ear, inbox = _ear(silence_s=0.1)
    ear.become_idle()
    frames = [AudioFrame(silence(0.02)) for _ in range(6)]
    await ear.read(Channel(frames), _ignore)
    events = _drain(inbox)
    assert events[0] == SilenceTimedOut() and events[-1] == HangupFrame("media ended")
    ear, inbox = _ear(silence_s=10.0)
    ear.keypad.press("1", expects_pin=True)
    await ear.read(
        Channel([DtmfFrame("1"), *(AudioFrame(silence(0.1)) for _ in range(6))]), _ignore
    )
    assert DigitsTimedOut() in _drain(inbox)


async def test_a_speaking_caller_is_not_prompted_for_silence() -> None:
    ear, inbox = _ear(silence_s=0.1)
    ear.become_idle()
    ear.on_endpoint_event(SpeechStarted(0.0))
    await ear.read(Channel([AudioFrame(silence(0.1)) for _ in range(3)]), _ignore)
    assert SilenceTimedOut() not in _drain(inbox)
    utterance = Utterance(np.zeros(800, dtype=np.int16), 0.0, 0.1, 0.0, {})
    ear.on_endpoint_event(UtteranceEnded(utterance))
    ear.on_endpoint_event(SpeechConfirmed(0.3))
    assert [type(e) for e in _drain(inbox)] == [UtteranceEnded, SpeechConfirmed]


class Output:
    def __init__(self) -> None:
        self.writes = 0
        self.gains: list[float] = []

    def write(self, pcm: np.ndarray) -> None:
        self.writes += 1

    def clear(self) -> None:
        pass

    def set_gain(self, db: float) -> None:
        self.gains.append(db)

    async def drained(self) -> None:
        return None

    async def playing(self) -> None:
        return None


class Voice:
    async def synthesize_sentences(self, text: str) -> AsyncIterator[np.ndarray]:
        yield np.full(800, 1, dtype=np.int16)


def _replies() -> tuple[Replies, Inbox, RecordKeeper]:
    inbox = Inbox()
    keeper = RecordKeeper(CallRecord("c", "+1", "test"), None, CallLogger("c"))
    return Replies(Speaker(Voice(), Output()), inbox, keeper, inbox.idle.set), inbox, keeper


async def test_a_reply_is_timed_into_its_turn_and_the_bot_turns_idle() -> None:
    replies, inbox, keeper = _replies()
    turn = keeper.record.add_turn("hi", "speech", bot_text="Hello there.")
    ended_at = time.perf_counter()
    await replies.answer(turn, end_call=True, ended_at=ended_at)
    assert turn.timings["tts_first_audio_s"] >= 0.0
    assert 0.0 <= turn.timings["reply_s"] < 5.0  # from the caller's end of turn to first packet
    assert not turn.bot_interrupted and inbox.idle.is_set()
    silent = keeper.record.add_turn("hm", "speech", bot_text="")
    await replies.answer(silent, end_call=False, ended_at=ended_at)
    assert silent.timings == {}  # nothing to say: nothing timed


async def test_a_prompt_plays_in_the_background_then_the_bot_is_idle() -> None:
    replies, inbox, _ = _replies()
    handle = replies.prompt("Are you still there?")
    await handle.wait()
    await asyncio.sleep(0)
    assert inbox.idle.is_set()
    inbox.idle.clear()
    inbox.post(DtmfFrame("1"))  # an event waiting: not idle after the prompt
    await replies.prompt("Sorry?").wait()
    await asyncio.sleep(0)
    assert not inbox.idle.is_set()


async def test_only_an_interruptible_reply_ducks_and_a_ducked_end_is_restored() -> None:
    output = Output()
    speaker = Speaker(Voice(), output)
    disclosure = speaker.say("You are talking to an automated assistant.", interruptible=False)
    assert not speaker.duck(15) and output.gains == []  # said in full, at full level
    await disclosure.wait()
    reply = speaker.say("Here is a long answer.")
    assert speaker.duck(15) and not speaker.duck(15)  # once: already ducked
    await reply.wait()  # it finished while ducked (the caller's onset came late)
    assert reply.done and reply.ducked
    speaker.say("Next reply.")  # starts at full level
    assert output.gains == [-15, 0.0] and not reply.ducked
    assert not speaker.restore()  # nothing to restore
