"""The transfer decision: signals in, a frustration trend kept, a decision out.

One :class:`TransferPolicy` per call.  The session calls :meth:`observe` after
every caller turn; it returns a :class:`TransferDecision` once a threshold is
crossed (and the same decision on any later call), otherwise None.  Pure: no
I/O, no clock, no randomness — the same turns always give the same decision,
so a stored call can be replayed and its transfer explained.

Frustration is a *trend*, not a verdict on one utterance: each turn's
frustration signals combine into a turn evidence ``e`` (noisy-OR of weighted
values, so independent cues reinforce each other but never exceed 1), and
the score is a leaky accumulator ``score = min(1, decay·score + e)``.  A calm
turn lets 40 % drain away; a turn where the bot got something done drains
more.  One mildly negative word leaves the score far below the threshold;
three bad turns in a row cross it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from voicebot.transfer.config import Reason, TransferConfig
from voicebot.transfer.observation import TurnObservation
from voicebot.transfer.signals import (
    COMPLEXITY,
    DIALOGUE_FAILURE,
    EXPLICIT_REQUEST,
    MISUNDERSTANDING,
    NO_PROGRESS,
    REPETITION,
    Signal,
    compute_signals,
    misunderstood,
)

FRUSTRATION_SCORE = "frustration_score"
# Below this the caller is considered calm again: the signals listed for a
# frustration transfer are those since the score last dipped under it.
_EPISODE_FLOOR = 0.1

CATEGORY_LABELS: dict[str, str] = {
    "complaint": "a complaint",
    "fraud_dispute": "a fraud or disputed charge",
    "bereavement": "a bereavement",
    "financial_hardship": "financial hardship",
    "legal_threat": "a legal matter",
    "banking_request": "a banking request the assistant cannot handle",
    "out_of_scope": "requests the assistant does not handle",
    "multi_part": "several requests at once",
    "identity_failed": "an identity check that failed three times",
}

_CUE_PHRASES: dict[str, str] = {
    "abusive_language": "abusive language",
    "frustration_words": "said how fed up they are",
    "negative_sentiment": "negative tone",
    "repetition": "had to repeat themself",
    "misunderstanding": "misunderstandings",
    "louder_voice": "raised voice",
    "faster_speech": "faster speech",
    "no_progress": "no progress",
}


@dataclass(frozen=True)
class TimelinePoint:
    """The frustration score after one turn, for the agent's chart."""

    turn_index: int
    at_s: float
    score: float
    evidence: float
    signals: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "turn": self.turn_index,
            "at": round(self.at_s, 3),
            "score": round(self.score, 3),
            "evidence": round(self.evidence, 3),
            "signals": list(self.signals),
        }


@dataclass(frozen=True)
class TransferDecision:
    """Why and when the call goes to a person.  ``trigger`` names the signal
    (or the frustration score) that crossed its threshold; ``signals`` lists
    every signal that fired, trigger first."""

    reason: Reason
    trigger: str
    signals: tuple[Signal, ...]
    score: float
    at_s: float
    turn_index: int
    summary_hint: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "reason": self.reason,
            "trigger": self.trigger,
            "signals": [s.to_dict() for s in self.signals],
            "score": round(self.score, 3),
            "at": round(self.at_s, 3),
            "turn": self.turn_index,
            "summary_hint": self.summary_hint,
        }


@dataclass
class TransferState:
    """Everything the policy has seen on one call."""

    turns: list[TurnObservation] = field(default_factory=list)
    signals: list[tuple[Signal, ...]] = field(default_factory=list)
    score: float = 0.0
    timeline: list[TimelinePoint] = field(default_factory=list)
    decision: TransferDecision | None = None

    @property
    def peak_score(self) -> float:
        return max((p.score for p in self.timeline), default=0.0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "score": round(self.score, 3),
            "peak_score": round(self.peak_score, 3),
            "timeline": [p.to_dict() for p in self.timeline],
            "decision": self.decision.to_dict() if self.decision else None,
        }

    def record(self, summary: str) -> dict[str, Any] | None:
        """The call record's ``transfer`` entry, or None when not transferred."""
        if self.decision is None:
            return None
        decision = self.decision.to_dict()
        return {
            "reason": decision["reason"],
            "trigger": decision["trigger"],
            "signals": decision["signals"],
            "at": decision["at"],
            "turn": decision["turn"],
            "summary": summary,
            "score": decision["score"],
            "timeline": [p.to_dict() for p in self.timeline],
        }


