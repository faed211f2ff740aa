"""Keypad digits → Rasa messages (docs/CONTRACTS.md)."""

from __future__ import annotations

import json

import pytest

from voicebot.dialogue.dtmf import dtmf_message


def test_pin_digits_become_a_provide_pin_message() -> None:
    message = dtmf_message("4321", expects_pin=True)
    assert message == '/provide_pin{"pin":"4321"}'
    assert json.loads(message.removeprefix("/provide_pin")) == {"pin": "4321"}


def test_hash_ends_pin_entry_and_is_dropped() -> None:
    assert dtmf_message("4321#", expects_pin=True) == '/provide_pin{"pin":"4321"}'


def test_zero_while_pin_expected_is_a_digit_not_a_transfer() -> None:
    assert dtmf_message("0", expects_pin=True) == '/provide_pin{"pin":"0"}'


def test_lone_zero_asks_for_a_person() -> None:
    assert dtmf_message("0", expects_pin=False) == "/request_human"
    assert dtmf_message("0#", expects_pin=False) == "/request_human"


def test_other_digits_go_to_nlu_as_text() -> None:
    assert dtmf_message("12", expects_pin=False) == "12"
    assert dtmf_message("00", expects_pin=False) == "00"


def test_nothing_to_send() -> None:
    assert dtmf_message("#", expects_pin=True) == ""
    assert dtmf_message("*", expects_pin=False) == ""


def test_rejects_non_dtmf_characters() -> None:
    with pytest.raises(ValueError, match="not DTMF"):
        dtmf_message("12x4", expects_pin=True)
