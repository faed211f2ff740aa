"""The actions' pure parts (spoken formatting, the demo bank), run without Rasa.

They live in rasa_project/actions and run in the Rasa venv, but use only the
standard library, so they load here straight from their files.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import sqlite3
import sys
from pathlib import Path
from types import ModuleType

import pytest

from voicebot.dialogue.paths import RASA_PROJECT_DIR


def _load(name: str) -> ModuleType:
    path = RASA_PROJECT_DIR / "actions" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"rasa_actions_{name}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses need their module registered
    spec.loader.exec_module(module)
    return module


spoken = _load("spoken")
bank = _load("bank")


@pytest.mark.parametrize(
    ("cents", "text"),
    [
        (123456, "$1,234.56"),
        (100, "$1"),
        (101, "$1.01"),
        (87, "$0.87"),
        (1502000, "$15,020"),
        (-4210, "$42.10"),
        (0, "$0"),
    ],
)
def test_money_is_written_as_people_read_it(cents: int, text: str) -> None:
    assert spoken.money(cents) == text


def test_days_and_digits() -> None:
    today = dt.date(2025, 3, 5)
    assert spoken.day("2025-03-05", today) == "today"
    assert spoken.day("2025-03-04", today) == "yesterday"
    assert spoken.day("2025-03-01", today) == "Saturday, March 1st"
    assert spoken.day("2025-02-12", today) == "Wednesday, February 12th"
    assert spoken.digits("4417") == "4417"
    assert spoken.digits("+1 555-0100"[-4:]) == "0100"
    assert spoken.join_words(["a", "b", "c"]) == "a, b and c"


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "bank.sqlite3"
    monkeypatch.setenv("VOICEBOT_BANK_DB", str(path))
    return path


def test_database_is_built_from_seed_once(db: Path) -> None:
    assert not db.exists()
    bank.ensure_database()
    assert db.exists()
    bank.block_card(1, 1)
    bank.ensure_database()  # does not rebuild: the block stays
    assert [c.status for c in bank.cards(1)] == ["blocked"]
    bank.reset_database()
    assert [c.status for c in bank.cards(1)] == ["active"]


def test_pin_check_uses_salted_hashes(db: Path) -> None:
    alex = bank.customer_by_phone("+1 555 0100")
    assert alex is not None and alex.first_name == "Alex"
    assert bank.check_pin(alex.id, "4321")
    for wrong in ("1234", "4322", "", "43210", "abcd"):
        assert not bank.check_pin(alex.id, wrong)
    with sqlite3.connect(db) as conn:
        salt, stored = conn.execute(
            "SELECT pin_salt, pin_hash FROM customers WHERE id = 1"
        ).fetchone()
    assert stored == bank.hash_pin(salt, "4321") and "4321" not in stored


def test_unknown_numbers(db: Path) -> None:
    assert bank.customer_by_phone("+15550199") is None
    assert bank.customer_by_phone(None) is None


def test_block_card_only_blocks_the_callers_own_active_card(db: Path) -> None:
    assert not bank.block_card(customer_id=2, card_id=1)  # Alex's card, Priya calling
    assert bank.block_card(customer_id=1, card_id=1)
    assert not bank.block_card(customer_id=1, card_id=1)  # already blocked


def test_password_reset_sms_is_recorded_not_sent(db: Path) -> None:
    maria = bank.customer_by_phone("+15550103")
    bank.queue_password_reset_sms(maria)
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT phone, kind, body FROM sms_outbox").fetchall()
    assert len(rows) == 1 and rows[0][:2] == ("+15550103", "password_reset")
    assert "https://bank.example/reset/" in rows[0][2]


def test_recent_transactions_newest_first(db: Path) -> None:
    items = bank.recent_transactions(1, limit=3)
    assert [t.description for t in items] == [
        "Green Grocer",
        "Acme Payroll",
        "City Power and Light",
    ]
    assert items[0].posted_on == (dt.date.today() - dt.timedelta(days=1)).isoformat()