def turn_evidence(signals: tuple[Signal, ...] | list[Signal], cfg: TransferConfig) -> float:
    """Noisy-OR of weighted frustration signals: each is independent
    evidence, two together say more than either, none can push past 1."""
    calm = 1.0
    for signal in signals:
        calm *= 1.0 - float(cfg.frustration_weights.get(signal.name, 0.0)) * signal.value
    return 1.0 - calm


def emotional_evidence(signals: tuple[Signal, ...] | list[Signal], cfg: TransferConfig) -> float:
    """The turn evidence of the emotional signals alone (abuse, tone, the
    caller's words about the bot), without misunderstandings or repeats."""
    return turn_evidence([s for s in signals if s.name in cfg.emotional_signals], cfg)


def next_score(
    previous: float, evidence: float, turn: TurnObservation, cfg: TransferConfig
) -> float:
    """Leaky accumulation: old frustration fades, new evidence adds."""
    kept = previous * cfg.frustration_decay
    if turn.made_progress:
        kept *= cfg.progress_relief
    return min(1.0, kept + evidence)


class TransferPolicy:
    """Per-call transfer decision; thresholds and weights from config."""

    def __init__(self, config: TransferConfig | None = None) -> None:
        self.config = config or TransferConfig()
        self.config.validate()
        self.state = TransferState()

    def observe(self, turn: TurnObservation) -> TransferDecision | None:
        """Take one caller turn; return the decision once there is one."""
        state, cfg = self.state, self.config
        if state.turns and turn.index <= state.turns[-1].index:
            raise ValueError(
                f"turn {turn.index} after turn {state.turns[-1].index}: turns must arrive in order"
            )
        signals = tuple(compute_signals(turn, state.turns, cfg))
        evidence = turn_evidence(signals, cfg)
        state.score = next_score(state.score, evidence, turn, cfg)
        state.turns.append(turn)
        state.signals.append(signals)
        fired = tuple(s.name for s in signals if s.fired)
        state.timeline.append(TimelinePoint(turn.index, turn.at_s, state.score, evidence, fired))
        if state.decision is None:
            state.decision = self._decide(turn, signals)
        return state.decision

    def _decide(
        self, turn: TurnObservation, signals: tuple[Signal, ...]
    ) -> TransferDecision | None:
        trigger = self._trigger(signals)
        if trigger is None:
            return None
        reason, name = trigger
        listed = self._listed_signals(reason, name, signals)
        return TransferDecision(
            reason=reason,
            trigger=name,
            signals=listed,
            score=self.state.score,
            at_s=turn.at_s,
            turn_index=turn.index,
            summary_hint=hint(reason, name, listed, self.state.turns, self.config),
        )

    def _trigger(self, signals: tuple[Signal, ...]) -> tuple[Reason, str] | None:
        """First rule that holds: explicit > frustration > complexity.

        A caller who asks gets what they asked for; a broken dialogue goes
        next.  An angry caller is transferred for frustration even when a
        complexity topic fired on the same turn (the agent must know they
        are angry; the topic stays in ``signals``); a specialist topic
        outranks frustration that is only a trend of misunderstandings."""
        cfg, by_name = self.config, {s.name: s for s in signals}
        if by_name[EXPLICIT_REQUEST].value >= 1.0:
            return "explicit", EXPLICIT_REQUEST
        if by_name[DIALOGUE_FAILURE].value >= 1.0:
            return cfg.dialogue_failure_reason, DIALOGUE_FAILURE
        complex_ = by_name[COMPLEXITY].value >= cfg.complexity_threshold
        frustrated = self.state.score >= cfg.frustration_threshold
        emotional = emotional_evidence(signals, cfg)
        # Negative words from a caller who already had to repeat a request
        # the bot got wrong are frustration, not a new topic.
        angry = emotional >= cfg.emotional_threshold or (emotional > 0 and self._repeated())
        if angry and (frustrated or complex_):
            return "frustration", FRUSTRATION_SCORE
        if complex_:
            return "complexity", COMPLEXITY
        if frustrated:
            return "frustration", FRUSTRATION_SCORE
        if by_name[NO_PROGRESS].value >= 1.0:
            return cfg.no_progress_reason, NO_PROGRESS
        return None

    def _repeated(self) -> bool:
        """A repetition fired since the caller was last calm."""
        return any(s.name == REPETITION for s in self._episode_signals())

    def _listed_signals(
        self, reason: Reason, trigger: str, current: tuple[Signal, ...]
    ) -> tuple[Signal, ...]:
        fired = [s for s in current if s.fired]
        if trigger == FRUSTRATION_SCORE:
            episode = self._episode_signals()
            others = [s for s in fired if s.name not in {e.name for e in episode}]
            return (*episode, *sorted(others, key=lambda s: -s.value))
        first = [s for s in fired if s.name == trigger]
        rest = sorted((s for s in fired if s.name != trigger), key=lambda s: -s.value)
        return (*first, *rest)

    def _episode_signals(self) -> list[Signal]:
        """Strongest instance of each frustration signal since the caller was
        last calm, with the turn it came from: the score is a trend, so its
        explanation spans the turns that built it."""
        state, weights = self.state, self.config.frustration_weights
        start = 0
        for i, point in enumerate(state.timeline[:-1]):
            if point.score < _EPISODE_FLOOR:
                start = i + 1
        best: dict[str, tuple[Signal, int]] = {}
        for turn, signals in zip(state.turns[start:], state.signals[start:], strict=True):
            for s in signals:
                relevant = s.fired and weights.get(s.name, 0.0) > 0
                if relevant and (s.name not in best or s.value > best[s.name][0].value):
                    best[s.name] = (s, turn.index)
        ranked = sorted(best.values(), key=lambda pair: -pair[0].value)
        return [Signal(s.name, s.value, f"turn {index}: {s.evidence}") for s, index in ranked]


