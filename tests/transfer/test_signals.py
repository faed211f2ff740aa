"""Each signal on its own, table-driven: what fires, what must not."""

from __future__ import annotations

import pytest
from transfer_scripts import key, say

from voicebot.transfer import Signal, TransferConfig, TurnObservation
from voicebot.transfer import signals as sig

CFG = TransferConfig()


def value(
    fn: sig.SignalFn,
    turn: TurnObservation,
    history: list[TurnObservation] | None = None,
    cfg: TransferConfig = CFG,
) -> float:
    return fn(turn, history or [], cfg).value


# --- explicit request --------------------------------------------------------------


@pytest.mark.parametrize(
    ("turn", "fires"),
    [
        (say(1, "Agent.", "request_human"), True),
        (say(1, "Could I speak to an operator?", "nlu_fallback", 0.3), True),
        (say(1, "Get me a representative", None), True),
        (say(1, "I want a real person now.", None), True),
        (say(1, "Put me through to a human", None), True),
        (say(1, "Can I talk to someone real?", None), True),
        (say(1, "No, agent!", None), True),  # "no" answers the bot, "agent" is its own clause
        (key(1, "0"), True),
        (say(1, "I don't need an agent, just my balance.", "check_balance"), False),
        (say(1, "My estate agent needs a bank reference.", "out_of_scope"), False),
        (say(1, "I work in human resources.", None), False),
        (say(1, "What's my balance?", "check_balance"), False),
        (key(1, "4321", "provide_pin"), False),
        (key(1, "00"), False),
    ],
)
def test_explicit_request(turn: TurnObservation, fires: bool) -> None:
    assert (value(sig.explicit_request, turn) == 1.0) is fires


def test_yes_to_the_bots_offer_of_a_person_is_explicit() -> None:
    offer = say(
        1,
        "Blah.",
        "nlu_fallback",
        0.2,
        bot="Sorry, I didn't get that. Would you like to speak to an agent?",
    )
    assert value(sig.explicit_request, say(2, "Yes please.", "affirm"), [offer]) == 1.0
    plain = say(1, "Hi.", "greet", bot="To reach a person, say agent or press 0. How can I help?")
    assert value(sig.explicit_request, say(2, "Yes.", "affirm"), [plain]) == 0.0


def test_explicit_dtmf_key_comes_from_config() -> None:
    nine = TransferConfig(explicit_dtmf="9")
    assert value(sig.explicit_request, key(1, "0"), cfg=nine) == 0.0
    assert value(sig.explicit_request, key(1, "9"), cfg=nine) == 1.0


# --- sentiment and abuse ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "low", "high"),
    [
        ("No thanks, that's all.", 0.0, 0.0),  # an answer, not a mood
        ("I lost my card.", 0.0, 0.0),  # a topic, not a mood
        ("My husband died last month.", 0.0, 0.0),
        ("Thank you, that's great.", 0.0, 0.0),
        ("That's a bit annoying.", 0.2, 0.6),
        ("This is useless, I'm so frustrated.", 0.6, 1.0),
        ("", 0.0, 0.0),
    ],
)
def test_negative_sentiment(text: str, low: float, high: float) -> None:
    assert low <= value(sig.negative_sentiment, say(1, text)) <= high


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("You stupid bot.", 1.0),
        ("You're completely useless.", 1.0),
        ("Screw you.", 1.0),
        ("What the hell is going on?", CFG.profanity_value),
        ("This is f*** ridiculous.", CFG.profanity_value),  # STT-censored swearing
        ("Oh my god, my father had a stroke.", 0.0),  # allow-listed everyday words
        ("Sorry to bother you, can you block my card?", 0.0),
        ("The cash machine rejected my card.", 0.0),
        ("Thank you so much, you've been helpful.", 0.0),
        ("You're killing me here.", 0.0),  # an idiom, not an insult
    ],
)
def test_abusive_language(text: str, expected: float) -> None:
    assert value(sig.abusive_language, say(1, text)) == pytest.approx(expected)


