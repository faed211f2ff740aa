"""Spoken digits → digits, and the phrases that must survive untouched."""

from __future__ import annotations

import pytest

from voicebot.speech.numbers import normalize_digits


@pytest.mark.parametrize(
    ("spoken", "expected"),
    [
        ("four three two one", "4321"),
        ("4 3 2 1", "4321"),
        ("forty three twenty one", "4321"),
        ("Four, three, two, one.", "4321."),
        ("4-3-2-1", "4321"),
        ("4, 3, 2, 1", "4321"),
        ("4-3-21", "4321"),
        ("My PIN is four three two one.", "My PIN is 4321."),
        ("It's 4321.", "It's 4321."),
        ("four oh two one", "4021"),
        ("oh four three two", "0432"),
        ("zero zero one two", "0012"),
        ("double four one two", "4412"),
        ("nineteen eighty four", "1984"),
        ("Hold on, one second, it's four three two one", "Hold on, one second, it's 4321"),
    ],
)
def test_digit_runs_become_digits(spoken: str, expected: str) -> None:
    assert normalize_digits(spoken) == expected


@pytest.mark.parametrize(
    "text",
    [
        "one moment please",
        "I need two cards",
        "That's for me",
        "I want to go to the branch",
        "Oh, I lost my card",
        "oh",
        "one or two",
        "It costs 1.5 million",
        "It was 1,500 dollars",
        "at 12:30",
        "",
        "No, no, I meant my savings account.",
    ],
)
def test_ordinary_speech_is_left_alone(text: str) -> None:
    assert normalize_digits(text) == text


def test_oh_as_interjection_before_digits_is_kept() -> None:
    assert normalize_digits("Oh, four three two one") == "Oh, 4321"
