"""Hostile input on the SIP and RTP ports: real datagrams against a real server on loopback.

Each test sends the bytes an attacker (or a broken peer) would and checks the
server's observable behaviour: who gets answered, what is dropped unread, that
calls keep their audio and slots, and that the listener stays alive.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time

import pytest
from sip_peers import RecordingHandler, wait_until
from sip_uac import Leg, RtpPeer, Uac, sdp
from test_sip_server import rtp_port_of, running, tone_frames

from voicebot.telephony.addresses import decimal, ip_literal, same_ip
from voicebot.telephony.rtp.dtmf import TelephoneEvent
from voicebot.telephony.rtp.latch import SourceLatch
from voicebot.telephony.rtp.packet import RtpPacket
from voicebot.telephony.sip import SipConfig
from voicebot.telephony.sip.call import FrameQueue
from voicebot.telephony.sip.flood import LogLimiter, SourceLimiter
from voicebot.telephony.sip.message import SipParseError, parse_message
from voicebot.telephony.sip.sdp import SdpError, SessionDescription

pytestmark = pytest.mark.sip

OFFER = sdp(4000)


# ------------------------------------------------------------ vocabulary


@pytest.mark.parametrize(
    ("text", "value"),
    [("0", 0), ("65535", 65535), ("65536", None), ("5\u00b2", None), ("\u0665\u0660", None),
     ("", None), ("-1", None), ("+1", None), (" 1", None), ("99999999999", None)],
)  # fmt: skip
def test_decimal_is_ascii_and_ranged(text: str, value: int | None) -> None:
    assert decimal(text, 0, 65535) == value


def test_ip_literals_are_normalised_and_names_refused() -> None:
    assert ip_literal("[::1]") == "::1"
    assert ip_literal("::ffff:127.0.0.1") == "127.0.0.1"
    assert ip_literal("pbx.example") is None
    assert same_ip("::ffff:10.0.0.1", "10.0.0.1") and not same_ip("a", "a")


def test_call_id_with_space_before_colon_parses() -> None:
    raw = (
        "OPTIONS sip:bot@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bKx\r\n"
        "From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:bot@127.0.0.1>\r\nCall-ID : abc\r\n"
        "CSeq : 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )
    assert parse_message(raw.encode()).call_id == "abc"


@pytest.mark.parametrize(
    "header", ["CSeq: \u0661 OPTIONS", "Content-Length: \u0660", "Max-Forwards: 7\u00b2"]
)
def test_unicode_digits_in_numeric_headers_are_refused(header: str) -> None:
    name = header.partition(":")[0]
    lines = [
        "OPTIONS sip:bot@127.0.0.1 SIP/2.0",
        "Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bKx",
        "From: <sip:a@127.0.0.1>;tag=1",
        "To: <sip:bot@127.0.0.1>",
        "Call-ID: abc",
        "CSeq: 1 OPTIONS",
    ]
    lines = [line for line in lines if not line.startswith(name + ":")] + [header]
    with pytest.raises(SipParseError):
        parse_message(("\r\n".join(lines) + "\r\n\r\n").encode())


@pytest.mark.parametrize(
    "line",
    ["c=IN IP4 dns.example", "m=audio 70000 RTP/AVP 0",
     "m=audio \u0664\u0660\u0660\u0660 RTP/AVP 0", "o=- 1 \u00b2 IN IP4 127.0.0.1"],
)  # fmt: skip
def test_sdp_refuses_names_out_of_range_ports_and_unicode_digits(line: str) -> None:
    lines = ["v=0", "o=- 1 1 IN IP4 127.0.0.1", "s=-", "c=IN IP4 127.0.0.1", "t=0 0",
             "m=audio 4000 RTP/AVP 0"]  # fmt: skip
    body = "\r\n".join(line if x.startswith(line[:2]) else x for x in lines) + "\r\n"
    with pytest.raises(SdpError):
        SessionDescription.parse(body)


def test_source_limiter_is_a_token_bucket() -> None:
    now = [0.0]
    limiter = SourceLimiter(rate=10, burst=5, max_sources=2, clock=lambda: now[0])
    assert sum(limiter.allow("a") for _ in range(20)) == 5
    now[0] += 0.5
    assert sum(limiter.allow("a") for _ in range(20)) == 5
    assert limiter.allow("b") and limiter.allow("c")  # "a" evicted: the table stays bounded
    assert len(limiter._buckets) == 2


async def test_per_source_tables_stay_bounded_under_100k_sources() -> None:
    """Every per-source table the transport keeps (rate buckets, the budget of
    stateless answers, the log limiter's windows) stays at its cap when
    100,000 allowed addresses each send a keep-alive and then go over budget."""
    from voicebot.telephony.sip import SipServer

    config = SipConfig(listen_port=0, allowed_peers=["10.0.0.0/8"], source_rate=0.001,
                       source_burst=1)  # fmt: skip
    server = SipServer(config, RecordingHandler())
    transport = server.transport
    for n in range(100_000):
        source = (f"10.{n >> 16}.{(n >> 8) & 255}.{n & 255}", 5060)
        transport.datagram_received(b"\r\n\r\n", source)  # within budget: a keep-alive
        transport.datagram_received(b"\r\n\r\n", source)  # over budget
    assert transport.dropped["rate"] == 100_000
    assert len(transport._limiter._buckets) <= 4096
    assert len(transport._answers._buckets) <= 4096
    assert len(transport.warn._windows) <= 1


def test_log_limiter_suppresses_and_reports(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    limiter = LogLimiter(
        logging.getLogger("t.limiter"), per_interval=2, interval_s=1, clock=lambda: now[0]
    )
    with caplog.at_level(logging.WARNING, "t.limiter"):
        for _ in range(100):
            limiter.warning("flood")
        now[0] = 2.0
        limiter.warning("flood")
    assert len(caplog.records) == 3
    assert "suppressed=98" in caplog.records[-1].getMessage()


def test_dtmf_queue_is_bounded() -> None:
    from voicebot.core.frames import DtmfFrame

    queue = FrameQueue(max_dtmf=4)
    for _ in range(100):
        queue.put(DtmfFrame("0"))
    assert queue.dropped_dtmf == 96


# ------------------------------------------------------------- latching


def test_latch_learns_after_in_sequence_packets_and_ignores_interleaved_strangers() -> None:
    latch = SourceLatch(probation=4, rebind_silence_s=0.5)
    caller, stranger = ("127.0.0.1", 4000), ("127.0.0.1", 6666)
    accepted = []
    for i in range(6):
        accepted.append(latch.accept(caller, 1, 100 + i, 0.02 * i))
        for j in range(5):  # a spray between every caller packet, random sequence
            assert not latch.accept(stranger, 9, (i * 977 + j * 131) % 65536, 0.02 * i)
    assert accepted == [False, False, False, True, True, True]
    assert latch.address == caller
    # A stranger in sequence cannot take over while the caller talks…
    assert not any(latch.accept(stranger, 9, 500 + k, 0.12 + 0.001 * k) for k in range(20))
    # …but after the caller is silent (NAT rebind), a new source is learned.
    rebound = ("127.0.0.1", 4002)
    got = [latch.accept(rebound, 1, 200 + k, 1.0 + 0.02 * k) for k in range(4)]
    assert got == [False, False, False, True] and latch.address == rebound
    assert latch.relearned == 1


def test_latch_compares_addresses_as_addresses() -> None:
    latch = SourceLatch(probation=1)
    assert latch.accept(("::ffff:127.0.0.1", 4000), 1, 1, 0.0)
    assert latch.accept(("127.0.0.1", 4000), 1, 2, 0.01)


# ------------------------------------------------------------ live server


async def test_stranger_bye_cancel_and_reinvite_are_refused() -> None:
    """In-dialog requests from another port than the caller's: 403; the call
    and its media stay where they are."""
    handler = RecordingHandler()
    async with running(handler) as (server, uac):
        rtp = await RtpPeer.open()
        attacker = await Uac.open(server.port)
        try:
            leg = Leg(uac)
            ok = await leg.establish(rtp.port)
            assert await wait_until(lambda: bool(handler.records), 2)
            call = server.calls[0]
            remote = call.media.remote
            forged = Leg(attacker, call_id=leg.call_id, from_tag=leg.from_tag, to_tag=leg.to_tag)
            forged.cseq = 50
            attacker.send(forged.next("INVITE", body=sdp(6666)))
            assert (await attacker.response()).code == 403
            attacker.send(forged.next("BYE"))
            assert (await attacker.response()).code == 403
            assert not call.ended and call.media.remote == remote
            assert rtp_port_of(ok) == call.media.port
            uac.send(leg.next("BYE"))
            assert (await uac.response()).code == 200
            assert await wait_until(lambda: call.ended, 2)
        finally:
            rtp.close()
            attacker.close()


async def test_stranger_cancel_does_not_end_a_ringing_call() -> None:
    async with running(RecordingHandler(), ring_s=2.0) as (server, uac):
        attacker = await Uac.open(server.port)
        try:
            leg = Leg(uac)
            uac.send(leg.invite(OFFER))
            assert (await uac.response(180)).code == 180
            cancel = leg.build("CANCEL", branch=leg.invite_branch)
            attacker.send(cancel)
            # 481: the INVITE transaction is keyed by its real source too
            assert (await attacker.response()).code in (403, 481)
            assert server.calls and not server.calls[0].ended
            uac.send(cancel)
            assert (await uac.response(200)).code == 200
            assert (await uac.response(487)).code == 487
        finally:
            attacker.close()


async def test_unparsable_contact_gets_400_and_leaves_no_transaction(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with running(RecordingHandler(), t4_s=0.1) as (server, uac):
        with caplog.at_level(logging.WARNING, "voicebot"):
            for header in ("Contact: <sip:@@@>;;;", "Record-Route: <<<"):
                leg = Leg(uac)
                text = (
                    leg.invite(OFFER).replace(f"Contact: <sip:uac@127.0.0.1:{uac.port}>", header)
                    if header.startswith("Contact")
                    else leg.invite(OFFER, headers=(header,))
                )
                uac.send(text)
                assert (await uac.response()).code == 400
                uac.send(leg.build("ACK", branch=leg.invite_branch))
        assert await wait_until(lambda: not server.transactions._server, 3)
        assert not server.calls
        assert "Traceback" not in caplog.text


async def test_a_failing_handler_path_answers_500_and_the_transaction_ends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with running(RecordingHandler()) as (server, uac):
        monkeypatch.setattr(server, "capability_headers", lambda: 1 / 0)
        leg = Leg(uac)
        uac.send(leg.build("OPTIONS"))
        assert (await uac.response()).code == 500


async def test_safety_timer_answers_a_stuck_transaction() -> None:
    async with running(RecordingHandler(), t1_s=0.02) as (server, uac):
        leg = Leg(uac)
        request = parse_message(leg.build("OPTIONS").encode())
        tx = server.transactions.server_transaction(request, ("127.0.0.1", uac.port))
        assert tx is not None  # nobody answers it: the safety timer must
        assert (await uac.response(timeout=3)).code == 500
        assert await wait_until(lambda: not server.transactions._server, 3)


async def test_conversation_starts_on_ack_and_unacked_dialogs_free_their_slot() -> None:
    """An INVITE flood that never ACKs: no handler runs, each slot is freed
    after one 64·T1 timer (not two), and shutdown does not wait for them."""
    handler = RecordingHandler()
    t1 = 0.02
    async with running(handler, t1_s=t1, max_calls=4, max_calls_per_source=2) as (server, uac):
        legs = [Leg(uac) for _ in range(3)]
        for leg in legs:
            uac.send(leg.invite(OFFER))
        codes = sorted(await _finals(uac, 3))
        assert codes == [200, 200, 503]  # per-source cap: 2
        started = time.monotonic()
        assert await wait_until(lambda: not server.calls, 64 * t1 * 3)
        held = time.monotonic() - started
        assert held < 64 * t1 * 1.8, held
        assert handler.records == []  # no greeting, STT or Rasa for an unACKed call
        uac.send(legs[0].invite(OFFER))  # a slot again
        assert (await uac.response(200, timeout=3)).code == 200
        closing = time.monotonic()
    assert time.monotonic() - closing < 3.0  # close() did not wait for the ACK


async def test_trunk_keeps_reserved_slots_when_others_fill_the_server() -> None:
    async with running(
        RecordingHandler(),
        allowed_peers=["127.0.0.0/8"],
        trunks=["127.0.0.2/32"],
        max_calls=3,
        trunk_reserved_calls=1,
        max_calls_per_source=8,
    ) as (server, uac):
        for _ in range(3):
            uac.send(Leg(uac).invite(OFFER))
        codes = sorted(await _finals(uac, 3))
        assert codes == [200, 200, 503]
        trunk = await _uac_from(server.port, "127.0.0.2")
        try:
            trunk_leg = Leg(trunk)
            trunk.send(trunk_leg.invite(sdp(4002)))
            assert await _finals(trunk, 1) == [200]
        finally:
            trunk.close()


async def _finals(uac: Uac, count: int) -> list[int]:
    """The codes of the next ``count`` final responses (provisionals skipped)."""
    codes: list[int] = []
    while len(codes) < count:
        response = await uac.response(timeout=3)
        if response.code >= 200:
            codes.append(response.code)
    return codes


async def _uac_from(server_port: int, host: str) -> Uac:
    loop = asyncio.get_running_loop()
    transport, uac = await loop.create_datagram_endpoint(Uac, local_addr=(host, 0))
    uac.transport = transport
    uac.server = ("127.0.0.1", server_port)
    return uac


async def test_rate_limited_source_gets_stateless_503_then_silence() -> None:
    async with running(RecordingHandler(), source_rate=5, source_burst=5) as (server, uac):
        leg = Leg(uac)
        for _ in range(60):
            uac.send(leg.build("OPTIONS"))
        got = await uac.silence(0.5)
        codes = [m.code for m in got]
        assert codes.count(200) == 5
        assert 0 < codes.count(503) < 10  # the answers are budgeted too
        assert server.transport.dropped["rate"] >= 50


async def test_too_many_headers_are_dropped_unread() -> None:
    async with running(RecordingHandler()) as (server, uac):
        leg = Leg(uac)
        uac.send(leg.build("OPTIONS", headers=tuple(f"X-{i}: v" for i in range(200))))
        assert await uac.silence(0.3) == []
        assert server.transport.dropped["too_many_headers"] == 1
        uac.send(leg.build("OPTIONS"))
        assert (await uac.response()).code == 200


async def test_hostname_in_sdp_is_refused_with_488_without_dns() -> None:
    async with running(RecordingHandler()) as (_server, uac):
        leg = Leg(uac)
        started = time.monotonic()
        uac.send(leg.invite(OFFER.replace("c=IN IP4 127.0.0.1", "c=IN IP4 never.invalid")))
        assert (await uac.response()).code == 488
        assert time.monotonic() - started < 1.0


async def test_max_call_duration_hangs_up() -> None:
    handler = RecordingHandler()
    async with running(handler, max_call_s=0.5) as (_server, uac):
        rtp = await RtpPeer.open()
        try:
            await Leg(uac).establish(rtp.port)
            bye = await uac.request("BYE", timeout=3)
            uac.reply(bye)
            assert await wait_until(lambda: bool(handler.records and handler.records[0].hangup), 2)
            assert handler.records[0].hangup.reason == "maximum call duration"
        finally:
            rtp.close()


async def test_junk_rtp_and_sprayed_dtmf_do_not_reach_the_call() -> None:
    """Malformed, oversized, wrong-version and new-SSRC packets and RFC 4733
    digits from another port: the caller's audio and digits get through, the
    stranger's do not, and the bot's audio is not captured."""
    handler = RecordingHandler()
    async with running(handler) as (server, uac):
        rtp = await RtpPeer.open()
        junk = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        junk.bind(("127.0.0.1", 0))
        try:
            ok = await Leg(uac).establish(rtp.port)
            port = rtp_port_of(ok)
            assert await wait_until(lambda: bool(handler.records), 2)
            call = server.calls[0]
            sender = asyncio.create_task(rtp.send_audio(port, tone_frames(1.0)))
            for i in range(300):
                junk.sendto(_junk_packet(i), ("127.0.0.1", port))
                if i % 30 == 0:
                    await asyncio.sleep(0.01)
            await sender
            await rtp.send_digit(port, 5)
            await asyncio.sleep(0.2)
            assert call.media.remote == ("127.0.0.1", rtp.port)
            assert handler.records[0].digits == ["5"]
            assert call.media.stats.ignored >= 300
            assert call.media.stats.received >= 40
            assert call.media.jitter.stats.concealed < 15
        finally:
            junk.close()
            rtp.close()


def _junk_packet(i: int) -> bytes:
    kind = i % 5
    if kind == 0:
        return b"\x80\x00\x01"  # short
    if kind == 1:
        return bytes([0x40]) + bytes(171)  # version 1
    if kind == 2:
        return RtpPacket(0, i, i * 160, 0xBAD, b"\xff" * 3000).serialize()  # oversized
    if kind == 3:
        return RtpPacket(0, (i * 7919) % 65536, i * 999, 0x1000 + i, b"\xff" * 160).serialize()
    return RtpPacket(101, i, 777, 0xBAD, TelephoneEvent(0, duration=160).serialize()).serialize()


def test_sip_listen_brackets_are_stripped() -> None:
    config = SipConfig(listen_host="[::1]", listen_port=5090)
    config.validate()
    assert config.listen_host == "::1"


async def test_malformed_headers_leave_no_traceback_chain_behind() -> None:
    """sipmessage re-raises shared exception objects; their tracebacks (and the
    datagrams in those frames) must not pile up across datagrams."""
    from sipmessage import address, via

    async with running(RecordingHandler()) as (_server, uac):
        leg = Leg(uac)
        for i in range(50):
            uac.send(leg.build("OPTIONS").replace("Via: SIP/2.0/UDP", f"Via: SIP/2.0/UDP {i}@@"))
            uac.send(leg.build("OPTIONS").replace("From: <sip:", "From: <<sip:"))
        uac.send(leg.build("OPTIONS"))
        assert await wait_until(lambda: any(r.startswith(b"SIP/2.0 200") for r in uac.raw), 3)
    assert via.VIA_EXCEPTION.__traceback__ is None
    assert address.ADDRESS_EXCEPTION.__traceback__ is None