def test_profanity_value_comes_from_config() -> None:
    turn = say(1, "Damn, what is going on.")
    assert value(sig.abusive_language, turn, cfg=TransferConfig(profanity_value=0.2)) == 0.2


# --- repetition --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("earlier", "now", "fires"),
    [
        ("I want to check my balance.", "I said my balance!", True),
        ("I lost my debit card yesterday.", "I lost my debit card.", True),
        ("Can you move money into savings?", "Move money to my savings account.", True),
        ("Check my balance.", "Reset my password.", False),
        ("I lost my card.", "I lost my cart.", False),  # words, not characters
        ("Yes.", "Yes.", False),  # exempt: formulaic answers repeat
    ],
)
def test_repetition(earlier: str, now: str, fires: bool) -> None:
    intent = "affirm" if now == "Yes." else None
    first = say(1, earlier, intent)
    assert (value(sig.repetition, say(2, now, intent), [first]) > 0) is fires


def test_repetition_ignores_a_request_already_resolved() -> None:
    done = say(1, "What are your opening hours?", "opening_hours", progress=True)
    assert (
        value(sig.repetition, say(2, "What are your opening hours?", "opening_hours"), [done])
        == 0.0
    )


def test_repetition_claim_without_a_matching_turn() -> None:
    first = say(1, "Blue wallet thing.", "nlu_fallback", 0.2)
    got = sig.repetition(say(2, "I already told you, transactions!"), [first], CFG)
    assert got.value == CFG.repetition_claim_value and "told you" in got.evidence


def test_repetition_threshold_comes_from_config() -> None:
    first = say(1, "Check my balance and transactions please.")
    now = say(2, "My balance.")
    assert value(sig.repetition, now, [first]) == 0.0
    assert value(sig.repetition, now, [first], TransferConfig(repetition_similarity=0.6)) > 0


# --- misunderstanding streak ---------------------------------------------------------


@pytest.mark.parametrize(
    ("intents", "expected"),
    [
        ([("greet", 0.95)], 0.0),
        ([("nlu_fallback", 0.3)], 1 / 3),
        ([("nlu_fallback", 0.3), ("nlu_fallback", 0.4)], 2 / 3),
        ([("nlu_fallback", 0.3), ("nlu_fallback", 0.4), ("correction", 0.8)], 1.0),
        ([("nlu_fallback", 0.3), ("check_balance", 0.9), ("correction", 0.8)], 1 / 3),
        ([("check_balance", 0.42)], 1 / 3),  # low confidence counts
    ],
)
def test_misunderstanding_streak(intents: list[tuple[str, float]], expected: float) -> None:
    turns = [say(i, "words here", name, conf) for i, (name, conf) in enumerate(intents, 1)]
    got = value(sig.misunderstanding, turns[-1], turns[:-1])
    assert got == pytest.approx(expected)


def test_a_dialogue_failure_is_not_a_misunderstanding() -> None:
    assert value(sig.misunderstanding, say(1, "", failed=True)) == 0.0


# --- tone against the caller's baseline -------------------------------------------------

BASELINE = [
    say(1, "Hello there, good morning.", "greet"),
    say(2, "I want to check my balance please.", "check_balance"),
]


@pytest.mark.parametrize(
    ("dbfs", "expected"),
    [(-26.0, 0.0), (-21.0, 0.0), (-20.0, 0.5), (-17.0, 0.75), (-10.0, 1.0)],
)
def test_louder_than_own_baseline(dbfs: float, expected: float) -> None:
    turn = say(3, "Can you tell me my balance?", dbfs=dbfs)
    assert value(sig.louder_voice, turn, BASELINE) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("rate", "expected"),
    [(2.5, 0.0), (3.0, 0.0), (3.125, 0.5), (3.75, 1.0)],
)
def test_faster_than_own_baseline(rate: float, expected: float) -> None:
    turn = say(3, "Can you tell me my balance right now?", rate=rate)
    assert value(sig.faster_speech, turn, BASELINE) == pytest.approx(expected)


