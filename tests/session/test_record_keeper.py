"""RecordKeeper: the record is saved as the call goes; storage trouble never drops a call."""

from __future__ import annotations

import logging

import pytest

from voicebot.core.logs import CallLogger
from voicebot.core.record import CallRecord
from voicebot.dialogue.rasa_client import DialogueReply
from voicebot.session.record_keeper import RecordKeeper


class Store:
    def __init__(self, fail: bool = False) -> None:
        self.saved: list[int] = []
        self.fail = fail

    def save(self, record: CallRecord) -> None:
        if self.fail:
            raise OSError("disk full")
        self.saved.append(len(record.turns))


def _keeper(store: Store | None) -> RecordKeeper:
    return RecordKeeper(CallRecord("c1", "+1555", "test"), store, CallLogger("c1"))


def test_save_writes_the_record_and_no_store_is_fine() -> None:
    store = Store()
    keeper = _keeper(store)
    keeper.record.add_turn(None, "none", bot_text="hi")
    keeper.save()
    assert store.saved == [1]
    _keeper(None).save()


def test_a_failing_store_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    keeper = _keeper(Store(fail=True))
    with caplog.at_level(logging.ERROR):
        keeper.save()
    assert "record_save_failed" in caplog.text and "disk full" in caplog.text


def test_a_dialogue_turn_is_rounded_recorded_and_saved_at_once() -> None:
    store = Store()
    keeper = _keeper(store)
    reply = DialogueReply(texts=["Your", "balance."], intent="check_balance", confidence=0.912345)
    turn = keeper.dialogue_turn(
        "[PIN] please",
        "speech",
        reply,
        redacted=True,
        timings={"stt_s": 0.123456},
        audio={"voiced_s": 1.0},
    )
    assert keeper.record.turns == [turn]
    assert (turn.intent, turn.confidence, turn.bot_text) == (
        "check_balance",
        0.9123,
        "Your balance.",
    )
    assert turn.redacted and turn.timings == {"stt_s": 0.1235}
    assert store.saved == [1]  # on disk before the reply plays
