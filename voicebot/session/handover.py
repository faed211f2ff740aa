"""Handing a call to a person, from the caller's side of the line.

The session calls :func:`hand_over` once the transfer policy decides.  It
announces the transfer, writes the handoff package to the store (before any
phone rings), plays hold audio while the queue rings agents, and — when
nobody answers in time — offers a callback on the caller-ID number.  Every
path ends with the outcome in the call record.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from voicebot.frames import SAMPLE_RATE
from voicebot.handoff import Abandoned, Answered, HandoffPackage, Ringing, Waiting
from voicebot.session.record import utc_now

if TYPE_CHECKING:
    from voicebot.handoff import OfferStep
    from voicebot.session.call_session import CallSession

HOLD_CHUNK_S = 1.0


@dataclass(frozen=True)
class HandoverTexts:
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


def hold_music(seconds: float = HOLD_CHUNK_S) -> np.ndarray:
    """A quiet, gentle two-note phrase: callers on hold must hear the line is alive."""
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    half = len(t) // 2
    freq = np.where(np.arange(len(t)) < half, 523.25, 659.25)  # C5 then E5
    envelope = np.minimum(1.0, np.minimum(t % 0.5, 0.5 - t % 0.5) * 20)
    return (1500 * envelope * np.sin(2 * np.pi * freq * t)).astype(np.int16)


async def _play_hold(session: CallSession) -> None:
    """Keep one chunk queued ahead, paced by the wall clock.

    Pacing here rather than on ``drained()`` because transports without a
    clock (fixtures) drain instantly and would spin.
    """
    output = session.channel.output
    chunk = hold_music()
    output.write(chunk)
    while True:
        output.write(chunk)
        await asyncio.sleep(HOLD_CHUNK_S)


async def hand_over(session: CallSession, texts: HandoverTexts) -> dict[str, Any]:
    """Run the transfer; returns what happened (also written into the record)."""
    record = session.record
    await session.say_and_wait(texts.announce)
    queue = session.services.queue
    package = HandoffPackage.from_record(record, record.transfer or {})
    if queue is None:
        session.store_package(package)
        return await _no_agent(session, texts, attempts=0)
    hold = asyncio.create_task(_play_hold(session))
    try:
        result = await _offer_while_listening(session, queue, package)
    finally:
        hold.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await hold
        session.channel.output.clear()
    if isinstance(result, Answered):
        return _answered(session, result)
    if isinstance(result, Abandoned):
        record.outcome = "abandoned"
        return {"status": "abandoned", "attempts": len(result.attempts)}
    return await _no_agent(session, texts, attempts=len(result.attempts))


async def _offer_while_listening(session: CallSession, queue: Any, package: HandoffPackage):
    """Ring agents; if the caller hangs up meanwhile, withdraw the offer."""
    steps: list[dict[str, Any]] = []

    def on_step(step: OfferStep) -> None:
        if isinstance(step, Ringing):
            steps.append({"ringing": step.agent, "at": utc_now()})
            session.log.event("agent_ringing", agent=step.agent)
        elif isinstance(step, Waiting):
            session.log.event("agent_waiting", remaining_s=step.remaining_s)

    offer = asyncio.create_task(queue.offer(package, on_step=on_step))
    while not offer.done():
        hung_up = asyncio.create_task(session.wait_for_hangup())
        await asyncio.wait({offer, hung_up}, return_when=asyncio.FIRST_COMPLETED)
        if hung_up.done() and not offer.done():
            queue.abandon(package.call_id)
        hung_up.cancel()
    if session.record.transfer is not None:
        session.record.transfer["rings"] = steps
    return offer.result()


def _answered(session: CallSession, result: Answered) -> dict[str, Any]:
    session.record.outcome = "transferred"
    session.handed_off = True
    session.log.event("transferred", agent=result.agent.name)
    return {"status": "answered", "agent": result.agent.name, "attempts": len(result.attempts)}


async def _no_agent(session: CallSession, texts: HandoverTexts, attempts: int) -> dict[str, Any]:
    record = session.record
    number = record.caller_id
    record.outcome = "no_agent"
    if not number:
        await session.say_and_wait(texts.no_agent_no_number)
        return {"status": "no_agent", "attempts": attempts, "callback": None}
    question = texts.no_agent.format(last4=" ".join(number[-4:]))
    answer = await session.ask_yes_no(question)
    if answer:
        queue = session.services.queue
        if queue is not None:
            queue.request_callback(record.call_id, number)
        record.outcome = "callback"
        await session.say_and_wait(texts.callback_confirmed)
        return {
            "status": "callback",
            "attempts": attempts,
            "callback": {"number": number, "confirmed_at": utc_now()},
        }
    await session.say_and_wait(texts.callback_declined)
    return {"status": "no_agent", "attempts": attempts, "callback": None}
