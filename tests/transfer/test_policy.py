"""Whole scripted calls through the policy: who is transferred, when, why."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
import transfer_scripts as calls
from transfer_scripts import key, run_call, say

import voicebot.transfer
from voicebot.transfer import TransferConfig, TransferPolicy, TurnObservation


@pytest.mark.parametrize(
    "script",
    [
        calls.ROUTINE_BALANCE,
        calls.ROUTINE_HOURS,
        calls.ROUTINE_LOST_CARD,
        calls.MILD_NEGATIVE,
        calls.REPEATED_REQUEST,
    ],
    ids=["balance-with-pin", "opening-hours", "lost-card", "one-mild-negative", "one-repeat"],
)
def test_calls_that_stay_with_the_bot(script: list[TurnObservation]) -> None:
    result = run_call(script)
    assert result.decision is None
    assert result.policy.state.peak_score < TransferConfig().frustration_threshold / 2


@pytest.mark.parametrize(
    ("script", "reason", "turn", "trigger"),
    [
        (calls.EXPLICIT_AGENT, "explicit", 2, "explicit_request"),
        (calls.EXPLICIT_WORDS_ONLY, "explicit", 2, "explicit_request"),
        (calls.DTMF_ZERO, "explicit", 2, "explicit_request"),
        (calls.FRAUD, "complexity", 2, "complexity"),
        (calls.MULTI_PART, "complexity", 2, "complexity"),
        (calls.DIALOGUE_DOWN, "complexity", 3, "dialogue_failure"),
        (calls.FRUSTRATION_RISING, "frustration", 3, "frustration_score"),
        (calls.TWO_FALLBACKS_AND_CORRECTION, "frustration", 4, "frustration_score"),
        (calls.LONG_NO_PROGRESS, "complexity", 10, "no_progress"),
    ],
)
def test_calls_that_go_to_a_person(
    script: list[TurnObservation], reason: str, turn: int, trigger: str
) -> None:
    result = run_call(script)
    assert (result.reason, result.turn) == (reason, turn)
    assert result.decision is not None and result.decision.trigger == trigger
    assert result.signal_names, "every transfer names its signals"


def test_frustration_rises_over_three_turns_and_lists_its_signals() -> None:
    result = run_call(calls.FRUSTRATION_RISING)
    scores = [p.score for p in result.policy.state.timeline]
    assert scores == sorted(scores) and scores[0] < scores[-1]
    assert scores[1] < TransferConfig().frustration_threshold <= scores[2]
    assert {"misunderstanding", "repetition", "negative_sentiment", "louder_voice"} <= set(
        result.signal_names
    )
    # The evidence points back at the turns that built the trend.
    repetition = next(s for s in result.decision.signals if s.name == "repetition")
    assert repetition.evidence.startswith("turn 2:")


def test_score_decays_on_calm_turns() -> None:
    angry = [
        say(1, "Hello.", "greet"),
        say(2, "This is useless, I'm so frustrated.", "nlu_fallback", 0.3),
    ]
    calm = [say(i, "Okay.", "affirm") for i in range(3, 6)]
    result = run_call([*angry, *calm])
    scores = [p.score for p in result.policy.state.timeline]
    assert scores[1] > 0.3
    assert scores[1] > scores[2] > scores[3] > scores[4]
    assert scores[4] < scores[1] * TransferConfig().frustration_decay ** 2


def test_progress_relieves_frustration() -> None:
    base = [say(1, "Balance.", "nlu_fallback", 0.3), say(2, "My balance!", "nlu_fallback", 0.3)]
    stalled = run_call([*base, say(3, "Okay.", "affirm")]).policy.state.score
    done = run_call([*base, say(3, "Okay.", "affirm", progress=True)]).policy.state.score
    assert done < stalled


def test_repetition_fires_when_the_request_is_repeated() -> None:
    result = run_call(calls.REPEATED_REQUEST)
    fired = result.policy.state.timeline[-1].signals
    assert "repetition" in fired


def test_two_fallbacks_alone_do_not_transfer_but_a_correction_after_them_does() -> None:
    script = calls.TWO_FALLBACKS_AND_CORRECTION
    assert run_call(script[:3]).decision is None
    result = run_call(script)
    assert result.reason == "frustration"
    assert result.decision.summary_hint == "became frustrated after 3 misunderstandings"


def test_louder_and_faster_speech_tips_a_borderline_call() -> None:
    """Same words; the caller whose voice rises against their own opening
    turns is transferred, the one who stays calm is not."""

    def script(dbfs: float, rate: float) -> list[TurnObservation]:
        return [
            say(1, "Hello, good morning to you.", "greet"),
            say(2, "I want to check my balance please.", "check_balance", progress=True),
            say(3, "Can you tell me about moving money?", "nlu_fallback", 0.35),
            say(
                4,
                "Moving money between my accounts please.",
                "nlu_fallback",
                0.4,
                dbfs=dbfs,
                rate=rate,
            ),
        ]

    calm = run_call(script(-26.0, 2.5))
    raised = run_call(script(-14.0, 3.8))
    assert calm.decision is None
    assert raised.reason == "frustration"
    assert {"louder_voice", "faster_speech"} <= set(raised.signal_names)


def test_calling_the_bot_stupid_transfers_but_exasperation_does_not() -> None:
    opening = [say(1, "Hello.", "greet"), say(2, "My balance please.", "check_balance")]
    insult = run_call([*opening, say(3, "You stupid bot.", "out_of_scope", 0.9)])
    assert insult.reason == "frustration"
    assert insult.signal_names[0] == "abusive_language"
    sigh = run_call([*opening, say(3, "Oh hell, that's a bit annoying.", "out_of_scope", 0.9)])
    assert sigh.decision is None


def test_anger_outranks_a_complexity_topic_and_keeps_it_in_signals() -> None:
    angry = run_call([say(1, "I'm furious, this is a joke. I want to complain.", "complaint")])
    assert angry.reason == "frustration"
    assert {"frustration_words", "complexity"} <= set(angry.signal_names)
    calm = run_call([say(1, "I'd like to make a complaint about my branch.", "complaint")])
    assert calm.reason == "complexity"


def test_an_insult_right_after_a_wrong_answer_is_frustration() -> None:
    script = [
        say(1, "When does the branch close?", "opening_hours"),
        say(2, "That's not what I asked, you moron.", "correction", 0.8),
    ]
    result = run_call(script)
    assert result.reason == "frustration" and result.decision.turn_index == 2
    assert {"abusive_language", "frustration_words"} <= set(result.signal_names)


def test_a_banking_request_the_bot_cannot_serve_goes_at_once() -> None:
    result = run_call([say(1, "I need to cancel a transfer I made.", "service_request", 0.8)])
    assert result.reason == "complexity"
    assert "banking_request" in result.decision.signals[0].evidence


def test_tone_alone_takes_two_sustained_turns() -> None:
    opening = [
        say(1, "Hello, good morning to you.", "greet"),
        say(2, "I want to check my balance please.", "check_balance"),
    ]
    shouting = [
        say(
            i, "Can you tell me my balance right now please?", "check_balance", dbfs=-12.0, rate=4.0
        )
        for i in (3, 4)
    ]
    assert run_call([*opening, shouting[0]]).decision is None
    assert run_call([*opening, *shouting]).reason == "frustration"


def test_multi_part_with_wording_only_needs_a_second_time() -> None:
    ask = "What's my balance, and also my recent transactions?"
    ranking = [("check_balance", 0.8), ("recent_transactions", 0.1)]
    once = [say(1, "Hi.", "greet"), say(2, ask, "check_balance", 0.8, ranking=ranking)]
    assert run_call(once).decision is None
    twice = [*once, say(3, ask, "check_balance", 0.8, ranking=ranking)]
    assert run_call(twice).reason == "complexity"


def test_explicit_outranks_everything_else() -> None:
    script = [
        *calls.FRUSTRATION_RISING[:2],
        say(3, "Agent! This is ridiculous.", "request_human", dbfs=-12),
    ]
    result = run_call(script)
    assert result.reason == "explicit"
    assert result.signal_names[0] == "explicit_request"


def test_decision_is_kept_once_made() -> None:
    policy = TransferPolicy()
    for turn in calls.FRAUD:
        decision = policy.observe(turn)
    later = policy.observe(say(3, "Hello?", "greet"))
    assert later is decision
    assert len(policy.state.timeline) == 3


def test_turns_must_arrive_in_order() -> None:
    policy = TransferPolicy()
    policy.observe(say(2, "Hello.", "greet"))
    with pytest.raises(ValueError, match="in order"):
        policy.observe(say(2, "Again.", "greet"))


# --- thresholds from config ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("script", "config", "reason"),
    [
        (calls.FRUSTRATION_RISING, TransferConfig(frustration_threshold=0.95), "frustration"),
        (
            calls.FRUSTRATION_RISING,
            TransferConfig(frustration_threshold=0.99, frustration_decay=0.2),
            None,
        ),
        (calls.MILD_NEGATIVE, TransferConfig(frustration_threshold=0.2), "frustration"),
        (calls.DTMF_ZERO, TransferConfig(explicit_dtmf="9"), None),
        (calls.FRAUD, TransferConfig(complexity_intents={}), None),
        (calls.DIALOGUE_DOWN, TransferConfig(dialogue_failure_turns=3), None),
        (calls.DIALOGUE_DOWN, TransferConfig(dialogue_failure_reason="frustration"), "frustration"),
        (calls.LONG_NO_PROGRESS, TransferConfig(no_progress_turns=20, no_progress_s=900), None),
        (
            [say(1, "Hi.", "greet"), say(2, "Do you sell car insurance?", "out_of_scope")],
            TransferConfig(complexity_intents={"out_of_scope": "out_of_scope"}),
            "complexity",
        ),
        (
            [say(1, "Hi.", "greet"), say(2, "Do you sell car insurance?", "out_of_scope")],
            TransferConfig(),
            None,
        ),
    ],
)
def test_thresholds_come_from_config(
    script: list[TurnObservation], config: TransferConfig, reason: str | None
) -> None:
    assert run_call(script, config).reason == reason


def test_dialogue_failure_turns_from_config() -> None:
    result = run_call(calls.DIALOGUE_DOWN, TransferConfig(dialogue_failure_turns=1))
    assert (result.reason, result.turn) == ("complexity", 2)


@pytest.mark.parametrize(
    "bad",
    [
        {"frustration_threshold": 0.0},
        {"frustration_decay": 1.5},
        {"louder_db": 12.0, "louder_full_db": 6.0},
        {"dialogue_failure_turns": 0},
        {"no_progress_reason": "boredom"},
        {"frustration_weights": {"repetition": 2.0}},
    ],
)
def test_config_rejects_settings_that_break_the_policy(bad: dict) -> None:
    with pytest.raises(ValueError):
        TransferPolicy(TransferConfig(**bad))


# --- explainable, replayable, pure ---------------------------------------------------------


def test_state_and_decision_are_json_for_the_call_record() -> None:
    result = run_call(calls.FRUSTRATION_RISING)
    state = json.loads(json.dumps(result.policy.state.to_dict()))
    assert [p["turn"] for p in state["timeline"]] == [1, 2, 3]
    assert set(state["timeline"][0]) == {"turn", "at", "score", "evidence", "signals"}
    decision = state["decision"]
    assert decision["reason"] == "frustration" and decision["turn"] == 3
    assert all(set(s) == {"name", "value", "evidence"} for s in decision["signals"])
    record = result.policy.state.record("Caller ... became frustrated.")
    assert set(record) >= {"reason", "signals", "at", "summary", "score", "timeline"}
    json.dumps(record)


def test_no_record_entry_without_a_transfer() -> None:
    assert run_call(calls.ROUTINE_BALANCE).policy.state.record("x") is None


def test_replaying_stored_turns_gives_the_same_decision() -> None:
    first = run_call(calls.FRUSTRATION_RISING)
    stored = json.loads(json.dumps([t.to_dict() for t in calls.FRUSTRATION_RISING]))
    again = run_call([TurnObservation.from_dict(t) for t in stored])
    assert again.policy.state.to_dict() == first.policy.state.to_dict()


def test_dtmf_turn_needs_no_audio_stats() -> None:
    result = run_call([say(1, "Hello.", "greet"), key(2, "4321", "provide_pin", progress=True)])
    assert result.decision is None


def test_the_package_does_no_io_and_imports_nothing_above_it() -> None:
    """The decision is pure and sits below the session (docs/ARCHITECTURE.md)."""
    package = Path(voicebot.transfer.__file__).parent
    # fmt: off
    banned_modules = ("asyncio", "socket", "aiohttp", "requests", "subprocess", "threading",
                      "time", "sqlite3", "voicebot.session", "voicebot.telephony",
                      "voicebot.dialogue", "voicebot.handoff", "voicebot.agent_desk",
                      "voicebot.storage", "voicebot.config")
    # fmt: on
    banned_calls = {"open", "print", "input"}
    for path in package.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            for name in names:
                assert not name.startswith(banned_modules), f"{path.name} imports {name}"
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id not in banned_calls, f"{path.name} calls {node.func.id}"


def test_a_complaint_after_repeating_a_misunderstood_request_is_frustration() -> None:
    """The fixture frustration_repeated_request: the request, "that's not what I
    said", the request again, then swearing about it with a complaint."""
    script = [
        say(1, "What were my last few payments?", "recent_transactions", progress=True),
        say(2, "No, that's not what I said.", "correction"),
        say(3, "Again, I just want to hear my recent transactions.", "recent_transactions",
            progress=True),
        say(4, "This is bullshit, I want my money back!", "complaint", 0.8),
    ]  # fmt: skip
    call = run_call(script)
    assert call.reason == "frustration"
    assert {"repetition", "abusive_language", "complexity"} <= set(call.signal_names)
    calm = run_call([*script[:3], say(4, "I'd like to make a complaint.", "complaint")])
    assert calm.reason == "complexity"
