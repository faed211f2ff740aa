"""Builders shared by the handoff and agent-desk tests: a record and its transfer."""

from __future__ import annotations

from typing import Any

from voicebot.core.record import CallRecord
from voicebot.handoff import HandoffPackage


def fraud_record(call_id: str = "call-1") -> CallRecord:
    record = CallRecord(call_id, "+15550100", "fixture")
    record.add_turn(None, "none", bot_text="Hello, you're speaking with the automated assistant.")
    record.add_turn(
        "what's my balance",
        "speech",
        intent="check_balance",
        confidence=0.93,
        bot_text="Please key in your PIN.",
    )
    record.add_turn(
        "[PIN]",
        "dtmf",
        intent="provide_pin",
        confidence=1.0,
        redacted=True,
        bot_text="Thanks, you're verified. Your balance is 1,204 dollars.",
    )
    record.add_turn(
        "there's a charge I don't recognise on my card",
        "speech",
        intent="fraud_dispute",
        confidence=0.88,
        bot_text="I'll pass you to a colleague who can help.",
    )
    for turn, offset in zip(record.turns, (0.0, 3.0, 7.5, 12.5), strict=True):
        turn.offset_s = offset
    record.verified = {"caller_id_matched": True, "pin_verified": True}
    return record


def fraud_decision() -> dict[str, Any]:
    """The shape of ``TransferState.record(summary)`` (the record's ``transfer``)."""
    return {
        "reason": "complexity",
        "trigger": "complexity",
        "signals": [
            {
                "name": "complexity",
                "value": 1.0,
                "evidence": "fraud_dispute: turn 3 intent fraud_dispute (0.88)",
            },
            {"name": "negative_sentiment", "value": 0.2, "evidence": "compound -0.30"},
        ],
        "at": 12.5,
        "turn": 3,
        "summary": (
            "Caller +15550100 asked about balance and a fraud or disputed charge "
            "(caller ID matched, PIN verified),\n needs a person."
        ),
        "score": 0.12,
        "timeline": [
            {"turn": 1, "at": 3.0, "score": 0.0, "evidence": 0.0, "signals": []},
            {"turn": 2, "at": 7.5, "score": 0.0, "evidence": 0.0, "signals": []},
            {
                "turn": 3,
                "at": 12.5,
                "score": 0.12,
                "evidence": 0.12,
                "signals": ["negative_sentiment"],
            },
        ],
    }


def make_package(call_id: str = "call-1", reason: str = "complexity") -> HandoffPackage:
    decision = fraud_decision()
    decision["reason"] = reason
    if reason != "complexity":
        decision["signals"] = [
            {"name": "explicit_request", "value": 1.0, "evidence": 'said "agent"'}
        ]
    return HandoffPackage.from_record(fraud_record(call_id), decision)
