"""The Twilio wire format, message by message (no sockets)."""

from __future__ import annotations

import base64
import json

import pytest

from voicebot.telephony.media_stream import (
    Connected,
    Dtmf,
    Mark,
    Media,
    MediaFormat,
    MediaStreamProtocolError,
    Start,
    Stop,
    TwilioSerializer,
    UnknownEventError,
)

SID = "MZ18ad3ab5a668481ce02b83e7395059f0"

START = {
    "event": "start",
    "sequenceNumber": "1",
    "start": {
        "accountSid": "AC123",
        "streamSid": SID,
        "callSid": "CA456",
        "tracks": ["inbound"],
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        "customParameters": {"caller": "+15550100", "FirstName": "Jane"},
    },
    "streamSid": SID,
}


def test_connected() -> None:
    event = TwilioSerializer().parse('{"event":"connected","protocol":"Call","version":"1.0.0"}')
    assert event == Connected("Call", "1.0.0")


def test_start_carries_call_parameters_and_sets_stream_sid() -> None:
    serializer = TwilioSerializer()
    event = serializer.parse(json.dumps(START))
    assert event == Start(
        stream_sid=SID,
        call_sid="CA456",
        account_sid="AC123",
        tracks=("inbound",),
        custom_parameters={"caller": "+15550100", "FirstName": "Jane"},
        media_format=MediaFormat("audio/x-mulaw", 8000, 1),
    )
    assert event.media_format.is_telephone_ulaw
    assert serializer.stream_sid == SID


def test_media_payload_is_decoded_and_counters_are_ints() -> None:
    raw = bytes(range(160))
    msg = {
        "event": "media",
        "sequenceNumber": "3",
        "media": {
            "track": "inbound",
            "chunk": "1",
            "timestamp": "5",
            "payload": base64.b64encode(raw).decode(),
        },
        "streamSid": SID,
    }
    assert TwilioSerializer().parse(json.dumps(msg)) == Media(raw, timestamp=5, chunk=1)


def test_dtmf_mark_stop() -> None:
    s = TwilioSerializer()
    dtmf = {"event": "dtmf", "streamSid": SID, "dtmf": {"track": "inbound_track", "digit": "#"}}
    assert s.parse(json.dumps(dtmf)) == Dtmf("#")
    mark = {"event": "mark", "streamSid": SID, "mark": {"name": "voicebot-7"}}
    assert s.parse(json.dumps(mark)) == Mark("voicebot-7")
    stop = {"event": "stop", "streamSid": SID, "stop": {"accountSid": "AC1", "callSid": "CA4"}}
    assert s.parse(json.dumps(stop)) == Stop(call_sid="CA4", account_sid="AC1")


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[1, 2]",
        "{}",
        '{"event": "media"}',
        '{"event": "media", "media": {"payload": "###"}}',
        '{"event": "media", "media": {"payload": "AAAA", "timestamp": "soon"}}',
        '{"event": "start", "start": {"callSid": "CA1"}}',
        '{"event": "dtmf", "dtmf": {"digit": "x"}}',
        '{"event": "mark", "mark": {}}',
        b"\xff\xfe",
    ],
)
def test_malformed_messages_raise_protocol_error(text: str | bytes) -> None:
    with pytest.raises(MediaStreamProtocolError):
        TwilioSerializer().parse(text)


def test_unknown_event_has_its_own_error_type() -> None:
    with pytest.raises(UnknownEventError, match="'transcription'"):
        TwilioSerializer().parse('{"event": "transcription", "streamSid": "MZ1"}')


def test_outbound_messages_name_the_stream() -> None:
    s = TwilioSerializer(SID)
    media = json.loads(s.media(b"\xff\x7f\x00"))
    assert media == {"event": "media", "streamSid": SID, "media": {"payload": "/38A"}}
    assert json.loads(s.mark("m1")) == {"event": "mark", "streamSid": SID, "mark": {"name": "m1"}}
    assert json.loads(s.clear()) == {"event": "clear", "streamSid": SID}


def test_outbound_before_start_is_refused() -> None:
    with pytest.raises(MediaStreamProtocolError, match="streamSid"):
        TwilioSerializer().clear()
