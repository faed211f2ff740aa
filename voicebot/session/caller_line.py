"""The call as a handoff sees it: say, ask yes/no, wait for the hang-up.

This is the session's side of :class:`~voicebot.session.handoff.CallerLine`:
while a call is on hold or being offered a callback, the conversation is
paused and only these few things may happen on the line.
"""

from __future__ import annotations

from collections.abc import Callable

from voicebot.audio.endpointing import UtteranceEnded
from voicebot.core.frames import DtmfFrame, HangupFrame
from voicebot.core.logs import CallLogger
from voicebot.core.record import CallRecord
from voicebot.session.dialogue_link import DialogueLink
from voicebot.session.events import Inbox, ShutdownRequested, SilenceTimedOut
from voicebot.session.replies import Replies
from voicebot.session.turn_taking import TurnTaking
from voicebot.telephony.channel import MediaOutput


class SessionLine:
    def __init__(
        self,
        output: MediaOutput,
        inbox: Inbox,
        turns: TurnTaking,
        rasa: DialogueLink,
        replies: Replies,
        become_idle: Callable[[], None],
    ) -> None:
        self.output = output
        self.inbox = inbox
        self.turns = turns
        self.rasa = rasa
        self.replies = replies
        self.keeper = replies.keeper
        self.record: CallRecord = self.keeper.record
        self.log: CallLogger = self.keeper.log
        self.become_idle = become_idle
        self.hung_up_by_caller = False  # then the session must not send its own hang-up
        self.shutdown_message: str | None = None  # SIGTERM reached the call while on hold

    async def say_and_wait(self, text: str) -> None:
        await self.replies.say_and_wait(text)

    async def wait_for_hangup(self) -> None:
        """While on hold: ignore everything but the caller leaving or the server
        stopping (``shutdown_message`` then says why), and transcribe nothing."""
        self.turns.transcribing = False
        self.turns.close()
        try:
            while True:
                event = await self.inbox.get()
                if isinstance(event, HangupFrame):
                    self.hung_up_by_caller = True
                    return
                if isinstance(event, ShutdownRequested):
                    self.shutdown_message = event.message
                    return
        finally:
            self.turns.transcribing = True

    async def ask_yes_no(self, question: str) -> bool:
        """Ask, then read the caller's next turn as yes (Rasa ``affirm``, key 1) or no."""
        self.record.add_turn(None, "none", bot_text=question)
        self.keeper.save()
        await self.say_and_wait(question)
        self.become_idle()
        while True:
            event = await self.inbox.get()
            if isinstance(event, HangupFrame):
                self.hung_up_by_caller = True
                return False
            if isinstance(event, ShutdownRequested):
                self.shutdown_message = event.message
                return False
            if isinstance(event, SilenceTimedOut):
                return False
            if isinstance(event, DtmfFrame):
                return event.digit == "1"
            if isinstance(event, UtteranceEnded):
                return await self._yes_no_answer(event)

    async def _yes_no_answer(self, event: UtteranceEnded) -> bool:
        text = (await self.turns.transcript(event.utterance)).transcript.text.strip()
        intent, confidence, error = await self.rasa.yes_no(text)
        if error is not None:
            self.record.errors.append(error)
        confidence = None if confidence is None else round(confidence, 4)
        stats = dict(event.utterance.stats)
        self.record.add_turn(text, "speech", intent=intent, confidence=confidence, audio=stats)
        return intent == "affirm"
