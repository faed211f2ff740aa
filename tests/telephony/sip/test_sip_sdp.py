"""SDP offer/answer: the table of offers real peers send and what we answer."""

from __future__ import annotations

from pathlib import Path

import pytest

from voicebot.telephony.sip.message import parse_message
from voicebot.telephony.sip.sdp import (
    NegotiationError,
    Origin,
    SdpError,
    SessionDescription,
    accept_answer,
    make_offer,
    negotiate,
)

DATA = Path(__file__).parent / "data"


def offer(media: str, *attributes: str, connection: str = "192.0.2.10") -> SessionDescription:
    lines = ["v=0", "o=- 1 1 IN IP4 192.0.2.10", "s=-", f"c=IN IP4 {connection}", "t=0 0", media]
    return SessionDescription.parse("\r\n".join([*lines, *attributes]) + "\r\n")


def answer_for(sdp: SessionDescription):  # type: ignore[no-untyped-def]
    return negotiate(sdp, "127.0.0.1", 20000, Origin("voicebot", "9", 1, "127.0.0.1"))


# (label, m= line, extra lines) → (codec, payload type, DTMF payload type)
TABLE = [
    ("baresip", "m=audio 4000 RTP/AVP 0 101",
     ["a=rtpmap:0 PCMU/8000", "a=rtpmap:101 telephone-event/8000"], ("PCMU", 0, 101)),
    ("linphone static types, no rtpmap", "m=audio 4000 RTP/AVP 0 8 18", [], ("PCMU", 0, None)),
    ("offerer prefers PCMA", "m=audio 4000 RTP/AVP 8 0 101",
     ["a=rtpmap:101 telephone-event/8000"], ("PCMA", 8, 101)),
    ("opus first, G.711 later", "m=audio 4000 RTP/AVP 96 9 8 0 100",
     ["a=rtpmap:96 opus/48000/2", "a=rtpmap:9 G722/8000", "a=rtpmap:100 telephone-event/8000"],
     ("PCMA", 8, 100)),
    ("dynamic PCMU", "m=audio 4000 RTP/AVP 97 98",
     ["a=rtpmap:97 PCMU/8000", "a=rtpmap:98 telephone-event/8000"], ("PCMU", 97, 98)),
    ("wideband telephone-event only", "m=audio 4000 RTP/AVP 0 101",
     ["a=rtpmap:101 telephone-event/16000"], ("PCMU", 0, None)),
    ("AVPF profile", "m=audio 4000 RTP/AVPF 0", [], ("PCMU", 0, None)),
]  # fmt: skip


@pytest.mark.parametrize(("label", "media", "attrs", "expected"), TABLE, ids=[t[0] for t in TABLE])
def test_codec_choice(label: str, media: str, attrs: list[str], expected: tuple) -> None:
    plan, answer = answer_for(offer(media, *attrs))
    assert (plan.codec, plan.payload_type, plan.dtmf_payload_type) == expected
    audio = answer.media[0]
    assert audio.port == 20000 and audio.payload_types()[0] == expected[1]
    assert (plan.remote_host, plan.remote_port) == ("192.0.2.10", 4000)


NO_MATCH = [
    ("GSM/G.722/G.729 only", "m=audio 4000 RTP/AVP 3 9 18", []),
    ("opus only", "m=audio 4000 RTP/AVP 111", ["a=rtpmap:111 opus/48000/2"]),
    ("SRTP profile", "m=audio 4000 RTP/SAVP 0", []),
    ("audio stream disabled", "m=audio 0 RTP/AVP 0", []),
    ("video only", "m=video 4000 RTP/AVP 96", ["a=rtpmap:96 VP8/90000"]),
]


@pytest.mark.parametrize(("label", "media", "attrs"), NO_MATCH, ids=[t[0] for t in NO_MATCH])
def test_no_common_codec_raises_for_488(label: str, media: str, attrs: list[str]) -> None:
    with pytest.raises(NegotiationError):
        answer_for(offer(media, *attrs))


@pytest.mark.parametrize(
    ("offered", "ours", "sends", "receives"),
    [
        ("sendrecv", "sendrecv", True, True),
        ("sendonly", "recvonly", False, True),  # caller put us on hold
        ("recvonly", "sendonly", True, False),
        ("inactive", "inactive", False, False),
    ],
)
def test_direction_is_mirrored(offered: str, ours: str, sends: bool, receives: bool) -> None:
    plan, answer = answer_for(offer("m=audio 4000 RTP/AVP 0", f"a={offered}"))
    assert plan.direction == ours and answer.media[0].direction == ours
    assert (plan.sends, plan.receives) == (sends, receives)


def test_rfc2543_hold_with_null_connection() -> None:
    plan, _ = answer_for(offer("m=audio 4000 RTP/AVP 0", connection="0.0.0.0"))
    assert plan.on_hold and not plan.sends


def test_every_offered_stream_gets_an_answer_line() -> None:
    sdp = offer("m=video 5000 RTP/AVP 96", "a=rtpmap:96 VP8/90000", "m=audio 4000 RTP/AVP 0")
    plan, answer = answer_for(sdp)
    assert [(m.media, m.port) for m in answer.media] == [("video", 0), ("audio", 20000)]
    assert plan.remote_port == 4000


def test_answer_to_the_captured_baresip_offer() -> None:
    invite = parse_message((DATA / "baresip_invite.sip").read_bytes())
    plan, answer = answer_for(SessionDescription.parse(invite.body))
    assert (plan.codec, plan.dtmf_payload_type, plan.remote_port) == ("PCMU", 101, 40202)
    text = answer.serialize().decode()
    assert "m=audio 20000 RTP/AVP 0 101\r\n" in text
    assert "a=rtpmap:101 telephone-event/8000\r\n" in text and "a=fmtp:101 0-15\r\n" in text
    assert "c=IN IP4 127.0.0.1\r\n" in text and "a=sendrecv\r\n" in text


def test_parse_serialize_round_trip_keeps_every_line() -> None:
    body = parse_message((DATA / "baresip_reinvite_hold.sip").read_bytes()).body
    assert SessionDescription.parse(body).serialize() == body


def test_delayed_offer_and_its_answer() -> None:
    ours = make_offer("127.0.0.1", 20002, Origin("voicebot", "1", 1, "127.0.0.1"))
    text = ours.serialize().decode()
    assert "m=audio 20002 RTP/AVP 0 8 101\r\n" in text
    their_answer = offer("m=audio 4002 RTP/AVP 8 101", "a=rtpmap:101 telephone-event/8000")
    plan = accept_answer(their_answer)
    assert (plan.codec, plan.payload_type, plan.dtmf_payload_type, plan.remote_port) == (
        "PCMA",
        8,
        101,
        4002,
    )


@pytest.mark.parametrize(
    "text",
    ["", "m=audio 4000 RTP/AVP 0\r\n", "v=0\r\nnonsense\r\n", "v=0\r\nm=audio x RTP/AVP 0\r\n"],
)
def test_unreadable_sdp_raises(text: str) -> None:
    with pytest.raises(SdpError):
        SessionDescription.parse(text)
