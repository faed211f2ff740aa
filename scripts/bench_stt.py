#!/usr/bin/env python
"""Telephone-band STT word error rate and latency on the audio fixtures.

Writes ``bench/results/stt-<timestamp>.json`` with per-utterance results and
per-voice WER / latency medians, so the figures quoted in notes come from one
recorded run.  Usage::

    .venv/bin/python scripts/bench_stt.py [--model-dir tiny.en] [--min-window S]
        [--cpu-threads N] [--num-workers N] [--concurrent N] [--no-prompt] [--limit N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import statistics
import time

import jiwer
import yaml

from voicebot.audio.wavfile import read_audio
from voicebot.config import PROJECT_ROOT, load_config
from voicebot.speech.numbers import normalize_digits
from voicebot.speech.stt import Transcriber
from voicebot.speech.vocabulary import domain_prompt

FIXTURES = PROJECT_ROOT / "audio_fixtures"
RESULTS = PROJECT_ROOT / "bench" / "results"


def normalise(text: str) -> str:
    """Lower-case, digits for spoken numbers, no punctuation: WER on words, not style."""
    text = normalize_digits(text.lower())
    text = re.sub(r"(\d)\s+(?=\d)", r"\1", text)
    return " ".join(re.sub(r"[^a-z0-9' ]+", " ", text).split())


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def run(args: argparse.Namespace) -> dict:
    config = load_config(None)
    if args.model_dir:
        config.speech.model_dir = args.model_dir
    if args.min_window:
        config.speech.min_window_s = args.min_window
    if args.cpu_threads:
        config.speech.cpu_threads = args.cpu_threads
    if args.num_workers:
        config.speech.num_workers = args.num_workers
    prompt = None if args.no_prompt else domain_prompt(PROJECT_ROOT / "rasa_project")
    transcriber = Transcriber(config.speech, prompt=prompt)
    entries = [
        u
        for u in yaml.safe_load((FIXTURES / "manifest.yaml").read_text())["utterances"]
        if u.get("intent") and u.get("text")
    ][: args.limit or None]
    await transcriber.transcribe(read_audio(FIXTURES / "utterances" / f"{entries[0]['id']}.wav"))
    rows = []
    for entry in entries:
        pcm = read_audio(FIXTURES / "utterances" / f"{entry['id']}.wav")
        started = time.perf_counter()
        result = await transcriber.transcribe(pcm)
        elapsed = time.perf_counter() - started
        ref, hyp = normalise(entry["text"]), normalise(result.text)
        rows.append(
            {
                "id": entry["id"],
                "voice": entry.get("voice", "piper"),
                "ref": ref,
                "hyp": hyp,
                "wer": jiwer.wer(ref, hyp) if ref else 0.0,
                "seconds": round(elapsed, 4),
                "audio_s": round(len(pcm) / 8000, 2),
            }
        )
    concurrency = await concurrent_latency(transcriber, rows, args.concurrent)
    transcriber.close()
    by_voice: dict[str, dict] = {}
    for voice in sorted({r["voice"] for r in rows}):
        subset = [r for r in rows if r["voice"] == voice]
        by_voice[voice] = {
            "utterances": len(subset),
            "wer": round(jiwer.wer([r["ref"] for r in subset], [r["hyp"] for r in subset]), 4),
            "latency_p50_s": round(statistics.median(r["seconds"] for r in subset), 4),
            "latency_p90_s": round(percentile([r["seconds"] for r in subset], 0.9), 4),
        }
    return {
        "benchmark": "stt",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "model": config.speech.model_dir or "whisper-base (packaged)",
        "prompt": bool(prompt),
        "min_window_s": config.speech.min_window_s,
        "cpu_threads": config.speech.cpu_threads,
        "num_workers": config.speech.num_workers,
        "summary": by_voice,
        "concurrency": concurrency,
        "utterances": rows,
    }


async def concurrent_latency(transcriber: Transcriber, rows: list[dict], most: int) -> list[dict]:
    """Latency when 1..``most`` utterances arrive at once (calls sharing the model)."""
    pcms = [read_audio(FIXTURES / "utterances" / f"{r['id']}.wav") for r in rows[:16]]
    levels = []
    for n in range(1, most + 1):
        elapsed: list[float] = []
        for i in range(0, len(pcms) - n + 1, n):
            batch = await asyncio.gather(*(transcriber.transcribe(p) for p in pcms[i : i + n]))
            elapsed += [t.elapsed_s for t in batch]
        levels.append(
            {
                "at_once": n,
                "latency_p50_s": round(statistics.median(elapsed), 4),
                "latency_max_s": round(max(elapsed), 4),
            }
        )
    return levels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-dir", help="CTranslate2 Whisper folder or 'tiny.en'")
    parser.add_argument("--no-prompt", action="store_true", help="no domain prompt")
    parser.add_argument("--min-window", type=float, help="shortest encoder window (s)")
    parser.add_argument("--cpu-threads", type=int, help="CTranslate2 threads per decode")
    parser.add_argument("--num-workers", type=int, help="decodes at once")
    parser.add_argument("--concurrent", type=int, default=4, help="measure 1..N at once")
    parser.add_argument("--limit", type=int, default=0)
    args = parser.parse_args()
    report = asyncio.run(run(args))
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"stt-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(report, indent=2))
    print(json.dumps(report["summary"], indent=2))
    print(f"written {path}")


if __name__ == "__main__":
    main()
