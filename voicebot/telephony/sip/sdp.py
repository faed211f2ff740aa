"""SDP (RFC 4566) and the offer/answer rules we need (RFC 3264).

Hand-written: sipmessage stops at the SIP body, and the SDP we meet is a dozen
line types.  Unknown lines are kept in order so a parsed description
serialises back to what came in.

Negotiation picks the *offerer's* first codec among PCMU/PCMA (RFC 3264 lets
the answerer choose; following the offer keeps carriers from transcoding),
maps static payload types that come without ``a=rtpmap`` (linphone sends
``m=audio … 0 8 18`` bare), adds telephone-event when offered, and answers
every other media line with port 0 as §6 requires.
"""

from __future__ import annotations

import ipaddress
import secrets
from dataclasses import dataclass, field

from voicebot.telephony.addresses import decimal, ip_literal

# RFC 3551 table 4: static audio payload types → (encoding, clock rate).
STATIC_PAYLOAD_TYPES: dict[int, tuple[str, int]] = {
    0: ("PCMU", 8000),
    3: ("GSM", 8000),
    4: ("G723", 8000),
    8: ("PCMA", 8000),
    9: ("G722", 8000),
    13: ("CN", 8000),
    18: ("G729", 8000),
}
SUPPORTED_CODECS = ("PCMU", "PCMA")
DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
ANSWER_DIRECTION = {
    "sendrecv": "sendrecv",
    "sendonly": "recvonly",
    "recvonly": "sendonly",
    "inactive": "inactive",
}
DEFAULT_DTMF_PT = 101


class SdpError(ValueError):
    """The body is not SDP we can read."""


class NegotiationError(ValueError):
    """No acceptable media: the INVITE gets 488 with this as the Warning."""


@dataclass
class Origin:
    username: str = "-"
    session_id: str = "0"
    version: int = 0
    address: str = "127.0.0.1"

    @classmethod
    def parse(cls, value: str) -> Origin:
        parts = value.split()
        version = decimal(parts[2], 0, 2**63) if len(parts) == 6 else None
        if version is None:
            raise SdpError(f"bad o= line: {value!r}")
        return cls(parts[0], parts[1], version, parts[5])

    def __str__(self) -> str:
        address = f"IN {_addrtype(self.address)} {self.address}"
        return f"{self.username} {self.session_id} {self.version} {address}"


@dataclass
class MediaDescription:
    media: str
    port: int
    proto: str
    formats: list[str]
    connection: str | None = None
    attributes: list[tuple[str, str | None]] = field(default_factory=list)
    other: list[tuple[str, str]] = field(default_factory=list)  # b=, i=, k= lines

    def attribute(self, name: str) -> str | None:
        return next((v or "" for k, v in self.attributes if k == name), None)

    @property
    def direction(self) -> str:
        return next((k for k, _ in self.attributes if k in DIRECTIONS), "")

    def rtpmap(self) -> dict[int, tuple[str, int]]:
        """Payload type → (encoding, clock rate): rtpmap lines over the static table."""
        table = {
            pt: STATIC_PAYLOAD_TYPES[pt]
            for pt in self.payload_types()
            if pt in STATIC_PAYLOAD_TYPES
        }
        for key, value in self.attributes:
            if key == "rtpmap" and value:
                pt, _, encoding = value.partition(" ")
                name, _, rest = encoding.partition("/")
                number, rate = decimal(pt, 0, 127), decimal(rest.partition("/")[0], 1, 10**6)
                if number is not None and rate is not None:
                    table[number] = (name, rate)
        return table

    def payload_types(self) -> list[int]:
        return [pt for pt in (decimal(f, 0, 127) for f in self.formats) if pt is not None]

    def lines(self) -> list[str]:
        out = [f"m={self.media} {self.port} {self.proto} {' '.join(self.formats)}"]
        out += [f"{k}={v}" for k, v in self.other if k == "i"]
        if self.connection:
            out.append(f"c=IN {_addrtype(self.connection)} {self.connection}")
        out += [f"{k}={v}" for k, v in self.other if k != "i"]
        out += [f"a={k}" if v is None else f"a={k}:{v}" for k, v in self.attributes]
        return out


