"""The heap trim: free C-heap pages go back to the kernel, never blocking the loop."""

from __future__ import annotations

import asyncio
import threading

import pytest

from voicebot.core import heap


def test_trim_heap_runs_on_glibc() -> None:
    assert heap.trim_heap() is True  # Debian: glibc has malloc_trim


async def test_periodic_trim_runs_off_the_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    threads: list[int] = []
    monkeypatch.setattr(heap, "trim_heap", lambda: threads.append(threading.get_ident()))
    task = asyncio.create_task(heap.trim_heap_every(0.01))
    await asyncio.sleep(0.1)
    task.cancel()
    assert threads and threading.get_ident() not in threads


async def test_interval_zero_never_trims(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(heap, "trim_heap", lambda: pytest.fail("trimmed"))
    await asyncio.wait_for(heap.trim_heap_every(0), 1)  # returns at once


async def test_the_sip_server_trims_while_it_runs_and_stops_on_close(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from voicebot.telephony.sip import SipConfig, SipServer

    calls: list[int] = []
    monkeypatch.setattr(heap, "trim_heap", lambda: calls.append(1))
    server = SipServer(SipConfig(listen_port=0, heap_trim_s=0.01), lambda _: asyncio.sleep(0))
    await server.start()
    await asyncio.sleep(0.1)
    await server.close()
    trimmed = len(calls)
    await asyncio.sleep(0.05)
    assert trimmed >= 2 and len(calls) == trimmed  # trimmed while open, never after
