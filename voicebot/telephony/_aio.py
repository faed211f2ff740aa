"""Race a few awaitables: the first to finish wins, the rest are cancelled."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any


async def first_of(
    *awaitables: Awaitable[Any], timeout: float | None = None
) -> set[asyncio.Future[Any]]:
    """Wait until the first awaitable finishes (or ``timeout``), then cancel the rest.

    Returns the finished futures (empty on timeout).  The losers are cancelled
    *and awaited*, so one that cleans up on cancellation (a ringing INVITE
    sending its CANCEL) has done so when this returns, and none is left to log
    "exception was never retrieved".  Pass futures (``asyncio.ensure_future``)
    to tell afterwards which one won; wrap one in ``asyncio.shield`` to keep
    it running past the race.
    """
    futures = [asyncio.ensure_future(a) for a in awaitables]
    try:
        done, _ = await asyncio.wait(futures, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for future in futures:
            future.cancel()  # a no-op on the finished ones
        await asyncio.gather(*futures, return_exceptions=True)
    return done