def misunderstanding_count(turns: list[TurnObservation], cfg: TransferConfig) -> int:
    """Turns in the call the bot got wrong (not only the latest streak)."""
    return sum(misunderstood(t, cfg) is not None for t in turns)


def hint(
    reason: Reason,
    trigger: str,
    signals: tuple[Signal, ...],
    turns: list[TurnObservation],
    cfg: TransferConfig,
) -> str:
    """A short phrase for the agent: what tipped the call over."""
    by_name = {s.name: s for s in signals}
    if trigger == EXPLICIT_REQUEST:
        evidence = by_name[EXPLICIT_REQUEST].evidence
        return "pressed 0 for a person" if evidence.startswith("pressed") else "wants a person"
    if trigger == DIALOGUE_FAILURE:
        return "the assistant stopped working (speech or dialogue error)"
    if trigger == COMPLEXITY:
        category = by_name[COMPLEXITY].evidence.split(":", 1)[0]
        return f"needs a person for {CATEGORY_LABELS.get(category, category.replace('_', ' '))}"
    if trigger == NO_PROGRESS:
        return f"call made no progress ({by_name[NO_PROGRESS].evidence})"
    return "became frustrated" + _frustration_detail(signals, turns, cfg)


def _frustration_detail(
    signals: tuple[Signal, ...], turns: list[TurnObservation], cfg: TransferConfig
) -> str:
    misses = misunderstanding_count(turns, cfg)
    if misses >= 2 or (misses and any(s.name == MISUNDERSTANDING for s in signals)):
        return f" after {misses} misunderstanding{'s' if misses != 1 else ''}"
    cues = [_CUE_PHRASES[s.name] for s in signals if s.name in _CUE_PHRASES][:2]
    return f" ({', '.join(cues)})" if cues else ""


def category_of(decision: TransferDecision) -> str | None:
    """The complexity category behind a decision, for skill routing."""
    for s in decision.signals:
        if s.name == COMPLEXITY and s.fired:
            match = re.match(r"(?:turn \d+: )?([a-z_]+):", s.evidence)
            return match.group(1) if match else None
    return None
