"""One call, one ``CallSession``: disclosure, turn taking, barge-in, transcript.

The session reads typed frames from a :class:`CallChannel` on one task and
runs the conversation on another, so it keeps listening while it talks:

    frames ──► endpointer ──► events queue ──► STT ► Rasa ► speaker ──► channel.output

Time inside the session is the *media clock* — seconds of caller audio
received — so a fixture call fed faster than real time behaves exactly like a
phone call (silence prompts, DTMF timeouts and endpointing all count audio).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from voicebot.audio.endpointing import (
    Endpointer,
    EndpointEvent,
    NoiseDiscarded,
    SpeechConfirmed,
    SpeechStarted,
    UtteranceEnded,
)
from voicebot.dialogue.dtmf import dtmf_message
from voicebot.dialogue.rasa_client import DialogueError, DialogueReply
from voicebot.dialogue.turn_completion import reads_complete
from voicebot.frames import AudioFrame, DtmfFrame, HangupFrame, Utterance
from voicebot.logs import CallLogger
from voicebot.session.handover import HandoverTexts, hand_over
from voicebot.session.keypad import KeypadEntry
from voicebot.session.observe import observe
from voicebot.session.record import CallRecord, Turn, utc_now
from voicebot.session.redaction import mask_keyed_digits, mask_pin
from voicebot.session.services import Services
from voicebot.session.speech import Speaker, SpeechHandle
from voicebot.session.turn_taking import TurnTaking
from voicebot.speech.numbers import normalize_digits
from voicebot.speech.stt import Transcript
from voicebot.telephony.channel import CallChannel
from voicebot.transfer import TransferPolicy, TurnObservation, VerifiedFacts, summary

if TYPE_CHECKING:
    from voicebot.handoff import HandoffPackage, TransferQueue

MAX_DIALOGUE_FAILURES = 3
_PIN_HINTS = ("pin", "code", "number is")


@dataclass(frozen=True, slots=True)
class DigitsTimedOut:
    """No further key was pressed within the inter-digit time."""


@dataclass(frozen=True, slots=True)
class ShutdownRequested:
    """The server is stopping: say goodbye and hang up cleanly."""

    message: str


@dataclass(frozen=True, slots=True)
class SilenceTimedOut:
    """The caller has said nothing for ``silence_prompt_s`` while the bot listened."""


SessionEvent = (
    UtteranceEnded
    | SpeechConfirmed
    | DtmfFrame
    | HangupFrame
    | DigitsTimedOut
    | SilenceTimedOut
    | ShutdownRequested
)


class CallSession:
    """Owns one call's conversation from the disclosure to the hang-up."""

    def __init__(self, channel: CallChannel, services: Services) -> None:
        self.channel = channel
        self.services = services
        self.config = services.config
        self.record = CallRecord(channel.call_id, channel.caller_id, channel.transport)
        self.speaker = Speaker(services.synthesizer, channel.output)
        self.log = CallLogger(channel.call_id)
        self._events: asyncio.Queue[SessionEvent] = asyncio.Queue()
        self._idle = asyncio.Event()
        self._media_time = 0.0
        self._listening_since = 0.0
        self._caller_speaking = False
        self.keypad = KeypadEntry(self.config.session.dtmf_interdigit_s)
        self._expects_pin = False
        self._silence_prompts = 0
        self._dialogue_failures = 0
        self._hung_up_by_caller = False
        self._ended = False
        self.handed_off = False  # the call now belongs to an agent: don't hang up
        self._background: set[asyncio.Task[None]] = set()
        self.policy = TransferPolicy(self.config.transfer)
        self.handover_texts = HandoverTexts()
        self.turns = TurnTaking(
            Endpointer(self.config.endpointing, services.vad.stream()),
            services.transcriber,
            self._on_endpoint_event,
            self._reads_complete if self.config.endpointing.semantic_end_of_turn else None,
        )

    # ------------------------------------------------------------------ public

    async def run(self) -> CallRecord:
        """Run the call to its end and return the (saved) call record."""
        self.log.event(
            "call_started", caller=self.channel.caller_id, transport=self.channel.transport
        )
        reader = asyncio.create_task(self._read_input(), name=f"reader-{self.channel.call_id}")
        try:
            await self._disclose()
            while not self._ended:
                await self._dispatch(await self._next_event())
        except Exception as exc:  # a bug must not leave the caller in silence
            self.log.error("session_failed", error=repr(exc))
            self.record.errors.append(f"session failed: {exc!r}")
            await self.say_and_wait(self.config.session.rasa_error_apology)
        finally:
            await self._close(reader)
        return self.record

    def request_shutdown(self, message: str) -> None:
        """Ask the call to end politely (SIGTERM): goodbye, BYE, record saved."""
        self._post(ShutdownRequested(message))

    async def wait_idle(self) -> None:
        """Resolve once the bot has answered everything and is listening.

        Scripted callers (fixtures, tests) wait on this between turns so they
        can feed audio faster than real time without barging in.
        """
        await self._idle.wait()

    # ------------------------------------------------------------------ input

    async def _read_input(self) -> None:
        try:
            async for frame in self.channel.frames():
                if isinstance(frame, AudioFrame):
                    self._media_time += frame.duration_s
                    self.turns.push(frame.pcm)
                    self._check_timers()
                elif isinstance(frame, DtmfFrame):
                    self.keypad.pressed_at(self._media_time)
                    self._post(frame)
                elif isinstance(frame, HangupFrame):
                    self._post(frame)
                    return
            self._post(HangupFrame("media ended"))
        except Exception as exc:
            self.log.error("input_failed", error=repr(exc))
            self._post(HangupFrame(f"input failed: {exc}"))

    def _on_endpoint_event(self, event: EndpointEvent) -> None:
        if isinstance(event, SpeechStarted):
            self._caller_speaking = True
        elif isinstance(event, UtteranceEnded):
            self._caller_speaking = False
            self._listening_since = self._media_time
            self._post(event)
        elif isinstance(event, SpeechConfirmed):
            self._post(event)
        elif isinstance(event, NoiseDiscarded):
            self._caller_speaking = False

    def _reads_complete(self, text: str) -> bool:
        """Semantic end of turn: do the caller's words so far finish a request?"""
        return reads_complete(text, expects_pin=self._expects_pin)

    def _check_timers(self) -> None:
        cfg = self.config.session
        if self.keypad.timed_out(self._media_time):
            self._post(DigitsTimedOut())
        quiet = self._idle.is_set() and not self._caller_speaking and not self.keypad.pending
        if quiet and self._media_time - self._listening_since >= cfg.silence_prompt_s:
            self._listening_since = self._media_time
            self._post(SilenceTimedOut())

    def _post(self, event: SessionEvent) -> None:
        self._idle.clear()
        self._events.put_nowait(event)

    async def _next_event(self) -> SessionEvent:
        if self._events.empty() and not self.speaker.speaking:
            self._become_idle()
        return await self._events.get()

    def _become_idle(self) -> None:
        if not self._idle.is_set():
            self._listening_since = self._media_time
            self._idle.set()

    # ------------------------------------------------------------------ dispatch

    async def _dispatch(self, event: SessionEvent) -> None:
        if isinstance(event, HangupFrame):
            self._hung_up_by_caller = True
            self._end(f"caller: {event.reason}")
        elif isinstance(event, SpeechConfirmed):
            if self.speaker.interrupt():
                self.log.event("barge_in", at=round(event.at, 2))
        elif isinstance(event, UtteranceEnded):
            await self._on_utterance(event.utterance)
        elif isinstance(event, DtmfFrame):
            await self._on_digit(event.digit)
        elif isinstance(event, DigitsTimedOut):
            await self._submit_digits(self.keypad.take())
        elif isinstance(event, SilenceTimedOut):
            await self._on_silence()
        elif isinstance(event, ShutdownRequested):
            self.speaker.interrupt()
            self.record.add_turn(None, "none", bot_text=event.message)
            await self.say_and_wait(event.message)
            self._end("server shutting down")

    # ------------------------------------------------------------------ disclosure

    async def _disclose(self) -> None:
        """Say the disclosure first, to the end — unless the caller presses 0."""
        text = self.config.session.disclosure
        turn = self.record.add_turn(None, "none", bot_text=text)
        self.record.disclosure = {"text": text, "at": turn.at}
        self._save()
        self.log.event("disclosure_started")
        handle = self.speaker.say(text, interruptible=False)
        deferred: list[SessionEvent] = []
        while not handle.done:
            event = await self._race(handle)
            if event is None:
                break
            if isinstance(event, DtmfFrame) and event.digit == "0" and not self.keypad.pending:
                handle.interrupt()
                turn.bot_interrupted = True
            if isinstance(event, ShutdownRequested):
                handle.interrupt()
            if isinstance(event, HangupFrame | DtmfFrame | ShutdownRequested):
                await self._dispatch(event)
            elif not isinstance(event, SpeechConfirmed):
                deferred.append(event)  # caller talked over it: answer afterwards
            if self._ended:
                return
        turn.timings["tts_first_audio_s"] = handle.first_audio_s or 0.0
        self._save()
        for event in deferred:
            self._events.put_nowait(event)

    async def _race(self, handle: SpeechHandle) -> SessionEvent | None:
        """Next event, or ``None`` when the handle finishes first."""
        getter = asyncio.ensure_future(self._events.get())
        waiter = asyncio.ensure_future(handle.wait())
        done, _ = await asyncio.wait({getter, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if getter in done:
            waiter.cancel()
            return getter.result()
        getter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await getter
        return None

    # ------------------------------------------------------------------ turns

    async def _on_utterance(self, utterance: Utterance) -> None:
        self.speaker.interrupt()
        try:
            heard = await self.turns.transcript(utterance)
        except Exception as exc:
            self.log.error("stt_failed", error=repr(exc))
            self.record.errors.append(f"speech recognition failed: {exc}")
            await self._reply_with_apology("[speech not recognised]", "speech", str(exc))
            return
        text = heard.transcript.text.strip()
        if not text:
            await self._not_heard(utterance, heard.transcript)
            return
        if self._expects_pin or any(h in text.lower() for h in _PIN_HINTS):
            text = normalize_digits(text)
        timings = {
            "endpoint_wait_s": utterance.endpoint_wait_s,
            "stt_s": heard.transcript.elapsed_s,  # compute, incl. queueing for a worker
            "stt_wait_s": heard.wait_s,  # what the caller waited after the turn ended
            "stt_early": float(heard.early),
            "stt_runs": float(heard.stt_runs),
        }
        audio = {k: round(v, 3) for k, v in utterance.stats.items()}
        await self._converse(text, "speech", timings, audio=audio, ended_at=heard.ended_at)

    async def _not_heard(self, utterance: Utterance, transcript: Transcript) -> None:
        """Real speech that STT could not read: ask again rather than leave dead air."""
        voiced = utterance.stats.get("voiced_s", 0.0)
        self.log.event(
            "empty_transcript",
            voiced_s=round(voiced, 2),
            audio_s=round(transcript.audio_s, 2),
            rms_dbfs=round(utterance.stats.get("rms_dbfs", 0.0), 1),
            no_speech_prob=round(transcript.no_speech_prob, 2),
            avg_logprob=round(transcript.avg_logprob, 2),
        )
        cfg = self.config.session
        if voiced >= cfg.not_heard_min_voiced_s:
            self.record.add_turn("[not understood]", "speech", bot_text=cfg.not_heard_prompt)
            await self._speak(cfg.not_heard_prompt)

    async def _on_digit(self, digit: str) -> None:
        entry = self.keypad.press(digit, expects_pin=self._expects_pin)
        if entry is not None:
            await self._submit_digits(entry)

    async def _submit_digits(self, digits: str) -> None:
        """A finished keypad entry: a PIN, the lone 0 for a person, or stray keys."""
        if not digits:
            return
        if not self._expects_pin and digits != "0":
            self.log.event("dtmf_unexpected", digits=len(digits))
            text = "Sorry, those keys don't do anything here. To reach a person, press 0."
            self.record.add_turn(f"[keypad: {digits}]", "dtmf", bot_text=text)
            await self._speak(text)
            return
        shown = mask_keyed_digits(digits) if self._expects_pin else digits
        message = dtmf_message(digits, expects_pin=self._expects_pin)
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
        pin_context = self._expects_pin
        started = time.perf_counter()
        try:
            reply = await self.services.dialogue.send(
                self.channel.call_id, text, {"caller_id": self.channel.caller_id}
            )
        except DialogueError as exc:
            self.log.error("dialogue_failed", error=str(exc))
            self.record.errors.append(f"dialogue failed: {exc}")
            caller_text = self._caller_text(text, input_kind, shown, redact=pin_context)
            await self._reply_with_apology(caller_text, input_kind, str(exc), audio, shown)
            return
        self._dialogue_failures = 0
        timings["dialogue_s"] = time.perf_counter() - started
        redact = pin_context or _mentions_pin(reply)
        self._apply_state(reply)
        turn = self.record.add_turn(
            self._caller_text(text, input_kind, shown, redact=redact),
            input_kind,
            intent=reply.intent,
            confidence=_round(reply.confidence),
            bot_text=" ".join(reply.texts),
            redacted=redact,
            timings={k: round(v, 4) for k, v in timings.items()},
            audio=audio or {},
        )
        self._save()  # the turn is on disk before the reply plays (a crash loses nothing)
        self.log.event(
            "turn",
            index=turn.index,
            input=input_kind,
            intent=reply.intent,
            confidence=turn.confidence,
            redacted=redact,
        )
        observation = observe(turn, reply, shown if input_kind == "dtmf" else None)
        if await self._transfer_if_decided(turn, observation):
            return
        await self._speak_turn(turn, end_call=reply.end_call, ended_at=ended_at)

    def _caller_text(self, text: str, input_kind: str, shown: str | None, *, redact: bool) -> str:
        if input_kind == "dtmf":
            return f"[keypad: {shown if shown is not None else text}]"
        return mask_pin(text) if redact else text

    def _apply_state(self, reply: DialogueReply) -> None:
        self._expects_pin = reply.expects_pin
        for key in ("caller_id_matched", "pin_verified"):
            value = getattr(reply, key)
            if value is not None:
                self.record.verified[key] = value

    # ------------------------------------------------------------------ transfer

    async def _transfer_if_decided(self, turn: Turn, observation: TurnObservation) -> bool:
        decision = self.policy.observe(observation)
        if decision is None:
            return False
        facts = VerifiedFacts(self.channel.caller_id, **self.record.verified)
        line = summary(self.policy.state.turns, decision, facts, self.config.transfer)
        self.record.transfer = self.policy.state.record(line)
        self.log.event("transfer_decided", reason=decision.reason, trigger=decision.trigger)
        turn.bot_text = self.handover_texts.announce
        self._save()
        self.speaker.interrupt()
        result = await hand_over(self, self.handover_texts)
        if self.record.transfer is not None:
            self.record.transfer["handoff"] = result
        self._end(f"handoff: {result['status']}")
        return True

    def store_package(self, package: HandoffPackage) -> None:
        """Keep the handoff package even when no queue is configured."""
        store = self.services.store
        if store is not None and hasattr(store, "save_handoff"):
            store.save_handoff(package.to_dict(), "no_agent", utc_now())

    async def wait_for_hangup(self) -> None:
        """While on hold: ignore everything but the caller leaving (and transcribe nothing)."""
        self.turns.transcribing = False
        self.turns.close()
        try:
            while True:
                event = await self._events.get()
                if isinstance(event, HangupFrame):
                    self._hung_up_by_caller = True
                    return
        finally:
            self.turns.transcribing = True

    async def ask_yes_no(self, question: str) -> bool:
        """Ask, then read the caller's next turn as yes (Rasa ``affirm``, key 1) or no."""
        turn = self.record.add_turn(None, "none", bot_text=question)
        self._save()
        await self.say_and_wait(question)
        self._become_idle()
        while True:
            event = await self._events.get()
            if isinstance(event, HangupFrame):
                self._hung_up_by_caller = True
                return False
            if isinstance(event, SilenceTimedOut):
                return False
            if isinstance(event, DtmfFrame):
                return event.digit == "1"
            if isinstance(event, UtteranceEnded):
                return await self._yes_no_answer(event.utterance, turn)

    async def _yes_no_answer(self, utterance: Utterance, question: Turn) -> bool:
        text = (await self.turns.transcript(utterance)).transcript.text.strip()
        try:
            reply = await self.services.dialogue.send(
                self.channel.call_id, text, {"caller_id": self.channel.caller_id}
            )
            intent, confidence = reply.intent, reply.confidence
        except DialogueError as exc:
            # Rasa is down (maybe why we are here): a plain yes must still count.
            intent, confidence = ("affirm" if _plain_yes(text) else None), None
            self.record.errors.append(f"dialogue failed: {exc}")
        self.record.add_turn(
            text,
            "speech",
            intent=intent,
            confidence=_round(confidence),
            audio=dict(utterance.stats),
        )
        return intent == "affirm"

    # ------------------------------------------------------------------ speaking

    async def _speak_turn(
        self, turn: Turn, *, end_call: bool, ended_at: float | None = None
    ) -> None:
        if not turn.bot_text:
            self._save()
            return
        handle = self.speaker.say(turn.bot_text)
        task = asyncio.create_task(self._finish_turn(turn, handle, ended_at))
        if end_call:
            await task
            self._end("bot ended the call")

    async def _finish_turn(self, turn: Turn, handle: SpeechHandle, ended_at: float | None) -> None:
        await handle.wait()
        turn.timings["tts_first_audio_s"] = handle.first_audio_s or 0.0
        if handle.first_packet_s is not None:
            turn.timings["first_packet_s"] = handle.first_packet_s
        if handle.first_packet_at is not None and ended_at is not None:
            turn.timings["reply_s"] = round(handle.first_packet_at - ended_at, 4)
        turn.bot_interrupted = handle.interrupted
        self._save()
        await self._idle_after(handle)

    async def _reply_with_apology(
        self,
        caller_text: str | None,
        input_kind: str,
        error: str,
        audio: dict[str, float] | None = None,
        shown: str | None = None,
    ) -> None:
        """Rasa or STT failed: apologise; the transfer policy may hand the caller over."""
        self._dialogue_failures += 1
        cfg = self.config.session
        turn = self.record.add_turn(
            caller_text,
            input_kind,
            bot_text=cfg.rasa_error_apology,
            error=error,
            audio=audio or {},
        )
        observation = observe(turn, None, shown, failed=True)
        if await self._transfer_if_decided(turn, observation):
            return
        if self._dialogue_failures >= MAX_DIALOGUE_FAILURES:
            turn.bot_text = (
                "I'm sorry, I'm having technical problems. "
                "Please call back a little later. Goodbye."
            )
            await self.say_and_wait(turn.bot_text)
            self._end("repeated technical failures")
            return
        await self._speak(cfg.rasa_error_apology)

    async def _on_silence(self) -> None:
        self._silence_prompts += 1
        cfg = self.config.session
        if self._silence_prompts == 1:
            self.record.add_turn(None, "none", bot_text=cfg.silence_prompt)
            await self._speak(cfg.silence_prompt)
            return
        self.record.add_turn(None, "none", bot_text=cfg.silence_goodbye)
        await self.say_and_wait(cfg.silence_goodbye)
        self._end("caller silent")

    async def _speak(self, text: str) -> SpeechHandle:
        """Say something outside a dialogue turn (prompts, apologies); keep listening."""
        self._save()
        handle = self.speaker.say(text)
        task = asyncio.create_task(self._idle_after(handle))
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return handle

    async def _idle_after(self, handle: SpeechHandle) -> None:
        await handle.wait()
        if self._events.empty() and not self.speaker.speaking:
            self._become_idle()

    async def say_and_wait(self, text: str) -> None:
        with contextlib.suppress(Exception):
            handle = self.speaker.say(text, interruptible=False)
            await handle.wait()

    # ------------------------------------------------------------------ ending

    def _end(self, reason: str) -> None:
        if not self._ended:
            self._ended = True
            outcome = self.record.outcome
            self.record.finish("contained" if outcome == "in_progress" else outcome, reason)
            self.log.event("call_ending", reason=reason)

    async def _close(self, reader: asyncio.Task[None]) -> None:
        self._end("session closed")
        self.speaker.interrupt()
        if self.handed_off and self.services.queue is not None:
            self._free_agent_when_done(self.services.queue)
        if not self._hung_up_by_caller and not self.handed_off:
            with contextlib.suppress(Exception):
                await self.channel.hangup()
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await reader
        self.turns.close()
        self._save()
        await self._forget_dialogue()
        self._idle.set()
        self.log.event("call_ended", outcome=self.record.outcome, turns=len(self.record.turns))

    def _free_agent_when_done(self, queue: TransferQueue) -> None:
        """A bridged call still occupies the agent after the session ends."""
        call_id = self.channel.call_id
        after_handoff = getattr(self.channel, "after_handoff", None)
        if after_handoff is not None:
            after_handoff(lambda: queue.call_ended(call_id))
        else:
            queue.call_ended(call_id)

    async def _forget_dialogue(self) -> None:
        """Drop Rasa's copy of the conversation: it holds raw text (maybe a PIN)."""
        forget = getattr(self.services.dialogue, "forget", None)
        if forget is not None:
            with contextlib.suppress(Exception):
                await forget(self.channel.call_id)

    def _save(self) -> None:
        store = self.services.store
        if store is None:
            return
        try:
            store.save(self.record)
        except Exception as exc:  # storage trouble must not drop the caller
            self.log.error("record_save_failed", error=repr(exc))


def _mentions_pin(reply: DialogueReply) -> bool:
    return reply.intent == "provide_pin" or any(e.get("entity") == "pin" for e in reply.entities)


_YES = re.compile(r"^\W*(yes|yeah|yep|sure|please|ok(ay)?|correct|that'?s right)\b", re.I)


def _plain_yes(text: str) -> bool:
    return bool(_YES.match(text))


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
