"""TransferWatch: a dialogue turn in the policy's words, and the decision in the record."""

from __future__ import annotations

from voicebot.config import Config
from voicebot.core.logs import CallLogger
from voicebot.core.record import CallRecord
from voicebot.dialogue.rasa_client import DialogueReply
from voicebot.session.transfer_watch import TransferWatch, observe


def test_observe_hides_keyed_text_and_maps_progress_and_a_locked_pin() -> None:
    record = CallRecord("c", "+1555", "test")
    turn = record.add_turn("[keypad: ****]", "dtmf", intent="provide_pin", confidence=0.9)
    locked = DialogueReply(texts=[], intent="provide_pin", slots={"pin_locked": True})
    seen = observe(turn, locked, "****", progress={"provide_pin"})
    assert seen.caller_text == "" and seen.dtmf == "****"
    assert seen.made_progress and seen.dialogue_gave_up == "identity_failed"
    failed = observe(record.add_turn("uh", "speech"), None, None, failed=True)
    assert failed.dialogue_failed and not failed.made_progress


def test_an_explicit_ask_is_decided_and_written_into_the_record() -> None:
    record = CallRecord("c", "+1555", "test")
    watch = TransferWatch(Config().transfer, CallLogger("c"))
    hello = record.add_turn("hello", "speech", intent="greet", confidence=0.9)
    assert watch.decide(record, hello, DialogueReply(texts=["Hi"], intent="greet"), None) is None
    assert record.transfer is None
    ask = record.add_turn("I want to talk to a real person", "speech", intent="human_handoff")
    decision = watch.decide(record, ask, DialogueReply(texts=[], intent="human_handoff"), None)
    assert decision is not None and decision.reason == "explicit"
    assert record.transfer is not None and record.transfer["reason"] == "explicit"
    assert record.transfer["summary"]
