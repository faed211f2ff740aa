"""Transfer internals, exactly: Refer-To and sipfrag text, NOTIFY handling,
the INVITE client transaction, CANCEL timing, and bridge latency.

Scripted peers on 127.0.0.1 (no namespace needed): the caller is sip_uac's
UAC, the agent a scripted UAS, both with timestamped RTP sockets, so the
bridge's added delay can be measured on the wire.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from sip_peers import wait_until
from sip_transfer_peers import reply
from sip_uac import Leg, RtpPeer, Uac, sdp
from sipmessage import Request, Response

from voicebot.audio.g711 import ulaw_decode, ulaw_encode
from voicebot.telephony.channel import CallChannel
from voicebot.telephony.rtp.packet import RtpPacket
from voicebot.telephony.rtp.session import PlayoutBuffer
from voicebot.telephony.sip import SipConfig, SipServer, TransferOutcome
from voicebot.telephony.sip.message import parse_message
from voicebot.telephony.sip.refer import (
    TargetUri,
    TransferTargetError,
    parse_sipfrag,
    refer_to,
    result_of,
)
from voicebot.telephony.sip.transaction import InviteClientTransaction, State, Timers

pytestmark = pytest.mark.sip
log = logging.getLogger(__name__)


# ------------------------------------------------------------ pure helpers


@pytest.mark.parametrize(
    ("target", "ref", "expected"),
    [
        (
            "sip:agent@127.0.0.1:5072",
            "sip-1a2b",
            "<sip:agent@127.0.0.1:5072?X-Voicebot-Call=sip-1a2b>",
        ),
        (
            "<sip:alice@pbx.example.com>",
            "CA123",
            "<sip:alice@pbx.example.com?X-Voicebot-Call=CA123>",
        ),
        (
            "sip:alice@pbx.example.com;transport=udp",
            "a b@c;d&e=f",
            "<sip:alice@pbx.example.com;transport=udp?X-Voicebot-Call=a%20b%40c%3Bd%26e%3Df>",
        ),
        (
            "sip:+15550100@gw.example.com;user=phone?Priority=urgent",
            "x",
            "<sip:+15550100@gw.example.com;user=phone?Priority=urgent&X-Voicebot-Call=x>",
        ),
        ("sip:bob@h?X-Voicebot-Call=old", "new", "<sip:bob@h?X-Voicebot-Call=new>"),
    ],
)
def test_refer_to_carries_the_call_header_escaped(target: str, ref: str, expected: str) -> None:
    assert refer_to(target, ref) == expected


def test_refer_to_round_trips_the_escaped_value() -> None:
    value = refer_to("sip:a@h", "a b@c;d&e=f?")[1:-1]
    assert TargetUri.parse(value).headers == (("X-Voicebot-Call", "a b@c;d&e=f?"),)


@pytest.mark.parametrize("bad", ["", "tel:+15550100", "http://x", "agent@host", "sip:"])
def test_refer_to_refuses_what_is_not_a_sip_uri(bad: str) -> None:
    with pytest.raises(TransferTargetError):
        refer_to(bad, "x")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"SIP/2.0 200 OK\r\n", (200, "OK")),
        (b"SIP/2.0 100 Trying", (100, "Trying")),
        (b"\r\nSIP/2.0 180 Ringing\r\nContact: <sip:a@h>\r\n\r\n", (180, "Ringing")),
        (b"SIP/2.0 603 Declined\r\nContent-Length: 0\r\n", (603, "Declined")),
        (b"SIP/2.0 486", (486, "")),
        ("SIP/2.0 503 Service Unavailable\n", (503, "Service Unavailable")),
        (b"", None),
        (b"INVITE sip:a@h SIP/2.0\r\n", None),
        (b"SIP/2.0 2000 OK", None),
    ],
)
def test_parse_sipfrag(body: bytes | str, expected: tuple[int, str] | None) -> None:
    assert parse_sipfrag(body) == expected


def test_result_words_match_the_queue() -> None:
    assert [result_of(c) for c in (200, 202, 486, 600, 603, 408, 480, 487, 404, 500)] == [
        "answered", "answered", "declined", "declined", "declined",
        "timeout", "timeout", "timeout", "failed", "failed",
    ]  # fmt: skip


def test_playout_trim_keeps_the_newest_audio() -> None:
    buffer = PlayoutBuffer()
    for i in range(5):
        buffer.write(np.full(160, i, np.int16))
    assert buffer.trim(400) == 400
    assert buffer.queued_samples == 400
    assert buffer.next_frame()[0] == 2 and buffer.next_frame()[0] == 3
    assert buffer.trim(1000) == 0


# ------------------------------------------------ INVITE client transaction


INVITE = (
    "INVITE sip:agent@127.0.0.1:5072 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bKabc;rport\r\n"
    "From: <sip:bot@127.0.0.1>;tag=f1\r\nTo: <sip:agent@127.0.0.1:5072>\r\n"
    "Call-ID: c1\r\nCSeq: 7 INVITE\r\nContent-Length: 0\r\n\r\n"
)


def _response(code: int, reason: str, to_tag: str = "t1") -> Response:
    text = (
        f"SIP/2.0 {code} {reason}\r\nVia: SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bKabc\r\n"
        f"From: <sip:bot@127.0.0.1>;tag=f1\r\nTo: <sip:agent@127.0.0.1:5072>;tag={to_tag}\r\n"
        "Call-ID: c1\r\nCSeq: 7 INVITE\r\nContent-Length: 0\r\n\r\n"
    )
    message = parse_message(text.encode())
    assert isinstance(message, Response)
    return message


@dataclass
class Wire:
    sent: list[tuple[float, bytes]] = field(default_factory=list)
    delivered: list[int] = field(default_factory=list)

    def send(self, data: bytes, addr: tuple[str, int]) -> None:
        self.sent.append((time.monotonic(), data))

    def methods(self) -> list[str]:
        return [data.split(b" ", 1)[0].decode() for _, data in self.sent]


def _client(wire: Wire, t1: float = 0.02) -> InviteClientTransaction:
    invite = parse_message(INVITE.encode())
    assert isinstance(invite, Request)
    return InviteClientTransaction(
        invite, ("127.0.0.1", 5072), wire.send, Timers(t1, 4 * t1, 5 * t1),
        lambda r: wire.delivered.append(r.code),
    )  # fmt: skip


async def test_timer_a_doubles_until_a_provisional_arrives() -> None:
    wire = Wire()
    tx = _client(wire, t1=0.05)
    tx.start()
    await asyncio.sleep(0.25)  # sends at 0, 50 and 150 ms; the next would be at 350
    assert wire.methods() == ["INVITE"] * 3
    gaps = np.diff([t for t, _ in wire.sent])
    assert 0.04 < gaps[0] < 0.08 and 0.09 < gaps[1] < 0.15
    tx.on_response(_response(180, "Ringing"))
    await asyncio.sleep(0.3)
    assert len(wire.sent) == 3 and tx.state is State.PROCEEDING and wire.delivered == [180]
    tx.terminate()


async def test_non_2xx_final_is_acked_by_the_transaction_and_re_acked() -> None:
    wire = Wire()
    tx = _client(wire)
    tx.start()
    tx.on_response(_response(486, "Busy Here"))
    tx.on_response(_response(486, "Busy Here"))  # retransmitted: ACK again, not delivered
    assert wire.methods() == ["INVITE", "ACK", "ACK"]
    ack = parse_message(wire.sent[1][1])
    assert isinstance(ack, Request)
    assert ack.cseq.sequence == 7 and ack.cseq.method == "ACK"
    assert ack.via[0].parameters["branch"] == "z9hG4bKabc"  # §17.1.1.3: the INVITE's branch
    assert "tag=t1" in ack.headers["To"]
    assert wire.delivered == [486] and tx.state is State.COMPLETED
    tx.terminate()


async def test_2xx_and_its_retransmissions_go_to_the_core() -> None:
    wire = Wire()
    tx = _client(wire)
    tx.start()
    tx.on_response(_response(200, "OK"))
    tx.on_response(_response(200, "OK"))
    assert wire.delivered == [200, 200] and tx.state is State.ACCEPTED
    assert wire.methods() == ["INVITE"]  # the core ACKs a 2xx, not the transaction
    tx.terminate()


async def test_timer_b_times_out_with_408() -> None:
    wire = Wire()
    tx = _client(wire, t1=0.005)
    tx.start()
    await asyncio.sleep(0.45)  # 64·T1 = 0.32 s
    assert wire.delivered == [408] and tx.state is State.TERMINATED


# ---------------------------------------------------- scripted peers


class TimedRtp(RtpPeer):
    """An RTP socket that keeps (arrival time, decoded μ-law) for every packet."""

    def __init__(self) -> None:
        self.received: list[tuple[float, np.ndarray]] = []
        self.transport: asyncio.DatagramTransport | None = None
        self.seq, self.ts = 1, 1000
        self.remote: tuple[str, int] | None = None

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        packet = RtpPacket.parse(data)
        if packet.payload_type == 0:
            self.received.append((time.monotonic(), ulaw_decode(packet.payload)))

    def send(self, pcm: np.ndarray) -> float:
        assert self.transport and self.remote
        packet = RtpPacket(0, self.seq, self.ts, 0x4242, ulaw_encode(pcm))
        self.transport.sendto(packet.serialize(), self.remote)
        self.seq, self.ts = self.seq + 1, self.ts + 160
        return time.monotonic()

    async def stream(self, seconds: float, burst_at: float | None = None) -> float | None:
        """Silence every 20 ms, with one loud 100 ms burst; returns when it left."""
        start, sent_at = time.monotonic(), None
        loud = (8000 * np.sin(np.arange(160) * 2 * np.pi * 700 / 8000)).astype(np.int16)
        quiet = np.zeros(160, np.int16)
        for n in range(int(seconds / 0.02)):
            await asyncio.sleep(max(0.0, start + n * 0.02 - time.monotonic()))
            t = n * 0.02
            is_burst = burst_at is not None and burst_at <= t < burst_at + 0.1
            at = self.send(loud if is_burst else quiet)
            if is_burst and sent_at is None:
                sent_at = at
        return sent_at

    def first_loud_after(self, t0: float) -> float | None:
        return next((t for t, pcm in self.received if t >= t0 and np.abs(pcm).max() > 4000), None)

    def close(self) -> None:
        if self.transport:
            self.transport.close()


def notify(
    leg: Leg, refer: Request, status: str, state: str = "active", event: str = "refer"
) -> str:
    """The transferee's NOTIFY for ``refer`` (same dialog, our next CSeq)."""
    leg.cseq += 1
    body = f"SIP/2.0 {status}\r\n"
    return (
        f"NOTIFY sip:voicebot@127.0.0.1:{leg.uac.server[1]} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{leg.uac.port};branch=z9hG4bK{secrets.token_hex(6)};rport\r\n"
        f"Max-Forwards: 70\r\nFrom: {refer.headers['To']}\r\nTo: {refer.headers['From']}\r\n"
        f"Call-ID: {refer.call_id}\r\nCSeq: {leg.cseq} NOTIFY\r\n"
        f"Event: {event}\r\nSubscription-State: {state}\r\n"
        f"Contact: <sip:uac@127.0.0.1:{leg.uac.port}>\r\n"
        f"Content-Type: message/sipfrag;version=2.0\r\nContent-Length: {len(body)}\r\n\r\n{body}"
    )


