#!/usr/bin/env python3
"""Cluster figures for sizing: Kamailio's set-up overhead, failover after kill -9,
and the capacity model implied by the single-instance latency bench.

    flock /tmp/voicebot-bench.lock scripts/bench_cluster.py [--calls 20] [--kills 2]

Runs inside a private network namespace (re-executes itself under
``unshare -n``) with the same cluster as ``scripts/cluster``: PostgreSQL, one
Rasa, three ``voicebot serve`` instances, Kamailio.  Writes
``bench/results/cluster-<UTC time>.json``.

* set-up: SIPp INVITE → 200 OK times, ``--calls`` calls straight to an
  instance and as many through Kamailio, one at a time (so queueing does not
  blur the proxy's share), three interleaved rounds each;
* spread: how Kamailio shared the set-up calls out over the three instances;
* failover (``--kills`` drills, one instance after another): calls arrive
  through Kamailio at 2/s and one instance is killed with SIGKILL.  From
  Kamailio's log: how long each INVITE sent to the dead instance waited
  before Kamailio sent it to a live one (the caller's extra set-up time), and
  when the last INVITE went to the dead instance (then it is out of rotation);
* capacity: calls per instance at the latency target, read from the newest
  ``capacity-*.json`` (``scripts/bench_capacity.py``, concurrency stepped on one
  instance) or else the newest ``bench-*.json``, and what that means per core;
* kill -9: how many of the dead instance's calls another instance marked
  interrupted (none may stay ``in_progress``).

The load average is recorded before and after (the machine is shared).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results"
IN_NETNS = "VOICEBOT_BENCH_NETNS"
TARGET_P95_S = 1.5  # the bench's latency target for calls at once


def capacity(results: Path, target_s: float = TARGET_P95_S) -> dict:
    """Calls per instance at the latency target: the newest ``capacity-*.json``
    (``scripts/bench_capacity.py``), else read off the voice-to-voice bench."""
    stepped = sorted(results.glob("capacity-*.json"))
    if stepped:
        data = json.loads(stepped[-1].read_text())
        return {"source": str(stepped[-1].relative_to(ROOT)), **data["capacity"]}
    benches = sorted(p for p in results.glob("bench-*.json") if "T" in p.stem)
    for path in reversed(benches):
        data = json.loads(path.read_text())
        if data.get("quick") or not data.get("concurrency"):
            continue
        levels = [c for c in data["concurrency"] if c["latency"]["p95_s"] <= target_s]
        best = max(levels, key=lambda c: c["calls"]) if levels else None
        cores = data["machine"]["nproc"]
        calls = best["calls"] if best else 0
        return {
            "source": str(path.relative_to(ROOT)),
            "target_p95_s": target_s,
            "calls_per_instance_at_target": calls,
            "p95_s_at_that_load": best["latency"]["p95_s"] if best else None,
            "highest_level_measured": max(c["calls"] for c in data["concurrency"]),
            "cores": cores,
            "calls_per_core": round(calls / cores, 2),
            "note": (
                "one instance used every core of the machine (Whisper decodes on 2 threads x "
                "2 workers); run one instance per 2 cores, each taking calls_per_instance_at_"
                "target, and size a cluster as ceil(peak_calls / calls_per_instance) instances "
                "plus one for failover and one for rolling deploys"
            ),
        }
    return {"source": None, "note": "no full bench-*.json: run scripts/bench first"}


def mean_setup_ms(stats_csv: str) -> float | None:
    """SIPp's cumulative mean response time (INVITE → 200, ``rtd``) from its stats file."""
    lines = [line for line in stats_csv.splitlines() if line.strip()]
    if len(lines) < 2:
        return None
    header, last = lines[0].split(";"), lines[-1].split(";")
    column = header.index("ResponseTime1(C)")
    hours, minutes, seconds = last[column].split(":")[:3]
    millis = last[column].split(":")[3] if last[column].count(":") == 3 else "0"
    return round(
        (int(hours) * 3600 + int(minutes) * 60 + int(seconds)) * 1000 + int(millis) / 1000, 2
    )


