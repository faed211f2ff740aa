"""RTP media for SIP calls: packets (RFC 3550), telephone events (RFC 4733),
a receive jitter buffer and a paced, continuously sending media session.

Kept apart from ``sip`` because nothing here knows about signalling: a media
session is configured with a codec, a remote address and a direction, and a
future transport (a SIP trunk over TCP/TLS, a bridge to an agent) can reuse it.
"""

from voicebot.telephony.rtp.dtmf import DtmfDetector, TelephoneEvent
from voicebot.telephony.rtp.jitter import JitterBuffer
from voicebot.telephony.rtp.packet import RtpError, RtpPacket
from voicebot.telephony.rtp.session import (
    Codec,
    MediaSession,
    PlayoutBuffer,
    PortAllocator,
    codec_by_name,
)

__all__ = [
    "Codec",
    "DtmfDetector",
    "JitterBuffer",
    "MediaSession",
    "PlayoutBuffer",
    "PortAllocator",
    "RtpError",
    "RtpPacket",
    "TelephoneEvent",
    "codec_by_name",
]