@dataclass
class Transferrer:
    """The handler: transfer at once, keep the outcome (or the cancellation)."""

    target: str = ""
    cancel_after_s: float | None = None
    outcomes: list[TransferOutcome] = field(default_factory=list)
    cancelled: int = 0
    channels: list[CallChannel] = field(default_factory=list)

    async def __call__(self, channel: CallChannel) -> None:
        self.channels.append(channel)
        work = channel.transfer(self.target, channel.call_id)  # type: ignore[attr-defined]
        try:
            self.outcomes.append(await asyncio.wait_for(work, self.cancel_after_s))
        except TimeoutError:
            self.cancelled += 1


@contextlib.asynccontextmanager
async def bot(handler: Any, **overrides: object) -> AsyncIterator[tuple[SipServer, Uac, Uac]]:
    config = SipConfig(listen_port=0, rtp_port_min=43000, rtp_port_max=43999, **overrides)  # type: ignore[arg-type]
    server = SipServer(config, handler)
    await server.start()
    caller, agent = await Uac.open(server.port), await Uac.open(server.port)
    if isinstance(handler, Transferrer) and not handler.target:
        handler.target = f"sip:agent@127.0.0.1:{agent.port}"
    try:
        yield server, caller, agent
    finally:
        caller.close()
        agent.close()
        await server.close()


