"""Keypad entry: when keyed digits make a finished entry."""

from __future__ import annotations

from voicebot.session.keypad import KeypadEntry


def press_all(keypad: KeypadEntry, keys: str, *, expects_pin: bool) -> list[str]:
    done = []
    for t, key in enumerate(keys):
        keypad.pressed_at(float(t))
        entry = keypad.press(key, expects_pin=expects_pin)
        if entry is not None:
            done.append(entry)
    return done


def test_a_pin_ends_on_its_fourth_digit() -> None:
    keypad = KeypadEntry(interdigit_s=2.0)
    assert press_all(keypad, "43211", expects_pin=True) == ["4321"]
    assert keypad.pending  # the fifth key starts a new entry


def test_zero_alone_asks_for_a_person_at_once_but_not_inside_a_pin() -> None:
    assert press_all(KeypadEntry(2.0), "0", expects_pin=False) == ["0"]
    assert press_all(KeypadEntry(2.0), "0123", expects_pin=True) == ["0123"]
    assert press_all(KeypadEntry(2.0), "10#", expects_pin=False) == ["10"]


def test_hash_ends_an_entry_and_a_pause_times_it_out_once() -> None:
    keypad = KeypadEntry(interdigit_s=2.0)
    assert press_all(keypad, "12#", expects_pin=True) == ["12"]
    press_all(keypad, "98", expects_pin=True)  # last key at t=1
    assert not keypad.timed_out(2.9)
    assert keypad.timed_out(3.0) and not keypad.timed_out(9.0)
    assert keypad.take() == "98" and not keypad.pending and keypad.take() == ""
