"""The SIP server against a scripted UAC on 127.0.0.1: every RFC 3261 behaviour
a caller or carrier can trigger, checked message by message."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import numpy as np
import pytest
from sip_peers import RecordingHandler, wait_until
from sip_uac import Leg, RtpPeer, Uac, sdp
from sipmessage import Response

from voicebot.audio.g711 import ulaw_encode
from voicebot.core.frames import FRAME_SAMPLES
from voicebot.telephony.channel import CallChannel
from voicebot.telephony.sip import CallState, SipConfig, SipServer
from voicebot.telephony.sip.message import header_tag
from voicebot.telephony.sip.sdp import SessionDescription

pytestmark = pytest.mark.sip


@contextlib.asynccontextmanager
async def running(handler, **overrides: object) -> AsyncIterator[tuple[SipServer, Uac]]:  # type: ignore[no-untyped-def]
    config = SipConfig(listen_port=0, rtp_port_min=42000, rtp_port_max=42999, **overrides)  # type: ignore[arg-type]
    server = SipServer(config, handler)
    await server.start()
    uac = await Uac.open(server.port)
    try:
        yield server, uac
    finally:
        uac.close()
        await server.close()


def rtp_port_of(message: Response) -> int:
    return SessionDescription.parse(message.body).media[0].port


def tone_frames(seconds: float) -> list[bytes]:
    t = np.arange(int(seconds * 8000)) / 8000
    pcm = (8000 * np.sin(2 * np.pi * 700 * t)).astype(np.int16)
    return [ulaw_encode(pcm[i : i + FRAME_SAMPLES]) for i in range(0, len(pcm), FRAME_SAMPLES)]


async def test_full_call(caplog: pytest.LogCaptureFixture) -> None:
    handler = RecordingHandler(clip=np.full(4000, 3000, np.int16))
    rtp = await RtpPeer.open()
    async with running(handler) as (server, uac):
        leg = Leg(uac)
        uac.send(leg.invite(sdp(rtp.port)))
        trying = await uac.response(100)
        assert header_tag(trying.headers["To"]) == ""
        ringing = await uac.response(180)
        ok = await uac.response(200)
        assert header_tag(ok.headers["To"]) == header_tag(ringing.headers["To"]) != ""
        assert ok.contact[0].uri.host == "127.0.0.1" and ok.contact[0].uri.port == server.port
        assert ok.via[0].parameters["rport"] == str(uac.port)
        assert ok.via[0].parameters["received"] == "127.0.0.1"
        answer = SessionDescription.parse(ok.body)
        assert answer.media[0].formats == ["0", "101"] and answer.media[0].direction == "sendrecv"
        leg.take_tag(ok)
        uac.send(leg.ack())
        assert await wait_until(lambda: bool(handler.records), 1)
        record = handler.records[0]
        assert record.caller_id == "+15550100"

        server_rtp = rtp_port_of(ok)
        await rtp.send_audio(server_rtp, tone_frames(0.6))
        await rtp.send_digit(server_rtp, 5)
        uac.send(
            leg.next(
                "INFO", body="Signal=9\r\nDuration=160\r\n", content_type="application/dtmf-relay"
            )
        )
        assert (await uac.response()).code == 200
        assert await wait_until(lambda: record.digits == ["5", "9"], 1)

        uac.send(leg.next("INVITE", body=sdp(rtp.port, direction="sendonly")))  # caller holds
        held = await uac.response(200)
        assert SessionDescription.parse(held.body).media[0].direction == "recvonly"
        uac.send(leg.ack(cseq=leg.cseq))
        await asyncio.sleep(0.1)
        count = len(rtp.packets)
        await asyncio.sleep(0.3)
        assert len(rtp.packets) == count  # nothing sent while on hold
        uac.send(leg.next("INVITE", body=sdp(rtp.port)))
        resumed = await uac.response(200)
        assert SessionDescription.parse(resumed.body).media[0].direction == "sendrecv"
        assert SessionDescription.parse(resumed.body).origin.version > answer.origin.version
        uac.send(leg.ack(cseq=leg.cseq))
        await asyncio.sleep(0.3)
        assert len(rtp.packets) > count + 10

        bye = leg.next("BYE")
        uac.send(bye)
        assert (await uac.response()).code == 200
        uac.send(bye)  # retransmitted BYE: the transaction answers again
        assert (await uac.response()).code == 200
        assert await wait_until(lambda: record.hangup is not None, 1)
    rtp.close()
    assert record.hangup is not None and record.hangup.reason == "caller hung up"
    assert np.abs(record.pcm).max() > 5000  # the tone arrived
    assert {p.payload_type for p in rtp.packets} == {0}
    assert any(p.payload != b"\xff" * 160 for p in rtp.packets)  # the bot's clip went out


async def test_delayed_offer_answer_in_ack() -> None:
    handler = RecordingHandler()
    rtp = await RtpPeer.open()
    async with running(handler) as (_server, uac):
        leg = Leg(uac)
        uac.send(leg.invite())
        ok = await uac.response(200)
        offer = SessionDescription.parse(ok.body)
        assert offer.media[0].formats == ["0", "8", "101"]
        leg.take_tag(ok)
        uac.send(leg.ack(body=sdp(rtp.port, formats="8 101")))
        assert await wait_until(lambda: len(rtp.packets) > 5, 1)
        uac.send(leg.next("BYE"))
        await uac.response(200)
    rtp.close()
    assert {p.payload_type for p in rtp.packets} == {8}


REJECTIONS = [
    ("unknown method", "FOO", (), 501, "Allow"),
    ("known but not served", "REGISTER", (), 405, "Allow"),
    ("no hops left", "OPTIONS", ("Max-Forwards: 0",), 483, None),
    ("required extension", "OPTIONS", ("Require: 100rel",), 420, "Unsupported"),
    ("BYE outside a dialog", "BYE", (), 481, None),
    ("CANCEL for nothing", "CANCEL", (), 481, None),
    ("OPTIONS", "OPTIONS", (), 200, "Allow"),
]


@pytest.mark.parametrize(
    ("label", "method", "headers", "code", "header"), REJECTIONS, ids=[r[0] for r in REJECTIONS]
)
async def test_request_screening(
    label: str, method: str, headers: tuple[str, ...], code: int, header: str | None
) -> None:
    async with running(RecordingHandler()) as (_server, uac):
        leg = Leg(uac)
        text = leg.build(method, headers=headers)
        if method == "OPTIONS" and headers and headers[0].startswith("Max-Forwards"):
            text = text.replace("Max-Forwards: 70\r\n", "")
        uac.send(text)
        response = await uac.response()
        assert response.code == code
        assert header_tag(response.headers["To"])
        if header:
            assert response.headers.get(header)


async def test_unsupported_body_gets_415() -> None:
    async with running(RecordingHandler()) as (_server, uac):
        uac.send(
            Leg(uac)
            .invite()
            .replace("Content-Length: 0", "Content-Type: text/plain\r\nContent-Length: 2")
            + "hi"
        )
        response = await uac.response()
        assert response.code == 415 and response.headers.get("Accept") == "application/sdp"


async def test_peers_off_the_allowlist_are_dropped_unread() -> None:
    """Cost before trust: a stranger's datagrams are dropped before parsing,
    unanswered (an answer would feed reflection), and counted."""
    handler = RecordingHandler()
    async with running(handler, allowed_peers=["192.0.2.0/24"]) as (server, uac):
        leg = Leg(uac)
        uac.send(leg.build("OPTIONS"))
        uac.send(leg.invite(sdp(4000)))
        uac.send(b"garbage that would not even parse\r\n\r\n")
        assert await uac.silence(0.6) == []
        assert server.transport.dropped["not_allowed"] == 3
    assert handler.records == []


async def test_garbage_never_stops_the_server() -> None:
    async with running(RecordingHandler()) as (server, uac):
        leg = Leg(uac)
        for junk in [
            b"",
            b"\r\n\r\n",
            bytes(range(256)),
            b"INVITE sip:x SIP/2.0\r\n",
            b"SIP/2.0 200 OK\r\nVia: nonsense\r\n\r\n",
            b"OPTIONS sip:bot@127.0.0.1 SIP/2.0\r\n"
            b"Via: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bKa\r\n\r\n",
            b"\xff\xfe" * 3000,
            leg.build("OPTIONS", headers=("X-Pad: " + "a" * 9000,)).encode(),
            leg.build("INVITE", body="v=0\r\nthis is not sdp").encode(),
        ]:
            uac.send(junk)
        received = await uac.silence(0.3)
        assert [m.code for m in received if isinstance(m, Response)] == [100, 488]  # the bad SDP
        uac.send(leg.build("OPTIONS"))
        assert (await uac.response()).code == 200
        assert server.calls == []


async def test_invite_retransmission_and_cancel() -> None:
    async with running(RecordingHandler(), ring_s=2.0) as (server, uac):
        leg = Leg(uac)
        invite = leg.invite(sdp(4000))
        uac.send(invite)
        await uac.response(180)
        uac.send(invite)  # retransmission: the last provisional again, no second call
        assert (await uac.response()).code == 180
        assert len(server.calls) == 1
        cancel = leg.build("CANCEL", branch=leg.invite_branch)
        uac.send(cancel)
        codes = {(await uac.response()).code, (await uac.response()).code}
        assert codes == {200, 487}
        uac.send(leg.build("ACK", branch=leg.invite_branch))
        assert await wait_until(lambda: not server.calls, 1)


async def test_busy_when_not_accepting_or_full() -> None:
    """INVITE and OPTIONS both say 503 when full or draining: a load balancer's
    OPTIONS probe (Kamailio's dispatcher) takes the instance out of rotation."""
    async with running(RecordingHandler(), max_calls=1) as (server, uac):
        sent: list[bytes] = []
        server.transport.sent_watchers.append(sent.append)
        uac.send(Leg(uac).build("OPTIONS"))
        assert (await uac.response()).code == 200
        rtp = await RtpPeer.open()
        await Leg(uac).establish(rtp.port)
        uac.send(Leg(uac).invite(sdp(rtp.port)))
        assert (await uac.response()).code == 503
        uac.send(Leg(uac).build("OPTIONS"))
        assert (await uac.response()).code == 503
        rtp.close()
        assert any(d.startswith(b"SIP/2.0 503") for d in sent)  # watchers see what is sent
    async with running(RecordingHandler()) as (server, uac):
        server.stop_accepting()
        uac.send(Leg(uac).build("OPTIONS"))
        assert (await uac.response()).code == 503
        uac.send(Leg(uac).invite(sdp(4000)))
        assert (await uac.response()).code == 503


async def test_bot_hangup_retransmits_bye_until_answered() -> None:
    handler = RecordingHandler(hangup_after_s=0.0, explicit_hangup=True)
    rtp = await RtpPeer.open()
    async with running(handler, t1_s=0.05, hangup_wait_s=1.0) as (_server, uac):
        leg = Leg(uac)
        await leg.establish(rtp.port)
        first = await uac.request("BYE")
        again = await uac.request("BYE", timeout=0.5)  # not answered: Timer E resends it
        assert again.via[0].parameters["branch"] == first.via[0].parameters["branch"]
        assert str(first.uri) == f"sip:uac@127.0.0.1:{uac.port}"  # sent to our Contact
        assert header_tag(first.headers["From"]) == leg.to_tag
        uac.reply(first)
        assert await wait_until(lambda: handler.done.is_set(), 2)
    rtp.close()
    assert handler.records[0].hangup is not None
    assert handler.records[0].hangup.reason == "bot hung up"


async def test_no_rtp_hangs_up_with_media_timeout() -> None:
    handler = RecordingHandler()
    rtp = await RtpPeer.open()
    async with running(handler, rtp_timeout_s=0.5) as (_server, uac):
        leg = Leg(uac)
        await leg.establish(rtp.port)
        bye = await uac.request("BYE", timeout=2)
        uac.reply(bye)
        assert await wait_until(lambda: handler.records[0].hangup is not None, 1)
    rtp.close()
    assert handler.records[0].hangup.reason == "media timeout"  # type: ignore[union-attr]


async def test_missing_ack_ends_the_call() -> None:
    handler = RecordingHandler()
    async with running(handler, t1_s=0.02) as (server, uac):
        leg = Leg(uac)
        uac.send(leg.invite(sdp(4000)))
        ok = await uac.response(200)
        assert (await uac.response(200)).code == 200  # retransmitted
        leg.take_tag(ok)
        bye = await uac.request("BYE", timeout=3)  # after 64·T1 without ACK
        uac.reply(bye)
        assert await wait_until(lambda: not server.calls, 1)
    assert handler.records == []  # the session never started


async def test_failing_handler_is_hung_up_and_server_goes_on() -> None:
    async def broken(channel: CallChannel) -> None:
        raise RuntimeError("session crashed")

    rtp = await RtpPeer.open()
    async with running(broken) as (_server, uac):
        await Leg(uac).establish(rtp.port)
        uac.reply(await uac.request("BYE"))
        uac.send(Leg(uac).build("OPTIONS"))
        assert (await uac.response()).code == 200
    rtp.close()


async def test_close_hangs_up_calls_in_progress() -> None:
    handler = RecordingHandler()
    rtp = await RtpPeer.open()
    config = SipConfig(listen_port=0, rtp_port_min=42000, rtp_port_max=42999)
    server = SipServer(config, handler)
    await server.start()
    uac = await Uac.open(server.port)
    await Leg(uac).establish(rtp.port)
    assert await wait_until(
        lambda: bool(server.calls) and server.calls[0].state is CallState.CONFIRMED, 1
    )

    async def answer_bye() -> None:
        uac.reply(await uac.request("BYE"))

    answering = asyncio.create_task(answer_bye())
    await server.close()
    await answering
    uac.close()
    rtp.close()
    assert handler.records[0].hangup is not None
    assert handler.records[0].hangup.reason == "server shutting down"


async def test_out_of_order_cseq_gets_500_and_pai_gives_caller_id() -> None:
    handler = RecordingHandler()
    rtp = await RtpPeer.open()
    async with running(handler) as (_server, uac):
        leg = Leg(uac, user="anonymous")
        uac.send(leg.invite(sdp(rtp.port), headers=("P-Asserted-Identity: <tel:+15550199>",)))
        ok = await uac.response(200)
        leg.take_tag(ok)
        uac.send(leg.ack())
        leg.cseq = 5
        uac.send(leg.build("INFO", body="Signal=1", content_type="application/dtmf-relay"))
        assert (await uac.response()).code == 200
        uac.send(leg.build("INFO", body="Signal=2", content_type="application/dtmf-relay", cseq=3))
        assert (await uac.response()).code == 500
        uac.send(leg.next("BYE"))
        await uac.response(200)
    rtp.close()
    assert handler.records[0].caller_id == "+15550199"
    assert handler.records[0].digits == ["1"]


@pytest.mark.parametrize("callee", ["assistant", "bot", "+18005550100", "support-line"])
async def test_any_user_part_in_the_request_uri_is_answered(callee: str) -> None:
    handler = RecordingHandler()
    rtp = await RtpPeer.open()
    async with running(handler) as (_server, uac):
        leg = Leg(uac, callee=callee)
        await leg.establish(rtp.port)
        assert await wait_until(lambda: bool(handler.records), 1)
        uac.send(leg.next("BYE"))
        await uac.response(200)
    rtp.close()