# ---------------------------------------------------------- REFER + NOTIFY


async def test_refer_and_notifies_are_followed_to_the_answer(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "voicebot")
    handler = Transferrer()
    async with bot(handler) as (server, caller, _agent):
        leg = Leg(caller)
        await leg.establish(rtp_port=9)
        refer = await caller.request("REFER")
        call_id = handler.channels[0].call_id
        assert refer.headers["Refer-To"] == f"<{handler.target}?X-Voicebot-Call={call_id}>"
        assert refer.headers["Referred-By"].startswith("<sip:voicebot@127.0.0.1:")
        assert refer.headers["To"].endswith(f"tag={leg.from_tag}")
        # a NOTIFY may overtake the 202: it must still be matched
        caller.send(notify(leg, refer, "100 Trying"))
        assert (await caller.response()).code == 200
        caller.reply(refer, 202, "Accepted")
        caller.send(notify(leg, refer, "180 Ringing"))
        assert (await caller.response()).code == 200
        caller.send(notify(leg, refer, "200 OK", state="terminated;reason=noresource"))
        assert (await caller.response()).code == 200
        bye = await caller.request("BYE")  # the handler returned: the bot leaves the call
        caller.reply(bye)
        assert await wait_until(lambda: not server.calls, 2)
    outcome = handler.outcomes[0]
    assert (outcome.result, outcome.method, outcome.code, outcome.refer_code) == (
        "answered", "refer", 200, 202,
    )  # fmt: skip
    assert outcome.steps == ["REFER", "REFER 202", "NOTIFY 100", "NOTIFY 180", "NOTIFY 200"]
    assert server.calls == [] and handler.channels[0].hangup_reason == "transferred"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("status", "result"), [("603 Decline", "declined"), ("486 Busy Here", "declined")]
)
async def test_a_declining_notify_is_final(status: str, result: str) -> None:
    handler = Transferrer()
    async with bot(handler) as (_server, caller, agent):
        leg = Leg(caller)
        await leg.establish(rtp_port=9)
        refer = await caller.request("REFER")
        caller.reply(refer, 202, "Accepted")
        caller.send(notify(leg, refer, status, state="terminated"))
        assert (await caller.response()).code == 200
        assert await wait_until(lambda: bool(handler.outcomes), 2)
        assert await agent.silence(0.3) == []  # no bridging after a decline
    assert handler.outcomes[0].result == result


