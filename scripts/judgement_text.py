#!/usr/bin/env python3
"""Fast, text-level check of the transfer judgement (no audio, no session).

Every caller turn's *text* is parsed by the trained Rasa model (in the Rasa
venv, cached per model), then fed turn by turn to the transfer policy, as the
session would feed it.  A development loop, not the measurement: the dialogue
(PIN forms, asking again) and the recogniser are left out, so the voiced
``scripts/eval_judgement`` stays the figure to quote.  Sets:

- ``heldout``: BANKING77 *train* queries that the NLU data does not use
  (15 per intent, sha1 order, from rank 60 on) — tune on these;
- ``calls``: the hand-written calls in eval/calls.yaml, their text as written;
- ``test``: BANKING77's test part as the voiced run uses it (rank < --per-intent)
  — report only; never tune on it.

Usage::

    python scripts/judgement_text.py [--sets heldout calls test] [--misses]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from voicebot.dialogue.intents import load_intents  # noqa: E402
from voicebot.session.outcome import is_progress  # noqa: E402
from voicebot.transfer import TransferPolicy, TurnObservation  # noqa: E402

EVAL = ROOT / "eval"
PROJECT = ROOT / "rasa_project"
CORPUS = Path(os.environ.get("BANKING77_DIR", ROOT.parent.parent / "shared/corpora/banking77"))
HELDOUT_FROM_RANK = 60
HELDOUT_PER_INTENT = 15
MAX_CHARS = 110
RANKING_SIZE = 5  # what the session passes on (session/transfer_watch.py)
# What the dialogue says after two turns in a row it did not understand
# (rasa_project/actions: NOT_UNDERSTOOD_AGAIN): a "yes" to it is a request.
OFFER = "Would you like to speak to someone?"

_PARSER = """
import asyncio, glob, json, logging, os, sys
logging.disable(logging.WARNING)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
from rasa.core.agent import Agent
async def main():
    agent = Agent.load(sys.argv[1])
    out = {}
    for text in json.load(sys.stdin):
        r = await agent.parse_message(text)
        out[text] = {"intent": r["intent"]["name"], "confidence": r["intent"]["confidence"],
                     "ranking": [(x["name"], x["confidence"]) for x in r.get("intent_ranking", [])]}
    with open(sys.argv[2], "w") as fh:
        json.dump(out, fh)
