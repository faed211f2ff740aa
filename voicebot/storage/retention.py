"""Keep call data no longer than needed, and close what a crash left open.

Run once at start-up (``open_services``) and then daily while ``serve`` runs.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

log = logging.getLogger("voicebot.storage")
DAY_S = 24 * 3600.0


class Housekept(Protocol):
    def purge_older_than(self, days: float) -> dict[str, int]: ...

    def reconcile_interrupted(self) -> list[str]: ...


def start_up(store: Housekept, retention_days: float | None) -> None:
    """Reconcile calls a crash cut, then apply the retention period."""
    interrupted = store.reconcile_interrupted()
    if interrupted:
        log.warning("event=calls_reconciled count=%d outcome=interrupted", len(interrupted))
    purge(store, retention_days)


def purge(store: Housekept, retention_days: float | None) -> dict[str, int]:
    if retention_days is None:
        return {}
    counts = store.purge_older_than(retention_days)
    if any(counts.values()):
        fields = " ".join(f"{k}={v}" for k, v in counts.items())
        log.info("event=retention_purge days=%g %s", retention_days, fields)
    return counts


async def purge_daily(store: Housekept, retention_days: float | None) -> None:
    """Until cancelled: purge once a day, off the event loop."""
    while retention_days is not None:
        await asyncio.sleep(DAY_S)
        await asyncio.to_thread(purge, store, retention_days)
