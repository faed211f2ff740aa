"""Builders for hand-written turns and scripted calls (no audio, no Rasa).

Speech turns get realistic endpointer stats by default: a steady level of
-26 dBFS and 2.5 words per voiced second, so a test only states what it
changes (a louder turn, a faster one).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from voicebot.transfer import TransferConfig, TransferDecision, TransferPolicy, TurnObservation
from voicebot.transfer.observation import count_words

BASE_DBFS = -26.0
BASE_RATE = 2.5  # words per voiced second
TURN_GAP_S = 8.0


def say(
    index: int,
    text: str,
    intent: str | None = None,
    confidence: float | None = 0.92,
    *,
    at: float | None = None,
    ranking: Sequence[tuple[str, float]] = (),
    dbfs: float = BASE_DBFS,
    rate: float = BASE_RATE,
    bot: str = "",
    failed: bool = False,
    progress: bool | None = None,
) -> TurnObservation:
    """A spoken caller turn."""
    voiced = max(count_words(text), 1) / rate
    if not ranking and intent:
        ranking = [(intent, confidence or 0.0)]
    return TurnObservation(
        index=index,
        at_s=at if at is not None else 10.0 + TURN_GAP_S * index,
        caller_text=text,
        intent=intent,
        confidence=None if intent is None else confidence,
        intent_ranking=ranking,
        audio_stats={"rms_dbfs": dbfs, "voiced_s": voiced, "duration_s": voiced + 0.8},
        bot_text=bot,
        dialogue_failed=failed,
        made_progress=progress,
    )


def key(
    index: int,
    digits: str,
    intent: str | None = None,
    *,
    progress: bool | None = None,
    bot: str = "",
) -> TurnObservation:
    """A keypad turn: digits and no audio."""
    return TurnObservation(
        index=index,
        at_s=10.0 + TURN_GAP_S * index,
        dtmf=digits,
        intent=intent,
        confidence=1.0 if intent else None,
        made_progress=progress,
        bot_text=bot,
    )


@dataclass
class CallResult:
    policy: TransferPolicy
    decision: TransferDecision | None

    @property
    def reason(self) -> str | None:
        return self.decision.reason if self.decision else None

    @property
    def turn(self) -> int | None:
        return self.decision.turn_index if self.decision else None

    @property
    def signal_names(self) -> list[str]:
        return [s.name for s in self.decision.signals] if self.decision else []


def run_call(turns: Sequence[TurnObservation], config: TransferConfig | None = None) -> CallResult:
    """Feed a whole call to a fresh policy, as the session would."""
    policy = TransferPolicy(config or TransferConfig())
    decision = None
    for turn in turns:
        decision = policy.observe(turn)
    return CallResult(policy, decision)


# --- the scripted calls ---------------------------------------------------------

ROUTINE_BALANCE = [
    say(1, "Hi there.", "greet", 0.97),
    say(2, "I'd like to check my balance, please.", "check_balance", 0.93),
    key(
        3,
        "4321",
        "provide_pin",
        progress=True,
        bot="Thanks. Your balance is 1,204 dollars. Anything else?",
    ),
    say(4, "No, thanks. That's all.", "deny", 0.88),
    say(5, "Bye.", "goodbye", 0.95),
]

ROUTINE_LOST_CARD = [
    say(1, "Hello.", "greet", 0.96),
    say(2, "I lost my card and I think someone stole it.", "lost_card", 0.91),
    say(
        3,
        "Yes please, block it.",
        "affirm",
        0.9,
        progress=True,
        bot="Done, your card is blocked and a new one is on its way. Anything else?",
    ),
    say(4, "No, I don't think so. Thanks.", "deny", 0.86),
]

ROUTINE_HOURS = [
    say(1, "Hello.", "greet", 0.96),
    say(
        2,
        "What are your opening hours?",
        "opening_hours",
        0.95,
        progress=True,
        bot="We're open 9 to 5, Monday to Friday. Anything else?",
    ),
    say(3, "No thanks.", "deny", 0.9),
]

MILD_NEGATIVE = [
    say(1, "Hi.", "greet", 0.97),
    say(2, "Ugh, that's a bit annoying, I wanted to check my balance.", "check_balance", 0.85),
    key(3, "4321", "provide_pin", progress=True),
    say(4, "No, thank you.", "deny", 0.9),
]

FRUSTRATION_RISING = [
    say(1, "Hi, I want to see my recent transactions.", "nlu_fallback", 0.31),
    say(2, "Recent transactions.", "nlu_fallback", 0.38, dbfs=-19.0),
    say(
        3,
        "No, that's not what I said! This is ridiculous, recent transactions!",
        "correction",
        0.81,
        dbfs=-16.0,
        rate=3.6,
    ),
]

EXPLICIT_AGENT = [
    say(1, "Hello.", "greet", 0.97),
    say(2, "Agent.", "request_human", 0.94),
]

EXPLICIT_WORDS_ONLY = [
    say(1, "Hello.", "greet", 0.97),
    # Rasa missed it; the words alone are enough.
    say(2, "Can I just talk to a real person?", "nlu_fallback", 0.42),
]

DTMF_ZERO = [
    say(1, "Hello.", "greet", 0.97),
    key(2, "0"),
]

FRAUD = [
    say(1, "Hi.", "greet", 0.97),
    say(
        2,
        "There's a charge on my card I don't recognise, I think it's fraud.",
        "fraud_dispute",
        0.88,
    ),
]

MULTI_PART = [
    say(1, "Hello.", "greet", 0.97),
    say(
        2,
        "I need to check my balance and also reset my password.",
        "check_balance",
        0.48,
        ranking=[("check_balance", 0.48), ("reset_password", 0.41), ("greet", 0.04)],
    ),
]

DIALOGUE_DOWN = [
    say(1, "Hi, I'd like my balance.", "check_balance", 0.93),
    say(2, "Hello?", failed=True),
    say(3, "Hello, are you there?", failed=True),
]

REPEATED_REQUEST = [
    say(1, "Hello.", "greet", 0.97),
    say(2, "I lost my debit card yesterday.", "lost_card", 0.55, progress=False),
    say(3, "I lost my debit card.", "lost_card", 0.58, progress=False),
]

TWO_FALLBACKS_AND_CORRECTION = [
    say(1, "Hello.", "greet", 0.97),
    say(2, "Can you move money into savings?", "nlu_fallback", 0.33),
    say(3, "Move money to my savings account.", "nlu_fallback", 0.36),
    say(4, "No, that's not what I asked.", "correction", 0.79),
]

# Polite, understood, going nowhere: every turn a new small question the bot
# answers with "I can help with balances, cards, passwords and hours".
LONG_NO_PROGRESS = [
    say(1, "Hello.", "greet", 0.97),
    *[
        say(i, text, intent, 0.85)
        for i, (text, intent) in enumerate(
            [
                ("What can you do?", "what_can_you_do"),
                ("Sorry, can you repeat that?", "ask_repeat"),
                ("Okay.", "affirm"),
                ("Hmm, and what else?", "what_can_you_do"),
                ("Could you say that again?", "ask_repeat"),
                ("Right, yes.", "affirm"),
                ("What are the options?", "what_can_you_do"),
                ("Say that once more?", "ask_repeat"),
                ("Alright.", "affirm"),
                ("And what else can you do?", "what_can_you_do"),
                ("Okay, thank you.", "thank_you"),
            ],
            start=2,
        )
    ],
]