async def setup_times(cluster, workdir: Path, wav: Path, calls: int, rounds: int = 3) -> dict:
    """Mean INVITE → 200 OK per round, direct and through Kamailio, rounds interleaved
    (this machine is shared: interleaving spreads its load over both paths)."""
    from tests.e2e.sip_call_rig import run_sipp_callers

    paths = {"direct": cluster.instances[0].host, "via_kamailio": "127.0.0.1"}
    means: dict[str, list[float]] = {name: [] for name in paths}
    for n in range(rounds):
        for name, host in paths.items():
            where = workdir / f"{name}-{n}"
            where.mkdir(parents=True, exist_ok=True)
            run = await run_sipp_callers(
                where, wav, calls=calls, at_once=1, rate=2, pause_ms=500,
                caller_prefix=f"+1555{len(name)}{n}", server_host=host, server_port=5060,
            )  # fmt: skip
            mean = mean_setup_ms(run.stats)
            if run.returncode == 0 and mean is not None:
                means[name].append(mean)
    figures: dict = {f"{name}_round_means_ms": values for name, values in means.items()}
    figures["spread_via_kamailio"] = spread(cluster)
    if means["direct"] and means["via_kamailio"]:
        direct, proxied = (
            statistics.median(means["direct"]),
            statistics.median(means["via_kamailio"]),
        )
        figures.update(
            direct_median_ms=direct,
            via_kamailio_median_ms=proxied,
            kamailio_overhead_ms=round(proxied - direct, 2),
        )
    return figures


def spread(cluster) -> dict:
    """INVITEs Kamailio relayed so far, per instance (count and share)."""
    hosts = [host for _, host, _ in cluster.routed()]
    names = {i.host: i.name for i in cluster.instances}
    counts = {names.get(h, h): hosts.count(h) for h in sorted(set(hosts))}
    return {
        "invites": len(hosts),
        "per_instance": counts,
        "share": {name: round(n / len(hosts), 3) for name, n in counts.items()},
    }


async def failover(cluster, workdir: Path, wav: Path, victim, prefix: str) -> dict:
    """One kill -9 drill: calls through Kamailio at 2/s, ``victim`` killed 4 s in."""
    from tests.e2e.sip_call_rig import run_sipp_callers

    workdir.mkdir(parents=True, exist_ok=True)
    load = asyncio.create_task(
        run_sipp_callers(
            workdir,
            wav,
            calls=24,
            at_once=24,
            rate=2,
            pause_ms=3000,
            caller_prefix=prefix,
            server_port=5060,
            timeout_s=90,
        )
    )
    await asyncio.sleep(4.0)
    killed_at = time.time()
    victim.signal(signal.SIGKILL)
    run = await load
    reaped = await interrupted_by_cluster(cluster, victim.name, killed_at)
    routed = cluster.routed()
    sent = [(c, t) for c, h, t in routed if h == victim.host and t > killed_at]
    # The same INVITE sent on to a live instance: when the caller's set-up resumed.
    resent = {c: t for c, h, t in routed if h != victim.host and t > killed_at}
    delays = [round(resent[c] - t, 3) for c, t in sent if c in resent]
    return {
        "victim": victim.name,
        "invites_sent_to_dead_instance": len(sent),
        "failover_delay_s": delays,
        "failover_delay_max_s": max(delays) if delays else None,
        "invites_after_kill_by_instance": {
            i.name: sum(1 for _, h, t in routed if h == i.host and t > killed_at)
            for i in cluster.instances
        },
        "last_invite_to_dead_instance_after_kill_s": (
            round(max(t for _, t in sent) - killed_at, 3) if sent else None
        ),
        "calls_failed_at_caller": _failed_calls(run.output),
        **reaped,
    }


