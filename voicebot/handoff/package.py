"""The handoff package: what an agent reads before picking up.

Built from the call record and the transfer decision at the moment of
transfer, stored before any phone rings (so a crash, a hang-up or a declined
ring never loses it), pushed to the agent desk and, on the media-stream
transport, posted to the carrier webhook.  Everything in it is scrubbed:
card numbers keep their last four digits and a PIN never appears.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from voicebot.core.record import CallRecord, Turn, utc_now
from voicebot.core.redaction import SECRET_INTENTS, scrub
from voicebot.transfer.config import REASONS

# Signal evidence may quote the caller.  On a call where a PIN was asked for,
# a run of 4–6 digits in it is treated as the PIN (a "+" in front marks a
# phone number, which is kept).
_PIN_LIKE = re.compile(r"(?<![\d+])\d(?:[ -]?\d){3,5}(?!\d)")
_CATEGORY = re.compile(r"(?:turn \d+: )?([a-z_]+):")


@dataclass
class HandoffPackage:
    """A transferred call, as the agent desk shows it."""

    call_id: str
    caller_id: str | None
    created_at: str
    reason: str  # "explicit" | "frustration" | "complexity"
    summary: str
    signals: list[dict[str, Any]] = field(default_factory=list)
    transcript: list[dict[str, Any]] = field(default_factory=list)
    frustration_timeline: list[dict[str, Any]] = field(default_factory=list)
    intents: list[str] = field(default_factory=list)
    verified: dict[str, bool | None] = field(
        default_factory=lambda: {"caller_id_matched": None, "pin_verified": None}
    )
    trigger: str | None = None
    # Complexity category behind the transfer ("fraud_dispute"), for skills.
    category: str | None = None

    @classmethod
    def from_record(cls, record: CallRecord, decision: Mapping[str, Any]) -> HandoffPackage:
        """``decision`` is the record's ``transfer`` entry (or ``TransferDecision.to_dict()``)."""
        reason = str(decision.get("reason", ""))
        if reason not in REASONS:
            raise ValueError(f"transfer reason must be one of {REASONS}, got {reason!r}")
        secret_call = any(_is_secret(t) for t in record.turns)
        signals = [_signal(s, secret_call) for s in decision.get("signals", [])]
        summary = decision.get("summary") or decision.get("summary_hint") or ""
        return cls(
            call_id=record.call_id,
            caller_id=record.caller_id,
            created_at=utc_now(),
            reason=reason,
            # Built by the transfer module from intents and facts, not quotes.
            summary=_one_line(scrub(str(summary)) or ""),
            signals=signals,
            transcript=[_turn(t) for t in record.turns],
            frustration_timeline=_timeline(decision.get("timeline", [])),
            intents=_intents(record.turns),
            verified=_verified(record.verified),
            trigger=decision.get("trigger"),
            category=_category(signals),
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HandoffPackage:
        """Back from the store (unknown keys from newer versions are ignored)."""
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in names})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def skill_tags(self) -> set[str]:
        """Words an agent's skills are matched against: the reason, the
        complexity category and its parts ("fraud_dispute" → "fraud"), intents."""
        tags = {self.reason, *self.intents}
        if self.category:
            tags |= {self.category, *self.category.split("_")}
        return {t.lower() for t in tags if t}


def public_transcript(turns: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """A stored record's turns as the desk shows them (scrubbed like a package)."""
    names = Turn.__dataclass_fields__
    return [_turn(Turn(**{k: v for k, v in t.items() if k in names})) for t in turns]


def _is_secret(turn: Turn) -> bool:
    return turn.redacted or turn.intent in SECRET_INTENTS


def _turn(turn: Turn) -> dict[str, Any]:
    """The transcript line an agent needs, nothing internal (timings, audio)."""
    secret = _is_secret(turn)
    return {
        "index": turn.index,
        "at": turn.at,
        "offset_s": turn.offset_s,
        "input": turn.input,
        "caller_text": scrub(turn.caller_text, secret=secret),
        "intent": turn.intent,
        "confidence": turn.confidence,
        "bot_text": scrub(turn.bot_text) or "",
    }


def _signal(signal: Mapping[str, Any], secret_call: bool) -> dict[str, Any]:
    return {
        "name": str(signal.get("name", "")),
        "value": float(signal.get("value", 0.0)),
        "evidence": _scrub_free_text(str(signal.get("evidence", "")), secret_call),
    }


def _scrub_free_text(text: str, secret_call: bool) -> str:
    text = scrub(text) or ""
    return _PIN_LIKE.sub("[PIN]", text) if secret_call else text


def _timeline(points: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Accepts the policy's ``{turn, at, score}`` points."""
    return [
        {
            "turn": int(p.get("turn", 0)),
            "at_s": float(p.get("at_s", p.get("at", 0.0))),
            "score": float(p.get("score", 0.0)),
        }
        for p in points
    ]


def _intents(turns: list[Turn]) -> list[str]:
    """Distinct caller intents in the order they came up."""
    seen: list[str] = []
    for turn in turns:
        if turn.caller_text is not None and turn.intent and turn.intent not in seen:
            seen.append(turn.intent)
    return seen


def _verified(verified: Mapping[str, Any]) -> dict[str, bool | None]:
    """Only the two yes/no facts: never the PIN or anything else a slot held."""
    return {
        key: (None if verified.get(key) is None else bool(verified.get(key)))
        for key in ("caller_id_matched", "pin_verified")
    }


def _category(signals: list[dict[str, Any]]) -> str | None:
    for signal in signals:
        if signal["name"] == "complexity" and signal["value"] > 0:
            match = _CATEGORY.match(signal["evidence"])
            return match.group(1) if match else None
    return None


def _one_line(text: str) -> str:
    return " ".join(text.split())