def test_tone_needs_a_baseline_and_enough_speech() -> None:
    loud = say(2, "Tell me my balance now please.", dbfs=-10.0, rate=4.0)
    assert value(sig.louder_voice, loud, BASELINE[:1]) == 0.0  # one turn is no baseline
    assert value(sig.faster_speech, loud, BASELINE[:1]) == 0.0
    short = say(3, "No!", dbfs=-10.0, rate=6.0)  # too few words for a rate
    assert value(sig.faster_speech, short, BASELINE) == 0.0
    assert value(sig.louder_voice, key(3, "0"), BASELINE) == 0.0  # no audio on DTMF


def test_a_loud_line_is_not_a_loud_caller() -> None:
    loud_line = [
        say(1, "Hello there, good morning.", "greet", dbfs=-12.0),
        say(2, "I want to check my balance please.", dbfs=-12.0),
    ]
    assert value(sig.louder_voice, say(3, "And my transactions too.", dbfs=-11.0), loud_line) == 0.0


def test_louder_threshold_comes_from_config() -> None:
    turn = say(3, "Can you tell me my balance?", dbfs=-22.0)
    assert value(sig.louder_voice, turn, BASELINE) == 0.0
    assert value(
        sig.louder_voice, turn, BASELINE, TransferConfig(louder_db=3.0, louder_full_db=8.0)
    ) == pytest.approx(0.5)


def test_words_per_second_uses_voiced_time() -> None:
    turn = TurnObservation(
        1,
        5.0,
        "one two three four five six",
        audio_stats={"rms_dbfs": -20, "voiced_s": 2.0, "duration_s": 4.0},
    )
    assert turn.words_per_s == pytest.approx(3.0)
    assert TurnObservation(1, 5.0, "hello").words_per_s is None


# --- complexity ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("intent", "confidence", "expected"),
    [
        ("fraud_dispute", 0.88, 1.0),
        ("complaint", 0.9, 1.0),
        ("bereavement", 0.8, 1.0),
        ("financial_hardship", 0.7, 1.0),
        ("legal_threat", 0.75, 1.0),
        ("service_request", 0.9, 1.0),  # a banking need the bot cannot serve
        ("out_of_scope", 0.9, 0.0),  # a wrong number: no agent's time
        ("fraud_dispute", 0.3, 0.75),  # below min confidence: in proportion
        ("check_balance", 0.95, 0.0),
        ("request_human", 0.95, 0.0),
    ],
)
def test_complexity_by_intent(intent: str, confidence: float, expected: float) -> None:
    # Words that name a banking and a legal topic, so only the intent decides.
    text = "about my account and the law"
    assert value(sig.complexity, say(1, text, intent, confidence)) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("turn", "fires"),
    [
        # A classifier always picks some intent: a wrong number or a garbled line
        # read as an unservable banking request or a legal threat, with nothing of
        # either topic in the words, is not one.
        (
            say(1, "Can I be a taxi to the airport for six tomorrow?", "service_request", 0.89),
            False,
        ),
        (
            say(1, "Sorry, I'm a bit frazzled. What time do you close?", "service_request", 0.46),
            False,
        ),
        (say(1, "Ten, you tell me, be in.", "legal_threat", 0.54), False),
        # Naming the topic, in any inflection, keeps the intent's verdict.
        (say(1, "The money I transferred never arrived.", "service_request", 0.8), True),
        (say(1, "My top-ups keep getting cancelled.", "service_request", 0.8), True),
        (say(1, "I've lost my phone, is my app safe?", "service_request", 0.8), True),
        (say(1, "I was charged $5 for nothing.", "service_request", 0.8), True),
        (say(1, "I'm reporting this to the ombudsman.", "legal_threat", 0.8), True),
        # Categories without topic words need none.
        (say(1, "I'd like to make a complaint.", "complaint", 0.9), True),
    ],
)
def test_an_intent_counts_only_when_the_words_name_its_topic(
    turn: TurnObservation, fires: bool
) -> None:
    assert (sig.intent_category(turn, CFG) is not None) is fires
    assert (sig.complexity(turn, [], CFG).value >= 1.0) is fires


