"""PIN guessing across calls: the failure count lives in the bank's database,
so a new call (a new Rasa conversation, maybe a spoofed caller ID) starts where
the last guesser stopped.  Unit tests on the real SQLite file, then real Rasa."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import pytest
from test_dialogue_rasa_e2e import ALEX, Call

from voicebot.dialogue.paths import RASA_PROJECT_DIR
from voicebot.dialogue.rasa_client import RasaClient

sys.path.insert(0, str(RASA_PROJECT_DIR))
from actions import bank, pin_guard  # the actions package: stdlib-only parts

ALEX_ID = 1  # PIN 4321


@pytest.fixture
def bank_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "bank.sqlite3"
    monkeypatch.setenv("VOICEBOT_BANK_DB", str(path))
    bank.ensure_database(path)
    return path


def test_failures_lock_with_a_doubling_back_off_then_for_good(bank_db: Path) -> None:
    now = 1_000_000.0
    verdicts = [pin_guard.check(ALEX_ID, "1111", now) for _ in range(3)]
    assert verdicts == [pin_guard.Verdict.WRONG] * 3
    # Locked for 15 minutes: even the right PIN is not checked.
    assert pin_guard.check(ALEX_ID, "4321", now + 60) is pin_guard.Verdict.LOCKED
    assert pin_guard.locked(ALEX_ID, now + 899) and not pin_guard.locked(ALEX_ID, now + 901)
    for _ in range(3):
        assert pin_guard.check(ALEX_ID, "2222", now + 901) is pin_guard.Verdict.WRONG
    assert pin_guard.locked(ALEX_ID, now + 901 + 1799)  # 30 minutes the second time
    assert not pin_guard.locked(ALEX_ID, now + 901 + 1801)
    for _ in range(3):
        pin_guard.check(ALEX_ID, "3333", now + 3000)
    assert pin_guard.locked(ALEX_ID, now + 10**9)  # nine failures: until staff unlock
    pin_guard.unlock(ALEX_ID)
    assert pin_guard.check(ALEX_ID, "4321", now + 3001) is pin_guard.Verdict.RIGHT


def test_a_right_pin_clears_the_count(bank_db: Path) -> None:
    for _ in range(2):
        pin_guard.check(ALEX_ID, "1111", 0.0)
    assert pin_guard.check(ALEX_ID, "4321", 0.0) is pin_guard.Verdict.RIGHT
    for _ in range(2):
        pin_guard.check(ALEX_ID, "1111", 0.0)
    assert not pin_guard.locked(ALEX_ID, 1.0)  # 2 + 2 failures, not 4 in a row
    rows = sqlite3.connect(bank_db).execute("SELECT failures FROM pin_guard").fetchall()
    assert rows == [(2,)]


async def test_a_new_call_cannot_keep_guessing(rasa_client: RasaClient) -> None:
    first = Call(rasa_client, ALEX)
    await first.say("what's my balance")
    for guess in ("1111", "2222", "3333"):
        await first.say(guess)
    second = Call(rasa_client, ALEX)  # another call, another Rasa conversation
    asked = await second.say("what's my balance")
    reply = await second.say("4321") if asked.expects_pin else asked
    assert reply.pin_verified is not True
    assert "dollars" not in reply.text and "colleague" in reply.text
