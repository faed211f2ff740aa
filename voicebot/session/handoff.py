"""Handing a call to a person, from the caller's side of the line.

The session calls :func:`hand_off` once the transfer policy decides.  It
announces the transfer, lets the handoff queue store the package (before any
phone rings), plays hold audio while agents ring, and — when nobody answers in
time — offers a callback on the caller-ID number.  Every path ends with the
outcome in the call record.

Two narrow ports keep this module apart from both sides: :class:`CallerLine`
is all it needs of the call (say, ask yes/no, wait for the hang-up, the
output, the record) and :class:`HandoffPort` is all it needs of the agents'
queue (``voicebot.handoff.TransferQueue`` implements it), so the session
never imports the queue and the queue never reaches into a session.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np

from voicebot.core.aio import first_of
from voicebot.core.frames import SAMPLE_RATE
from voicebot.core.logs import CallLogger
from voicebot.core.record import CallRecord, utc_now
from voicebot.telephony.channel import MediaOutput

HOLD_CHUNK_S = 1.0


@dataclass(frozen=True)
class OfferOutcome:
    """How ringing the agents ended, in the caller's terms."""

    status: Literal["answered", "abandoned", "no_agent"]
    attempts: int
    agent: str | None = None


class HandoffPort(Protocol):
    """What the caller's side needs from the agents' queue."""

    async def hand_off(
        self,
        record: CallRecord,
        on_ringing: Callable[[str], None],
        on_waiting: Callable[[float], None],
    ) -> OfferOutcome: ...

    def abandon(self, call_id: str) -> object: ...

    def request_callback(self, call_id: str, number: str) -> object: ...

    def call_ended(self, call_id: str) -> None: ...


class CallerLine(Protocol):
    """What a handoff needs from the call it moves."""

    record: CallRecord
    log: CallLogger
    shutdown_message: str | None  # set when the server stops while the caller holds

    @property
    def output(self) -> MediaOutput: ...

    async def say_and_wait(self, text: str) -> None: ...

    async def ask_yes_no(self, question: str) -> bool: ...

    async def wait_for_hangup(self) -> None:
        """Return when the caller hangs up, or the server stops (``shutdown_message``)."""
        ...


@dataclass(frozen=True)
class HandoffTexts:
    """What the caller hears during a transfer (configurable wording)."""

    announce: str = (
        "I'll transfer you to a colleague now. They will see our conversation so far, "
        "so you won't need to repeat yourself. Please hold."
    )
    still_waiting: str = "Thanks for holding. A colleague will be with you shortly."
    no_agent: str = (
        "I'm sorry, all of our colleagues are busy right now. "
        "Would you like us to call you back on the number you're calling from, ending in {last4}? "
        "Please say yes or no."
    )
    no_agent_no_number: str = (
        "I'm sorry, all of our colleagues are busy right now, and I can't see your number "
        "to arrange a call back. Please call again later. Goodbye."
    )
    callback_confirmed: str = (
        "Thank you. A colleague will call you back on that number as soon as possible. Goodbye."
    )
    callback_declined: str = "All right. Please call again later. Goodbye."
    shutdown_callback: str = (
        "I'm sorry, this service is restarting and no colleague can take your call now. "
        "We have recorded a call back request: a colleague will call you on the number "
        "ending in {last4} as soon as possible. Goodbye."
    )
    shutdown_no_number: str = (
        "I'm sorry, this service is restarting and no colleague can take your call now. "
        "Please call again in a few minutes. Goodbye."
    )


def hold_music(seconds: float = HOLD_CHUNK_S) -> np.ndarray:
    """A quiet, gentle two-note phrase: callers on hold must hear the line is alive."""
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    half = len(t) // 2
    freq = np.where(np.arange(len(t)) < half, 523.25, 659.25)  # C5 then E5
    envelope = np.minimum(1.0, np.minimum(t % 0.5, 0.5 - t % 0.5) * 20)
    return (1500 * envelope * np.sin(2 * np.pi * freq * t)).astype(np.int16)


async def _play_hold(output: MediaOutput) -> None:
    """Keep one chunk queued ahead, paced by the wall clock.

    Pacing here rather than on ``drained()`` because transports without a
    clock (fixtures) drain instantly and would spin.
    """
    chunk = hold_music()
    output.write(chunk)
    while True:
        output.write(chunk)
        await asyncio.sleep(HOLD_CHUNK_S)