asyncio.run(main())
"""


@dataclass(frozen=True)
class Call:
    id: str
    set: str
    turns: tuple[str, ...]
    outcome: str
    reason: str | None = None


def _sha(text: str) -> str:
    return hashlib.sha1(text.strip().lower().encode()).hexdigest()


def heldout_calls() -> list[Call]:
    outcomes = yaml.safe_load((EVAL / "banking77/outcomes.yaml").read_text())["intents"]
    nlu = (PROJECT / "data/nlu_banking77.yml").read_text().splitlines()
    used = {line.strip()[2:] for line in nlu if line.strip().startswith("- ")}
    by: dict[str, list[str]] = {}
    with (CORPUS / "train.csv").open(newline="") as fh:
        for row in csv.DictReader(fh):
            text = " ".join(row["text"].split())
            if text not in by.setdefault(row["category"], []):
                by[row["category"]].append(text)
    calls = []
    for cat, texts in sorted(by.items()):
        ranked = sorted(texts, key=_sha)[HELDOUT_FROM_RANK:]
        keep = [
            t
            for t in ranked
            if t.replace("[", "(").replace("]", ")") not in used and len(t) <= MAX_CHARS
        ][:HELDOUT_PER_INTENT]
        spec = outcomes[cat]
        for i, text in enumerate(keep):
            calls.append(
                Call(
                    f"{cat}_{i}",
                    "heldout",
                    (text, "Thanks, goodbye."),
                    spec["outcome"],
                    spec.get("reason"),
                )
            )
    return calls


def hand_calls() -> list[Call]:
    out = []
    for entry in yaml.safe_load((EVAL / "calls.yaml").read_text())["calls"]:
        exp = entry["expect"]
        out.append(
            Call(entry["id"], "calls", tuple(entry["turns"]), exp["outcome"], exp.get("reason"))
        )
    return out


def test_calls(per_intent: int) -> list[Call]:
    outcomes = yaml.safe_load((EVAL / "banking77/outcomes.yaml").read_text())["intents"]
    calls = []
    with (EVAL / "banking77/test_turns.csv").open(newline="") as fh:
        for row in csv.DictReader(fh):
            if int(row["rank"]) >= per_intent:
                continue
            spec = outcomes[row["category"]]
            calls.append(
                Call(
                    f"b77_{row['category']}_{row['rank']}",
                    "test",
                    (row["text"], "Thanks, goodbye."),
                    spec["outcome"],
                    spec.get("reason"),
                )
            )
    return calls


def heard_calls(path: Path) -> list[Call]:
    """The calls of a voiced run (scripts/eval_judgement's JSON) as the
    recogniser heard them, per voice: the same words, without the audio."""
    keyed = {c.id: [t for t in c.turns if t.startswith("dtmf:")] for c in hand_calls()}
    calls = []
    for voice, result in json.loads(path.read_text())["voices"].items():
        for sc in result["scenarios"]:
            turns, keys = [], iter(keyed.get(sc["id"], []))
            for t in sc["record"]["turns"]:
                if t["input"] == "speech" and t.get("caller_text"):
                    turns.append(t["caller_text"])
                elif t["input"] == "dtmf":  # the record keeps keyed digits redacted
                    turns.append(next(keys, "dtmf:4321"))
            exp = sc["expect"]
            calls.append(
                Call(sc["id"], f"heard-{voice}", tuple(turns), exp["outcome"], exp.get("reason"))
            )
    return calls


def latest_model() -> Path:
    models = sorted((PROJECT / "models").glob("*.tar.gz"), key=lambda p: p.stat().st_mtime)
    if not models:
        raise SystemExit("no trained model: python -m voicebot.dialogue.training")
    return models[-1]


def parse_all(texts: Iterable[str], model: Path) -> dict[str, Any]:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    cache = Path(base) / "voicebot" / "judgement-text" / f"{model.name}.json"
    known: dict[str, Any] = json.loads(cache.read_text()) if cache.is_file() else {}
    todo = sorted({t for t in texts if not t.startswith("dtmf:")} - set(known))
    if todo:
        rasa = Path(os.environ.get("VOICEBOT_RASA_VENV", ROOT / ".venv-rasa")) / "bin/python"
        env = {**os.environ, "PYTHONPATH": str(PROJECT)}
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "parsed.json"
            proc = subprocess.run(
                [str(rasa), "-c", _PARSER, str(model), str(out)],
                input=json.dumps(todo),
                text=True,
                capture_output=True,
                cwd=PROJECT,
                env=env,
                check=False,
            )
            if proc.returncode:
                raise SystemExit(f"parsing failed:\n{proc.stderr[-2000:]}")
            known.update(json.loads(out.read_text()))
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(known))
    return known


def judge(call: Call, parsed: dict[str, Any], progress: frozenset[str]) -> tuple[str, Any]:
    policy = TransferPolicy()
    decision, fallbacks = None, 0
    for i, text in enumerate(call.turns, start=1):
        at = 10.0 + 8.0 * i
        if text.startswith("dtmf:"):
            turn = TurnObservation(index=i, at_s=at, dtmf=text[5:], made_progress=False)
        else:
            p = parsed[text]
            fallbacks = fallbacks + 1 if p["intent"] == "nlu_fallback" else 0
            turn = TurnObservation(
                index=i,
                at_s=at,
                caller_text=text,
                intent=p["intent"],
                confidence=p["confidence"],
                intent_ranking=p["ranking"][:RANKING_SIZE],
                made_progress=is_progress(p["intent"], progress),
                bot_text=OFFER if fallbacks >= 2 else "",
            )
        decision = policy.observe(turn)
        if decision is not None:
            break
    return ("transferred", decision) if decision else ("contained", None)


def figures(results: list[tuple[Call, str, Any]]) -> str:
    n = len(results)
    right = sum(got == c.outcome for c, got, _ in results)
    should = [(c, got, d) for c, got, d in results if c.outcome == "transferred"]
    went = [(c, d) for c, got, d in should if got == "transferred"]
    reason = sum(d.reason == c.reason for c, d in went)
    routine = [got for c, got, _ in results if c.outcome == "contained"]
    needless = routine.count("transferred")

    def pct(a: int, b: int) -> str:
        return f"{100 * a / b:.1f}% ({a}/{b})" if b else "n/a"

    return (
        f"n={n} right {pct(right, n)}  recall {pct(len(went), len(should))}  "
        f"reason {pct(reason, len(went))}  needless {pct(needless, len(routine))}"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--sets", nargs="+", default=["heldout", "calls"], choices=("heldout", "calls", "test")
    )
    ap.add_argument("--per-intent", type=int, default=1, help="test part: queries per intent")
    ap.add_argument("--misses", action="store_true", help="list every miss")
    ap.add_argument("--heard", type=Path, help="also a voiced run's JSON, as heard")
    args = ap.parse_args(argv)
    builders = {
        "heldout": heldout_calls,
        "calls": hand_calls,
        "test": lambda: test_calls(args.per_intent),
    }
    calls = [c for s in args.sets for c in builders[s]()]
    if args.heard:
        calls += heard_calls(args.heard)
        args.sets += sorted({c.set for c in calls if c.set.startswith("heard-")})
    parsed = parse_all((t for c in calls for t in c.turns), latest_model())
    progress = load_intents(PROJECT).progress
    results = [(c, *judge(c, parsed, progress)) for c in calls]
    for name in args.sets:
        mine = [r for r in results if r[0].set == name]
        print(f"{name:8} {figures(mine)}")
        if not args.misses:
            continue
        for c, got, d in mine:
            if got != c.outcome or (d and d.reason != c.reason):
                first = parsed.get(c.turns[0], {})
                why = d.signals[0].evidence if d else ""
                print(
                    f"   {c.id}: want {c.outcome}/{c.reason} got {got}/{d and d.reason} "
                    f"[{first.get('intent')} {first.get('confidence', 0):.2f}] "
                    f"{' | '.join(c.turns)}  <{why}>"
                )
    counts = Counter(c.set for c, _, _ in results)
    print(f"({dict(counts)} calls)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
