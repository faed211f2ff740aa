#!/usr/bin/env python3
"""Calls per instance at the latency target, and the capacity model it implies.

    flock /tmp/voicebot-bench.lock scripts/bench_capacity.py [--target 0.9] [--levels 1,2,3,4]

One ``voicebot serve`` (SQLite, its own Rasa, as each cluster instance runs
it) on loopback; the caller side is the voice-to-voice bench's SIP/RTP UAC
(``scripts/bench_calls.py``: latency = the caller's last voiced frame → the
bot's first voiced frame).  Concurrency steps up until the p95 passes twice
``--target`` or the time budget would run out.  One warm-up call goes first,
not counted (a run without it saw its two slowest 1-call turns in the first
two rounds after start-up).

A level is several rounds of ``n`` calls at once (at least ``--rounds``, and
enough for ``--min-turns`` timed turns): with 24 turns or more, one stray
slow turn cannot set the p95 (it takes the top rank, past the 95th
percentile).  Each level records the median and p95 over all its turns and
per round, the far-out outliers (Tukey: above Q3 + 3·IQR) with the p95
without them, the STT, endpointing and dialogue times (from the records),
CPU and RSS per process (voicebot, Rasa, action server) and the load average
before and after.  Writes ``bench/results/capacity-<UTC>.json``: calls per
instance = the last level before the first one whose p95 missed the target
(also read at 0.9, 1.2 and 1.5 s, and without outliers), calls per core =
that ÷ cores.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT))

import bench_calls  # noqa: E402
from bench_calls import ROUTINE, Server, Utterance, concurrent_calls, machine  # noqa: E402

from voicebot.dialogue.rasa_server import ACTIONS_LAUNCHER  # noqa: E402

RESULTS = ROOT / "bench" / "results"
ROLES = ("voicebot", "rasa", "actions")
STOP_OVER = 2.0  # stop stepping once p95 exceeds this many times the target
TARGETS_S = (0.9, 1.2, 1.5)  # the curve read at other targets too, for sizing
FAR_OUT = 3.0  # Tukey's fence for far-out values: Q3 + 3·IQR


def role(process: psutil.Process) -> str:
    """Which part of one instance a process is (Rasa and its action server are children)."""
    command = " ".join(process.cmdline())
    if ACTIONS_LAUNCHER in command:
        return "actions"
    return "rasa" if "rasa" in command else "voicebot"


class Usage:
    """CPU seconds and peak RSS per role over one concurrency level."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.rss: dict[str, float] = dict.fromkeys(ROLES, 0.0)
        self._stop = threading.Event()

    def _cpu(self) -> dict[str, float]:
        out = dict.fromkeys(ROLES, 0.0)
        for p in self.server.tree():
            try:
                t = p.cpu_times()
                out[role(p)] += t.user + t.system
            except psutil.Error:
                pass
        return out

    def __enter__(self) -> Usage:
        self.cpu0, self.t0 = self._cpu(), time.monotonic()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.5):
            now = dict.fromkeys(ROLES, 0.0)
            for p in self.server.tree():
                with contextlib.suppress(psutil.Error):
                    now[role(p)] += p.memory_info().rss / 2**20
            self.rss = {k: max(self.rss[k], now[k]) for k in ROLES}

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        wall = time.monotonic() - self.t0
        cpu = self._cpu()
        self.cpu_s = {k: round(cpu[k] - self.cpu0[k], 2) for k in ROLES}
        self.wall_s = round(wall, 1)


def stage_seconds(server: Server, results: list, stage: str) -> list[float]:
    """One stage's time (``stt_s``, ``endpoint_wait_s``…) over this level's timed
    turns, from the call records."""
    records = server.records()
    return [
        t["timings"][stage]
        for r in results
        for t in (records.get(r.sip_call_id) or {}).get("turns", [])
        if t.get("input") == "speech" and (t.get("timings") or {}).get(stage) is not None
    ]


def latencies(results: list) -> list[float]:
    return [t["latency_s"] for r in results for t in r.turns if t["latency_s"] is not None]


def outliers(values: list[float]) -> dict:
    """Far-out values (Tukey: above Q3 + 3·IQR) and the summary without them, so a
    reader sees whether a level's p95 rests on a few stray turns."""
    q1, q3 = bench_calls.pct(values, 0.25), bench_calls.pct(values, 0.75)
    if q1 is None or q3 is None:
        return {"fence_s": None, "count": 0, "values_s": [], "without": bench_calls.summary([])}
    fence = round(q3 + FAR_OUT * (q3 - q1), 4)
    far = sorted(v for v in values if v > fence)
    return {
        "fence_s": fence,
        "count": len(far),
        "values_s": far,
        "without": bench_calls.summary([v for v in values if v <= fence]),
    }


def rounds_for(calls: int, min_turns: int, min_rounds: int) -> int:
    return max(min_rounds, math.ceil(min_turns / (calls * len(ROUTINE))))


