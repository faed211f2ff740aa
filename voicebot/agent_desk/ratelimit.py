"""Slow down token guessing at the desk's sign-in.

Failures are counted per source address and per token prefix (a guesser
spread over many addresses still hammers the same few prefixes): after
``free`` failures inside ``window_s`` each further attempt waits twice as long
as the last, up to ``max_wait_s``.  A success clears the source's count.
At most ``max_keys`` counts are kept (the oldest forgotten first): a spray
from a million addresses (IPv6 makes that cheap) costs a bounded table.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

PREFIX_CHARS = 4


@dataclass
class _Failures:
    count: int = 0
    first: float = 0.0
    blocked_until: float = 0.0


@dataclass
class SignInLimiter:
    free: int = 5
    window_s: float = 300.0
    base_wait_s: float = 1.0
    max_wait_s: float = 900.0
    max_keys: int = 10_000
    clock: Callable[[], float] = time.monotonic
    _by_key: dict[str, _Failures] = field(default_factory=dict)
    _pruned_at: float = float("-inf")

    @staticmethod
    def keys(source: str | None, token: str) -> list[str]:
        return [f"src:{source or '?'}", f"prefix:{token[:PREFIX_CHARS]}"]

    def retry_after(self, source: str | None, token: str) -> float:
        """Seconds until this source/prefix may try again (0: now)."""
        now = self.clock()
        waits = [self._by_key[k].blocked_until - now for k in self.keys(source, token)
                 if k in self._by_key]  # fmt: skip
        return max([0.0, *waits])

    def failed(self, source: str | None, token: str) -> float:
        """Count a failure; returns the wait it earned."""
        now = self.clock()
        self._prune(now)
        wait = 0.0
        for key in self.keys(source, token):
            entry = self._by_key.setdefault(key, _Failures(first=now))
            while len(self._by_key) > self.max_keys:
                del self._by_key[next(iter(self._by_key))]
            entry.count += 1
            if entry.count > self.free:
                over = entry.count - self.free - 1
                entry.blocked_until = now + min(self.max_wait_s, self.base_wait_s * 2**over)
                wait = max(wait, entry.blocked_until - now)
        return wait

    def succeeded(self, source: str | None) -> None:
        self._by_key.pop(self.keys(source, "")[0], None)

    def __len__(self) -> int:
        return len(self._by_key)

    def _prune(self, now: float) -> None:
        """Forget quiet keys (a scan at most once a second: a spray must not
        make every failure cost a walk of the whole table)."""
        if now - self._pruned_at < 1.0:
            return
        self._pruned_at = now
        stale = [k for k, e in self._by_key.items()
                 if now - e.first > self.window_s and now > e.blocked_until]  # fmt: skip
        for key in stale:
            del self._by_key[key]
