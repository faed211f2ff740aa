"""RFC 3261 §17 timers, with T1 scaled down 25× (20 ms) so they run fast.

Each test records when ``send`` was called and checks the retransmission
schedule: doubling from T1, capped at T2, stopped by the right event.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path

import pytest
from sipmessage import Request

from voicebot.telephony.sip.message import make_response, parse_message
from voicebot.telephony.sip.transaction import (
    InviteServerTransaction,
    NonInviteClientTransaction,
    NonInviteServerTransaction,
    State,
    Timers,
    TransactionTimeout,
    TwoXxRetransmitter,
)

DATA = Path(__file__).parent / "data"
T = Timers(t1=0.02, t2=0.08, t4=0.1)  # 64·T1 = 1.28 s


class Wire:
    def __init__(self) -> None:
        self.start = time.monotonic()
        self.sent: list[tuple[float, bytes]] = []

    def __call__(self, data: bytes, addr: tuple[str, int]) -> None:
        self.sent.append((time.monotonic() - self.start, data))

    def gaps(self) -> list[float]:
        """Intervals between sends, in units of T1."""
        times = [t for t, _ in self.sent]
        return [(b - a) / T.t1 for a, b in itertools.pairwise(times)]


def assert_schedule(actual: list[float], expected: list[float]) -> None:
    """Intervals match within 0.6·T1 (12 ms): loaded CI machines wake late."""
    assert len(actual) >= len(expected), actual
    assert all(abs(a - e) < 0.6 for a, e in zip(actual, expected, strict=False)), actual


def invite() -> Request:
    message = parse_message((DATA / "baresip_invite.sip").read_bytes())
    assert isinstance(message, Request)
    return message


async def test_invite_error_response_retransmits_until_ack() -> None:
    wire = Wire()
    tx = InviteServerTransaction(invite(), ("127.0.0.1", 5070), wire, T)
    tx.respond(make_response(tx.request, 486, to_tag="x"))
    await asyncio.sleep(0.3)
    assert tx.state is State.COMPLETED
    assert_schedule(wire.gaps(), [1, 2, 4, 4])  # Timer G: T1, 2T1, then capped at T2
    assert tx.on_ack()
    count = len(wire.sent)
    await asyncio.sleep(0.2)
    assert len(wire.sent) == count  # ACK stopped Timer G
    assert tx.state is State.TERMINATED  # Timer I (T4) elapsed


async def test_invite_error_response_gives_up_at_timer_h() -> None:
    timed_out = []
    tx = InviteServerTransaction(
        invite(), ("127.0.0.1", 5070), Wire(), T, on_timeout=lambda: timed_out.append(1)
    )
    tx.respond(make_response(tx.request, 488, to_tag="x"))
    await asyncio.sleep(64 * T.t1 + 0.1)
    assert timed_out == [1] and tx.state is State.TERMINATED


async def test_invite_retransmission_gets_last_provisional_and_2xx_is_absorbed() -> None:
    wire = Wire()
    tx = InviteServerTransaction(invite(), ("127.0.0.1", 5070), wire, T)
    tx.respond(make_response(tx.request, 180, to_tag="x"))
    tx.on_retransmission()
    assert len(wire.sent) == 2 and wire.sent[1][1] == wire.sent[0][1]
    tx.respond(make_response(tx.request, 200, to_tag="x"))
    assert tx.state is State.ACCEPTED
    tx.on_retransmission()
    assert len(wire.sent) == 3  # RFC 6026: the TU resends 2xx, not the transaction


async def test_no_provisional_response_follows_a_final_one() -> None:
    """A late 180 (the call answered meanwhile) never reaches the wire after the 200."""
    wire = Wire()
    tx = InviteServerTransaction(invite(), ("127.0.0.1", 5070), wire, T)
    tx.respond(make_response(tx.request, 180, to_tag="x"))
    tx.respond(make_response(tx.request, 200, to_tag="x"))
    tx.respond(make_response(tx.request, 180, to_tag="x"))
    tx.respond(make_response(tx.request, 183, to_tag="x"))
    tx.on_retransmission()
    assert [m.split(b" ", 2)[1] for _, m in wire.sent] == [b"180", b"200"]


async def test_2xx_is_resent_until_ack() -> None:
    wire = Wire()
    gave_up = []
    retransmitter = TwoXxRetransmitter(b"200", ("127.0.0.1", 1), wire, T, lambda: gave_up.append(1))
    retransmitter.start()
    await asyncio.sleep(0.4)
    retransmitter.acked()
    count = len(wire.sent)
    await asyncio.sleep(0.2)
    assert len(wire.sent) == count and count >= 5 and not gave_up
    assert_schedule(wire.gaps(), [2, 4, 4])  # T1, then 2T1, 4T1 (=T2), T2…


async def test_2xx_without_ack_gives_up_after_64_t1() -> None:
    gave_up = []
    TwoXxRetransmitter(b"200", ("127.0.0.1", 1), Wire(), T, lambda: gave_up.append(1)).start()
    await asyncio.sleep(64 * T.t1 + 0.1)
    assert gave_up == [1]


async def test_non_invite_server_repeats_final_until_timer_j() -> None:
    wire = Wire()
    forgotten = []
    request = parse_message((DATA / "baresip_invite.sip").read_bytes())
    tx = NonInviteServerTransaction(request, ("127.0.0.1", 5070), wire, T, forgotten.append)  # type: ignore[arg-type]
    tx.respond(make_response(tx.request, 200, to_tag="x"))
    tx.on_retransmission()
    tx.respond(make_response(tx.request, 500, to_tag="x"))  # ignored: already final
    assert len(wire.sent) == 2 and wire.sent[0][1] == wire.sent[1][1]
    await asyncio.sleep(64 * T.t1 + 0.1)
    assert forgotten == [tx]


def bye() -> Request:
    message = parse_message((DATA / "voicebot_bye.sip").read_bytes())
    assert isinstance(message, Request)
    return message


async def test_bye_client_retransmits_until_response() -> None:
    wire = Wire()
    tx = NonInviteClientTransaction(bye(), ("127.0.0.1", 5070), wire, T)
    tx.start()
    await asyncio.sleep(0.2)
    response = parse_message((DATA / "baresip_bye_200.sip").read_bytes())
    tx.on_response(response)  # type: ignore[arg-type]
    assert (await tx.result).code == 200
    count = len(wire.sent)
    assert_schedule(wire.gaps(), [1, 2, 4])  # Timer E
    await asyncio.sleep(0.2)
    assert len(wire.sent) == count and tx.state is State.TERMINATED  # Timer K elapsed


async def test_bye_client_times_out_at_timer_f() -> None:
    tx = NonInviteClientTransaction(bye(), ("127.0.0.1", 5070), Wire(), T)
    tx.start()
    with pytest.raises(TransactionTimeout):
        await asyncio.wait_for(tx.result, 64 * T.t1 + 0.2)


async def test_provisional_response_slows_timer_e_to_t2() -> None:
    wire = Wire()
    tx = NonInviteClientTransaction(bye(), ("127.0.0.1", 5070), wire, T)
    tx.start()
    await asyncio.sleep(0.01)
    trying = parse_message(
        (DATA / "baresip_bye_200.sip").read_bytes().replace(b"200 OK", b"100 Trying")
    )
    tx.on_response(trying)  # type: ignore[arg-type]
    await asyncio.sleep(0.4)
    assert tx.state is State.PROCEEDING
    assert_schedule(wire.gaps()[1:], [4, 4, 4])
