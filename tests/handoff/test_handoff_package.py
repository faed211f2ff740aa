"""The handoff package: complete for the agent, and never a PIN or a card number."""

from __future__ import annotations

import json

import pytest
from handoff_builders import fraud_decision, fraud_record

from voicebot.handoff import HandoffPackage, mask_card_numbers


def test_package_carries_what_the_agent_needs() -> None:
    package = HandoffPackage.from_record(fraud_record(), fraud_decision())
    data = package.to_dict()
    assert data["call_id"] == "call-1" and data["caller_id"] == "+15550100"
    assert data["reason"] == "complexity" and data["trigger"] == "complexity"
    assert data["category"] == "fraud_dispute"
    assert [s["name"] for s in data["signals"]] == ["complexity", "negative_sentiment"]
    assert "\n" not in data["summary"] and data["summary"].endswith("needs a person.")
    assert data["summary"].startswith("Caller +15550100 asked about balance")
    assert data["intents"] == ["check_balance", "provide_pin", "fraud_dispute"]
    assert data["verified"] == {"caller_id_matched": True, "pin_verified": True}
    assert data["frustration_timeline"] == [
        {"turn": 1, "at_s": 3.0, "score": 0.0},
        {"turn": 2, "at_s": 7.5, "score": 0.0},
        {"turn": 3, "at_s": 12.5, "score": 0.12},
    ]
    turns = data["transcript"]
    assert len(turns) == 4
    assert set(turns[0]) == {
        "index",
        "at",
        "offset_s",
        "input",
        "caller_text",
        "intent",
        "confidence",
        "bot_text",
    }
    assert turns[0]["caller_text"] is None  # the disclosure
    assert turns[3]["caller_text"] == "there's a charge I don't recognise on my card"
    assert turns[3]["intent"] == "fraud_dispute" and turns[3]["confidence"] == 0.88
    assert json.loads(json.dumps(data)) == data  # JSON-clean for the store and the desk
    assert HandoffPackage.from_dict(data) == package


def test_no_pin_ever_even_when_upstream_redaction_missed_it() -> None:
    record = fraud_record()
    # A PIN turn the session failed to redact, a PIN in a slot-like extra
    # field, and a signal quoting it: none may reach the package.
    record.add_turn(
        "it's 4 3 2 1", "speech", intent="provide_pin", confidence=0.9, bot_text="Thanks."
    )
    record.add_turn("four three two one", "speech", redacted=True, intent="provide_pin")
    record.verified = {"caller_id_matched": True, "pin_verified": False, "pin": "4321"}
    decision = fraud_decision()
    decision["signals"].append(
        {"name": "repetition", "value": 0.5, "evidence": 'turn 4: "it\'s 4321" again'}
    )
    text = json.dumps(HandoffPackage.from_record(record, decision).to_dict())
    assert "4321" not in text and "4 3 2 1" not in text and "four three" not in text
    assert '"pin"' not in text
    assert "[PIN]" in text
    assert "+15550100" in text  # the caller's number is not mistaken for a PIN


def test_card_numbers_keep_only_their_last_four_digits() -> None:
    record = fraud_record()
    record.add_turn(
        "my card is 4111 1111 1111 1234 and it was stolen",
        "speech",
        intent="lost_card",
        confidence=0.9,
        bot_text="Card ending 1234?",
    )
    text = json.dumps(HandoffPackage.from_record(record, fraud_decision()).to_dict())
    assert "4111" not in text
    assert "•••• 1234" in json.loads(text)["transcript"][-1]["caller_text"]
    assert mask_card_numbers("4111-1111-1111-1111") == "•••• 1111"
    assert mask_card_numbers("call 0800 123 456") == "call 0800 123 456"  # 10 digits: a phone


def test_reason_must_be_one_of_the_three() -> None:
    with pytest.raises(ValueError, match="reason"):
        HandoffPackage.from_record(fraud_record(), {**fraud_decision(), "reason": "boredom"})


def test_decision_without_timeline_or_summary_still_makes_a_package() -> None:
    decision = {
        "reason": "explicit",
        "trigger": "explicit_request",
        "signals": [],
        "summary_hint": "pressed 0 for a person",
    }
    package = HandoffPackage.from_record(fraud_record(), decision)
    assert package.summary == "pressed 0 for a person"
    assert package.frustration_timeline == [] and package.category is None


def test_skill_tags_cover_reason_category_and_its_parts() -> None:
    package = HandoffPackage.from_record(fraud_record(), fraud_decision())
    assert {"complexity", "fraud_dispute", "fraud", "dispute", "check_balance"} <= (
        package.skill_tags()
    )
