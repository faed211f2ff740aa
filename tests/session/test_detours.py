"""Detours: silence, unreadable speech, stray keys and failed turns, each answered
so the caller is never left in dead air, and each ending the call only when it
cannot go on."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from voicebot.config import SessionConfig
from voicebot.core.frames import Utterance
from voicebot.core.logs import CallLogger
from voicebot.core.record import CallRecord, Turn
from voicebot.session.detours import MAX_FAILED_TURNS, STRAY_KEYS, TECHNICAL_GOODBYE, Detours
from voicebot.speech.stt import Transcript


class Speaker:
    def __init__(self) -> None:
        self.interrupted = 0

    def interrupt(self) -> bool:
        self.interrupted += 1
        return True


class Replies:
    """Records what would be said, and how (prompt keeps listening; say_and_wait does not)."""

    def __init__(self) -> None:
        self.speaker = Speaker()
        self.prompts: list[str] = []
        self.said: list[str] = []

    def prompt(self, text: str) -> None:
        self.prompts.append(text)

    async def say_and_wait(self, text: str) -> None:
        self.said.append(text)


class TransferCheck:
    def __init__(self, transfer: bool = False) -> None:
        self.transfer = transfer
        self.calls: list[tuple[Turn, str | None, str | None]] = []

    async def __call__(self, turn: Turn, shown: str | None, gave_up: str | None) -> bool:
        self.calls.append((turn, shown, gave_up))
        return self.transfer


def _detours(transfer: bool = False) -> tuple[Detours, Replies, TransferCheck]:
    replies, check = Replies(), TransferCheck(transfer)
    record = CallRecord("c1", "+15550001", "test")
    detours = Detours(SessionConfig(), record, replies, CallLogger("c1"), check)  # type: ignore[arg-type]
    return detours, replies, check


def _utterance(voiced_s: float) -> Utterance:
    return Utterance(np.zeros(8000, dtype=np.int16), 0.0, 1.0, stats={"voiced_s": voiced_s})


async def test_silence_asks_once_then_says_goodbye_and_ends() -> None:
    detours, replies, _ = _detours()
    assert await detours.silence() is None
    assert replies.prompts == [SessionConfig().silence_prompt]
    assert await detours.silence() == "caller silent"
    assert replies.said == [SessionConfig().silence_goodbye]
    assert [t.bot_text for t in detours.record.turns] == [
        SessionConfig().silence_prompt,
        SessionConfig().silence_goodbye,
    ]


def test_unreadable_speech_is_asked_again_but_a_cough_is_ignored() -> None:
    detours, replies, _ = _detours()
    blank = Transcript("", -1.2, 0.9, 1.0, 0.0, 8.0)
    detours.not_heard(_utterance(0.1), blank)  # a cough: below not_heard_min_voiced_s
    assert replies.prompts == [] and detours.record.turns == []
    detours.not_heard(_utterance(0.9), blank)
    assert replies.prompts == [SessionConfig().not_heard_prompt]
    assert detours.record.turns[0].caller_text == "[not understood]"


def test_stray_keys_say_how_to_reach_a_person_and_log_only_their_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    detours, replies, _ = _detours()
    with caplog.at_level(logging.INFO):
        detours.stray_keys("4417")
    assert replies.prompts == [STRAY_KEYS]
    assert "dtmf_unexpected" in caplog.text and "digits=4" in caplog.text
    assert "4417" not in caplog.text


async def test_failures_in_a_row_end_the_call_with_a_technical_goodbye() -> None:
    detours, replies, check = _detours()
    for _ in range(MAX_FAILED_TURNS - 1):
        assert await detours.failed_turn("hours?", "speech", "refused") is None
    assert len(replies.prompts) == MAX_FAILED_TURNS - 1
    assert await detours.failed_turn("hours?", "speech", "refused") == (
        "repeated technical failures"
    )
    assert replies.said == [TECHNICAL_GOODBYE]
    assert detours.record.turns[-1].bot_text == TECHNICAL_GOODBYE
    assert len(check.calls) == MAX_FAILED_TURNS  # the policy saw every failed turn


async def test_a_success_between_failures_resets_the_count() -> None:
    detours, replies, _ = _detours()
    for _ in range(MAX_FAILED_TURNS + 2):
        assert await detours.failed_turn("hours?", "speech", "refused") is None
        detours.turn_succeeded()
    assert replies.said == []


async def test_a_failed_turn_the_policy_transfers_is_not_apologised_for() -> None:
    detours, replies, check = _detours(transfer=True)
    reason = await detours.failed_turn("[keypad]", "dtmf", "down", shown="****", gave_up="down")
    assert reason is None and replies.prompts == [] and replies.said == []
    turn, shown, gave_up = check.calls[0]
    assert (turn.error, shown, gave_up) == ("down", "****", "down")


async def test_shutdown_cuts_the_bot_short_and_says_goodbye() -> None:
    detours, replies, _ = _detours()
    assert await detours.shutdown("We're closing; please call back.") == "server shutting down"
    assert replies.speaker.interrupted == 1
    assert replies.said == ["We're closing; please call back."]


def test_a_component_error_is_logged_and_kept_for_the_agent(
    caplog: pytest.LogCaptureFixture,
) -> None:
    detours, _, _ = _detours()
    with caplog.at_level(logging.ERROR):
        detours.note_error("dialogue_failed", "dialogue failed: refused")
    assert detours.record.errors == ["dialogue failed: refused"]
    assert "dialogue_failed" in caplog.text
