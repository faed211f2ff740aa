"""The cluster for real: Kamailio in front, PostgreSQL behind, three ``voicebot serve``.

One cluster for the module (``voicebot.cluster.local.LocalCluster``, as
``scripts/cluster`` starts it), inside ``unshare -n`` so the instances can
have their own loopback addresses (127.0.0.2-4) and Kamailio its port 5060.
SIPp and baresip are the callers and the agent's phone; one real Rasa serves
every instance.  The tests keep their order: the last ones stop instances.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import signal
import socket
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import psycopg
import pytest

from tests.conftest import FIXTURES
from tests.e2e.sip_call_rig import in_netns, netns_proxy, run_sipp_callers, silence
from voicebot.audio.wavfile import read_audio, write_wav
from voicebot.cluster.local import HTTP_PORT, LocalCluster
from voicebot.dialogue.rasa_server import ManagedRasa
from voicebot.storage.postgres import LEASE_S

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "telephony" / "sip"))
from sip_transfer_peers import AGENT_URI, agent_phone

pytestmark = [pytest.mark.slow, pytest.mark.sip, pytest.mark.netns]

RATE = 8000
TOKEN = "alice-cluster-token-0123456789"
PROBE_S = 1.0  # ds_ping_interval in deploy/kamailio/kamailio.cfg
FIGURES: dict[str, Any] = {}
AGENTS = f"""
[sip]
transfer_mode = "bridge"
[handoff]
ring_timeout_s = 30.0
max_wait_s = 90.0
[[handoff.agents]]
name = "alice"
sip_uri = "{AGENT_URI}"
token = "{TOKEN}"
available = true
"""


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, managed_rasa: ManagedRasa
) -> Iterator[LocalCluster]:
    # One Rasa for the whole cluster, as the README recommends and scripts/cluster runs it.
    local = LocalCluster(
        tmp_path_factory.mktemp("cluster"),
        extra_config=AGENTS,
        drain_limit_s=90.0,
        rasa_url=managed_rasa.url,
        rasa_token=managed_rasa.token or "",
    )
    started = time.monotonic()
    local.start()
    FIGURES["cluster_start_s"] = round(time.monotonic() - started, 1)
    try:
        yield local
    finally:
        local.stop()
        print("\ncluster figures:", json.dumps(FIGURES, indent=1))


# ------------------------------------------------------------------ helpers


def records(cluster: LocalCluster, caller_like: str) -> list[dict[str, Any]]:
    """Stored records (with their owning instance) of callers matching ``caller_like``."""
    with psycopg.connect(cluster.store_url) as db:
        rows = db.execute(
            "SELECT owner, record FROM calls WHERE caller_id LIKE %s ORDER BY started_at",
            (caller_like,),
        ).fetchall()
    return [{**record, "owner": owner} for owner, record in rows]


def handoff(cluster: LocalCluster, call_id: str) -> dict[str, Any] | None:
    with psycopg.connect(cluster.store_url) as db:
        row = db.execute(
            "SELECT status, agent, owner FROM handoffs WHERE call_id = %s", (call_id,)
        ).fetchone()
    return dict(zip(("status", "agent", "owner"), row, strict=True)) if row else None


def caller_wav(workdir: Path, name: str, lead_s: float, tail_s: float) -> Path:
    """A caller who waits out the disclosure, says one thing, then listens."""
    speech = read_audio(FIXTURES / "utterances" / f"{name}.wav")
    pcm = np.concatenate([silence(lead_s), speech, silence(tail_s)])
    workdir.mkdir(parents=True, exist_ok=True)
    return write_wav(workdir / "caller_ulaw.wav", pcm, RATE, "ulaw")


_sipp_ports = itertools.count(5061, 2)


def callers(
    workdir: Path,
    wav: Path,
    prefix: str,
    *,
    pause_s: float,
    calls: int = 1,
    at_once: int | None = None,
    rate: int = 100,
    host: str = "127.0.0.1",
    timeout_s: float = 90,
):
    """SIPp callers, through Kamailio (127.0.0.1) unless ``host`` names an instance;
    every run gets its own SIP port (runs overlap)."""
    return run_sipp_callers(
        workdir,
        wav,
        calls=calls,
        pause_ms=int(pause_s * 1000),
        caller_prefix=prefix,
        server_host=host,
        server_port=5060,
        timeout_s=timeout_s,
        at_once=at_once,
        rate=rate,
        local_port=next(_sipp_ports),
    )


def options(host: str, port: int = 5060, timeout_s: float = 2.0) -> int:
    """Send one SIP OPTIONS from 127.0.0.1 and return the status code."""
    branch, tag = uuid.uuid4().hex[:12], uuid.uuid4().hex[:8]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(timeout_s)
        local = sock.getsockname()[1]
        sock.sendto(
            (
                f"OPTIONS sip:{host}:{port} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP 127.0.0.1:{local};branch=z9hG4bK{branch};rport\r\n"
                f"From: <sip:probe@127.0.0.1>;tag={tag}\r\nTo: <sip:{host}:{port}>\r\n"
                f"Call-ID: {branch}@127.0.0.1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
                "Content-Length: 0\r\n\r\n"
            ).encode(),
            (host, port),
        )
        reply = sock.recv(4096).decode(errors="replace")
    return int(reply.split()[1])


async def wait_until(check, timeout_s: float, what: str, interval: float = 0.25) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if value := check():
            return value
        await asyncio.sleep(interval)
    pytest.fail(f"timed out after {timeout_s} s waiting for {what}")


def desk_browser() -> aiohttp.ClientSession:
    """A client that keeps the desk's cookie (instances are reached by IP address)."""
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


