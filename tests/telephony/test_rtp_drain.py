"""The RTP socket is drained in batches: a wake-up reads what has piled up, so junk from a
stranger cannot queue ahead of the caller's packets while the loop waits for the GIL."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass, field

from voicebot.telephony.rtp.session import RTP_DRAIN_BATCH, PortAllocator, _Receiver


@dataclass
class _SeenDatagrams:
    stopped: bool = False
    seen: list[bytes] = field(default_factory=list)

    def on_datagram(self, data: bytes, _addr: tuple) -> None:
        self.seen.append(data)


async def _bound_receiver() -> tuple[_Receiver, _SeenDatagrams, int, list]:
    session = _SeenDatagrams()
    allocator = PortAllocator(42000, 42100)
    port, rtp, rtcp = await allocator.bind("127.0.0.1", lambda: _Receiver(session))  # type: ignore[arg-type]
    receiver = rtp.get_protocol()
    assert isinstance(receiver, _Receiver) and receiver.sock is not None
    return receiver, session, port, [rtp, rtcp]


def _send(port: int, count: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        for i in range(count):
            sender.sendto(b"d%d" % i, ("127.0.0.1", port))


def test_one_wake_up_reads_the_backlog_in_order() -> None:
    async def scenario() -> list[bytes]:
        receiver, session, port, transports = await _bound_receiver()
        try:
            _send(port, 10)
            receiver.datagram_received(b"first", ("127.0.0.1", 9))  # asyncio's one datagram
            return session.seen
        finally:
            for transport in transports:
                transport.close()

    seen = asyncio.run(scenario())
    assert seen == [b"first", *(b"d%d" % i for i in range(10))]


def test_a_wake_up_reads_at_most_one_batch_and_stops_with_the_call() -> None:
    async def scenario() -> tuple[int, int]:
        receiver, session, port, transports = await _bound_receiver()
        try:
            _send(port, RTP_DRAIN_BATCH + 20)
            receiver.datagram_received(b"first", ("127.0.0.1", 9))
            batch = len(session.seen)
            session.stopped = True  # the call ended: what is left is not read
            receiver.datagram_received(b"late", ("127.0.0.1", 9))
            return batch, len(session.seen)
        finally:
            for transport in transports:
                transport.close()

    batch, after_stop = asyncio.run(scenario())
    assert batch == 1 + RTP_DRAIN_BATCH
    assert after_stop == batch + 1  # the datagram asyncio handed over, nothing drained
