"""The session's ear: frames in, events out, on the media clock.

It reads the channel, feeds audio to turn taking, notes key presses, and
posts what the conversation must react to: utterances, barge-in speech, keys,
the inter-digit timeout, a silence timeout and the hang-up.  Time is seconds
of caller audio received, so a fixture fed faster than real time times out
exactly like a phone call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import numpy as np

from voicebot.audio.endpointing import (
    EndpointEvent,
    NoiseDiscarded,
    SpeechConfirmed,
    SpeechStarted,
    UtteranceEnded,
)
from voicebot.core.frames import AudioFrame, DtmfFrame, HangupFrame
from voicebot.core.logs import CallLogger
from voicebot.session.events import DigitsTimedOut, Inbox, SilenceTimedOut
from voicebot.session.keypad import KeypadEntry
from voicebot.telephony.channel import CallChannel


class Listening:
    def __init__(
        self,
        inbox: Inbox,
        keypad: KeypadEntry,
        silence_prompt_s: float,
        log: CallLogger,
    ) -> None:
        self.inbox = inbox
        self.keypad = keypad
        self.silence_prompt_s = silence_prompt_s
        self.log = log
        self.media_time = 0.0
        self._listening_since = 0.0
        self._caller_speaking = False

    async def read(
        self, channel: CallChannel, push_audio: Callable[[np.ndarray], Awaitable[None]]
    ) -> None:
        """Read the channel to its end; ``push_audio`` takes each frame's PCM (awaited:
        the VAD runs off the loop, and a call's frames stay in order)."""
        try:
            async for frame in channel.frames():
                if isinstance(frame, AudioFrame):
                    self.media_time += frame.duration_s
                    await push_audio(frame.pcm)
                    self._check_timers()
                elif isinstance(frame, DtmfFrame):
                    self.keypad.pressed_at(self.media_time)
                    self.inbox.post(frame)
                elif isinstance(frame, HangupFrame):
                    self.inbox.post(frame)
                    return
            self.inbox.post(HangupFrame("media ended"))
        except Exception as exc:
            self.log.error("input_failed", error=repr(exc))
            self.inbox.post(HangupFrame(f"input failed: {exc}"))

    def on_endpoint_event(self, event: EndpointEvent) -> None:
        """Turn taking's callback: track the caller's voice, pass on what matters."""
        if isinstance(event, SpeechStarted):
            self._caller_speaking = True
        elif isinstance(event, UtteranceEnded):
            self._caller_speaking = False
            self._listening_since = self.media_time
            self.inbox.post(event)
        elif isinstance(event, SpeechConfirmed):
            self.inbox.post(event)
        elif isinstance(event, NoiseDiscarded):
            self._caller_speaking = False
            # One line per blip: a caller whose words vanish shows up here, not as a turn.
            self.log.event(
                "noise_discarded",
                started_at=round(event.started_at, 2),
                voiced_s=round(event.voiced_s, 3),
                peak_prob=round(event.peak_prob, 3),
                peak_dbfs=round(event.peak_dbfs, 1),
            )

    def become_idle(self) -> None:
        """The bot has answered everything: the silence clock starts now."""
        if not self.inbox.idle.is_set():
            self._listening_since = self.media_time
            self.inbox.idle.set()

    def _check_timers(self) -> None:
        if self.keypad.timed_out(self.media_time):
            self.inbox.post(DigitsTimedOut())
        quiet = self.inbox.idle.is_set() and not self._caller_speaking and not self.keypad.pending
        if quiet and self.media_time - self._listening_since >= self.silence_prompt_s:
            self._listening_since = self.media_time
            self.inbox.post(SilenceTimedOut())