def ended(record: dict[str, Any]) -> bool:
    """Ended by the call itself (contained, abandoned, transferred…), not cut off."""
    return record["outcome"] not in ("in_progress", "interrupted")


def said(record: dict[str, Any]) -> str:
    return " ".join(t.get("caller_text") or "" for t in record["turns"]).lower()


# -------------------------------------------------------------------- tests


async def test_thirty_calls_spread_over_three_instances(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    wav = caller_wav(tmp_path, "balance_how_much", lead_s=11.0, tail_s=5.0)
    started = time.monotonic()
    run = await callers(
        tmp_path, wav, "+1555100", calls=30, at_once=10, rate=2, pause_s=19, timeout_s=150
    )
    assert run.returncode == 0, run.output[-4000:]

    def done() -> list[dict[str, Any]] | None:
        found = records(cluster, "+1555100%")
        return found if len(found) == 30 and all(r["ended_at"] for r in found) else None

    found = await wait_until(done, 20, "30 ended records in PostgreSQL")
    FIGURES["thirty_calls_s"] = round(time.monotonic() - started, 1)
    per_instance = {i.name: sum(r["owner"] == i.name for r in found) for i in cluster.instances}
    FIGURES["calls_per_instance"] = per_instance
    assert all(n >= 6 for n in per_instance.values()), per_instance  # each ≥ 20 %
    assert len({r["call_id"] for r in found}) == 30
    assert len({r["caller_id"] for r in found}) == 30  # one record per caller
    for record in found:
        # Ended by the caller's BYE (a misheard request may have led to a transfer).
        assert ended(record), record
        assert said(record).strip(), record["turns"]  # its own transcript, stored
    # Ten calls at once on two shared cores: Whisper may mishear a word, not the call.
    understood = sum(any(w in said(r) for w in ("how much", "money", "checking")) for r in found)
    FIGURES["thirty_calls_understood"] = understood
    assert understood >= 27, [said(r) for r in found]


async def test_the_desk_on_one_instance_answers_a_call_held_by_another(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    desk_host, call_host = cluster.instances[0], cluster.instances[1]
    phone = agent_phone(tmp_path, silence(30.0))
    phone.dir.joinpath("accounts").write_text(
        phone.dir.joinpath("accounts").read_text().replace("answermode=auto", "answermode=manual")
    )
    await phone.start(quit_after_s=90)
    base = f"http://{desk_host.host}:{HTTP_PORT}/desk"
    async with desk_browser() as http:
        signed = await http.post(f"{base}/api/signin", json={"token": TOKEN})
        assert signed.status == 200, await signed.text()
        ws = await http.ws_connect(f"{base}/ws")
        wav = caller_wav(tmp_path / "caller", "human_agent", lead_s=11.0, tail_s=40.0)
        caller = asyncio.create_task(
            callers(tmp_path / "caller", wav, "+1555200", pause_s=40, host=call_host.host)
        )
        async with asyncio.timeout(60):
            while (message := await ws.receive_json())["type"] != "ring":
                pass
        ring = message["ring"]
        assert ring["agent"] == "alice"
        assert ring["package"]["reason"] == "explicit"
        assert any(
            "agent" in (t.get("caller_text") or "").lower() for t in ring["package"]["transcript"]
        ), ring["package"]["transcript"]
        held = handoff(cluster, ring["call_id"])
        assert held is not None and held["owner"] == call_host.name  # held by the other one
        accepted = await http.post(f"{base}/api/rings/{ring['call_id']}/accept")
        assert accepted.status == 200, await accepted.text()
        # The agent's phone is ringing with the call from the other instance: pick up.
        await wait_until(lambda: "ncoming call" in phone.text(), 20, "the agent's phone to ring")
        await phone.command("accept")
        await wait_until(
            lambda: (handoff(cluster, ring["call_id"]) or {}).get("status") == "answered",
            30,
            "the handoff to be answered",
        )
        await ws.close()
    assert handoff(cluster, ring["call_id"])["agent"] == "alice"
    await caller  # the caller hangs up at the end of its script
    await phone.stop()


async def test_sigterm_drains_one_instance(cluster: LocalCluster, tmp_path: Path) -> None:
    draining = cluster.instances[2]
    assert options(draining.host) == 200
    wav = caller_wav(tmp_path / "first", "balance_how_much", lead_s=11.0, tail_s=6.0)
    first = asyncio.create_task(
        callers(tmp_path / "first", wav, "+1555300", calls=6, at_once=6, rate=6, pause_s=20)
    )
    await wait_until(
        lambda: any(r["owner"] == draining.name and not r["ended_at"]
                    for r in records(cluster, "+1555300%")),
        20, "a call in progress on the instance to drain",
    )  # fmt: skip
    signalled = time.time()
    draining.signal(signal.SIGTERM)
    await asyncio.sleep(0.5)
    assert options(draining.host) == 503
    url = f"http://{draining.host}:{HTTP_PORT}/ready"
    async with aiohttp.ClientSession() as http, http.get(url) as ready:
        assert ready.status == 503 and (await ready.json())["draining"] is True
    await asyncio.sleep(PROBE_S * 2 + 0.5)  # Kamailio's prober has seen the 503
    wav2 = caller_wav(tmp_path / "second", "balance_how_much", lead_s=11.0, tail_s=2.0)
    second = await callers(
        tmp_path / "second", wav2, "+1555301", calls=4, at_once=4, rate=4, pause_s=15
    )
    assert second.returncode == 0, second.output[-3000:]
    assert (await first).returncode == 0
    late = [(c, h) for c, h, t in cluster.routed() if t > signalled + PROBE_S * 2
            and h == draining.host]  # fmt: skip
    assert late == [], f"calls reached the draining instance: {late}"
    assert draining.wait(30) == 0, draining.logs()  # exits once its calls are over
    drained = [r for r in records(cluster, "+155530%") if r["owner"] == draining.name]
    assert drained and all(ended(r) and said(r) for r in drained), drained
    FIGURES["drained_calls"] = len(drained)


async def test_kill_9_fails_over_and_the_cluster_interrupts_only_the_dead_calls(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    victim, survivor = cluster.instances[1], cluster.instances[0]
    # A caller on hold on the survivor (the agent is away): its handoff must survive.
    async with desk_browser() as http:
        base = f"http://{survivor.host}:{HTTP_PORT}/desk"
        await http.post(f"{base}/api/signin", json={"token": TOKEN})
        away = await http.post(f"{base}/api/availability", json={"available": False})
        assert away.status == 200, await away.text()
    hold_wav = caller_wav(tmp_path / "hold", "human_agent", lead_s=11.0, tail_s=35.0)
    holding = asyncio.create_task(
        callers(
            tmp_path / "hold",
            hold_wav,
            "+1555400",
            pause_s=45,
            host=survivor.host,
        )
    )
    wav = caller_wav(tmp_path / "load", "balance_how_much", lead_s=11.0, tail_s=4.0)
    load = asyncio.create_task(
        callers(
            tmp_path / "load",
            wav,
            "+1555401",
            calls=12,
            at_once=6,
            rate=1,
            pause_s=17,
            timeout_s=120,
        )
    )
    await wait_until(
        lambda: any(r["owner"] == victim.name and not r["ended_at"]
                    for r in records(cluster, "+1555401%")),
        30, "a call in progress on the victim",
    )  # fmt: skip
    held = await wait_until(lambda: [r for r in records(cluster, "+1555400%")
                                     if (handoff(cluster, r["call_id"]) or {}).get("status")
                                     == "waiting"], 40, "the caller on hold")  # fmt: skip
    open_at_kill = {r["call_id"] for r in records(cluster, "+1555401%")
                    if r["owner"] == victim.name and not r["ended_at"]}  # fmt: skip
    killed_at = time.time()
    victim.signal(signal.SIGKILL)
    await load
    # Within the lease the cluster marks the dead instance's calls interrupted.
    await wait_until(
        lambda: all(r["outcome"] != "in_progress" for r in records(cluster, "+1555401%")
                    if r["owner"] == victim.name),
        LEASE_S + 10, "the dead instance's calls to be reconciled",
    )  # fmt: skip
    reconciled_s = time.time() - killed_at
    found = records(cluster, "+1555401%")
    dead = [r for r in found if r["owner"] == victim.name and r["ended_at"] and
            r["outcome"] == "interrupted"]  # fmt: skip
    assert dead, "the killed instance had calls in progress"
    # Every call open on it when it died was closed by another instance, none left open.
    by_id = {r["call_id"]: r for r in found}
    cut = [by_id[c] for c in open_at_kill]
    assert all(r["outcome"] == "interrupted" or ended(r) for r in cut), cut
    assert all("instance lost" in r["end_reason"] for r in dead), dead
    others = [r for r in found if r["owner"] != victim.name]
    assert others and all(ended(r) for r in others), others
    assert (handoff(cluster, held[0]["call_id"]) or {})["status"] == "waiting"
    # New calls stopped going to the dead instance within the probe interval;
    # INVITEs it got before that failed over to another instance.
    after = [(c, h, t) for c, h, t in cluster.routed() if t > killed_at]
    late = [c for c, h, t in after if h == victim.host and t > killed_at + PROBE_S * 2 + 0.5]
    assert late == [], late
    moved = {c: t for c, h, t in cluster.failovers() if t > killed_at}
    sent = {c: t for c, h, t in after if h == victim.host}
    FIGURES["failover"] = {
        "reconciled_after_s": round(reconciled_s, 1),
        "calls_open_at_kill": len(open_at_kill),
        "calls_interrupted_by_cluster": len(dead),
        "invites_to_dead_instance": len(sent),
        "failover_delay_s": [round(moved[c] - sent[c], 2) for c in sent if c in moved],
        "last_invite_to_dead_instance_after_kill_s": round(max(sent.values()) - killed_at, 2)
        if sent
        else None,
    }
    assert set(sent) <= set(moved), (sent, moved)
    await holding  # the caller on hold hangs up at the end of its script


if not in_netns():
    for _name, _test in list(globals().items()):
        if _name.startswith("test_") and callable(_test):
            globals()[_name] = netns_proxy(_test)
