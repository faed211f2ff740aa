"""RTP packets (RFC 3550 §5.1) as a dataclass with ``parse``/``serialize``.

Hand-written because it is 12 bytes of fixed header: a dependency (aiortc's
``rtp.py`` would pull in its whole WebRTC stack) would cost more than it saves.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

RTP_VERSION = 2
HEADER = struct.Struct("!BBHII")


class RtpError(ValueError):
    """The datagram is not a valid RTP packet."""


@dataclass(frozen=True, slots=True)
class RtpExtension:
    """A header extension (RFC 3550 §5.3.1), kept only so it round-trips."""

    profile: int
    data: bytes


@dataclass(frozen=True, slots=True)
class RtpPacket:
    payload_type: int
    sequence_number: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False
    csrc: tuple[int, ...] = ()
    extension: RtpExtension | None = None

    @classmethod
    def parse(cls, data: bytes) -> RtpPacket:
        """Parse one datagram; raises :class:`RtpError` on anything malformed."""
        if len(data) < HEADER.size:
            raise RtpError("RTP packet shorter than its header")
        first, second, seq, ts, ssrc = HEADER.unpack_from(data)
        if first >> 6 != RTP_VERSION:
            raise RtpError(f"RTP version {first >> 6}")
        pos = HEADER.size + 4 * (first & 0x0F)
        if len(data) < pos:
            raise RtpError("RTP CSRC list truncated")
        csrc = struct.unpack_from(f"!{first & 0x0F}I", data, HEADER.size)
        extension, pos = _parse_extension(data, pos) if first & 0x10 else (None, pos)
        end = len(data) - (_padding(data) if first & 0x20 else 0)
        if end < pos:
            raise RtpError("RTP padding longer than the payload")
        return cls(
            payload_type=second & 0x7F,
            sequence_number=seq,
            timestamp=ts,
            ssrc=ssrc,
            payload=bytes(data[pos:end]),
            marker=bool(second & 0x80),
            csrc=tuple(csrc),
            extension=extension,
        )

    def serialize(self) -> bytes:
        first = (RTP_VERSION << 6) | (0x10 if self.extension else 0) | len(self.csrc)
        second = (0x80 if self.marker else 0) | (self.payload_type & 0x7F)
        out = HEADER.pack(
            first,
            second,
            self.sequence_number & 0xFFFF,
            self.timestamp & 0xFFFFFFFF,
            self.ssrc & 0xFFFFFFFF,
        )
        out += struct.pack(f"!{len(self.csrc)}I", *self.csrc)
        if self.extension:
            words = -(-len(self.extension.data) // 4)
            out += struct.pack("!HH", self.extension.profile, words)
            out += self.extension.data.ljust(4 * words, b"\0")
        return out + self.payload


def _parse_extension(data: bytes, pos: int) -> tuple[RtpExtension, int]:
    if len(data) < pos + 4:
        raise RtpError("RTP extension header truncated")
    profile, words = struct.unpack_from("!HH", data, pos)
    end = pos + 4 + 4 * words
    if len(data) < end:
        raise RtpError("RTP extension truncated")
    return RtpExtension(profile, bytes(data[pos + 4 : end])), end


def _padding(data: bytes) -> int:
    count = data[-1]
    if count == 0:
        raise RtpError("RTP padding count of zero")
    return count


def is_rtcp(data: bytes) -> bool:
    """RTCP packet types 200–204 sit where RTP's marker+PT byte is (RFC 5761 §4)."""
    return len(data) >= 2 and 192 <= data[1] <= 223


def seq_diff(a: int, b: int, bits: int = 16) -> int:
    """Signed distance a − b in a wrapping sequence/timestamp space."""
    half = 1 << (bits - 1)
    return ((a - b + half) % (1 << bits)) - half
