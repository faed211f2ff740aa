"""Metrics observed from outside the call path; /health, /ready, /metrics; the drain."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from voicebot.core.record import CallRecord
from voicebot.handoff.queue import RingEnded
from voicebot.ops.http import metrics_route
from voicebot.ops.metrics import CallMetrics, ObservedStore
from voicebot.server import VoicebotServer
from voicebot.storage.call_store import SqliteCallStore


def value(metrics: CallMetrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels or None) or 0.0


def test_metrics_follow_saved_records(tmp_path: Path) -> None:
    metrics = CallMetrics()
    store = ObservedStore(SqliteCallStore(tmp_path / "c.sqlite3"), metrics)
    rec = CallRecord("c1", "+15550100", "sip")
    store.save(rec)
    assert value(metrics, "voicebot_calls_active") == 1
    turn = rec.add_turn("agent please", "speech", bot_text="connecting you")
    turn.timings = {"stt_s": 0.3, "dialogue_s": 0.05}
    store.save(rec)  # the reply has not gone out yet: not counted
    assert value(metrics, "voicebot_voice_to_voice_seconds_count") == 0
    turn.timings["reply_s"] = 0.8
    store.save(rec)
    store.save(rec)  # saved again: still one turn
    assert value(metrics, "voicebot_voice_to_voice_seconds_count") == 1
    assert value(metrics, "voicebot_voice_to_voice_seconds_sum") == 0.8
    assert value(metrics, "voicebot_turn_stage_seconds_count", stage="stt_s") == 1
    rec.transfer = {"reason": "explicit"}
    store.save(rec)
    store.save(rec)
    assert value(metrics, "voicebot_transfers_total", reason="explicit") == 1
    rec.finish("transferred", "agent answered")
    store.save(rec)
    assert value(metrics, "voicebot_calls_active") == 0
    assert value(metrics, "voicebot_calls_total", outcome="transferred") == 1
    assert store.get("c1")["outcome"] == "transferred"  # the store still works as before


def test_deferred_saves_are_observed_too(pg_url: str) -> None:
    """A store with a writer thread (``save_later``) is watched the same way."""
    from voicebot.storage.postgres import PostgresStore

    metrics = CallMetrics()
    store = ObservedStore(PostgresStore(pg_url), metrics)
    rec = CallRecord("c2", "+15550100", "sip")
    store.save_later(rec)
    rec.finish("contained", "caller hung up")
    store.save_later(rec)
    store.flush()
    assert value(metrics, "voicebot_calls_total", outcome="contained") == 1
    assert store.get("c2")["outcome"] == "contained"
    store.close()


def test_ring_outcomes_sip_codes_and_stt_backlog() -> None:
    metrics = CallMetrics()
    for result in ("timeout", "answered", None):
        metrics.on_queue_event(RingEnded("c", "alice", result))
    metrics.on_sip_sent(b"SIP/2.0 503 Service Unavailable\r\nVia: x\r\n\r\n")
    metrics.on_sip_sent(b"BYE sip:a@b SIP/2.0\r\n\r\n")  # a request: not counted
    metrics.watch_stt_queue(lambda: 3)
    assert value(metrics, "voicebot_agent_rings_total", result="timeout") == 1
    assert value(metrics, "voicebot_agent_rings_total", result="answered") == 1
    assert value(metrics, "voicebot_sip_responses_total", code="503") == 1
    assert value(metrics, "voicebot_stt_queue_depth") == 3


async def test_metrics_over_http() -> None:
    metrics = CallMetrics()
    metrics.on_sip_sent(b"SIP/2.0 200 OK\r\n\r\n")
    app = web.Application()
    app.add_routes([metrics_route(metrics)])
    async with TestClient(TestServer(app)) as client:
        page = await client.get("/metrics")
        assert page.status == 200 and page.content_type == "text/plain"
        assert 'voicebot_sip_responses_total{code="200"} 1.0' in await page.text()


class FakeSession:
    def __init__(self) -> None:
        self.told: list[str] = []

    def request_shutdown(self, message: str) -> None:
        self.told.append(message)


async def drained(call_s: float, limit_s: float, hurry_after: float | None = None) -> list[str]:
    services = SimpleNamespace(config=SimpleNamespace(sip=SimpleNamespace(max_calls=1)))
    server = VoicebotServer(services)  # type: ignore[arg-type]
    session = FakeSession()
    server.sessions["c1"] = session  # type: ignore[assignment]
    call = asyncio.create_task(asyncio.sleep(call_s))
    server._tasks.add(call)
    call.add_done_callback(server._tasks.discard)
    call.add_done_callback(lambda _: server.sessions.pop("c1"))  # as on_call does
    hurry = asyncio.Event()
    if hurry_after is not None:
        asyncio.get_running_loop().call_later(hurry_after, hurry.set)
    assert not server.taking_calls()  # at capacity (max_calls 1)
    server.services.config.sip.max_calls = 4
    assert server.taking_calls()
    await server.drain(limit_s, hurry=hurry, timeout_s=0.2)
    assert not server.taking_calls()
    return session.told


async def test_drain_lets_calls_finish_within_the_limit_then_says_goodbye() -> None:
    assert await drained(call_s=0.2, limit_s=2.0) == []  # finished by itself
    told = await drained(call_s=5.0, limit_s=0.2)  # over the limit: goodbye
    assert len(told) == 1 and "restarting" in told[0]
    assert len(await drained(call_s=5.0, limit_s=30.0, hurry_after=0.1)) == 1  # 2nd signal
    assert len(await drained(call_s=5.0, limit_s=0.0)) == 1  # the embedded default
