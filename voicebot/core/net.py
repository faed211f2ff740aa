"""Network vocabulary shared by the transports."""

from __future__ import annotations

Addr = tuple[str, int]  # (host, port) of a UDP/TCP peer, as asyncio reports it
