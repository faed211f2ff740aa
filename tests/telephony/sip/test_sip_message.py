"""SIP message parsing/serialising, from bytes captured (tshark, loopback) between
baresip 1.0.0 and this server, plus the malformed shapes a UAS must survive."""

from __future__ import annotations

from pathlib import Path

import pytest
from sipmessage import Request, Response

from voicebot.telephony.sip.message import (
    RawRequest,
    SipParseError,
    header_tag,
    make_response,
    parse_message,
    response_address,
    stamp_via,
)

DATA = Path(__file__).parent / "data"
CAPTURED = sorted(p.name for p in DATA.glob("*.sip"))


def load(name: str) -> bytes:
    return (DATA / name).read_bytes()


@pytest.mark.parametrize("name", CAPTURED)
def test_captured_messages_round_trip_byte_for_byte(name: str) -> None:
    raw = load(name)
    assert bytes(parse_message(raw)) == raw


def test_baresip_invite_fields() -> None:
    invite = parse_message(load("baresip_invite.sip"))
    assert isinstance(invite, Request)
    assert invite.method == "INVITE" and invite.uri.user == "bot"
    assert invite.cseq.sequence == 12381
    assert header_tag(invite.headers["From"]) == "bd9d6ca500a6b4d6"
    assert header_tag(invite.headers["To"]) == ""
    assert str(invite.contact[0].uri) == "sip:caller-0x56483be47520@127.0.0.1:5070"
    assert invite.body.startswith(b"v=0\r\n") and len(invite.body) == 320


def test_our_200_ok_has_contact_to_tag_and_sdp() -> None:
    ok = parse_message(load("voicebot_200_ok.sip"))
    assert isinstance(ok, Response) and ok.code == 200
    assert header_tag(ok.headers["To"])
    assert ok.contact and ok.contact[0].uri.host == "127.0.0.1"
    assert ok.headers["Content-Type"] == "application/sdp"
    assert ok.via[0].parameters["rport"] == "5070"  # RFC 3581 filled in


def test_stamp_via_fills_rport_and_received() -> None:
    invite = parse_message(load("baresip_invite.sip"))
    assert isinstance(invite, Request)
    stamp_via(invite, ("192.0.2.7", 40000))
    top = invite.via[0]
    assert top.parameters["rport"] == "40000" and top.parameters["received"] == "192.0.2.7"
    assert response_address(invite, ("192.0.2.7", 40000)) == ("192.0.2.7", 40000)


def test_without_rport_responses_go_to_received_and_via_port() -> None:
    raw = load("baresip_invite.sip").replace(b";rport", b"")
    invite = parse_message(raw)
    assert isinstance(invite, Request)
    stamp_via(invite, ("192.0.2.7", 40000))
    assert response_address(invite, ("192.0.2.7", 40000)) == ("192.0.2.7", 5070)


def test_make_response_copies_dialog_headers_and_adds_tag() -> None:
    invite = parse_message(load("baresip_invite.sip"))
    assert isinstance(invite, Request)
    ringing = make_response(invite, 180, to_tag="abc")
    trying = make_response(invite, 100, to_tag="abc")
    assert header_tag(ringing.headers["To"]) == "abc"
    assert header_tag(trying.headers["To"]) == ""  # §8.2.6.2: no tag on 100
    assert ringing.headers["Call-ID"] == invite.call_id
    assert ringing.headers["CSeq"] == "12381 INVITE"
    assert ringing.headers["Content-Length"] == "0"
    assert bytes(parse_message(bytes(ringing))) == bytes(ringing)


def test_compact_headers_folding_and_bare_lf_are_accepted() -> None:
    raw = (
        b"OPTIONS sip:bot@127.0.0.1 SIP/2.0\n"
        b"v: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bKx1\n"
        b"f: <sip:a@127.0.0.1>;tag=1\n"
        b"t: <sip:bot@127.0.0.1>\n"
        b"i: folded-call\n"
        b"CSeq: 7\n   OPTIONS\n"
        b"l: 0\n\n"
    )
    message = parse_message(raw)
    assert isinstance(message, Request)
    assert message.call_id == "folded-call" and message.cseq.sequence == 7


def test_body_is_trimmed_to_content_length() -> None:
    raw = load("baresip_invite.sip") + b"trailing garbage"
    assert len(parse_message(raw).body) == 320


BASE = (
    "OPTIONS sip:bot@127.0.0.1 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bKm\r\n"
    "From: <sip:a@127.0.0.1>;tag=1\r\n"
    "To: <sip:bot@127.0.0.1>\r\n"
    "Call-ID: m1\r\n"
    "CSeq: 1 OPTIONS\r\n"
    "Content-Length: 0\r\n\r\n"
)

MALFORMED = {
    "no blank line": BASE.replace("\r\n\r\n", "\r\n"),
    "missing Call-ID": BASE.replace("Call-ID: m1\r\n", ""),
    "missing Via": BASE.replace("Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bKm\r\n", ""),
    "bad CSeq": BASE.replace("CSeq: 1 OPTIONS", "CSeq: one OPTIONS"),
    "CSeq method mismatch": BASE.replace("CSeq: 1 OPTIONS", "CSeq: 1 INVITE"),
    "bad From": BASE.replace("From: <sip:a@127.0.0.1>;tag=1", "From: <<<"),
    "bad Via": BASE.replace("SIP/2.0/UDP 127.0.0.1:5061", "HTTP/1.1 x"),
    "header without colon": BASE.replace("Content-Length: 0", "Content-Length 0"),
    "short body": BASE.replace("Content-Length: 0", "Content-Length: 99"),
    "bad Content-Length": BASE.replace("Content-Length: 0", "Content-Length: lots"),
    "bad request URI": BASE.replace("sip:bot@127.0.0.1 SIP", "http://x SIP"),
    "bad status code": BASE.replace("OPTIONS sip:bot@127.0.0.1 SIP/2.0", "SIP/2.0 abc OK"),
    "not SIP": "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_messages_raise_parse_error(case: str) -> None:
    with pytest.raises(SipParseError):
        parse_message(MALFORMED[case].encode())


def test_binary_garbage_raises_parse_error() -> None:
    with pytest.raises(SipParseError):
        parse_message(bytes(range(256)) * 4)


def test_raw_scan_answers_what_it_can_address() -> None:
    raw = RawRequest.scan(MALFORMED["bad CSeq"].encode())
    assert raw is not None and raw.method == "OPTIONS"
    response = parse_message(
        raw.bad_request("bad CSeq", "t1").replace(b"one OPTIONS", b"1 OPTIONS")
    )
    assert isinstance(response, Response) and response.code == 400
    assert header_tag(response.headers["To"]) == "t1"
    # Nothing to address a response with, or an ACK (never answered): drop.
    assert RawRequest.scan(MALFORMED["not SIP"].encode()) is None
    assert RawRequest.scan(MALFORMED["missing Via"].encode()) is None
    assert RawRequest.scan(BASE.replace("OPTIONS", "ACK").encode()) is None
    assert RawRequest.scan(b"\x00\xff" * 50) is None
