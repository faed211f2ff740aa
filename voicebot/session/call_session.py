"""One call, one ``CallSession``: disclosure, turn taking, barge-in, transcript.

The session reads typed frames from a :class:`CallChannel` on one task and
runs the conversation on another, so it keeps listening while it talks:

    frames ──► endpointer ──► events queue ──► STT ► Rasa ► speaker ──► channel.output

It is the conversation's script; the instruments live beside it: turn taking
(:mod:`turn_taking`), the keypad (:mod:`keypad`), PIN rules (:mod:`pin`), Rasa
(:mod:`dialogue_link`), the transfer policy (:mod:`transfer_watch`), the
record's persistence (:mod:`record_keeper`), speech output (:mod:`speaker`) and
the caller's side of a handoff (:mod:`handoff`).

Time inside the session is the *media clock* — seconds of caller audio
received — so a fixture call fed faster than real time behaves exactly like a
phone call (silence prompts, DTMF timeouts and endpointing all count audio).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from voicebot.audio.endpointing import (
    Endpointer,
    EndpointEvent,
    SpeechConfirmed,
    UtteranceEnded,
)
from voicebot.core.frames import DtmfFrame, HangupFrame, Utterance
from voicebot.core.logs import CallLogger
from voicebot.core.record import CallRecord, Turn
from voicebot.dialogue.rasa_client import DialogueError, DialogueReply
from voicebot.dialogue.turn_completion import end_of_turn_wait
from voicebot.session.caller_line import SessionLine
from voicebot.session.detours import Detours
from voicebot.session.dialogue_link import DialogueLink
from voicebot.session.disclosure import disclose
from voicebot.session.ducking import BargeInDucking
from voicebot.session.events import (
    DigitsTimedOut,
    Inbox,
    SessionEvent,
    ShutdownRequested,
    SilenceTimedOut,
)
from voicebot.session.handoff import HandoffTexts, hand_off, release_agent_when_done
from voicebot.session.keypad import KeypadEntry
from voicebot.session.listening import Listening
from voicebot.session.outcome import final_outcome
from voicebot.session.pin import PinGuard
from voicebot.session.record_keeper import RecordKeeper
from voicebot.session.replies import Replies
from voicebot.session.services import Services
from voicebot.session.speaker import Speaker
from voicebot.session.transfer_watch import DIALOGUE_UNAVAILABLE, TransferWatch
from voicebot.session.turn_taking import TurnTaking
from voicebot.telephony.channel import CallChannel


class CallSession:
    """Owns one call's conversation from the disclosure to the hang-up."""

    def __init__(self, channel: CallChannel, services: Services) -> None:
        self.channel = channel
        self.services = services
        self.config = services.config
        self.record = CallRecord(
            channel.call_id,
            channel.caller_id,
            channel.transport,
            _clock=getattr(channel, "clock", None),  # a scripted caller's own timeline
        )
        self.log = CallLogger(channel.call_id)
        self.speaker = Speaker(services.synthesizer, channel.output)
        self.inbox = Inbox()
        self.keypad = KeypadEntry(self.config.session.dtmf_interdigit_s)
        self.keeper = RecordKeeper(self.record, services.store, self.log)
        self.ear = Listening(
            self.inbox, self.keypad, self.config.session.silence_prompt_s, self.log
        )
        self.replies = Replies(self.speaker, self.inbox, self.keeper, self.ear.become_idle)
        self.rasa = DialogueLink(services.dialogue, channel.call_id, channel.caller_id)
        self.pin = PinGuard()
        self.transfers = TransferWatch(self.config.transfer, self.log, self.config.intents)
        self.handoff_texts = HandoffTexts()
        self.detours = Detours(
            self.config.session, self.record, self.replies, self.log, self._failed_turn_transfer
        )
        self._ended = False
        self.handed_off = False  # the call now belongs to an agent: don't hang up
        self.ducking = BargeInDucking(
            self.speaker, self.config.endpointing.barge_in_duck_db, self.log
        )
        self.turns = TurnTaking(
            Endpointer(self.config.endpointing, services.vad.stream()),
            services.transcriber,
            self._on_endpoint_event,
            self._end_wait if self.config.endpointing.semantic_end_of_turn else None,
        )
        become_idle = self.ear.become_idle
        self.line = SessionLine(
            channel.output, self.inbox, self.turns, self.rasa, self.replies, become_idle
        )

    async def run(self) -> CallRecord:
        """Run the call to its end and return the (saved) call record."""
        self.log.event(
            "call_started", caller=self.channel.caller_id, transport=self.channel.transport
        )
        reader = asyncio.create_task(
            self.ear.read(self.channel, self.turns.push_off_loop),
            name=f"reader-{self.channel.call_id}",
        )
        try:
            await self._disclose()
            while not self._ended:
                await self._dispatch(await self._next_event())
        except Exception as exc:  # a bug must not leave the caller in silence
            self.log.error("session_failed", error=repr(exc))
            self.record.errors.append(f"session failed: {exc!r}")
            await self.replies.say_and_wait(self.config.session.rasa_error_apology)
            self._end("session failed")
        finally:
            await self._close(reader)
        return self.record

    @property
    def dialogue_client(self) -> object:
        """The dialogue this call talks to (it keeps it for the whole call)."""
        return self.rasa.dialogue

    def request_shutdown(self, message: str) -> None:
        """Ask the call to end politely (SIGTERM): goodbye, BYE, record saved."""
        self.inbox.post(ShutdownRequested(message))

    async def wait_idle(self) -> None:
        """Resolve once the bot has answered everything and is listening.

        Scripted callers (fixtures, tests) wait on this between turns so they
        can feed audio faster than real time without barging in.
        """
        await self.inbox.idle.wait()

    def _on_endpoint_event(self, event: EndpointEvent) -> None:
        """Turn taking's events: the ducking reflex first, then the ear."""
        self.ducking.on_endpoint_event(event)
        self.ear.on_endpoint_event(event)

    def _end_wait(self, text: str) -> float | None:
        """Semantic end of turn: the silence after which the caller's words end it (or None)."""
        return end_of_turn_wait(text, expects_pin=self.pin.expects_pin)

    async def _next_event(self) -> SessionEvent:
        if self.inbox.empty() and not self.speaker.speaking:
            self.ear.become_idle()
        return await self.inbox.get()

    async def _dispatch(self, event: SessionEvent) -> None:
        if isinstance(event, HangupFrame):
            self.line.hung_up_by_caller = True
            self._end(f"caller: {event.reason}")
        elif isinstance(event, SpeechConfirmed):
            if self.speaker.interrupt():
                self.log.event("barge_in", at=round(event.at, 2))
        elif isinstance(event, UtteranceEnded):
            await self._on_utterance(event.utterance)
        elif isinstance(event, DtmfFrame):
            entry = self.keypad.press(event.digit, expects_pin=self.pin.expects_pin)
            if entry is not None:
                await self._submit_digits(entry)
        elif isinstance(event, DigitsTimedOut):
            await self._submit_digits(self.keypad.take())
        elif isinstance(event, SilenceTimedOut):
            self._end_if(await self.detours.silence())
        elif isinstance(event, ShutdownRequested):
            self._end(await self.detours.shutdown(event.message))

    async def _disclose(self) -> None:
        text = self.config.session.disclosure
        await disclose(text, self.speaker, self.inbox, self.keypad, self.keeper, self._cut_in)

    async def _cut_in(self, event: SessionEvent) -> bool:
        """An event that cuts the disclosure short; True when the call ended."""
        await self._dispatch(event)
        return self._ended

    async def _on_utterance(self, utterance: Utterance) -> None:
        self.speaker.interrupt()
        try:
            heard = await self.turns.transcript(utterance)
        except Exception as exc:
            self.detours.note_error("stt_failed", f"speech recognition failed: {exc!r}")
            await self._failed("[speech not recognised]", "speech", str(exc))
            return
        text = heard.transcript.text.strip()
        if not text:
            self.detours.not_heard(utterance, heard.transcript)
            return
        timings = heard.timings(utterance)
        audio = {k: round(v, 3) for k, v in utterance.stats.items()}
        text = self.pin.heard(text)
        await self._converse(text, "speech", timings, audio=audio, ended_at=heard.ended_at)

    async def _submit_digits(self, digits: str) -> None:
        """A finished keypad entry: a PIN, the lone 0 for a person, or stray keys."""
        if not digits:
            return
        if not self.pin.expects_pin and digits != "0":
            self.detours.stray_keys(digits)
            return
        shown, message = self.pin.keyed(digits)
        await self._converse(message, "dtmf", {}, shown=shown, ended_at=time.perf_counter())

    async def _converse(
        self,
        text: str,
        input_kind: str,
        timings: dict[str, float],
        *,
        audio: dict[str, float] | None = None,
        shown: str | None = None,
        ended_at: float | None = None,
    ) -> None:
        """Send one caller turn to Rasa, record it (redacted), then answer or transfer.
        ``ended_at`` (perf_counter) is when the caller's turn ended: ``reply_s`` runs from it."""
        pin_context = self.pin.expects_pin
        unanswered = self.pin.caller_text(text, input_kind, shown, redact=pin_context)
        if not self.rasa.available:
            self.log.event("dialogue_unavailable")  # being restarted: a person, at once
            down = DIALOGUE_UNAVAILABLE
            await self._failed(unanswered, input_kind, down, audio=audio, shown=shown, gave_up=down)
            return
        started = time.perf_counter()
        try:
            reply = await self.rasa.send(text)
        except DialogueError as exc:
            self.detours.note_error("dialogue_failed", f"dialogue failed: {exc}")
            await self._failed(unanswered, input_kind, str(exc), audio=audio, shown=shown)
            return
        self.detours.turn_succeeded()
        timings["dialogue_s"] = time.perf_counter() - started
        redact = self.pin.must_redact(reply, pin_context=pin_context)
        self.pin.apply(reply, self.record.verified)
        caller_text = self.pin.caller_text(text, input_kind, shown, redact=redact)
        turn = self.keeper.dialogue_turn(
            caller_text, input_kind, reply, redacted=redact, timings=timings, audio=audio
        )
        if await self._transfer_if_decided(turn, reply, shown if input_kind == "dtmf" else None):
            return
        await self.replies.answer(turn, end_call=reply.end_call, ended_at=ended_at)
        if reply.end_call and turn.bot_text:
            self._end("bot ended the call")

    async def _failed(self, caller_text: str, input_kind: str, error: str, **context: Any) -> None:
        self._end_if(await self.detours.failed_turn(caller_text, input_kind, error, **context))

    async def _failed_turn_transfer(
        self, turn: Turn, shown: str | None, gave_up: str | None
    ) -> bool:
        return await self._transfer_if_decided(turn, None, shown, failed=True, gave_up=gave_up)

    async def _transfer_if_decided(
        self,
        turn: Turn,
        reply: DialogueReply | None,
        dtmf: str | None,
        *,
        failed: bool = False,
        gave_up: str | None = None,
    ) -> bool:
        # The signals (sentiment, profanity lexicons) are pure-Python work worth
        # hundreds of ms on a busy machine: off the loop that clocks the audio.
        decide = self.transfers.decide
        decision = await asyncio.to_thread(
            decide, self.record, turn, reply, dtmf, failed=failed, gave_up=gave_up
        )
        if decision is None:
            return False
        turn.bot_text = self.handoff_texts.announce
        self.keeper.save()
        self.speaker.interrupt()
        result = await hand_off(self.line, self.services.queue, self.handoff_texts)
        self.handed_off = result["status"] == "answered"
        if self.record.transfer is not None:
            self.record.transfer["handoff"] = result
        self._end(f"handoff: {result['status']}")
        return True

    def _end_if(self, reason: str | None) -> None:
        if reason is not None:
            self._end(reason)

    def _end(self, reason: str) -> None:
        if not self._ended:
            self._ended = True
            outcome = final_outcome(self.record, reason, self.config.intents.progress)
            self.record.finish(outcome, reason)
            self.log.event("call_ending", reason=reason)

    async def _close(self, reader: asyncio.Task[None]) -> None:
        self._end("session closed")
        self.speaker.interrupt()
        if self.handed_off and self.services.queue is not None:
            release_agent_when_done(self.channel, self.services.queue, self.channel.call_id)
        if not self.line.hung_up_by_caller and not self.handed_off:
            with contextlib.suppress(Exception):
                await self.channel.hangup()
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await reader
        self.turns.close()
        self.keeper.save()
        await self.keeper.flush()
        await self.rasa.forget()
        self.inbox.idle.set()
        self.log.event("call_ended", outcome=self.record.outcome, turns=len(self.record.turns))
