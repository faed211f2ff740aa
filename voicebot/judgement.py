"""How well a set of scripted calls was judged: right outcome, right reason.

Pure: scenario results (expected vs what the call record shows) in, figures
out.  ``voicebot eval`` prints them and puts them all in ``--json``.  The
questions a bank asks of a voice line: did callers who needed a person reach
one (transfer recall), for the right reason (what the agent is told), and were
routine callers kept (containment, needless transfers)?
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from voicebot.transfer import REASONS

CONTAINED = "contained"
TRANSFERRED = "transferred"
# Outcomes that mean "the bot kept the call" (the store may split them further).
_KEPT = frozenset({"contained", "served", "abandoned"})


@dataclass(frozen=True)
class Judged:
    """One call: what the scenario expected and what happened."""

    id: str
    kind: str
    expected_outcome: str
    expected_reason: str | None
    outcome: str
    reason: str | None
    heard: tuple[str, ...] = ()
    intents: tuple[str | None, ...] = ()
    signals: tuple[str, ...] = ()
    disclosed_first: bool = True
    voice: str | None = None

    @property
    def expected_label(self) -> str:
        return label(self.expected_outcome, self.expected_reason)

    @property
    def got_label(self) -> str:
        return label(self.outcome, self.reason)

    @property
    def outcome_right(self) -> bool:
        return _kind_of(self.outcome) == _kind_of(self.expected_outcome)


def _kind_of(outcome: str) -> str:
    return CONTAINED if outcome in _KEPT else outcome


def label(outcome: str, reason: str | None) -> str:
    """ "contained", or "transferred/<reason>"."""
    kind = _kind_of(outcome)
    return f"{kind}/{reason}" if kind == TRANSFERRED and reason else kind


def _ratio(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def reason_scores(calls: Sequence[Judged]) -> dict[str, dict[str, Any]]:
    """Per transfer reason: precision (of the calls transferred for it, how
    many should have been) and recall (of the calls that should, how many were)."""
    out = {}
    for reason in REASONS:
        want = [c for c in calls if c.expected_label == f"{TRANSFERRED}/{reason}"]
        got = [c for c in calls if c.got_label == f"{TRANSFERRED}/{reason}"]
        hit = sum(c.got_label == c.expected_label for c in want)
        out[reason] = {
            "expected": len(want),
            "got": len(got),
            "precision": _ratio(hit, len(got)),
            "recall": _ratio(hit, len(want)),
        }
    return out


def confusion(calls: Iterable[Judged]) -> dict[str, dict[str, int]]:
    """Expected label -> got label -> count."""
    matrix: dict[str, Counter[str]] = defaultdict(Counter)
    for c in calls:
        matrix[c.expected_label][c.got_label] += 1
    return {want: dict(sorted(row.items())) for want, row in sorted(matrix.items())}


def figures(calls: Sequence[Judged]) -> dict[str, Any]:
    """The headline numbers the issue's targets are written in."""
    should_go = [c for c in calls if _kind_of(c.expected_outcome) == TRANSFERRED]
    went = [c for c in should_go if _kind_of(c.outcome) == TRANSFERRED]
    routine = [c for c in calls if _kind_of(c.expected_outcome) == CONTAINED]
    needless = [c for c in routine if _kind_of(c.outcome) == TRANSFERRED]
    return {
        "calls": len(calls),
        "right_outcome": _ratio(sum(c.outcome_right for c in calls), len(calls)),
        "transfer_recall": _ratio(len(went), len(should_go)),
        "right_reason": _ratio(sum(c.got_label == c.expected_label for c in went), len(went)),
        "containment_of_routine": _ratio(len(routine) - len(needless), len(routine)),
        "needless_transfer_rate": _ratio(len(needless), len(routine)),
        "disclosure_first": _ratio(sum(c.disclosed_first for c in calls), len(calls)),
    }


def by_kind(calls: Sequence[Judged]) -> dict[str, dict[str, Any]]:
    """Right outcome (and containment where the calls should be kept) per group."""
    groups: dict[str, list[Judged]] = defaultdict(list)
    for c in calls:
        groups[c.kind].append(c)
    out = {}
    for kind, members in sorted(groups.items()):
        kept = [c for c in members if _kind_of(c.expected_outcome) == CONTAINED]
        out[kind] = {
            "calls": len(members),
            "right_outcome": _ratio(sum(c.outcome_right for c in members), len(members)),
            "containment": _ratio(sum(_kind_of(c.outcome) == CONTAINED for c in kept), len(kept)),
        }
    return out


def misses(calls: Iterable[Judged]) -> list[dict[str, Any]]:
    """Every call judged wrong (outcome or reason), with what was heard."""
    return [
        {
            "id": c.id,
            "voice": c.voice,
            "expected": c.expected_label,
            "got": c.got_label,
            "heard": list(c.heard),
            "intents": list(c.intents),
            "signals": list(c.signals),
        }
        for c in calls
        if c.got_label != c.expected_label
    ]


def judgement(calls: Sequence[Judged]) -> dict[str, Any]:
    """Everything ``voicebot eval --json`` reports about judgement."""
    return {
        "figures": figures(calls),
        "reasons": reason_scores(calls),
        "confusion": confusion(calls),
        "by_kind": by_kind(calls),
        "misses": misses(calls),
    }


def format_report(report: dict[str, Any]) -> list[str]:
    """The judgement as a few readable lines."""
    f = report["figures"]
    lines = [
        "judgement: " + ", ".join(f"{k}={_pct(v) if k != 'calls' else v}" for k, v in f.items())
    ]
    for reason, s in report["reasons"].items():
        lines.append(
            f"  {reason:<11} precision {_pct(s['precision'])} recall {_pct(s['recall'])}"
            f" (expected {s['expected']}, got {s['got']})"
        )
    lines.append("  confusion (expected -> got):")
    for want, row in report["confusion"].items():
        lines.append(f"    {want:<24} " + ", ".join(f"{g} {n}" for g, n in row.items()))
    for miss in report["misses"]:
        heard = " | ".join(miss["heard"])
        lines.append(
            f"  MISS {miss['id']}: expected {miss['expected']}, got {miss['got']}; heard: {heard}"
        )
    return lines


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"