async def test_notify_without_a_refer_or_with_a_foreign_event() -> None:
    async def idle(channel: CallChannel) -> None:  # keeps the call up, never transfers
        await asyncio.sleep(5)

    async with bot(idle) as (_server, caller, _agent):
        leg = Leg(caller)
        await leg.establish(rtp_port=9)
        fake_refer = parse_message(leg.build("REFER").encode())
        assert isinstance(fake_refer, Request)
        # Shape a NOTIFY as the bot's dialog partner would.
        fake_refer.headers.set("From", f"<sip:bot@127.0.0.1>;tag={leg.to_tag}")
        fake_refer.headers.set("To", f"<sip:{leg.user}@127.0.0.1>;tag={leg.from_tag}")
        caller.send(notify(leg, fake_refer, "200 OK"))
        assert (await caller.response()).code == 481
        caller.send(notify(leg, fake_refer, "200 OK", event="presence"))
        assert (await caller.response()).code == 489


async def test_refused_refer_falls_back_to_bridging_and_relays_both_ways() -> None:
    handler = Transferrer()
    caller_rtp, agent_rtp = await TimedRtp.open(), await TimedRtp.open()
    async with bot(handler) as (server, caller, agent):
        leg = Leg(caller)
        ok = await leg.establish(rtp_port=caller_rtp.port)
        caller_rtp.remote = ("127.0.0.1", _sdp_port(ok))
        refer = await caller.request("REFER")
        caller.reply(refer, 405, "Method Not Allowed")
        invite = await agent.request("INVITE")
        assert invite.headers["X-Voicebot-Call"] == handler.channels[0].call_id
        assert invite.headers["From"].startswith("<sip:+15550100@")  # the caller's number
        reply(agent, invite, 180, "Ringing", tag="ag1")
        reply(agent, invite, 200, "OK", tag="ag1", body=sdp(agent_rtp.port, "0"))
        ack = await agent.request("ACK")
        assert ack.cseq.sequence == invite.cseq.sequence and "tag=ag1" in ack.headers["To"]
        agent_rtp.remote = ("127.0.0.1", _sdp_port_of_request(invite))
        assert await wait_until(lambda: bool(handler.outcomes), 2)
        assert handler.outcomes[0].result == "answered" and server.calls[0].bridged
        # both sides talk; each burst must reach the other side
        sent = await asyncio.gather(
            caller_rtp.stream(1.6, burst_at=0.8), agent_rtp.stream(1.6, burst_at=1.0)
        )
        await asyncio.sleep(0.3)
        to_agent = agent_rtp.first_loud_after(sent[0])
        to_caller = caller_rtp.first_loud_after(sent[1])
        assert to_agent is not None and to_caller is not None
        log.warning(
            "bridge latency: caller→agent %.1f ms, agent→caller %.1f ms",
            (to_agent - sent[0]) * 1000, (to_caller - sent[1]) * 1000,
        )  # fmt: skip
        assert to_agent - sent[0] < 0.2 and to_caller - sent[1] < 0.2
        freed: list[bool] = []
        server.calls[0].after_handoff(lambda: freed.append(True))
        assert not freed  # the agent is still talking to the caller
        # the agent hangs up: the caller gets a BYE
        agent.send(_bye_from_agent(agent, invite, ack))
        assert (await agent.response()).code == 200
        bye = await caller.request("BYE")
        caller.reply(bye)
        assert await wait_until(lambda: not server.legs, 2)
        assert freed == [True]
    caller_rtp.close()
    agent_rtp.close()


