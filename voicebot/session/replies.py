"""Speaking the bot's side of a call and noting, per turn, how quickly it did.

A dialogue reply is timed into its turn (first audio, first packet out, and
``reply_s`` from the end of the caller's turn) and saved; prompts outside a
dialogue turn (silence, apologies) just play.  Either way the session turns
idle once nothing is left to say and no event is waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from voicebot.core.record import Turn
from voicebot.session.events import Inbox
from voicebot.session.record_keeper import RecordKeeper
from voicebot.session.speaker import Speaker, SpeechHandle


class Replies:
    def __init__(
        self,
        speaker: Speaker,
        inbox: Inbox,
        keeper: RecordKeeper,
        become_idle: Callable[[], None],
    ) -> None:
        self.speaker = speaker
        self.inbox = inbox
        self.keeper = keeper
        self.become_idle = become_idle
        self._background: set[asyncio.Task[None]] = set()

    async def answer(self, turn: Turn, *, end_call: bool, ended_at: float | None) -> None:
        """Say a dialogue turn's reply; wait for its end only when the call ends with it."""
        if not turn.bot_text:
            self.keeper.save()
            return
        handle = self.speaker.say(turn.bot_text)
        task = asyncio.create_task(self._finish_turn(turn, handle, ended_at))
        if end_call:
            await task

    def prompt(self, text: str) -> SpeechHandle:
        """Say something outside a dialogue turn (prompts, apologies); keep listening."""
        self.keeper.save()
        handle = self.speaker.say(text)
        task = asyncio.create_task(self._idle_after(handle))
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return handle

    async def say_and_wait(self, text: str) -> None:
        """Say it all (not interruptible); a speech failure must not end the call's cleanup."""
        with contextlib.suppress(Exception):
            handle = self.speaker.say(text, interruptible=False)
            await handle.wait()

    async def _finish_turn(self, turn: Turn, handle: SpeechHandle, ended_at: float | None) -> None:
        await handle.wait()
        turn.timings["tts_first_audio_s"] = handle.first_audio_s or 0.0
        if handle.first_packet_s is not None:
            turn.timings["first_packet_s"] = handle.first_packet_s
        if handle.first_packet_at is not None and ended_at is not None:
            turn.timings["reply_s"] = round(handle.first_packet_at - ended_at, 4)
        turn.bot_interrupted = handle.interrupted
        self.keeper.save()
        await self._idle_after(handle)

    async def _idle_after(self, handle: SpeechHandle) -> None:
        await handle.wait()
        if self.inbox.empty() and not self.speaker.speaking:
            self.become_idle()
