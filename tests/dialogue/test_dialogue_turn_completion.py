"""Semantic end of turn: which transcripts read as a finished request."""

from __future__ import annotations

import pytest

from voicebot.dialogue.turn_completion import reads_complete


@pytest.mark.parametrize(
    "text",
    [
        "What are your opening hours?",
        "I lost my card.",
        "Agent.",
        "Yes.",
        "No, that's not what I asked!",
        "I'd like to check my balance, please.",
        "Hello",  # a whole answer without Whisper's full stop
        "Thank you",
        "Yes, I do.",
        "What can you do?",
        "I'd like to complain.",
    ],
)
def test_finished_requests(text: str) -> None:
    assert reads_complete(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "My card was",  # Whisper leaves a fragment unpunctuated
        "I need to reset",
        "I want to talk to the.",  # dangling article, even with a full stop
        "There's a charge on my card and.",
        "Can I speak to.",
        "Um.",
        "I'd like to...",
        "My balance is…",
        "My card was.",
        "I need to reset.",  # "to <verb>" still wants its object
        "I'd like to check.",
        "My card",
    ],
)
def test_unfinished_words(text: str) -> None:
    assert not reads_complete(text)


def test_a_pin_is_finished_when_all_its_digits_are_there() -> None:
    assert not reads_complete("Four, three.", expects_pin=True)
    assert not reads_complete("43", expects_pin=True)
    assert reads_complete("4 3 2 1", expects_pin=True)
    assert reads_complete("four three two one", expects_pin=True)
    # Outside a PIN prompt digits are just words; without a PIN, words rule.
    assert not reads_complete("4 3 2 1")
    assert reads_complete("I don't know it.", expects_pin=True)