async def interrupted_by_cluster(cluster, victim: str, killed_at: float) -> dict:
    """The dead instance's records once its lease ran out: the calls it had in
    progress are lost (expected), but another instance must mark them interrupted."""
    import psycopg

    from voicebot.storage.postgres import LEASE_S

    deadline = time.monotonic() + LEASE_S + 15
    while True:
        with psycopg.connect(cluster.store_url) as db:
            outcomes = dict(
                db.execute(
                    "SELECT outcome, count(*) FROM calls WHERE owner = %s GROUP BY outcome",
                    (victim,),
                ).fetchall()
            )
        if not outcomes.get("in_progress") or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    left = outcomes.get("in_progress", 0)
    if left:
        raise SystemExit(f"{left} calls of the killed instance left in_progress")
    return {
        "dead_instance_records_by_outcome": outcomes,
        "calls_interrupted_by_cluster": outcomes.get("interrupted", 0),
        "left_in_progress": left,
        "interrupted_marked_after_kill_s": round(time.time() - killed_at, 1),
    }


def _failed_calls(sipp_output: str) -> int | None:
    match = re.search(r"Failed call\s*\|\s*\d+\s*\|\s*(\d+)", sipp_output)
    return int(match.group(1)) if match else None


async def run(args: argparse.Namespace) -> dict:
    import numpy as np

    from tests.e2e.sip_call_rig import silence
    from voicebot.audio.wavfile import write_wav
    from voicebot.cluster.local import LocalCluster
    from voicebot.config import DialogueConfig
    from voicebot.dialogue.rasa_server import ManagedRasa
    from voicebot.dialogue.training import train

    load_before = [round(x, 2) for x in os.getloadavg()]
    workdir = Path(args.workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    wav = write_wav(workdir / "caller_ulaw.wav", np.concatenate([silence(1.0)]), 8000, "ulaw")
    model = await asyncio.to_thread(train)
    async with ManagedRasa(DialogueConfig(), model=model) as rasa:
        cluster = LocalCluster(workdir / "cluster", rasa_url=rasa.url, rasa_token=rasa.token or "")
        try:
            await asyncio.to_thread(cluster.start)
            report = {
                "startup_s": {i.name: round(i.startup_s, 1) for i in cluster.instances},
                "setup": await setup_times(cluster, workdir / "setup", wav, args.calls),
            }
            drills = []
            for n in range(args.kills):  # the last instances, one after another
                victim = cluster.instances[-1 - n]
                where = workdir / f"failover-{n}"
                drills.append(await failover(cluster, where, wav, victim, f"+155590{n}"))
            report["failover"] = summarise_drills(drills)
        finally:
            await asyncio.to_thread(cluster.stop)
    report["capacity"] = capacity(RESULTS)
    report["machine"] = {"nproc": os.cpu_count(), "loadavg_at_start": load_before,
                         "loadavg_at_end": [round(x, 2) for x in os.getloadavg()]}  # fmt: skip
    return report


def summarise_drills(drills: list[dict]) -> dict:
    """Every kill -9 drill, and the failover delays over all of them."""
    delays = [d for drill in drills for d in drill["failover_delay_s"]]
    after = [d["last_invite_to_dead_instance_after_kill_s"] for d in drills]
    return {
        "probe_interval_s": 1,
        "invite_timeout_s": 1.5,
        "drills": drills,
        "failover_delay_s": delays,
        "failover_delay_median_s": statistics.median(delays) if delays else None,
        "failover_delay_max_s": max(delays) if delays else None,
        "out_of_rotation_after_kill_max_s": max((a for a in after if a is not None), default=None),
        "note": "an INVITE sent to the dead instance is sent on to a live one after the "
        "INVITE timeout; calls set up after the kill never fail at the caller (the calls "
        "in progress on the killed instance are lost, and marked interrupted)",
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20, help="set-up samples per path")
    parser.add_argument("--kills", type=int, default=2, help="kill -9 drills (1 or 2)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--workdir", default="/tmp/voicebot-bench-cluster")
    args = parser.parse_args()
    if not 1 <= args.kills <= 2:
        parser.error("--kills must be 1 or 2 (one instance stays up)")
    if not os.environ.get(IN_NETNS):
        base = ["unshare", "-n"] if os.geteuid() == 0 else ["unshare", "-rn"]
        command = [*base, "sh", "-c", 'ip link set lo up && exec "$@"', "sh",
                   sys.executable, *sys.argv]  # fmt: skip
        os.execvpe(command[0], command, {**os.environ, IN_NETNS: "1"})
    report = asyncio.run(run(args))
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"cluster-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    path.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))
    print(f"written {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