async def test_cancel_waits_for_a_provisional_then_ends_with_487() -> None:
    handler = Transferrer(cancel_after_s=0.3)
    async with bot(handler, transfer_mode="bridge") as (server, caller, agent):
        leg = Leg(caller)
        await leg.establish(rtp_port=9)
        invite = await agent.request("INVITE")
        # the ring is cancelled at 0.3 s, but §9.1 forbids a CANCEL before a provisional
        heard = [m for m in await agent.silence(0.6) if isinstance(m, Request)]
        assert heard and {m.method for m in heard} == {"INVITE"}  # Timer A retransmissions
        assert handler.cancelled == 1
        reply(agent, invite, 180, "Ringing", tag="ag2")
        cancel = await agent.request("CANCEL")
        assert cancel.via[0].parameters["branch"] == invite.via[0].parameters["branch"]
        assert cancel.cseq.sequence == invite.cseq.sequence
        reply(agent, cancel, 200, "OK", tag="ag2")
        reply(agent, invite, 487, "Request Terminated", tag="ag2")
        ack = await agent.request("ACK")
        assert ack.via[0].parameters["branch"] == invite.via[0].parameters["branch"]
        bye = await caller.request("BYE")  # handler returned after the cancel
        caller.reply(bye)
        assert await wait_until(lambda: not server.legs, 2)


