"""Cost before trust: per-source rate limits and rate-limited warnings.

Every datagram costs the one event loop that also clocks every call's audio,
so a flood must be refused for less than it costs to send.  The per-source
limit is Kamailio's ``pike`` idea: a token bucket per source IP; a source
over its budget is answered statelessly or dropped, never parsed into state.
The log of such drops is itself limited, or the flood would move to the disk.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from voicebot.core.logs import format_event

Clock = Callable[[], float]


@dataclass
class _Bucket:
    tokens: float
    stamp: float


class SourceLimiter:
    """A token bucket per source: ``rate`` datagrams a second, bursts of ``burst``.

    At most ``max_sources`` buckets are kept (least recently seen dropped), so
    a spoofed-source flood cannot grow the table without bound."""

    def __init__(
        self,
        rate: float,
        burst: float,
        max_sources: int = 4096,
        clock: Clock = time.monotonic,
    ) -> None:
        self.rate, self.burst = rate, burst
        self._max = max_sources
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def allow(self, source: str) -> bool:
        """Take one token for ``source``; False when its budget is spent."""
        if self.rate <= 0:
            return True
        now = self._clock()
        bucket = self._buckets.pop(source, None)
        if bucket is None:
            bucket = _Bucket(self.burst, now)
        else:
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.stamp) * self.rate)
            bucket.stamp = now
        self._buckets[source] = bucket
        if len(self._buckets) > self._max:
            self._buckets.popitem(last=False)
        if bucket.tokens < 1:
            return False
        bucket.tokens -= 1
        return True


class LogLimiter:
    """At most ``per_interval`` lines per event name per ``interval_s``; the
    next line that gets through says how many were suppressed."""

    def __init__(
        self,
        logger: logging.Logger,
        per_interval: int = 5,
        interval_s: float = 10.0,
        clock: Clock = time.monotonic,
    ) -> None:
        self._log = logger
        self._per, self._interval = per_interval, interval_s
        self._clock = clock
        self._windows: dict[str, tuple[float, int, int]] = {}  # start, logged, suppressed

    def warning(self, event: str, **fields: object) -> None:
        now = self._clock()
        start, logged, suppressed = self._windows.get(event, (now, 0, 0))
        if now - start >= self._interval:
            start, logged = now, 0
        if logged >= self._per:
            self._windows[event] = (start, logged, suppressed + 1)
            return
        if suppressed:
            fields = {**fields, "suppressed": suppressed}
        self._windows[event] = (start, logged + 1, 0)
        self._log.warning(format_event(event, **fields))
