"""The one line an agent reads before picking up.

Pure: built from the turns the policy saw, its decision, and verification
facts the session passes in (never the PIN itself), so the line can only
claim what the call record shows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from voicebot.transfer.config import TransferConfig
from voicebot.transfer.observation import TurnObservation
from voicebot.transfer.policy import TransferDecision, misunderstanding_count

INTENT_LABELS: dict[str, str] = {
    "check_balance": "balance",
    "recent_transactions": "recent transactions",
    "lost_card": "a lost or stolen card",
    "reset_password": "a password reset",
    "opening_hours": "opening hours",
    "complaint": "a complaint",
    "fraud_dispute": "a fraud or disputed charge",
    "bereavement": "a bereavement",
    "financial_hardship": "financial hardship",
    "legal_threat": "legal action",
    "out_of_scope": "something the assistant does not handle",
}
_MAX_TOPICS = 3


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
    """E.g. "Caller +15550100 asked about balance (PIN verified), became
    frustrated after 2 misunderstandings; wants a person."  ``labels`` name the
    intents (the Rasa project's intents.yml; the bank's by default)."""
    facts = facts or VerifiedFacts()
    cfg = config or TransferConfig()
    who = f"Caller {facts.caller_id}" if facts.caller_id else "Caller (no caller ID)"
    head = f"{who} {_asked(turns, INTENT_LABELS if labels is None else labels)}"
    checks = _verification(facts)
    if checks:
        head += f" ({checks})"
    return f"{head}, {_outcome(turns, decision, cfg)}."


def _asked(turns: Sequence[TurnObservation], labels: Mapping[str, str]) -> str:
    topics: list[str] = []
    for turn in turns:
        label = labels.get(turn.intent or "")
        if label and label not in topics:
            topics.append(label)
    if not topics:
        return "made no clear request"
    topics = topics[:_MAX_TOPICS]
    listed = topics[0] if len(topics) == 1 else ", ".join(topics[:-1]) + " and " + topics[-1]
    return f"asked about {listed}"


def _verification(facts: VerifiedFacts) -> str:
    parts = []
    if facts.caller_id_matched is not None:
        parts.append("caller ID matched" if facts.caller_id_matched else "caller ID not on file")
    if facts.pin_verified is not None:
        parts.append("PIN verified" if facts.pin_verified else "PIN not verified")
    return ", ".join(parts)


def _outcome(
    turns: Sequence[TurnObservation], decision: TransferDecision | None, cfg: TransferConfig
) -> str:
    if decision is None:
        return "handled by the assistant"
    if decision.reason == "frustration":
        return decision.summary_hint
    mood = _mood(turns, decision, cfg)
    return f"{mood}; {decision.summary_hint}" if mood else decision.summary_hint


def _mood(turns: Sequence[TurnObservation], decision: TransferDecision, cfg: TransferConfig) -> str:
    """Mention frustration that built up even when it was not the trigger:
    the agent should know the caller is already annoyed."""
    misses = misunderstanding_count(list(turns), cfg)
    if misses >= 2:
        return f"became frustrated after {misses} misunderstandings"
    if decision.score >= cfg.frustration_threshold / 2:
        return "became frustrated"
    return ""
