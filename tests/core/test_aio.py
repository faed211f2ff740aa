"""first_of: the one "race a few awaitables, cancel the rest" helper."""

from __future__ import annotations

import asyncio

from voicebot.core.aio import first_of


async def test_the_first_to_finish_wins_and_the_rest_are_cancelled_and_awaited() -> None:
    cleaned_up = asyncio.Event()

    async def slow() -> str:
        try:
            await asyncio.sleep(10)
        finally:
            await asyncio.sleep(0)  # cleanup that itself awaits
            cleaned_up.set()
        return "slow"

    fast = asyncio.ensure_future(asyncio.sleep(0, result="fast"))
    loser = asyncio.ensure_future(slow())
    done = await first_of(fast, loser)
    assert done == {fast} and fast.result() == "fast"
    assert loser.cancelled()
    assert cleaned_up.is_set()  # the loser finished its cleanup before first_of returned


async def test_timeout_returns_nothing_and_cancels_everything() -> None:
    a = asyncio.ensure_future(asyncio.sleep(10))
    b = asyncio.ensure_future(asyncio.Event().wait())
    assert await first_of(a, b, timeout=0.01) == set()
    assert a.cancelled() and b.cancelled()


async def test_a_shielded_future_outlives_the_race() -> None:
    long = asyncio.ensure_future(asyncio.sleep(0.05, result="kept"))
    await first_of(asyncio.shield(long), asyncio.sleep(0))
    assert not long.cancelled()
    assert await long == "kept"


async def test_a_failure_is_a_finish_and_stays_in_its_future() -> None:
    async def boom() -> None:
        raise RuntimeError("bad")

    failing = asyncio.ensure_future(boom())
    done = await first_of(failing, asyncio.sleep(10))
    assert done == {failing}
    assert isinstance(failing.exception(), RuntimeError)
