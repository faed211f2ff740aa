"""Carrier media streams: the Twilio Media Streams WebSocket protocol.

``serializer`` speaks the wire format, ``channel`` turns one stream into a
CallChannel, ``endpoint`` serves the WebSockets from aiohttp.
"""

from voicebot.telephony.media_stream.auth import StreamAuth
from voicebot.telephony.media_stream.channel import (
    MediaStreamChannel,
    MediaStreamOutput,
    UlawFrameAssembler,
    caller_id_from,
)
from voicebot.telephony.media_stream.endpoint import (
    MediaStreamEndpoint,
    media_stream_app,
    media_stream_routes,
)
from voicebot.telephony.media_stream.security import (
    twilio_signature,
    twilio_signature_authorizer,
)
from voicebot.telephony.media_stream.serializer import (
    Connected,
    Dtmf,
    Mark,
    Media,
    MediaFormat,
    MediaStreamEvent,
    MediaStreamProtocolError,
    Start,
    Stop,
    TwilioSerializer,
    UnknownEventError,
)

__all__ = [
    "Connected",
    "Dtmf",
    "Mark",
    "Media",
    "MediaFormat",
    "MediaStreamChannel",
    "MediaStreamEndpoint",
    "MediaStreamEvent",
    "MediaStreamOutput",
    "MediaStreamProtocolError",
    "Start",
    "Stop",
    "StreamAuth",
    "TwilioSerializer",
    "UlawFrameAssembler",
    "UnknownEventError",
    "caller_id_from",
    "media_stream_app",
    "media_stream_routes",
    "twilio_signature",
    "twilio_signature_authorizer",
]