async def step(server: Server, calls: int, rounds: int, target: float) -> dict:
    """``rounds`` rounds of ``calls`` calls at once, summarised over all and per round."""
    load_before = [round(x, 2) for x in os.getloadavg()]
    routine = [Utterance.load(f) for f in ROUTINE]
    per_round: list[dict] = []
    with Usage(server) as usage:
        for _ in range(rounds):  # one round each: its own summary
            per_round.append(await concurrent_calls(server, calls, routine))
    results = [r for level in per_round for r in level["_results"]]
    lat = latencies(results)
    stages = {
        stage: bench_calls.summary(stage_seconds(server, results, stage))
        for stage in ("stt_s", "endpoint_wait_s", "dialogue_s")
    }
    round_p95 = [level["latency"]["p95_s"] for level in per_round]
    turns = len(lat) or 1
    return {
        "calls": calls,
        "rounds": rounds,
        "latency": bench_calls.summary(lat),
        "latency_by_round": [level["latency"] for level in per_round],
        "rounds_p95_within_target": sum(1 for p in round_p95 if p is not None and p <= target),
        "outliers": outliers(lat),
        "turns_without_reply": sum(level["turns_without_reply"] for level in per_round),
        "failed_calls": [e for level in per_round for e in level["failed_calls"]],
        **stages,
        "cpu_s": usage.cpu_s,
        "cpu_percent_of_one_core": round(100 * sum(usage.cpu_s.values()) / usage.wall_s, 1),
        "rasa_cpu_ms_per_turn": round(1000 * usage.cpu_s["rasa"] / turns, 1),
        "peak_rss_mb": {k: round(v, 1) for k, v in usage.rss.items()},
        "wall_s": usage.wall_s,
        "loadavg_before": load_before,
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
    }


async def run(args: argparse.Namespace) -> dict:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    report: dict = {
        "timestamp": stamp,
        "target_p95_s": args.target,
        "machine": machine(),
        "method": "one voicebot serve (own Rasa, SQLite) on loopback; the voice-to-voice "
        f"bench's callers ({', '.join(ROUTINE)}); per level at least {args.rounds} rounds and "
        f"{args.min_turns} timed turns, p95 over all of them; "
        f"{'one warm-up call first (not counted); ' if args.warmup else ''}"
        "levels stop once p95 passes "
        "twice the target or the time budget would run out",
        "levels": [],
    }
    budget_s, started = args.budget_min * 60, time.monotonic()
    with tempfile.TemporaryDirectory(prefix="voicebot-capacity-") as tmp:
        server = Server("", Path(tmp))
        try:
            await asyncio.to_thread(server.start)
            report["ready_s"] = round(server.ready_s, 1)
            if args.warmup:  # the first calls after start-up run slower (not counted)
                warm = await concurrent_calls(server, 1, [Utterance.load(f) for f in ROUTINE])
                report["warmup_latency"] = warm["latency"]
            round_s = 0.0  # the longest round so far: the estimate for the next level
            for calls in args.levels:
                rounds = rounds_for(calls, args.min_turns, args.rounds)
                if time.monotonic() - started + rounds * round_s > budget_s:
                    report["stopped_before"] = {"calls": calls, "why": "time budget"}
                    break
                print(f"capacity: {calls} call(s) at once, {rounds} rounds…", file=sys.stderr,
                      flush=True)  # fmt: skip
                level = await step(server, calls, rounds, args.target)
                report["levels"].append(level)
                save(report, args.out)  # a level measured is never lost
                round_s = max(round_s, level["wall_s"] / rounds)
                print(f"  {summary_line(level)}", file=sys.stderr, flush=True)
                if p95(level) > STOP_OVER * args.target:
                    break  # far past the target: higher levels only take longer
        finally:
            server.stop()
    report["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    cores = report["machine"]["nproc"]
    levels = report["levels"]
    report["capacity"] = model(levels, args.target, cores)
    report["capacity_at"] = {
        f"{t}": model(levels, t, cores)["calls_per_instance_at_target"] for t in TARGETS_S
    }
    report["capacity_without_outliers_at"] = {
        f"{t}": model(levels, t, cores, without_outliers=True)["calls_per_instance_at_target"]
        for t in TARGETS_S
    }
    return report


def summary_line(level: dict) -> str:
    lat = level["latency"]
    return f"p50 {lat['p50_s']} s, p95 {lat['p95_s']} s, {level['outliers']['count']} outlier(s)"


def p95(level: dict, without_outliers: bool = False) -> float:
    latency = level["outliers"]["without"] if without_outliers else level["latency"]
    return latency["p95_s"] if latency["p95_s"] is not None else float("inf")


def model(levels: list[dict], target: float, cores: int, without_outliers: bool = False) -> dict:
    """The sizing rule: calls an instance carries within the target, per core."""
    best = None
    for lv in levels:  # in order of load: the first miss ends the range
        if p95(lv, without_outliers) > target:
            break
        best = lv
    calls = best["calls"] if best else 0
    return {
        "calls_per_instance_at_target": calls,
        "p95_s_at_that_load": p95(best, without_outliers) if best else None,
        "first_level_over_target": next(
            (lv["calls"] for lv in levels if p95(lv, without_outliers) > target), None
        ),
        "cores": cores,
        "calls_per_core": round(calls / cores, 2),
        "rule": "instances = ceil(peak calls / calls_per_instance) + 1 (failover) + 1 (deploy)",
    }


def save(report: dict, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"capacity-{report['timestamp']}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", type=float, default=0.9, help="p95 voice-to-voice, s")
    parser.add_argument("--levels", default="1,2,3,4")
    parser.add_argument("--min-turns", type=int, default=24, help="timed turns per level")
    parser.add_argument("--rounds", type=int, default=2, help="rounds per level, at least")
    parser.add_argument("--warmup", action=argparse.BooleanOptionalAction, default=True,
                        help="one call before the first level, not counted")  # fmt: skip
    parser.add_argument("--budget-min", type=float, default=14.0,
                        help="start no level that would end after this many minutes")  # fmt: skip
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    args.levels = [int(x) for x in args.levels.split(",")]
    report = asyncio.run(run(args))
    path = save(report, args.out)
    print(json.dumps(report["capacity"]))
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