def test_topic_words_come_from_config() -> None:
    turn = say(1, "Can I book a taxi?", "service_request", 0.9)
    assert value(sig.complexity, turn, cfg=TransferConfig(complexity_topic_words={})) == 1.0
    cfg = TransferConfig(complexity_topic_words={"banking_request": ("taxi",)})
    assert value(sig.complexity, turn, cfg=cfg) == 1.0


def test_weak_evidence_adds_up_over_the_call() -> None:
    first = say(1, "Something about a payment?", "service_request", 0.3)
    got = sig.complexity(say(2, "A payment I want back.", "service_request", 0.3), [first], CFG)
    assert got.value == 1.0 and "turn 1" in got.evidence and "turn 2" in got.evidence


def test_complexity_categories_come_from_config() -> None:
    cfg = TransferConfig(complexity_intents={"lost_card": "card_services"})
    assert value(sig.complexity, say(1, "I lost my card", "lost_card", 0.9), cfg=cfg) == 1.0
    assert value(sig.complexity, say(1, "fraud", "fraud_dispute", 0.9), cfg=cfg) == 0.0


@pytest.mark.parametrize(
    ("text", "ranking", "expected"),
    [
        # ranking and wording agree: two requests
        (
            "I need to check my balance and also reset my password.",
            [("check_balance", 0.48), ("reset_password", 0.41)],
            1.0,
        ),
        # wording only: half
        (
            "What's my balance, and also my recent transactions?",
            [("check_balance", 0.81), ("recent_transactions", 0.12)],
            0.5,
        ),
        # ranking only (an ambiguous single request): a quarter
        ("My card thing.", [("lost_card", 0.45), ("check_balance", 0.35)], 0.25),
        # one request with "and" inside it: nothing
        ("I'd like to check my balance and thank you.", [("check_balance", 0.9)], 0.0),
        # two keywords without a conjunction: nothing
        ("My balance password.", [("check_balance", 0.9)], 0.0),
    ],
)
def test_multi_part_request(text: str, ranking: list[tuple[str, float]], expected: float) -> None:
    turn = say(1, text, ranking[0][0], ranking[0][1], ranking=ranking)
    assert value(sig.complexity, turn) == pytest.approx(expected)


# --- long call, dialogue failure -------------------------------------------------------


def test_no_progress_ramps_with_turns_and_resets_on_progress() -> None:
    turns = [say(i, "Okay.", "affirm") for i in range(1, 12)]
    values = [value(sig.no_progress, t, turns[:i]) for i, t in enumerate(turns)]
    assert values[:4] == [0.0] * 4  # grace: a routine call needs ~4 turns
    assert values[9] == 1.0  # 10 turns
    assert values == sorted(values)
    progressed = [*turns[:8], say(9, "Great.", "affirm", progress=True)]
    assert value(sig.no_progress, say(10, "Okay.", "affirm"), progressed) == 0.0


def test_no_progress_by_seconds() -> None:
    first = say(1, "Hello.", "greet", at=10.0)
    assert value(sig.no_progress, say(2, "Hmm.", at=120.0), [first]) == pytest.approx(0.5)
    assert value(sig.no_progress, say(2, "Hmm.", at=200.0), [first]) == 1.0


@pytest.mark.parametrize(
    ("failures", "expected"),
    [([False], 0.0), ([True], 0.5), ([True, True], 1.0), ([True, False], 0.0)],
)
def test_dialogue_failure(failures: list[bool], expected: float) -> None:
    turns = [say(i, "hello", failed=f) for i, f in enumerate(failures, 1)]
    assert value(sig.dialogue_failure, turns[-1], turns[:-1]) == expected


