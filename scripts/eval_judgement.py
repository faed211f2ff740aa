#!/usr/bin/env python3
"""Handover judgement on callers nobody here wrote: voice the eval set, run `voicebot eval`.

The set: BANKING77's test part (eval/banking77/test_turns.csv, outcomes from
eval/banking77/outcomes.yaml) plus the hand-written calls in eval/calls.yaml.
Every spoken turn is synthesised from its text in two synthesiser families —
Piper (en_US joe) and Debian's flite (slt, rms, awb, kal16, one per call) —
through the telephone band (300-3400 Hz, 8 kHz mu-law), cached by text and
voice, deterministically.  Then `voicebot eval --json` runs each voice's
scenarios and this script writes one JSON with the judgement per voice.

Usage::

    scripts/eval_judgement                      # full run: 2 corpus turns per intent
    scripts/eval_judgement --per-intent 4       # more corpus turns
    scripts/eval_judgement --slice ci --voices piper flite --out /tmp/ci.json
    scripts/eval_judgement --render-only        # just write the scenario files

Keep a Rasa server running and export VOICEBOT_RASA_URL / VOICEBOT_RASA_TOKEN to
skip Rasa's start-up on repeated runs.
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
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import soxr
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import make_fixtures as fx  # noqa: E402  (telephone-band helpers shared with the fixtures)

EVAL = ROOT / "eval"
OUTCOMES = EVAL / "banking77" / "outcomes.yaml"
TEST_TURNS = EVAL / "banking77" / "test_turns.csv"
CALLS = EVAL / "calls.yaml"
RESULTS = ROOT / "bench" / "results"
VOICES = ("piper", "flite")
FLITE_VOICES = ("slt", "rms", "awb", "kal16")
DEMO_CALLER = "+15550100"
DEMO_PIN = "dtmf:4321"
RENDER_VERSION = 1
# The CI slice: a few corpus intents of each outcome and hand-written calls of
# each kind (ids as built below).
CI_SLICE = (
    "b77_lost_or_stolen_card_0", "b77_card_delivery_estimate_0", "b77_exchange_rate_0",
    "b77_top_up_limits_0", "b77_cancel_transfer_0", "b77_card_payment_not_recognised_0",
    "anger_stupid_bot", "anger_moron_after_wrong_answer", "mild_whatever",
    "explicit_representative_alone", "explicit_misheard_represent_tive", "wrong_pizza",
    "sensitive_husband_died", "unservable_mortgage", "miss_twice_then_keypad_zero",
)  # fmt: skip


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "voicebot" / "eval-audio"


# --------------------------------------------------------------------------- the set


def corpus_calls(per_intent: int) -> list[dict[str, Any]]:
    """One call per selected test query: the query, then whatever a caller
    says next on that path (PIN and yes for a skill, thanks otherwise)."""
    outcomes = yaml.safe_load(OUTCOMES.read_text())["intents"]
    calls = []
    with TEST_TURNS.open(newline="") as fh:
        for row in csv.DictReader(fh):
            if int(row["rank"]) >= per_intent:
                continue
            spec = outcomes[row["category"]]
            name = row["category"].rstrip("?")
            call: dict[str, Any] = {
                "id": f"b77_{name}_{row['rank']}",
                "kind": f"banking77/{spec['family']}",
                "turns": [row["text"], "Thanks, goodbye."],
                "expect": {"outcome": spec["outcome"]},
            }
            if spec["outcome"] == "transferred":
                call["expect"]["reason"] = spec["reason"]
            else:
                call["expect"]["intents"] = [spec["intent"]]
            if spec.get("intent") in ("lost_card", "reset_password"):
                call["caller"] = DEMO_CALLER
                call["turns"] = [row["text"], DEMO_PIN, "Yes, please.", "Thanks, goodbye."]
            calls.append(call)
    return calls


def hand_calls() -> list[dict[str, Any]]:
    calls = []
    for entry in yaml.safe_load(CALLS.read_text())["calls"]:
        expect = dict(entry["expect"])
        kind = expect.pop("kind")
        calls.append({**entry, "kind": kind, "expect": expect})
    return calls


def eval_set(slice_name: str, per_intent: int) -> list[dict[str, Any]]:
    calls = corpus_calls(per_intent if slice_name == "full" else 1) + hand_calls()
    if slice_name == "ci":
        wanted = set(CI_SLICE)
        calls = [c for c in calls if c["id"] in wanted]
        missing = wanted - {c["id"] for c in calls}
        if missing:
            raise SystemExit(f"CI slice names unknown calls: {sorted(missing)}")
    return calls


# --------------------------------------------------------------------------- audio


def flite_voice_for(call_id: str) -> str:
    return FLITE_VOICES[zlib.crc32(call_id.encode()) % len(FLITE_VOICES)]


def synth_flite(text: str, voice: str) -> tuple[np.ndarray, int]:
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "out.wav"
        subprocess.run(
            ["flite", "-voice", voice, "-t", text, "-o", str(wav)], check=True, capture_output=True
        )
        audio, sr = sf.read(wav, dtype="float64")
    if audio.ndim > 1:
        audio = audio.mean(axis=1)
    return audio / (np.max(np.abs(audio)) or 1.0), int(sr)


def telephone(audio: np.ndarray, src_sr: int) -> np.ndarray:
    """Speech -> 8 kHz, 300-3400 Hz, -24 dBFS active level, fixed silence around it."""
    s = fx.Settings()
    sr = s.sample_rate
    body = soxr.resample(fx.trim(audio, src_sr), src_sr, sr, quality="HQ")
    lead, tail = np.zeros(round(s.lead_silence_s * sr)), np.zeros(round(s.tail_silence_s * sr))
    out = fx.bandpass(np.concatenate([lead, body, tail]), sr, *s.band_hz)
    out *= 10 ** (s.speech_level_dbfs / 20) / (fx.active_rms(out, sr) or 1.0)
    out, _ = fx.soft_limit(out, 10 ** (s.limit_dbfs / 20))
    return np.clip(out, -1.0, 1.0)


class Renderer:
    """Text -> cached telephone-band WAV, per synthesiser voice."""

    def __init__(self, cache: Path) -> None:
        self.cache = cache
        self.synth = fx.Synth()
        self.made = 0

    def wav(self, text: str, voice: str) -> Path:
        key = hashlib.sha1(f"{RENDER_VERSION}|{voice}|{text}".encode()).hexdigest()[:16]
        path = self.cache / voice / f"{key}.wav"
        if not path.is_file():
            if voice == "piper":
                audio, sr = self.synth.piper(text, 1.0)
            else:
                audio, sr = synth_flite(text, voice.removeprefix("flite-"))
            fx.write_ulaw(path, telephone(audio, sr), fx.Settings().sample_rate)
            self.made += 1
        return path


def scenarios_for(calls: list[dict[str, Any]], family: str, renderer: Renderer) -> dict:
    out = []
    for call in calls:
        voice = "piper" if family == "piper" else f"flite-{flite_voice_for(call['id'])}"
        turns = [t if t.startswith("dtmf:") else str(renderer.wav(t, voice)) for t in call["turns"]]
        entry = {"id": call["id"], "kind": call["kind"], "voice": voice, "turns": turns}
        if call.get("caller"):
            entry["caller"] = call["caller"]
        entry["expect"] = call["expect"]
        out.append(entry)
    return {"scenarios": out}


# --------------------------------------------------------------------------- run


def run_eval(scenario_file: Path) -> dict[str, Any]:
    """One voice's calls against a fresh demo bank: the bank keeps wrong-PIN
    counts across calls (a lockout), so a reused one would lock the demo caller
    out after earlier runs' wrong-PIN calls and turn routine calls into transfers."""
    with tempfile.TemporaryDirectory() as bank_dir:
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "VOICEBOT_BANK_DB": str(Path(bank_dir) / "demo_bank.sqlite3"),
        }
        proc = subprocess.run(
            [sys.executable, "-m", "voicebot", "eval", "--json", str(scenario_file)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            check=False,
        )
    if proc.returncode not in (0, 1):
        raise SystemExit(f"voicebot eval failed (exit {proc.returncode}) on {scenario_file}")
    return json.loads(proc.stdout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slice", choices=("full", "ci"), default="full")
    parser.add_argument("--per-intent", type=int, default=2, help="corpus turns per intent")
    parser.add_argument("--voices", nargs="+", choices=VOICES, default=list(VOICES))
    parser.add_argument("--out", type=Path, help="JSON result (default bench/results/...)")
    parser.add_argument("--render-only", action="store_true")
    parser.add_argument("--cache", type=Path, default=cache_dir())
    args = parser.parse_args(argv)

    calls = eval_set(args.slice, args.per_intent)
    renderer = Renderer(args.cache)
    files = {}
    for family in args.voices:
        started = time.monotonic()
        data = scenarios_for(calls, family, renderer)
        path = args.cache / f"scenarios-{args.slice}-{family}.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        files[family] = path
        print(
            f"{family}: {len(calls)} calls -> {path} "
            f"({renderer.made} new clips, {time.monotonic() - started:.0f} s)",
            file=sys.stderr,
        )
    if args.render_only:
        return 0
    report: dict[str, Any] = {"slice": args.slice, "per_intent": args.per_intent, "voices": {}}
    for family, path in files.items():
        result = run_eval(path)
        report["voices"][family] = result
        print(f"{family}: {json.dumps(result['judgement']['figures'])}", file=sys.stderr)
    out = (
        args.out
        or RESULTS / f"eval-judgement-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