@dataclass
class SessionDescription:
    origin: Origin = field(default_factory=Origin)
    name: str = "-"
    connection: str | None = None
    timing: str = "0 0"
    attributes: list[tuple[str, str | None]] = field(default_factory=list)
    media: list[MediaDescription] = field(default_factory=list)
    other: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def parse(cls, text: str | bytes) -> SessionDescription:
        if isinstance(text, bytes):
            try:
                text = text.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise SdpError("SDP is not UTF-8") from exc
        sdp = cls()
        seen_version = False
        for raw in text.splitlines():
            line = raw.strip()
            if not line:
                continue
            kind, sep, value = line.partition("=")
            if not sep or len(kind) != 1:
                raise SdpError(f"bad SDP line: {line!r}")
            seen_version |= kind == "v"
            sdp._add_line(kind, value)
        if not seen_version:
            raise SdpError("SDP without v= line")
        return sdp

    def _add_line(self, kind: str, value: str) -> None:
        target = self.media[-1] if self.media else None
        if kind == "m":
            self.media.append(_parse_media(value))
        elif kind == "c":
            address = _parse_connection(value)
            if target:
                target.connection = address
            else:
                self.connection = address
        elif kind == "a":
            name, sep, val = value.partition(":")
            (target or self).attributes.append((name, val if sep else None))
        elif kind == "o" and not target:
            self.origin = Origin.parse(value)
        elif kind == "s" and not target:
            self.name = value
        elif kind == "t" and not target:
            self.timing = value
        elif kind != "v":
            (target or self).other.append((kind, value))

    def serialize(self) -> bytes:
        lines = ["v=0", f"o={self.origin}", f"s={self.name or '-'}"]
        if self.connection:
            lines.append(f"c=IN {_addrtype(self.connection)} {self.connection}")
        lines += [f"{k}={v}" for k, v in self.other]
        lines.append(f"t={self.timing}")
        lines += [f"a={k}" if v is None else f"a={k}:{v}" for k, v in self.attributes]
        for media in self.media:
            lines += media.lines()
        return ("\r\n".join(lines) + "\r\n").encode()

    def session_direction(self) -> str:
        return next((k for k, _ in self.attributes if k in DIRECTIONS), "sendrecv")


def _parse_media(value: str) -> MediaDescription:
    parts = value.split()
    if len(parts) < 3:
        raise SdpError(f"bad m= line: {value!r}")
    port = decimal(parts[1].partition("/")[0], 0, 65535)
    if port is None:
        raise SdpError(f"bad m= port: {value!r}")
    return MediaDescription(parts[0], port, parts[2], parts[3:])


def _parse_connection(value: str) -> str:
    """The c= address as a normalised IP literal.  A host name is refused:
    resolving it would block the event loop, on every packet if cached nowhere."""
    parts = value.split()
    if len(parts) != 3 or parts[0] != "IN":
        raise SdpError(f"bad c= line: {value!r}")
    address = ip_literal(parts[2].partition("/")[0])
    if address is None:
        raise SdpError(f"c= is not an IP address: {parts[2][:60]!r}")
    return address


def _addrtype(address: str) -> str:
    return "IP6" if ":" in address else "IP4"


# ---------------------------------------------------------------- negotiation


@dataclass(frozen=True)
class MediaPlan:
    """What both sides agreed: codec, DTMF payload type, where to send, direction.

    ``direction`` is *ours* (the answer's): ``recvonly`` when the caller put
    us on hold with ``sendonly``, and so on.
    """

    codec: str
    payload_type: int
    dtmf_payload_type: int | None
    remote_host: str
    remote_port: int
    direction: str = "sendrecv"

    @property
    def sends(self) -> bool:
        return self.direction in ("sendrecv", "sendonly") and not _is_null(self.remote_host)

    @property
    def receives(self) -> bool:
        return self.direction in ("sendrecv", "recvonly")

    @property
    def on_hold(self) -> bool:
        return self.direction != "sendrecv" or _is_null(self.remote_host)


def _is_null(host: str) -> bool:
    """c=0.0.0.0: RFC 2543 hold, still sent by some PBXes."""
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


def negotiate(
    offer: SessionDescription,
    local_host: str,
    local_port: int,
    origin: Origin,
    codecs: tuple[str, ...] = SUPPORTED_CODECS,
) -> tuple[MediaPlan, SessionDescription]:
    """Answer an offer; raises :class:`NegotiationError` when nothing fits (488)."""
    plan: MediaPlan | None = None
    answer_media: list[MediaDescription] = []
    for media in offer.media:
        chosen = None if plan else _choose(offer, media, codecs)
        if chosen is None:
            answer_media.append(MediaDescription(media.media, 0, media.proto, media.formats[:1]))
            continue
        plan = chosen
        answer_media.append(_answer_media(plan, media, local_port))
    if plan is None:
        raise NegotiationError(_no_match_reason(offer, codecs))
    answer = SessionDescription(origin=origin, name="voicebot", connection=local_host)
    answer.media = answer_media
    return plan, answer


