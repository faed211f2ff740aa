"""The line an agent reads before picking up, written the way a colleague would.

"Angry about a card payment they don't recognise ("you stupid bot"), after 2
misunderstandings; needs a person.  +15550100, caller ID matched, PIN verified."

Pure: built from the turns the policy saw, its decision, and verification
facts the session passes in (never the PIN itself), so the line can only
claim what the call record shows.  A request the assistant has no label for
is quoted in the caller's own (redacted) words.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from voicebot.transfer.config import TransferConfig
from voicebot.transfer.observation import TurnObservation
from voicebot.transfer.policy import (
    CATEGORY_LABELS,
    TransferDecision,
    emotional_evidence,
    misunderstanding_count,
)
from voicebot.transfer.signals import (
    ABUSIVE_LANGUAGE,
    EXPLICIT_REQUEST,
    REPETITION,
    Signal,
    asked_beside_one_answer,
    compute_signals,
    own_problem,
)

INTENT_LABELS: dict[str, str] = {
    "check_balance": "their balance",
    "recent_transactions": "recent transactions",
    "lost_card": "a lost or stolen card",
    "reset_password": "a password reset",
    "opening_hours": "opening hours",
    "complaint": "a complaint",
    "fraud_dispute": "a payment they don't recognise",
    "bereavement": "a bereavement",
    "financial_hardship": "financial hardship",
    "legal_threat": "legal action",
}
# Intents whose topic is best told in the caller's own words.
QUOTED_INTENTS = frozenset({"service_request", "out_of_scope", "nlu_fallback", "complaint"})
KB_PREFIX = "kb_"
_MAX_TOPICS = 2
_MAX_QUOTE_WORDS = 18


@dataclass(frozen=True)
class VerifiedFacts:
    """What the session verified; None means "not checked"."""

    caller_id: str | None = None
    caller_id_matched: bool | None = None
    pin_verified: bool | None = None


def summary(
    turns: Sequence[TurnObservation],
    decision: TransferDecision | None,
    facts: VerifiedFacts | None = None,
    config: TransferConfig | None = None,
    labels: Mapping[str, str] | None = None,
) -> str:
    """Two short sentences: how the caller is and what they need; who they are.
    ``labels`` name the intents (the Rasa project's intents.yml; the bank's by default)."""
    facts = facts or VerifiedFacts()
    cfg = config or TransferConfig()
    about = _about(turns, INTENT_LABELS if labels is None else labels, cfg)
    if decision is None:
        return f"Asked {about}; handled by the assistant. {_who(facts)}"
    mood = _mood(turns, decision, cfg)
    lead = f"{mood} {about}" if about.startswith("about") else f"{mood}, {about}"
    history = _history(turns, decision, cfg, about)
    parts = [lead, *history, _need(decision, about)]
    return f"{'; '.join(parts)}. {_who(facts)}"


def topic_label(intent: str | None, labels: Mapping[str, str] = INTENT_LABELS) -> str | None:
    """How the agent reads an intent: a fixed label, a knowledge-base topic
    ("kb_card_delivery" -> "card delivery"), or None when unknown."""
    if not intent:
        return None
    if intent in labels:
        return labels[intent]
    if intent.startswith(KB_PREFIX):
        return intent.removeprefix(KB_PREFIX).replace("_", " ")
    return None


def _about(turns: Sequence[TurnObservation], labels: Mapping[str, str], cfg: TransferConfig) -> str:
    """The topics by label; the caller's own words where no label fits, or where
    the label would hide what they need: a problem of their own ("transfer
    times" for "my transfer never arrived"), or a second request beside it."""
    topics: list[str] = []
    quote = ""
    for turn in turns:
        quotable = (
            turn.intent in QUOTED_INTENTS
            or own_problem(turn, cfg) is not None
            or len(asked_beside_one_answer(turn, cfg)) >= 2
        )
        if quotable and not quote and turn.caller_text.strip():
            quote = _quoted(turn.caller_text)
        label = topic_label(turn.intent, labels)
        if label and label not in topics:
            topics.append(label)
    parts = []
    if topics:
        parts.append("about " + (" and ".join(topics[:_MAX_TOPICS])))
    if quote:
        parts.append(f"({quote})" if topics else f"says {quote}")
    return " ".join(parts) if parts else "no clear request"


def _quoted(text: str) -> str:
    words = text.split()
    cut = " ".join(words[:_MAX_QUOTE_WORDS]) + ("…" if len(words) > _MAX_QUOTE_WORDS else "")
    return f"“{cut}”"


def _mood(turns: Sequence[TurnObservation], decision: TransferDecision, cfg: TransferConfig) -> str:
    """Angry when emotional signals fired hard on some turn, frustrated when
    the trend built up, otherwise nothing to warn the agent about."""
    history: list[TurnObservation] = []
    peak = 0.0
    for turn in turns:
        peak = max(peak, emotional_evidence(compute_signals(turn, history, cfg), cfg))
        history.append(turn)
    if peak >= cfg.emotional_threshold:
        return "Angry"
    if decision.reason == "frustration" or decision.score >= cfg.frustration_threshold / 2:
        return "Frustrated"
    return "Calling"


def _history(
    turns: Sequence[TurnObservation],
    decision: TransferDecision,
    cfg: TransferConfig,
    about: str,
) -> list[str]:
    """What happened on the way: the insult, the misunderstandings, repeats."""
    by_name: dict[str, Signal] = {s.name: s for s in decision.signals}
    notes = []
    insult = by_name.get(ABUSIVE_LANGUAGE)
    if insult and insult.evidence.count('"') >= 2:
        words = insult.evidence.split('"')[1]
        if words.lower() not in about.lower():
            notes.append(f"called it “{words}”")
    misses = misunderstanding_count(list(turns), cfg)
    if misses >= 2:
        notes.append(f"misunderstood {misses} times")
    if REPETITION in by_name:
        notes.append("had to repeat themself")
    return notes


def _need(decision: TransferDecision, about: str) -> str:
    if decision.reason == "explicit":
        explicit = next((s for s in decision.signals if s.name == EXPLICIT_REQUEST), None)
        pressed = explicit is not None and explicit.evidence.startswith("pressed")
        return "pressed 0 for a person" if pressed else "wants a person"
    if decision.reason == "complexity":
        label = decision.summary_hint.removeprefix("needs a person for ")
        topical = label in CATEGORY_LABELS.values() and label not in _TOPIC_CATEGORIES
        return f"needs a person for {label}" if topical and label not in about else "needs a person"
    return "needs a person"


# Complexity categories the topic already names (no need to say them twice).
_TOPIC_CATEGORIES = frozenset(
    CATEGORY_LABELS[c]
    for c in (
        "complaint", "fraud_dispute", "bereavement", "financial_hardship", "legal_threat",
        "banking_request",
    )
)  # fmt: skip


def _who(facts: VerifiedFacts) -> str:
    who = facts.caller_id or "No caller ID"
    parts = [who]
    if facts.caller_id_matched is not None:
        parts.append("caller ID matched" if facts.caller_id_matched else "caller ID not on file")
    if facts.pin_verified is not None:
        parts.append("PIN verified" if facts.pin_verified else "PIN not verified")
    return ", ".join(parts) + "."
