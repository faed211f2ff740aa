"""``[cluster]``: running as one of several instances, and stopping gracefully."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ClusterConfig:
    """Instance identity in the shared store and the SIGTERM drain."""

    # This instance's name in the shared store (leases, handoff ownership);
    # empty: a random one per start.  Only used with a PostgreSQL store.
    instance: str = ""
    # On SIGTERM new calls get 503 at once; calls in progress may go on this
    # long before they are told goodbye and hung up.  0: goodbye at once (the
    # embedded default).  Behind Kamailio set it to the longest call you will
    # wait for on a deploy, e.g. 300.
    drain_limit_s: float = 0.0

    def validate(self) -> None:
        if self.drain_limit_s < 0:
            raise ValueError("cluster.drain_limit_s must be 0 or more")
