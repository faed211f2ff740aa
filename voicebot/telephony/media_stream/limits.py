"""What one media stream may cost: real-time audio only, and a bounded backlog.

A carrier sends 20 ms of audio every 20 ms.  A client that pushes faster (an
hour of audio in seconds) would keep the transcriber busy long after it left
and starve real calls, so audio beyond real time plus a small burst allowance
is dropped, and a stream that keeps doing it is closed.
"""

from __future__ import annotations

import time
from collections.abc import Callable

ULAW_BYTES_PER_S = 8000
# Audio dropped beyond this much means the client is not a carrier: end the stream.
MAX_EXCESS_S = 5.0


class RealtimeBudget:
    """Admits audio at most ``burst_s`` ahead of the wall clock since the stream began."""

    def __init__(self, burst_s: float = 2.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.burst_s = burst_s
        self._clock = clock
        self._t0 = clock()
        self.admitted_s = 0.0
        self.dropped_s = 0.0

    def admit(self, payload_bytes: int) -> bool:
        seconds = payload_bytes / ULAW_BYTES_PER_S
        if self.admitted_s + seconds > self._clock() - self._t0 + self.burst_s:
            self.dropped_s += seconds
            return False
        self.admitted_s += seconds
        return True

    @property
    def abusive(self) -> bool:
        return self.dropped_s > MAX_EXCESS_S


def safe_call_id(prefix: str, chosen: str, nonce: str) -> str:
    """A call ID the client cannot aim at an existing one: its own text (printable
    ASCII, truncated) for people reading logs, then a server-chosen nonce."""
    shown = "".join(c for c in chosen if c.isascii() and (c.isalnum() or c in "-_."))[:64]
    return f"{prefix}-{shown or 'anon'}-{nonce}"