# --- the Signal value itself -------------------------------------------------------------


def test_signal_value_is_bounded_and_serialisable() -> None:
    with pytest.raises(ValueError):
        Signal("x", 1.2)
    assert Signal("x", 0.12345, "why").to_dict() == {"name": "x", "value": 0.123, "evidence": "why"}


def test_every_signal_is_computed_every_turn() -> None:
    names = [s.name for s in sig.compute_signals(say(1, "Hello."), [], CFG)]
    assert names == [
        "explicit_request",
        "negative_sentiment",
        "abusive_language",
        "frustration_words",
        "repetition",
        "misunderstanding",
        "louder_voice",
        "faster_speech",
        "complexity",
        "no_progress",
        "dialogue_failure",
    ]


def test_dialogue_giving_up_is_complexity_in_its_own_category() -> None:
    from voicebot.transfer import TransferConfig, TransferPolicy, TurnObservation

    policy = TransferPolicy(TransferConfig())
    turn = TurnObservation(
        index=1,
        at_s=5.0,
        caller_text="[PIN]",
        intent="provide_pin",
        confidence=0.99,
        dialogue_gave_up="identity_failed",
    )
    decision = policy.observe(turn)
    assert decision is not None and decision.reason == "complexity"
    assert "identity_failed" in decision.signals[0].evidence


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Let me speak to a represent a tive.", "representative"),
        ("Representative.", "representative"),
        ("I want to talk to a humane.", "human"),
        ("It is urgent I get a refund.", None),
        ("Can I get a personal loan?", None),
        ("I want to open a joint account with my wife.", None),
        ("I don't want a humane society.", None),
    ],
)
def test_explicit_ask_survives_recogniser_slips(text: str, expected: str | None) -> None:
    heard = sig.sounds_like_request(text, CFG)
    assert (heard[0] if heard else None) == expected


@pytest.mark.parametrize(
    ("text", "fired"),
    [
        ("This is a complete waste of my time.", 1.0),
        ("You're not listening to me.", 0.6),
        ("Oh, that's a shame. Okay, thanks.", 0.0),
        ("That's a bit annoying but fine.", 0.0),
    ],
)
def test_frustration_words_about_the_bot(text: str, fired: float) -> None:
    assert value(sig.frustration_words, say(1, text)) == pytest.approx(fired)


# --- the caller's own problem, legal threats, misheard insults, asking again --------


@pytest.mark.parametrize(
    ("turn", "fires"),
    [
        # Worded like a question the knowledge base answers, but about the caller's
        # own transfer/top-up/card that went wrong: a person must look at it.
        (say(1, "Why was my card declined at the shop?", "kb_where_card_works"), True),
        (say(1, "My top up failed, how do top ups work?", "kb_top_up_methods"), True),
        (say(1, "I was charged twice for one coffee.", "kb_pending_payments"), True),
        (say(1, "The money I sent my brother is missing.", "out_of_scope", 0.3), True),
        (say(1, "Sorry, I didn't catch that.", "ask_repeat", 0.35), False),
        # Not understood: asked again (and a person offered after two misses), not guessed.
        (say(1, "The money I sent my brother is missing.", "nlu_fallback", 0.3), False),
        # Generic questions keep their answer.
        (say(1, "How long do transfers take?", "kb_transfer_times"), False),
        (say(1, "Can a card payment be declined abroad?", "kb_where_card_works"), False),
        # Pending is informational on this line (the answer explains it).
        (say(1, "Why is my transfer still pending?", "kb_transfer_times"), False),
        # A skill serves it, whatever the wording.
        (say(1, "My card is missing, please block it.", "lost_card"), False),
    ],
)
def test_own_problem_is_a_banking_request(turn: TurnObservation, fires: bool) -> None:
    assert (sig.own_problem(turn, CFG) is not None) is fires
    complexity = sig.complexity(turn, [], CFG)
    assert (complexity.value >= 1.0 and "own problem" in complexity.evidence) is fires