async def test_a_2xx_crossing_the_cancel_is_acked_and_byed() -> None:
    handler = Transferrer(cancel_after_s=0.3)
    async with bot(handler, transfer_mode="bridge") as (server, caller, agent):
        leg = Leg(caller)
        await leg.establish(rtp_port=9)
        invite = await agent.request("INVITE")
        reply(agent, invite, 180, "Ringing", tag="ag3")
        cancel = await agent.request("CANCEL", timeout=2)
        reply(agent, invite, 200, "OK", tag="ag3", body=sdp(9, "0"))  # picked up just too late
        reply(agent, cancel, 481, "Call/Transaction Does Not Exist", tag="ag3")
        await agent.request("ACK")
        bye = await agent.request("BYE")
        agent.reply(bye)
        caller.reply(await caller.request("BYE"))
        assert await wait_until(lambda: not server.legs, 2)
    assert handler.cancelled == 1


async def test_the_caller_leaving_while_the_agent_rings_cancels_the_invite() -> None:
    handler = Transferrer()
    async with bot(handler, transfer_mode="bridge") as (server, caller, agent):
        leg = Leg(caller)
        await leg.establish(rtp_port=9)
        invite = await agent.request("INVITE")
        reply(agent, invite, 180, "Ringing", tag="ag4")
        caller.send(leg.next("BYE"))
        assert (await caller.response()).code == 200
        cancel = await agent.request("CANCEL")
        reply(agent, cancel, 200, "OK", tag="ag4")
        reply(agent, invite, 487, "Request Terminated", tag="ag4")
        await agent.request("ACK")
        assert await wait_until(lambda: not server.legs, 2)
    assert handler.outcomes[0].result == "failed"
    assert "caller hung up" in handler.outcomes[0].reason


async def test_transfer_refuses_bad_targets_and_calls_not_up() -> None:
    handler = Transferrer(target="tel:+15550100")
    async with bot(handler) as (_server, caller, _agent):
        await Leg(caller).establish(rtp_port=9)
        assert await wait_until(lambda: bool(handler.outcomes), 2)
    assert handler.outcomes[0].result == "failed" and handler.outcomes[0].method == "none"


# ---------------------------------------------------------------- helpers


def _sdp_port(message: Response) -> int:
    from voicebot.telephony.sip.sdp import SessionDescription

    return SessionDescription.parse(message.body).media[0].port


def _sdp_port_of_request(message: Request) -> int:
    from voicebot.telephony.sip.sdp import SessionDescription

    return SessionDescription.parse(message.body).media[0].port


def _bye_from_agent(agent: Uac, invite: Request, ack: Request) -> str:
    return (
        f"BYE {invite.headers['Contact'].strip('<>')} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{agent.port};branch=z9hG4bK{secrets.token_hex(6)};rport\r\n"
        f"Max-Forwards: 70\r\nFrom: {ack.headers['To']}\r\nTo: {invite.headers['From']}\r\n"
        f"Call-ID: {invite.call_id}\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n"
    )


async def test_after_an_abandoned_refer_the_next_ring_bridges() -> None:
    """A ring cancelled while the caller's phone dials the agent cannot be
    withdrawn; the next agent is then bridged, never REFERred in parallel."""
    outcomes: list[TransferOutcome] = []
    targets: list[str] = []

    async def two_rings(channel: CallChannel) -> None:
        first = channel.transfer(targets[0], channel.call_id)  # type: ignore[attr-defined]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(first, 0.3)
        outcomes.append(await channel.transfer(targets[1], channel.call_id))  # type: ignore[attr-defined]

    async with bot(two_rings) as (_server, caller, agent):
        targets[:] = ["sip:first@127.0.0.1:9", f"sip:second@127.0.0.1:{agent.port}"]
        leg = Leg(caller)
        await leg.establish(rtp_port=9)
        refer = await caller.request("REFER")
        caller.reply(refer, 202, "Accepted")
        caller.send(notify(leg, refer, "180 Ringing"))
        assert (await caller.response()).code == 200
        invite = await agent.request("INVITE", timeout=2)  # no second REFER came first
        assert not [m for m in await caller.silence(0.1) if isinstance(m, Request)]
        reply(agent, invite, 486, "Busy Here", tag="b1")
        await agent.request("ACK")
        assert await wait_until(lambda: bool(outcomes), 2)
    assert (outcomes[0].result, outcomes[0].method) == ("declined", "bridge")
