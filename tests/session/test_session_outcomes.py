"""How a call ends, honestly: served, abandoned, failed; a known-down dialogue sends
callers to a person; the bot's own last words are in the record; offsets follow the
caller's timeline."""

from __future__ import annotations

import numpy as np
from test_call_session import audio, keys, reply, run_call, say

from voicebot.config import Config
from voicebot.core.frames import silence
from voicebot.core.record import CallRecord
from voicebot.dialogue.intents import IntentCatalog, IntentInfo
from voicebot.dialogue.rasa_client import DialogueError
from voicebot.session.outcome import containment, final_outcome


def _silent_config() -> Config:
    config = Config()
    config.session.silence_prompt_s = 2.0
    return config


async def test_answered_request_is_served() -> None:
    session, _, _ = await run_call(
        ["idle", say(), "idle"], ["what are your hours"], lambda t: reply("Nine.", "opening_hours")
    )
    assert session.record.outcome == "served"


async def test_silent_caller_is_abandoned_not_contained() -> None:
    session, _, _ = await run_call(
        ["idle", audio(silence(2.5)), "idle", audio(silence(2.5))],
        [],
        lambda t: reply("x"),
        _silent_config(),
    )
    assert session.record.end_reason == "caller silent"
    assert session.record.outcome == "abandoned"


async def test_greeting_only_and_stray_keys_are_not_served() -> None:
    session, _, _ = await run_call(
        ["idle", say(), "idle", keys("7"), audio(silence(3.0)), "idle"],
        ["hello"],
        lambda t: reply("Hello. How can I help?", "greet"),
    )
    assert session.record.outcome == "abandoned"


async def test_dialogue_down_is_failed_when_nobody_can_take_the_call() -> None:
    config = Config()
    config.transfer.dialogue_failure_turns = 5  # never transfers: the bot gives up instead
    session, _, _ = await run_call(
        ["idle", say(), "idle", say(), "idle", say(), "idle"],
        ["one", "two", "three"],
        lambda t: DialogueError("connection refused"),
        config,
    )
    assert session.record.end_reason == "repeated technical failures"
    assert session.record.outcome == "failed"


async def test_a_crash_after_the_disclosure_is_failed() -> None:
    def crash(text: str) -> Exception:
        return RuntimeError("a bug")  # not a DialogueError: the session itself fails

    session, _, _ = await run_call(["idle", say(), "idle"], ["hi"], crash)
    assert session.record.end_reason == "session failed"
    assert session.record.outcome == "failed"


async def test_known_down_dialogue_sends_the_caller_to_a_person_at_once() -> None:
    session, _, dialogue = await run_call(
        ["idle", say(), "idle", say(), "idle"],
        ["my balance please", "yes"],
        lambda t: reply("unused"),
        available=False,
    )
    assert dialogue.messages == []  # Rasa was not asked: it is known to be down
    record = session.record
    first = record.caller_turns()[0]
    assert first.caller_text == "my balance please" and first.error == "dialogue_unavailable"
    assert record.transfer is not None
    assert "dialogue_unavailable" in str(record.transfer["signals"])
    assert record.transfer["turn"] == first.index  # on the first turn, no apology first
    # No queue here: the callback offer, answered with a plain yes.
    assert record.outcome == "callback"
    assert "call you back" in record.turns[-1].bot_text  # the bot's last line is recorded


async def test_no_agent_no_number_goodbye_is_in_the_record() -> None:
    session, _, _ = await run_call(
        ["idle", keys("0"), "idle"], [], lambda t: reply("One moment.", "request_human")
    )
    record = session.record
    assert record.outcome == "callback" or record.outcome == "no_agent"
    assert record.turns[-1].caller_text is None and record.turns[-1].bot_text


def test_summary_names_an_intent_from_the_catalog() -> None:
    from voicebot.core.logs import CallLogger
    from voicebot.session.transfer_watch import TransferWatch

    intents = IntentCatalog({"mortgage_rates": IntentInfo(label="mortgage rates", progress=True)})
    config = Config()
    watch = TransferWatch(config.transfer, CallLogger("c"), intents)
    record = CallRecord("c", "+1555", "test")
    asked = record.add_turn("mortgage rates?", "speech", intent="mortgage_rates", confidence=0.9)
    assert watch.decide(record, asked, reply("4 percent.", "mortgage_rates"), None) is None
    agent = record.add_turn("agent", "speech", intent="request_human", confidence=0.9)
    assert watch.decide(record, agent, reply("", "request_human"), None) is not None
    assert record.transfer is not None
    assert "about mortgage rates" in record.transfer["summary"]


def test_offsets_follow_the_transport_clock() -> None:
    now = [0.0]
    record = CallRecord("c", None, "fixture", _clock=lambda: now[0])
    now[0] = 16.25
    assert record.add_turn(None, "none", bot_text="Goodbye").offset_s == 16.25
    assert "_clock" not in record.to_dict() and "_t0" not in record.to_dict()


def test_final_outcome_and_containment() -> None:
    record = CallRecord("c", None, "test")
    record.add_turn("hi", "speech", intent="greet")
    assert final_outcome(record, "caller: hung up", {"opening_hours"}) == "abandoned"
    record.add_turn("hours?", "speech", intent="opening_hours", error="dialogue failed")
    assert final_outcome(record, "caller: hung up", {"opening_hours"}) == "abandoned"
    record.add_turn("hours?", "speech", intent="opening_hours")
    assert final_outcome(record, "caller: hung up", {"opening_hours"}) == "served"
    assert final_outcome(record, "repeated technical failures", {"opening_hours"}) == "failed"
    record.outcome = "transferred"
    assert final_outcome(record, "handoff: answered", set()) == "transferred"
    assert containment(["served", "abandoned", "served", "failed"]) == 0.5
    assert containment([]) is None
    assert np.isclose(containment(["served"]) or 0, 1.0)
