#!/usr/bin/env python3
"""Calls per instance at the latency target, and the capacity model it implies.

    flock /tmp/voicebot-bench.lock scripts/bench_capacity.py [--target 0.9] [--levels 1,2,3,4,6,8]

One ``voicebot serve`` (SQLite, its own Rasa, as each cluster instance runs
it) on loopback; the caller side is the voice-to-voice bench's SIP/RTP UAC
(``scripts/bench_calls.py``: latency = the caller's last voiced frame → the
bot's first voiced frame).  Concurrency steps up until the p95 passes twice
``--target``; each level records p50/p95, the STT, endpointing and dialogue
times (from the records), CPU and RSS per process (voicebot, Rasa, action
server) and the load average before and after.  Writes
``bench/results/capacity-<UTC>.json``: calls per instance = the last level
before the first one whose p95 missed the target (also read at 0.9, 1.2 and
1.5 s), calls per core = that ÷ cores.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
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


class InstanceServer(Server):
    """The bench's server, started with this interpreter (works from any checkout)."""

    def __init__(self, config_toml: str, workdir: Path) -> None:
        super().__init__(config_toml, workdir)
        self.cmd[0:1] = [sys.executable, "-m", "voicebot"]


def stage_seconds(server: Server, level: dict, stage: str) -> list[float]:
    """One stage's time (``stt_s``, ``endpoint_wait_s``…) over this level's timed
    turns, from the call records."""
    records = server.records()
    return [
        t["timings"][stage]
        for r in level["_results"]
        for t in (records.get(r.sip_call_id) or {}).get("turns", [])
        if t.get("input") == "speech" and (t.get("timings") or {}).get(stage) is not None
    ]


async def step(server: Server, calls: int, min_turns: int) -> dict:
    load_before = [round(x, 2) for x in os.getloadavg()]
    routine = [Utterance.load(f) for f in ROUTINE]
    with Usage(server) as usage:
        level = await concurrent_calls(server, calls, routine, min_turns)
    stages = {
        stage: bench_calls.summary(stage_seconds(server, level, stage))
        for stage in ("stt_s", "endpoint_wait_s", "dialogue_s")
    }
    turns = level["latency"]["n"] or 1
    level.pop("_results")
    return {
        "calls": calls,
        "rounds": level["rounds"],
        "latency": level["latency"],
        "turns_without_reply": level["turns_without_reply"],
        "failed_calls": level["failed_calls"],
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
        f"bench's callers ({', '.join(ROUTINE)}), {args.min_turns}+ timed turns per level; "
        "levels stop once p95 passes twice the target",
        "levels": [],
    }
    with tempfile.TemporaryDirectory(prefix="voicebot-capacity-") as tmp:
        server = InstanceServer("", Path(tmp))
        try:
            await asyncio.to_thread(server.start)
            report["ready_s"] = round(server.ready_s, 1)
            for calls in args.levels:
                print(f"capacity: {calls} call(s) at once…", file=sys.stderr, flush=True)
                level = await step(server, calls, args.min_turns)
                report["levels"].append(level)
                save(report, args.out)  # a level measured is never lost
                print(f"  p95 {level['latency']['p95_s']} s", file=sys.stderr, flush=True)
                if (level["latency"]["p95_s"] or float("inf")) > STOP_OVER * args.target:
                    break  # far past the target: higher levels only take longer
        finally:
            server.stop()
    report["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    cores = report["machine"]["nproc"]
    report["capacity"] = model(report["levels"], args.target, cores)
    report["capacity_at"] = {
        f"{t}": model(report["levels"], t, cores)["calls_per_instance_at_target"] for t in TARGETS_S
    }
    return report


def model(levels: list[dict], target: float, cores: int) -> dict:
    """The sizing rule: calls an instance carries within the target, per core."""
    best = None
    for lv in levels:  # in order of load: the first miss ends the range
        if (lv["latency"]["p95_s"] or float("inf")) > target:
            break
        best = lv
    calls = best["calls"] if best else 0
    return {
        "calls_per_instance_at_target": calls,
        "p95_s_at_that_load": best["latency"]["p95_s"] if best else None,
        "first_level_over_target": next(
            (lv["calls"] for lv in levels if (lv["latency"]["p95_s"] or float("inf")) > target),
            None,
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
    parser.add_argument("--levels", default="1,2,3,4,6,8")
    parser.add_argument("--min-turns", type=int, default=12)
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
