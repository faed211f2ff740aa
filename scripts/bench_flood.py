#!/usr/bin/env python3
"""A real call's voice-to-voice latency with and without a SIP flood from a stranger.

The whole pipeline runs (`voicebot serve`: SIP/RTP, Silero VAD, Whisper, Rasa, TTS).
The flood is 60-header OPTIONS at ``--rate`` per second from 127.0.0.2, which is
not on ``allowed_peers``, so the server must drop it before parsing and the
caller must not notice.  Quiet and flooded calls alternate, so drift on a shared
machine hits both alike.  Writes bench/results/flood-<timestamp>.json.

    .venv/bin/python scripts/bench_flood.py [--rounds 3] [--rate 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_calls import ONE_CALL_SET, Server, Utterance, open_uac, run_call

ROOT = Path(__file__).resolve().parent.parent
FLOODER = ROOT / "tests" / "robustness" / "flooder.py"
STRANGER = "127.0.0.2"
CONFIG = '[sip]\nallowed_peers = ["127.0.0.1/32"]\n'


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(latencies: list[float]) -> dict[str, float | int]:
    return {
        "n": len(latencies),
        "median_s": round(statistics.median(latencies), 4),
        "p95_s": round(percentile(latencies, 0.95), 4),
    }


async def one_call(server: Server, utterances: list[Utterance], flood_rate: int) -> dict:
    """One call; with ``flood_rate`` a stranger floods the SIP port for the whole call."""
    flood = None
    if flood_rate:
        flood = subprocess.Popen(
            [sys.executable, str(FLOODER), "options", STRANGER, str(server.sip_port),
             str(flood_rate), "600"],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        await asyncio.sleep(1.0)  # the flood is running before the call starts
    uac = await open_uac(server)
    try:
        result = await run_call(uac, utterances)
    finally:
        uac.close()
        sent = 0
        if flood is not None:
            flood.terminate()
            out, _ = flood.communicate(timeout=10)
            sent = int(out or 0)
    latencies = [t["latency_s"] for t in result.turns if t.get("latency_s") is not None]
    return {"latencies": latencies, "error": result.error, "flood_sent": sent}


async def main(args: argparse.Namespace) -> dict:
    utterances = [Utterance.load(f) for f in ONE_CALL_SET]
    with tempfile.TemporaryDirectory(prefix="voicebot-bench-flood-") as workdir:
        server = Server(CONFIG, Path(workdir))
        await asyncio.to_thread(server.start)
        try:
            await one_call(server, utterances[:2], 0)  # warm-up: models and caches
            quiet: list[float] = []
            flooded: list[float] = []
            calls: list[dict] = []
            for _ in range(args.rounds):
                for rate, sink in ((0, quiet), (args.rate, flooded)):
                    call = await one_call(server, utterances, rate)
                    sink.extend(call["latencies"])
                    calls.append({"flood_rate": rate, **call})
        finally:
            server.stop()
        dropped = [line for line in server.log_lines if "not_allowed" in line][-3:]
    ratio = statistics.median(flooded) / statistics.median(quiet)
    return {
        "timestamp": time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()),
        "method": (
            f"{len(utterances)} fixtures per call, quiet and flooded calls alternating for "
            f"{args.rounds} rounds; flood: 60-header OPTIONS from {STRANGER} (not allowlisted) "
            f"at {args.rate}/s for the whole call; latency: end of the caller's words to the "
            "bot's first audio, over real SIP/RTP"
        ),
        "loadavg": os.getloadavg(),
        "quiet": summary(quiet),
        "flooded": summary(flooded),
        "median_ratio": round(ratio, 3),
        "target": "flooded median within 10 % of quiet",
        "met": ratio < 1.10,
        "calls": calls,
        "server_log_tail": dropped,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=int, default=1000)
    report = asyncio.run(main(parser.parse_args()))
    out = ROOT / "bench" / "results" / f"flood-{report['timestamp']}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(json.dumps({k: report[k] for k in ("quiet", "flooded", "median_ratio", "met")}))
    print(out)
