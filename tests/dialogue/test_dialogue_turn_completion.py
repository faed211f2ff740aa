"""Semantic end of turn: which transcripts read as a finished request."""

from __future__ import annotations

import pytest

from voicebot.dialogue.turn_completion import (
    SHORT_PHRASE_WAIT_S,
    UNPUNCTUATED_WAIT_S,
    end_of_turn_wait,
    reads_complete,
)


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
        "Can you help me with that?",
        "My father died last week. What do I need to do?",
        "That's all I need.",  # the object came first
        "What do you want?",
        "Everything I wanted.",
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
        "I need.",  # a verb of wanting before its object ("I need | to reset my password")
        "Hi, I really want.",
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
    assert reads_complete("I don't know it.", expects_pin=True)


def test_digits_alone_are_read_like_a_pin() -> None:
    assert not reads_complete("4 3.")
    assert reads_complete("4 3 2 1")


def test_a_named_number_is_finished_when_all_its_digits_are_there() -> None:
    assert not reads_complete("My card number is 4929.")
    assert not reads_complete("My card number is 4929 1234 5678.")
    assert reads_complete("My card number is 4929 1234 5678 9012.")
    assert not reads_complete("The last four digits are 44.")
    assert reads_complete("The last four digits are 4417.")
    assert not reads_complete("My PIN is 43.")
    assert not reads_complete("My pen is 43.")  # a misheard "pin": still a number being read
    assert reads_complete("My PIN is 4321.")


@pytest.mark.parametrize(
    "text",
    [
        "What can you help me with?",
        "Who should I talk to?",
        "Who do I talk to?",
        "What is this charge for?",
        "What can I ask you about?",
        "Which card did I pay with?",
        "Which days are you open on?",
        "Is there a real person I can speak to?",
        "That payment is what I'm worried about.",
        "I just need someone to talk to.",
        "I can't log in.",
        "Can you turn it on?",
    ],
)
def test_a_stranded_preposition_ends_a_finished_sentence(text: str) -> None:
    assert reads_complete(text)
    assert end_of_turn_wait(text) == 0.0


@pytest.mark.parametrize(
    "text",
    [
        "Who do I talk to about.",  # "to" took the wh-word; "about" still wants its object
        "Who do I talk to about…",
        "Can you help me with?",  # nothing earlier for "with" to belong to
        "I want to send money to.",
        "I'd like to speak to the.",
        "I need my balance and.",
        "What do I need to?",  # an infinitive still coming
        "Hi. Can I speak to?",  # judged on the last sentence
    ],
)
def test_a_preposition_still_wanting_its_object_is_unfinished(text: str) -> None:
    assert not reads_complete(text)
    assert end_of_turn_wait(text) is None


def test_an_ending_whisper_may_have_made_up_waits_the_full_silence() -> None:
    # "What are your …" cut at a pause comes back as "What are you?".
    assert end_of_turn_wait("What are you?") is None
    assert end_of_turn_wait("Can I speak to you?") is None
    assert end_of_turn_wait("Hey, how are you?") == 0.0


def test_unpunctuated_words_that_do_not_dangle_wait_a_shorter_silence() -> None:
    assert end_of_turn_wait("Great, thank you very much") == UNPUNCTUATED_WAIT_S
    assert end_of_turn_wait("Yeah, go ahead") == UNPUNCTUATED_WAIT_S
    assert end_of_turn_wait("My card was") is None
    assert end_of_turn_wait("I need to reset") is None
    assert end_of_turn_wait("four three") is None


def test_a_phrase_of_one_or_two_words_waits_a_little_in_case_more_follows() -> None:
    assert end_of_turn_wait("No.") == SHORT_PHRASE_WAIT_S  # "No, that's not what I said."
    assert end_of_turn_wait("Hi there.") == SHORT_PHRASE_WAIT_S
    assert end_of_turn_wait("What's my balance?") == 0.0
    assert end_of_turn_wait("4 3 2 1", expects_pin=True) == 0.0
