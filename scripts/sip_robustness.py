#!/usr/bin/env python
"""SIP robustness runs that write JSON to bench/results/: fuzz, soak and attack.

    sip_robustness.py fuzz   [--datagrams 1000000] [--seed 4475]
    sip_robustness.py soak   [--minutes 10] [--calls 8]
    sip_robustness.py attack [--seconds 10]

Everything runs inside a private network namespace (``unshare -n``, loopback
only): the script re-executes itself there.  The server runs in this
process; flooders run as separate processes, as an attacker would.

attack measures, each against a baseline:
  * reply latency of a live call (an echo handler: caller audio played
    straight back, so the figure is the server's media path) while a
    non-allowlisted source floods the SIP port at 1,000 datagrams/s;
  * the same while 1,000 junk RTP packets/s hit the call's RTP port;
  * calls from an allowed source answered and served while another allowed
    source floods 500 INVITEs/s that it never ACKs.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [
    str(ROOT),
    str(ROOT / "tests" / "robustness"),
    str(ROOT / "tests" / "telephony" / "sip"),
]

from harness import EchoHandler, python_blocks, rss_kib, soak, spray  # noqa: E402
from sip_fuzz import datagrams  # noqa: E402
from sip_uac import Leg, Uac  # noqa: E402

from voicebot.audio.g711 import ulaw_decode, ulaw_encode  # noqa: E402
from voicebot.telephony.rtp.packet import RtpPacket  # noqa: E402
from voicebot.telephony.sip import SipConfig, SipServer  # noqa: E402

RESULTS = ROOT / "bench" / "results"
IN_NETNS = "VOICEBOT_IN_NETNS"

FLOODER = ROOT / "tests" / "robustness" / "flooder.py"


def flooder(kind: str, src: str, port: int, rate: int, seconds: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(FLOODER), kind, src, str(port), str(rate), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )


async def sent_by(process: subprocess.Popen[str]) -> int:
    """Wait for a flooder (off the loop) and read how many datagrams it sent."""
    out, _ = await asyncio.to_thread(process.communicate)
    return int(out or 0)


def machine() -> dict[str, object]:
    return {
        "cpus": os.cpu_count(),
        "load_1m": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "note": "shared 2-core machine, other jobs running (see load_1m)",
    }


def write(name: str, report: dict[str, object]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    path = RESULTS / f"{name}-{stamp}.json"
    path.write_text(json.dumps({"machine": machine(), **report}, indent=2))
    print(path)
    return path


# ------------------------------------------------------------------ fuzz


async def settled(server: SipServer, config: SipConfig) -> dict[str, int]:
    """Memory once every timer has run (and a heap trim, when on) and cyclic
    garbage is collected: what the server keeps, not what is in flight."""
    await asyncio.sleep(64 * config.t1_s * 2 + config.heap_trim_s)
    gc.collect()
    return {
        "rss_kib": rss_kib(),
        "python_blocks": python_blocks(),
        "transactions": len(server.transactions._server),
        "calls": len(server.calls),
    }


def growth(before: dict[str, int], after: dict[str, int], key: str) -> float:
    return round(after[key] / before[key] - 1, 4)


async def run_fuzz(args: argparse.Namespace) -> None:
    config = SipConfig(
        listen_port=0, source_rate=0, t1_s=0.05, t4_s=0.2, heap_trim_s=args.heap_trim_s
    )
    server = SipServer(config, EchoHandler())
    await server.start()
    start = rss_kib()
    stream = iter(datagrams(args.seed, args.datagrams))
    await spray(server, itertools.islice(stream, args.warmup), batch=args.batch)
    baseline = await settled(server, config)
    report = await spray(server, stream, batch=args.batch)
    end = await settled(server, config)
    await server.close()
    write(
        "fuzz",
        {
            "datagrams": args.warmup + report.datagrams,
            "warmup_datagrams": args.warmup,
            "seed": args.seed,
            "seconds": report.seconds,
            "datagrams_per_s": round(report.datagrams / report.seconds),
            "crashes": report.crashes,
            "tracebacks": report.tracebacks,
            "answered_500": report.answered_500,
            "alive_after_every_batch": report.alive_after_every_batch,
            "batches": report.batches,
            "heap_trim_s": args.heap_trim_s,
            "baseline": "settled after the warm-up datagrams: timers run, gc collected",
            "rss_kib_start": start,
            "settled_after_warmup": baseline,
            "settled_at_end": end,
            "rss_growth": growth(baseline, end, "rss_kib"),
            "python_blocks_growth": growth(baseline, end, "python_blocks"),
            "rss_kib_per_batch": report.rss_kib,
            "events": report.events,
        },
    )


# ------------------------------------------------------------------ soak


async def run_soak(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as workdir:
        report = await soak(Path(workdir), args.minutes, args.calls, sample_s=10.0)
    write("soak", report)


# ---------------------------------------------------------------- attack


class Caller(asyncio.DatagramProtocol):
    """A caller's RTP socket: sends tone bursts, timestamps the echo."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.heard: list[float] = []

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            packet = RtpPacket.parse(data)
        except ValueError:
            return
        if np.abs(ulaw_decode(packet.payload).astype(np.int32)).mean() > 2000:
            self.heard.append(time.monotonic())


