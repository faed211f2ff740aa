"""RFC 4733 telephone events: keypad digits carried in RTP.

A sender repeats each event's packets while the key is held and sends the end
packet three times (§2.5.1.4); every packet of one event carries the same RTP
timestamp.  So the detector reports a digit the first time it sees a
(SSRC, timestamp) pair — on the first packet, for the lowest latency — and
ignores the rest, even when the start packets were lost and only an end
packet arrives.
"""

from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass

from voicebot.telephony.rtp.packet import RtpError, RtpPacket

EVENT_DIGITS = "0123456789*#ABCD"
PAYLOAD = struct.Struct("!BBH")


@dataclass(frozen=True, slots=True)
class TelephoneEvent:
    event: int
    end: bool = False
    volume: int = 10  # dBm0 below zero, 0–63
    duration: int = 0  # in RTP timestamp units

    @classmethod
    def parse(cls, payload: bytes) -> TelephoneEvent:
        if len(payload) < PAYLOAD.size:
            raise RtpError("telephone-event payload shorter than 4 bytes")
        event, flags, duration = PAYLOAD.unpack_from(payload)
        return cls(event=event, end=bool(flags & 0x80), volume=flags & 0x3F, duration=duration)

    def serialize(self) -> bytes:
        flags = (0x80 if self.end else 0) | (self.volume & 0x3F)
        return PAYLOAD.pack(self.event, flags, self.duration & 0xFFFF)

    @property
    def digit(self) -> str | None:
        """The keypad digit, or None for other events (tones, flash)."""
        return EVENT_DIGITS[self.event] if self.event < len(EVENT_DIGITS) else None


class DtmfDetector:
    """Turns a stream of telephone-event packets into digits, once per key press."""

    def __init__(self, memory: int = 32) -> None:
        self._seen: deque[tuple[int, int]] = deque(maxlen=memory)

    def feed(self, packet: RtpPacket) -> str | None:
        """The digit this packet starts, or None (repeat, end retransmit, non-digit)."""
        try:
            event = TelephoneEvent.parse(packet.payload)
        except RtpError:
            return None
        key = (packet.ssrc, packet.timestamp)
        if key in self._seen:
            return None
        self._seen.append(key)
        return event.digit
