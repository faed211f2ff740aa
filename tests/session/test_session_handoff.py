"""The caller's side of a handoff, through its two narrow ports (fakes for both)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from voicebot.core.logs import CallLogger
from voicebot.core.record import CallRecord
from voicebot.session.handoff import (
    HandoffTexts,
    OfferOutcome,
    hand_off,
    hold_music,
    release_agent_when_done,
)

TEXTS = HandoffTexts()


class Output:
    def __init__(self) -> None:
        self.writes = 0
        self.clears = 0

    def write(self, pcm: np.ndarray) -> None:
        self.writes += 1

    def clear(self) -> None:
        self.clears += 1

    def set_gain(self, db: float) -> None:
        pass

    async def drained(self) -> None:
        return None

    async def playing(self) -> None:
        return None


@dataclass
class Line:
    """A caller who answers yes/no from a script and may hang up on hold."""

    answer: bool = True
    hangs_up: bool = False
    caller_id: str | None = "+15550100"
    said: list[str] = field(default_factory=list)
    output: Output = field(default_factory=Output)
    stopping: bool = False  # SIGTERM while on hold
    stopping_at_question: bool = False  # SIGTERM while asked about a callback
    shutdown_message: str | None = None

    def __post_init__(self) -> None:
        self.record = CallRecord("call-1", self.caller_id, "test")
        self.record.transfer = {"reason": "explicit"}
        self.log = CallLogger("call-1")

    async def say_and_wait(self, text: str) -> None:
        self.said.append(text)

    async def ask_yes_no(self, question: str) -> bool:
        self.said.append(question)
        if self.stopping_at_question:
            self.shutdown_message = "restarting"
            return False
        return self.answer

    async def wait_for_hangup(self) -> None:
        if not (self.hangs_up or self.stopping):
            await asyncio.Event().wait()
        await asyncio.sleep(0.01)
        if self.stopping:
            self.shutdown_message = "restarting"


@dataclass
class Port:
    outcome: OfferOutcome
    rings: tuple[str, ...] = ()
    abandoned: list[str] = field(default_factory=list)
    callbacks: list[tuple[str, str]] = field(default_factory=list)
    ended: list[str] = field(default_factory=list)

    async def hand_off(
        self,
        record: CallRecord,
        on_ringing: Callable[[str], None],
        on_waiting: Callable[[float], None],
    ) -> OfferOutcome:
        for agent in self.rings:
            on_ringing(agent)
        on_waiting(5.0)
        while self.outcome.status == "abandoned" and not self.abandoned:
            await asyncio.sleep(0.005)
        return self.outcome

    def abandon(self, call_id: str) -> None:
        self.abandoned.append(call_id)

    def request_callback(self, call_id: str, number: str) -> None:
        self.callbacks.append((call_id, number))

    def call_ended(self, call_id: str) -> None:
        self.ended.append(call_id)


async def test_answered_moves_the_call_and_logs_the_rings_under_hold_music() -> None:
    line, port = Line(), Port(OfferOutcome("answered", 1, "alice"), rings=("alice",))
    result = await hand_off(line, port, TEXTS)
    assert result == {"status": "answered", "agent": "alice", "attempts": 1}
    assert line.record.outcome == "transferred"
    assert line.said == [TEXTS.announce]
    assert [r["ringing"] for r in line.record.transfer["rings"]] == ["alice"]  # type: ignore[index]
    assert line.output.writes >= 1 and line.output.clears == 1  # hold music, then cleared


async def test_a_caller_hanging_up_on_hold_withdraws_the_offer() -> None:
    line, port = Line(hangs_up=True), Port(OfferOutcome("abandoned", 0))
    result = await asyncio.wait_for(hand_off(line, port, TEXTS), 2)
    assert result == {"status": "abandoned", "attempts": 0}
    assert port.abandoned == ["call-1"] and line.record.outcome == "abandoned"


async def test_nobody_answering_offers_a_callback_on_the_callers_number() -> None:
    line, port = Line(answer=True), Port(OfferOutcome("no_agent", 2))
    result = await hand_off(line, port, TEXTS)
    assert result["status"] == "callback" and result["attempts"] == 2
    assert result["callback"]["number"] == "+15550100"
    assert port.callbacks == [("call-1", "+15550100")]
    assert "0 1 0 0" in line.said[1] and line.said[-1] == TEXTS.callback_confirmed
    declined = Line(answer=False)
    result = await hand_off(declined, Port(OfferOutcome("no_agent", 1)), TEXTS)
    assert result == {"status": "no_agent", "attempts": 1, "callback": None}
    assert declined.record.outcome == "no_agent" and declined.said[-1] == TEXTS.callback_declined


async def test_no_queue_and_no_number_ends_politely() -> None:
    line = Line(caller_id=None)
    result = await hand_off(line, None, TEXTS)
    assert result == {"status": "no_agent", "attempts": 0, "callback": None}
    assert line.said == [TEXTS.announce, TEXTS.no_agent_no_number]
    assert line.output.writes == 0  # no queue: no hold music


async def test_sigterm_on_hold_withdraws_the_offer_and_records_a_callback() -> None:
    line, port = Line(stopping=True), Port(OfferOutcome("abandoned", attempts=1))
    result = await hand_off(line, port, TEXTS)
    assert port.abandoned == ["call-1"]  # no agent rings for a caller we are about to drop
    assert port.callbacks == [("call-1", "+15550100")]  # asked for a person: not lost
    assert result["status"] == "callback" and result["shutdown"] is True
    assert line.record.outcome == "callback"
    assert "restarting" in line.said[-1] and "0 1 0 0" in line.said[-1]
    assert line.record.turns[-1].bot_text == line.said[-1]  # the goodbye is in the record


async def test_sigterm_during_the_callback_question_still_records_the_callback() -> None:
    line = Line(stopping_at_question=True)
    port = Port(OfferOutcome("no_agent", attempts=2))
    result = await hand_off(line, port, TEXTS)
    assert port.callbacks == [("call-1", "+15550100")]
    assert result["status"] == "callback" and result["shutdown"] is True
    assert "restarting" in line.said[-1]


async def test_sigterm_on_hold_without_a_number_says_to_call_again() -> None:
    line = Line(stopping=True, caller_id=None)
    port = Port(OfferOutcome("abandoned", attempts=1))
    result = await hand_off(line, port, TEXTS)
    assert port.callbacks == [] and result["status"] == "no_agent"
    assert line.record.outcome == "no_agent" and "call again" in line.said[-1]


def test_the_agent_is_freed_when_a_bridged_call_ends_or_at_once() -> None:
    port = Port(OfferOutcome("answered", 1, "a"))
    release_agent_when_done(object(), port, "c1")
    assert port.ended == ["c1"]
    later: list[Callable[[], None]] = []

    class Bridged:
        def after_handoff(self, callback: Callable[[], None]) -> None:
            later.append(callback)

    release_agent_when_done(Bridged(), port, "c2")
    assert port.ended == ["c1"]
    later[0]()
    assert port.ended == ["c1", "c2"]


def test_hold_music_is_a_quiet_second_of_audio() -> None:
    chunk = hold_music()
    assert chunk.dtype == np.int16 and len(chunk) == 8000
    assert 0 < np.abs(chunk).max() <= 1500