def _choose(
    offer: SessionDescription, media: MediaDescription, codecs: tuple[str, ...]
) -> MediaPlan | None:
    if media.media != "audio" or media.port == 0 or media.proto not in ("RTP/AVP", "RTP/AVPF"):
        return None
    rtpmap = media.rtpmap()
    wanted = {c.upper() for c in codecs}
    audio = next(
        (
            pt
            for pt in media.payload_types()
            if pt in rtpmap and rtpmap[pt][0].upper() in wanted and rtpmap[pt][1] == 8000
        ),
        None,
    )
    host = media.connection or offer.connection
    if audio is None or not host:
        return None
    dtmf = next(
        (
            pt
            for pt, (name, rate) in rtpmap.items()
            if name.lower() == "telephone-event" and rate == 8000 and pt in media.payload_types()
        ),
        None,
    )
    direction = media.direction or offer.session_direction()
    return MediaPlan(
        codec=rtpmap[audio][0].upper(),
        payload_type=audio,
        dtmf_payload_type=dtmf,
        remote_host=host,
        remote_port=media.port,
        direction=ANSWER_DIRECTION.get(direction, "sendrecv"),
    )


def _answer_media(plan: MediaPlan, offered: MediaDescription, local_port: int) -> MediaDescription:
    formats = [str(plan.payload_type)]
    attributes: list[tuple[str, str | None]] = [
        ("rtpmap", f"{plan.payload_type} {plan.codec}/8000")
    ]
    if plan.dtmf_payload_type is not None:
        formats.append(str(plan.dtmf_payload_type))
        attributes += [
            ("rtpmap", f"{plan.dtmf_payload_type} telephone-event/8000"),
            ("fmtp", f"{plan.dtmf_payload_type} 0-15"),
        ]
    attributes += [("ptime", "20"), (plan.direction, None)]
    return MediaDescription("audio", local_port, offered.proto, formats, attributes=attributes)


def _no_match_reason(offer: SessionDescription, codecs: tuple[str, ...]) -> str:
    offered = [
        f"{name}/{rate}"
        for m in offer.media
        if m.media == "audio"
        for name, rate in m.rtpmap().values()
    ]
    if not any(m.media == "audio" and m.port for m in offer.media):
        return "no audio stream offered"
    return (
        f"no common codec: offered {', '.join(offered) or 'nothing'}; we accept {', '.join(codecs)}"
    )


def make_offer(
    local_host: str, local_port: int, origin: Origin, codecs: tuple[str, ...] = SUPPORTED_CODECS
) -> SessionDescription:
    """Our offer, for INVITEs that arrive without SDP (delayed offer)."""
    pts = {"PCMU": 0, "PCMA": 8}
    formats = [str(pts[c.upper()]) for c in codecs if c.upper() in pts] + [str(DEFAULT_DTMF_PT)]
    attributes: list[tuple[str, str | None]] = [
        ("rtpmap", f"{pts[c.upper()]} {c.upper()}/8000") for c in codecs if c.upper() in pts
    ]
    attributes += [
        ("rtpmap", f"{DEFAULT_DTMF_PT} telephone-event/8000"),
        ("fmtp", f"{DEFAULT_DTMF_PT} 0-15"),
        ("ptime", "20"),
        ("sendrecv", None),
    ]
    offer = SessionDescription(origin=origin, name="voicebot", connection=local_host)
    offer.media = [MediaDescription("audio", local_port, "RTP/AVP", formats, attributes=attributes)]
    return offer


def accept_answer(
    answer: SessionDescription, codecs: tuple[str, ...] = SUPPORTED_CODECS
) -> MediaPlan:
    """The plan an answer to :func:`make_offer` settles on (from the ACK)."""
    for media in answer.media:
        plan = _choose(answer, media, codecs)
        if plan:
            # The answer's direction is the peer's; ours is its mirror.
            return plan
    raise NegotiationError(_no_match_reason(answer, codecs))


def new_origin(address: str) -> Origin:
    return Origin("voicebot", str(secrets.randbelow(2**62)), 1, address)