async def echo_latencies(
    server_port: int, bursts: int, on_call: Callable[[int], None] | None = None
) -> list[float]:
    """Place one call, send ``bursts`` 200 ms tones 600 ms apart; seconds to each echo."""
    loop = asyncio.get_running_loop()
    transport, caller = await loop.create_datagram_endpoint(Caller, local_addr=("127.0.0.1", 0))
    caller.transport = transport
    uac = await Uac.open(server_port)
    leg = Leg(uac)
    ok = await leg.establish(transport.get_extra_info("sockname")[1])
    from voicebot.telephony.sip.sdp import SessionDescription

    port = SessionDescription.parse(ok.body).media[0].port
    if on_call:
        on_call(port)
    tone = ulaw_encode((9000 * np.sin(np.arange(160) * 2 * np.pi * 440 / 8000)).astype(np.int16))
    silence = ulaw_encode(np.zeros(160, np.int16))
    seq, ts, latencies = 1, 0, []
    for burst in range(bursts + 1):
        caller.heard.clear()
        sent_at = None
        for frame in range(40):
            payload = tone if 5 <= frame < 15 else silence
            if frame == 5:
                sent_at = time.monotonic()
            transport.sendto(
                RtpPacket(0, seq, ts, 0x1111, payload).serialize(), ("127.0.0.1", port)
            )
            seq, ts = seq + 1, ts + 160
            await asyncio.sleep(0.02)
        if burst and caller.heard and sent_at:  # the first burst warms up the latch
            latencies.append(caller.heard[0] - sent_at)
    uac.send(leg.next("BYE"))
    await asyncio.sleep(0.2)
    uac.close()
    transport.close()
    return latencies


async def timed(phase: Awaitable[list[float]]) -> dict[str, float]:
    """Latency summary of a phase, with the share of one CPU this process used
    meanwhile (the server's own cost; the flooders are other processes)."""
    wall, cpu = time.monotonic(), time.process_time()
    values = await phase
    share = (time.process_time() - cpu) / (time.monotonic() - wall)
    return {**summary(values), "server_cpu_share": round(share, 3)}


def summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    ms = np.array(values) * 1000
    return {
        "n": len(values),
        "median_ms": round(float(np.median(ms)), 1),
        "p90_ms": round(float(np.percentile(ms, 90)), 1),
        "max_ms": round(float(ms.max()), 1),
    }


async def served_calls(server_port: int, count: int) -> dict[str, int]:
    """Calls from 127.0.0.1 while a flood runs: answered (200) and served (echo heard)."""
    answered = served = 0
    for _ in range(count):
        try:
            latencies = await asyncio.wait_for(echo_latencies(server_port, 1), 10)
            answered += 1
            served += bool(latencies)
        except (TimeoutError, OSError):
            pass
    return {"attempted": count, "answered": answered, "served": served}


async def run_attack(args: argparse.Namespace) -> None:
    config = SipConfig(listen_port=0, allowed_peers=["127.0.0.1/32", "127.0.0.3/32"])
    handler = EchoHandler()
    server = SipServer(config, handler)
    await server.start()
    bursts, report = args.bursts, {}
    report["baseline"] = await timed(echo_latencies(server.port, bursts))

    flood = flooder("options", "127.0.0.2", server.port, 1000, args.seconds)
    report["sip_flood_1000_per_s_not_allowlisted"] = await timed(
        echo_latencies(server.port, bursts)
    )
    report["sip_flood_sent"] = await sent_by(flood)
    report["sip_flood_dropped_unread"] = server.transport.dropped["not_allowed"]

    floods: list[subprocess.Popen[str]] = []

    def junk_rtp(port: int) -> None:
        floods.append(flooder("rtp", "127.0.0.1", port, 1000, args.seconds))

    report["rtp_junk_1000_per_s"] = await timed(
        echo_latencies(server.port, bursts, on_call=junk_rtp)
    )
    report["rtp_junk_sent"] = await sent_by(floods[0])

    before = handler.calls
    flood = flooder("invite", "127.0.0.3", server.port, 500, args.seconds)
    await asyncio.sleep(2.0)  # the flood has filled what it can
    served = await served_calls(server.port, 5)
    report["invite_flood_500_per_s_never_acked"] = {
        **served,
        "flood_calls_started_a_session": handler.calls - before - served["answered"],
        "calls_held_by_flood_at_end": sum(c.dialog.peer[0] == "127.0.0.3" for c in server.calls),
        "max_calls_per_source": config.max_calls_per_source,
    }
    report["invite_flood_sent"] = await sent_by(flood)
    report["transport_drops"] = dict(server.transport.dropped)
    await server.close()
    write("sip-attack", report)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    fuzz = sub.add_parser("fuzz")
    fuzz.add_argument("--datagrams", type=int, default=1_000_000)
    fuzz.add_argument("--seed", type=int, default=4475)
    fuzz.add_argument("--batch", type=int, default=10_000)
    fuzz.add_argument("--warmup", type=int, default=20_000, help="datagrams before the baseline")
    fuzz.add_argument(
        "--heap-trim-s",
        type=float,
        default=SipConfig.heap_trim_s,
        help="the server's heap trim interval (0: off, to see fragmentation)",
    )
    soak_p = sub.add_parser("soak")
    soak_p.add_argument("--minutes", type=float, default=10.0)
    soak_p.add_argument("--calls", type=int, default=8)
    attack = sub.add_parser("attack")
    attack.add_argument("--seconds", type=float, default=10.0)
    attack.add_argument("--bursts", type=int, default=10)
    args = parser.parse_args()
    if not os.environ.get(IN_NETNS):
        from tests.netns_tools import unshare_command

        command = [*unshare_command(), "sh", "-c", 'ip link set lo up && exec "$@"', "sh",
                   sys.executable, *sys.argv]  # fmt: skip
        sys.exit(subprocess.run(command, env={**os.environ, IN_NETNS: "1"}).returncode)
    if os.environ.get("VOICEBOT_LOG"):
        import logging

        logging.basicConfig(level=logging.INFO)
    runner = {"fuzz": run_fuzz, "soak": run_soak, "attack": run_attack}[args.command]
    asyncio.run(runner(args))


if __name__ == "__main__":
    main()
