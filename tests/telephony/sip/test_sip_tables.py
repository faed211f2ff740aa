"""The transaction layer and the dialog table, each alone: recorded baresip
messages in, the matching decisions out (no socket, no user agent)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

from sipmessage import Request

from voicebot.telephony.sip.dialog import Dialog
from voicebot.telephony.sip.dialog_table import DialogTable
from voicebot.telephony.sip.message import make_response, parse_message
from voicebot.telephony.sip.transaction import (
    InviteServerTransaction,
    NonInviteServerTransaction,
    ServerTransaction,
    State,
    Timers,
)
from voicebot.telephony.sip.transaction_layer import TransactionLayer

DATA = Path(__file__).parent / "data"
SOURCE = ("127.0.0.1", 5070)
T = Timers(t1=0.02, t2=0.08, t4=0.1)


INVITE = (DATA / "baresip_invite.sip").read_bytes()


def request(data: bytes) -> Request:
    message = parse_message(data)
    assert isinstance(message, Request)
    return message


def invite() -> Request:
    return request(INVITE)


def derived(method: str, *, to_tag: str = "", branch: str | None = None) -> Request:
    """A request of the INVITE's call: same Call-ID and From; CANCEL/ACK keep its branch."""
    text = INVITE.decode().replace("\r\n", "\n").split("\n\n")[0]
    lines = [line for line in text.splitlines()[1:] if not line.startswith("Content-")]
    lines = [f"CSeq: 12381 {method}" if line.startswith("CSeq") else line for line in lines]
    if to_tag:
        lines = [f"{line};tag={to_tag}" if line.startswith("To:") else line for line in lines]
    if branch:
        lines = [
            line.replace("z9hG4bK6762696fe8ff302d", branch) if line.startswith("Via") else line
            for line in lines
        ]
    head = f"{method} sip:bot@127.0.0.1:5090 SIP/2.0\r\n" + "\r\n".join(lines)
    return request((head + "\r\nContent-Length: 0\r\n\r\n").encode())


class Wire:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def __call__(self, data: bytes, addr: tuple[str, int]) -> None:
        self.sent.append(data)


async def test_a_retransmitted_request_is_absorbed_and_answered_again() -> None:
    wire = Wire()
    layer = TransactionLayer(wire, T)
    tx = layer.server_transaction(invite(), SOURCE)
    assert isinstance(tx, InviteServerTransaction)
    tx.respond(make_response(tx.request, 100))
    assert layer.server_transaction(invite(), SOURCE) is None  # the user agent never sees it
    assert [data.split(b"\r\n")[0] for data in wire.sent] == [b"SIP/2.0 100 Trying"] * 2
    options = layer.server_transaction(derived("OPTIONS", branch="z9hG4bKother"), SOURCE)
    assert isinstance(options, NonInviteServerTransaction)
    layer.close()


async def test_cancel_and_ack_find_their_invite_transaction() -> None:
    wire = Wire()
    layer = TransactionLayer(wire, T)
    tx = layer.server_transaction(invite(), SOURCE)
    assert tx is not None
    cancel = derived("CANCEL")
    assert layer.invite_transaction(cancel) is tx
    assert layer.invite_transaction(derived("CANCEL", branch="z9hG4bKelse")) is None

    ack = derived("ACK", to_tag="ours")
    assert layer.absorb_ack(ack) is False  # no final yet: not the transaction's ACK
    tx.respond(make_response(tx.request, 486, to_tag="ours"))
    assert layer.absorb_ack(ack) is True  # the ACK of our error response ends here
    assert tx.state is State.CONFIRMED
    layer.close()


async def test_a_terminated_transaction_leaves_the_table() -> None:
    layer = TransactionLayer(Wire(), T)
    tx = layer.server_transaction(invite(), SOURCE)
    assert tx is not None
    tx.respond(make_response(tx.request, 486, to_tag="ours"))
    assert layer.absorb_ack(derived("ACK", to_tag="ours"))
    await asyncio.sleep(T.t4 * 2)  # Timer I ends the transaction
    assert tx.state is State.TERMINATED
    assert layer.invite_transaction(derived("CANCEL")) is None
    assert layer.server_transaction(invite(), SOURCE) is not None  # new, not a retransmission
    layer.close()


@dataclass(eq=False)
class FakeLeg:
    dialog: Dialog
    ended: bool = False
    requests: list[str] = field(default_factory=list)

    def on_request(self, request: Request, tx: ServerTransaction) -> None:
        self.requests.append(request.method)

    def on_ack(self, ack: Request) -> None:
        self.requests.append("ACK")

    async def hangup(self, reason: str = "") -> None:
        self.ended = True


def test_the_dialog_table_matches_call_id_and_both_tags() -> None:
    table = DialogTable()
    leg = FakeLeg(Dialog.from_invite(invite(), "ours", SOURCE))
    dialing = FakeLeg(Dialog.from_invite(invite(), "placed", SOURCE))
    table.track(leg)
    table.register(leg)
    table.track(dialing)  # no dialog yet: counted, not matched
    assert table.match(derived("BYE", to_tag="ours")) is leg
    assert table.match(derived("BYE", to_tag="placed")) is None
    assert table.match(derived("BYE", to_tag="someone-else")) is None
    assert set(table) == {leg, dialing}
    table.forget(leg)
    assert table.match(derived("BYE", to_tag="ours")) is None
    assert list(table) == [dialing]