@pytest.mark.parametrize(
    "text",
    [
        "If this isn't fixed I'm taking you to court.",
        "My solicitor will be in touch.",
        "I'll report you to the ombudsman about my balance.",
        "I am going to sue the bank.",
    ],
)
def test_legal_threat_words_are_complexity_whatever_the_intent(text: str) -> None:
    signal = sig.complexity(say(1, text, "check_balance"), [], CFG)
    assert signal.value == 1.0 and signal.evidence.startswith("legal_threat:")


@pytest.mark.parametrize(
    "text",
    [
        "My wife died last month and I don't know what to do with her account.",
        "Dad passed away, I'm the executor.",
        "I need to arrange the funeral and pay the bills.",
    ],
)
def test_bereavement_words_are_complexity_whatever_the_intent(text: str) -> None:
    signal = sig.complexity(say(1, text, "nlu_fallback", 0.3), [], CFG)
    assert signal.value == 1.0 and signal.evidence.startswith("bereavement:")


@pytest.mark.parametrize(
    "text",
    ["I nearly died when I saw the fee.", "Sorry, I must have died, hold, wrong number."],
)
def test_the_callers_own_death_is_a_figure_of_speech_or_a_slip(text: str) -> None:
    assert sig.complexity(say(1, text, "out_of_scope", 0.6), [], CFG).value == 0.0


@pytest.mark.parametrize(
    ("turn", "fires"),
    [
        # Read as one knowledge-base answer, but a second request follows "and".
        (say(1, "How do I send money to my aunt in Spain, and what would it cost her?",
             "kb_receiving_money", 0.95), True),
        (say(1, "I want to open a joint account with my partner and move my savings into it.",
             "kb_age_limit", 0.32), True),
        # One request with "and" inside it, or context before it: one answer serves it.
        (say(1, "I just got married and I need to change my name.", "kb_change_details"), False),
        (say(1, "How long do transfers and top ups take?", "kb_transfer_times"), False),
        (say(1, "Do you charge for cash and what?", "kb_cash_withdrawal_fees"), False),
        # Skills have their own multi-part rule (keywords and ranking).
        (say(1, "Where is my card and what is my balance?", "check_balance"), False),
    ],
)  # fmt: skip
def test_two_requests_read_as_one_answer_are_multi_part(turn: TurnObservation, fires: bool) -> None:
    signal = sig.complexity(turn, [], CFG)
    assert (signal.value >= 1.0 and signal.evidence.startswith("multi_part:")) is fires


def test_a_courtesy_word_is_not_a_legal_threat() -> None:
    assert sig.complexity(say(1, "What's my balance?", "check_balance"), [], CFG).value == 0.0


@pytest.mark.parametrize(
    ("text", "fires"),
    [
        ("That's not what I asked, you more on.", True),  # "you moron", misheard
        ("You stew pit.", True),
        ("You absolute idiot.", True),
        ("Can you tell me more on fees?", False),
        ("Thank you more on that later.", False),
        ("Are you open on Sunday?", False),
        ("Could you send it again?", False),
    ],
)
def test_insults_are_matched_by_sound_only_right_after_you(text: str, fires: bool) -> None:
    assert (value(sig.abusive_language, say(1, text, None)) == 1.0) is fires


def test_asking_again_after_a_correction_is_repetition() -> None:
    history = [
        say(1, "What were my last few payments?", "recent_transactions", progress=True),
        say(2, "No, that's not what I said.", "correction"),
    ]
    again = say(3, "Again, my recent transactions.", "recent_transactions", progress=True)
    signal = sig.repetition(again, history, CFG)
    assert signal.value == 1.0 and "turn 1" in signal.evidence
    # The same request again after it was served is not a repeat.
    served = [history[0], say(2, "Thanks.", "thank_you", progress=True)]
    assert value(sig.repetition, again, served) == 0.0