async def hand_off(
    line: CallerLine, port: HandoffPort | None, texts: HandoffTexts
) -> dict[str, Any]:
    """Run the transfer; returns what happened (also written into the record)."""
    record = line.record
    await line.say_and_wait(texts.announce)
    if port is None:
        return await _no_agent(line, None, texts, attempts=0)
    hold = asyncio.create_task(_play_hold(line.output))
    try:
        outcome = await _offer_while_listening(line, port)
    finally:
        hold.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await hold
        line.output.clear()
    if line.shutdown_message is not None and outcome.status != "answered":
        return await _stopping_on_hold(line, port, texts, outcome.attempts)
    if outcome.status == "answered":
        record.outcome = "transferred"
        line.log.event("transferred", agent=outcome.agent)
        return {"status": "answered", "agent": outcome.agent, "attempts": outcome.attempts}
    if outcome.status == "abandoned":
        record.outcome = "abandoned"
        return {"status": "abandoned", "attempts": outcome.attempts}
    return await _no_agent(line, port, texts, attempts=outcome.attempts)


async def _offer_while_listening(line: CallerLine, port: HandoffPort) -> OfferOutcome:
    """Ring agents; if the caller hangs up meanwhile, withdraw the offer."""
    steps: list[dict[str, Any]] = []

    def on_ringing(agent: str) -> None:
        steps.append({"ringing": agent, "at": utc_now()})
        line.log.event("agent_ringing", agent=agent)

    def on_waiting(remaining_s: float) -> None:
        line.log.event("agent_waiting", remaining_s=remaining_s)

    offer = asyncio.ensure_future(port.hand_off(line.record, on_ringing, on_waiting))
    while not offer.done():
        # shield: the offer outlives each race; only the hang-up watch is cancelled
        await first_of(asyncio.shield(offer), line.wait_for_hangup())
        if not offer.done():
            port.abandon(line.record.call_id)
    if line.record.transfer is not None:
        line.record.transfer["rings"] = steps
    return offer.result()


async def _no_agent(
    line: CallerLine, port: HandoffPort | None, texts: HandoffTexts, attempts: int
) -> dict[str, Any]:
    record = line.record
    number = record.caller_id
    record.outcome = "no_agent"
    if not number:
        await _say(line, texts.no_agent_no_number)
        return {"status": "no_agent", "attempts": attempts, "callback": None}
    question = texts.no_agent.format(last4=" ".join(number[-4:]))
    answer = await line.ask_yes_no(question)
    if line.shutdown_message is not None:  # SIGTERM cut the question short
        return await _stopping_on_hold(line, port, texts, attempts)
    if answer:
        if port is not None:
            port.request_callback(record.call_id, number)
        record.outcome = "callback"
        await _say(line, texts.callback_confirmed)
        return {
            "status": "callback",
            "attempts": attempts,
            "callback": {"number": number, "confirmed_at": utc_now()},
        }
    await _say(line, texts.callback_declined)
    return {"status": "no_agent", "attempts": attempts, "callback": None}


async def _stopping_on_hold(
    line: CallerLine, port: HandoffPort | None, texts: HandoffTexts, attempts: int
) -> dict[str, Any]:
    """SIGTERM reached a caller on hold: the offer is withdrawn; a caller whose
    number we have gets a recorded callback (no question: the line is closing),
    and everyone hears why the call ends."""
    record, number = line.record, line.record.caller_id
    line.log.event("handoff_stopped", reason="server shutting down", callback=bool(number))
    if not number or port is None:
        record.outcome = "no_agent"
        await _say(line, texts.shutdown_no_number)
        return {"status": "no_agent", "attempts": attempts, "callback": None, "shutdown": True}
    port.request_callback(record.call_id, number)
    record.outcome = "callback"
    await _say(line, texts.shutdown_callback.format(last4=" ".join(number[-4:])))
    return {
        "status": "callback",
        "attempts": attempts,
        "callback": {"number": number, "confirmed_at": utc_now()},
        "shutdown": True,
    }


async def _say(line: CallerLine, text: str) -> None:
    """A line the bot says on its own: in the record (the call's last words count too)."""
    line.record.add_turn(None, "none", bot_text=text)
    await line.say_and_wait(text)


def release_agent_when_done(channel: object, port: HandoffPort, call_id: str) -> None:
    """A bridged call still occupies the agent after the session ends."""
    after_handoff = getattr(channel, "after_handoff", None)
    if after_handoff is not None:
        after_handoff(lambda: port.call_ended(call_id))
    else:
        port.call_ended(call_id)
