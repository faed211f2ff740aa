"""The agent's one-liner: only verified facts, the reason in plain words."""

from __future__ import annotations

import transfer_scripts as calls
from transfer_scripts import key, run_call, say

from voicebot.transfer import VerifiedFacts, summary

DEMO = VerifiedFacts(caller_id="+15550100", caller_id_matched=None, pin_verified=True)


def test_frustrated_caller_who_says_they_were_misunderstood() -> None:
    script = [
        say(1, "Hi.", "greet"),
        say(2, "I'd like my balance.", "check_balance"),
        key(3, "4321", "provide_pin", progress=True),
        say(4, "And the thing with the payments from last week?", "nlu_fallback", 0.3),
        say(5, "No, that's not what I said.", "correction", 0.8),
        say(6, "Agent.", "request_human"),
    ]
    result = run_call(script)
    assert summary(script, result.decision, DEMO) == (
        "Frustrated about their balance (“And the thing with the payments from last week?”); "
        "misunderstood 2 times; had to repeat themself; needs a person. +15550100, PIN verified."
    )


def test_complexity_summary_names_the_topic_and_verification() -> None:
    result = run_call(calls.FRAUD)
    facts = VerifiedFacts("+15550100", caller_id_matched=True, pin_verified=False)
    assert summary(calls.FRAUD, result.decision, facts) == (
        "Calling about a payment they don't recognise; needs a person. "
        "+15550100, caller ID matched, PIN not verified."
    )


def test_frustration_summary() -> None:
    result = run_call(calls.FRUSTRATION_RISING)
    line = summary(calls.FRUSTRATION_RISING, result.decision, VerifiedFacts())
    assert line == (
        "Angry, says “Hi, I want to see my recent transactions.”; misunderstood 3 times; "
        "had to repeat themself; needs a person. No caller ID."
    )


def test_keypad_zero_and_unknown_verification() -> None:
    result = run_call(calls.DTMF_ZERO)
    assert summary(calls.DTMF_ZERO, result.decision, VerifiedFacts("+15550199")) == (
        "Calling, no clear request; pressed 0 for a person. +15550199."
    )


def test_contained_call() -> None:
    result = run_call(calls.ROUTINE_BALANCE)
    assert summary(calls.ROUTINE_BALANCE, result.decision, DEMO) == (
        "Asked about their balance; handled by the assistant. +15550100, PIN verified."
    )


def test_summary_never_contains_the_pin() -> None:
    result = run_call([*calls.ROUTINE_BALANCE[:3], say(4, "Agent.", "request_human")])
    line = summary(calls.ROUTINE_BALANCE, result.decision, DEMO)
    assert "4321" not in line


def test_a_request_without_a_label_is_quoted_in_the_callers_words() -> None:
    script = [say(1, "Screw you. I want my money back from that shop.", "service_request", 0.9)]
    result = run_call(script)
    line = summary(script, result.decision, VerifiedFacts("+15550100"))
    assert line == (
        "Angry, says “Screw you. I want my money back from that shop.”; needs a person. +15550100."
    )


def test_an_own_problem_read_as_a_question_is_quoted() -> None:
    script = [say(1, "My transfer to my sister didn't arrive.", "kb_transfer_times", 0.8)]
    result = run_call(script)
    assert result.reason == "complexity"
    line = summary(script, result.decision, VerifiedFacts("+15550100"))
    assert line == (
        "Calling about transfer times (“My transfer to my sister didn't arrive.”); "
        "needs a person. +15550100."
    )


def test_two_requests_read_as_one_answer_are_quoted() -> None:
    text = "How do I send money to my aunt in Spain, and what would it cost her?"
    script = [say(1, text, "kb_receiving_money", 0.95)]
    result = run_call(script)
    assert result.reason == "complexity"
    line = summary(script, result.decision, VerifiedFacts("+15550100"))
    assert line == (
        f"Calling about receiving money (“{text}”); needs a person for several requests at "
        "once. +15550100."
    )
