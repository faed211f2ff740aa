"""The event loop that clocks every call's audio stays free under load.

A 20 ms ticker (what a media clock does) runs on the loop while 8 fixture
calls go through the real STT, VAD, TTS and Rasa, and a supervisor searches
the agent desk over a store of 50,000 records.  The worst tick lag must stay
under 20 ms.

This is a robustness check, not a benchmark, and the machine's cores are
shared (load averages above 10 on 2 cores are common here): a tick that is
late because the kernel ran another process is not the loop's fault.  So a
tick's lag is charged to the loop only up to the CPU time the loop thread
spent running callbacks from the moment the tick was due until it ran (the
loop is instrumented: CPU time is read at the start of every callback).
Compute on the loop (VAD inference, transfer signals, JSON, regexes) is
charged in full; waiting for a core is not.  Blocking I/O on the loop would
escape that measure, so the store (the loop's only disk I/O) is checked
directly: it must never run on the loop thread.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sqlite3
import threading
import time
from collections import deque
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from tests.conftest import utterance
from voicebot.agent_desk import create_desk_app
from voicebot.handoff import AgentConfig, HandoffConfig, TransferQueue
from voicebot.session.services import Services
from voicebot.simulation import simulate_call
from voicebot.storage.call_store import SqliteCallStore, search_text
from voicebot.telephony.fixture import parse_turn

pytestmark = pytest.mark.slow
TICK_S = 0.020
RECORDS = 50_000
CALLS = 8
SUPERVISOR = AgentConfig("sam", "sip:sam@127.0.0.1", [], "sam-token-0123456789", supervisor=True)


def fill(path: Path, count: int) -> None:
    """``count`` finished calls, written in one transaction (test set-up only)."""
    SqliteCallStore(path).close()  # the schema, as voicebot makes it
    rows, fts = [], []
    for n in range(count):
        record = {
            "call_id": f"old-{n}",
            "caller_id": f"+1555{n % 10_000:04d}",
            "transport": "sip",
            "started_at": f"2026-11-{1 + n % 28:02d}T10:00:00.{n % 1000:03d}+00:00",
            "ended_at": None,
            "outcome": "contained",
            "turns": [
                {"caller_text": f"what is my balance please {n % 97}", "bot_text": "Your balance"},
                {"caller_text": "thank you goodbye", "bot_text": "Goodbye"},
            ],
        }
        rows.append((record["call_id"], record["caller_id"], "sip", record["started_at"],
                     None, "contained", json.dumps(record), "old-host:1"))  # fmt: skip
        fts.append((record["call_id"], search_text(record)))
    with sqlite3.connect(path) as db:
        db.executemany("INSERT INTO calls VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
        db.executemany("INSERT INTO calls_fts VALUES (?, ?)", fts)


@dataclasses.dataclass
class Ticks:
    wall_lags: list[float] = dataclasses.field(default_factory=list)
    loop_lags: list[float] = dataclasses.field(default_factory=list)


class LoopMeter:
    """(wall, loop-thread CPU) at the start of every loop callback."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.marks: deque[tuple[float, float]] = deque(maxlen=8192)
        run = asyncio.events.Handle._run
        marks = self.marks

        def metered(handle: asyncio.events.Handle) -> None:
            marks.append((time.perf_counter(), time.thread_time()))
            run(handle)

        monkeypatch.setattr(asyncio.events.Handle, "_run", metered)

    def cpu_at(self, at: float) -> float | None:
        """The loop thread's CPU time at the last callback start before ``at``."""
        for wall, cpu in reversed(self.marks):
            if wall <= at:
                return cpu
        return None


async def ticker(stop: asyncio.Event, ticks: Ticks, meter: LoopMeter) -> None:
    """Sleep to each 20 ms boundary; note how late the loop woke us, and how
    much of that lateness the loop thread spent computing."""
    due = time.perf_counter() + TICK_S
    while not stop.is_set():
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        lag = max(0.0, time.perf_counter() - due)
        at_due = meter.cpu_at(due)
        busy = lag if at_due is None else time.thread_time() - at_due
        ticks.wall_lags.append(lag)
        ticks.loop_lags.append(min(lag, busy))
        due = max(due + TICK_S, time.perf_counter() + TICK_S / 2)


class ThreadSpy:
    """Wraps the store: which threads touched it (the loop thread must not)."""

    def __init__(self, store: SqliteCallStore) -> None:
        self._store = store
        self.on_loop: list[str] = []
        self.calls = 0
        self._loop_thread = threading.get_ident()

    def __getattr__(self, name: str) -> object:
        attr = getattr(self._store, name)
        if not callable(attr):
            return attr

        def spied(*args: object, **kwargs: object) -> object:
            self.calls += 1
            if threading.get_ident() == self._loop_thread and name not in ("save_later", "flush"):
                self.on_loop.append(name)
            return attr(*args, **kwargs)

        return spied


async def desk_searches(client: TestClient, stop: asyncio.Event) -> list[float]:
    """A supervisor searching the history again and again, as fast as answers come."""
    took = []
    headers = {"Authorization": f"Bearer {SUPERVISOR.token}"}
    for query in ["balance", "goodbye", "thank", "+1555", "balance please"] * 1000:
        if stop.is_set():
            break
        started = time.perf_counter()
        response = await client.get("/api/calls", params={"q": query}, headers=headers)
        assert response.status == 200
        assert (await response.json())["calls"]
        took.append(time.perf_counter() - started)
    return took


async def test_media_clock_stays_free_under_calls_and_a_desk_search(
    services: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "big.sqlite3"
    await asyncio.to_thread(fill, path, RECORDS)
    real_store = SqliteCallStore(path)
    store = ThreadSpy(real_store)
    loaded = dataclasses.replace(services, store=store)  # type: ignore[arg-type]
    queue = TransferQueue(real_store, HandoffConfig(agents=[SUPERVISOR]))
    scripts = [
        [utterance("check_balance"), "dtmf:4321"],
        [utterance("opening_hours")],
        [utterance("lost_card")],
        [utterance("recent_transactions")],
    ]
    stop, ticks = asyncio.Event(), Ticks()
    clock = asyncio.create_task(ticker(stop, ticks, LoopMeter(monkeypatch)))
    desk = create_desk_app(store, queue)  # type: ignore[arg-type]
    async with TestClient(TestServer(desk, host="127.0.0.1")) as client:
        search = asyncio.create_task(desk_searches(client, stop))
        calls = [
            simulate_call(loaded, [parse_turn(str(t)) for t in scripts[n % 4]], "+15550100")
            for n in range(CALLS)
        ]
        records = await asyncio.gather(*calls)
        stop.set()
        searches = await search
    await clock
    real_store.close()

    assert all(len(r.caller_turns()) >= 1 for r in records)
    assert len(searches) >= 5, "the desk search did not run alongside the calls"
    assert len(ticks.loop_lags) > 100
    assert store.calls > CALLS and store.on_loop == [], store.on_loop
    worst = max(ticks.loop_lags)
    print(
        f"\nticks={len(ticks.loop_lags)} worst_loop_lag_ms={worst * 1000:.1f} "
        f"worst_wall_lag_ms={max(ticks.wall_lags) * 1000:.1f} "
        f"searches={len(searches)} worst_search_s={max(searches):.3f}"
    )
    assert worst < TICK_S, f"the loop held a 20 ms media tick back by {worst * 1000:.1f} ms"
