"""Twilio Media Streams messages ⇄ typed events, with no transport attached.

Keeping the carrier's wire format here (the Pipecat "serializer" idea) lets
the WebSocket endpoint stay a dumb pipe, lets tests check the protocol with
plain strings, and leaves room for another carrier's dialect (Telnyx,
SignalWire, Fonoster speak near-copies of it) as a sibling class.

Inbound: ``connected``, ``start``, ``media``, ``dtmf``, ``mark``, ``stop``.
Outbound: ``media`` (base64 μ-law), ``mark``, ``clear``.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

from voicebot.core.frames import DTMF_DIGITS

ULAW_ENCODING = "audio/x-mulaw"


class MediaStreamProtocolError(ValueError):
    """A message we cannot use: bad JSON, missing fields, wrong types.

    The endpoint logs and skips these; one bad message must not drop a call.
    """


class UnknownEventError(MediaStreamProtocolError):
    """Well-formed JSON with an ``event`` we do not know (newer carrier features)."""


@dataclass(frozen=True, slots=True)
class MediaFormat:
    encoding: str = ULAW_ENCODING
    sample_rate: int = 8000
    channels: int = 1

    @property
    def is_telephone_ulaw(self) -> bool:
        """The only format the bidirectional stream speaks (and we decode)."""
        return (self.encoding, self.sample_rate, self.channels) == (ULAW_ENCODING, 8000, 1)


@dataclass(frozen=True, slots=True)
class Connected:
    protocol: str = "Call"
    version: str = ""


@dataclass(frozen=True, slots=True)
class Start:
    stream_sid: str
    call_sid: str
    account_sid: str = ""
    tracks: tuple[str, ...] = ("inbound",)
    custom_parameters: dict[str, str] = field(default_factory=dict)
    media_format: MediaFormat = field(default_factory=MediaFormat)


@dataclass(frozen=True, slots=True)
class Media:
    payload: bytes  # raw μ-law bytes, already base64-decoded
    timestamp: int  # ms since the stream started
    chunk: int
    track: str = "inbound"


@dataclass(frozen=True, slots=True)
class Dtmf:
    digit: str


@dataclass(frozen=True, slots=True)
class Mark:
    name: str


@dataclass(frozen=True, slots=True)
class Stop:
    call_sid: str = ""
    account_sid: str = ""


MediaStreamEvent = Connected | Start | Media | Dtmf | Mark | Stop


def _obj(msg: dict[str, Any], key: str) -> dict[str, Any]:
    value = msg.get(key)
    if not isinstance(value, dict):
        raise MediaStreamProtocolError(f"{msg.get('event')!r} message without a {key!r} object")
    return value


def _str(obj: dict[str, Any], key: str, *, required: bool = True) -> str:
    value = obj.get(key, None if required else "")
    if not isinstance(value, str) or (required and not value):
        raise MediaStreamProtocolError(f"field {key!r} must be a non-empty string, got {value!r}")
    return value


def _int(obj: dict[str, Any], key: str, default: int = 0) -> int:
    """Twilio sends counters as decimal strings ("5"); accept numbers too."""
    value = obj.get(key, default)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise MediaStreamProtocolError(f"field {key!r} is not an integer: {value!r}") from None


def _parse_start(msg: dict[str, Any]) -> Start:
    start = _obj(msg, "start")
    stream_sid = start.get("streamSid") or msg.get("streamSid")
    if not isinstance(stream_sid, str) or not stream_sid:
        raise MediaStreamProtocolError("start message without a streamSid")
    params = start.get("customParameters") or {}
    if not isinstance(params, dict):
        raise MediaStreamProtocolError("start.customParameters must be an object")
    fmt = start.get("mediaFormat") or {}
    if not isinstance(fmt, dict):
        raise MediaStreamProtocolError("start.mediaFormat must be an object")
    tracks = start.get("tracks") or ["inbound"]
    return Start(
        stream_sid=stream_sid,
        call_sid=_str(start, "callSid"),
        account_sid=_str(start, "accountSid", required=False),
        tracks=tuple(str(t) for t in tracks) if isinstance(tracks, list) else ("inbound",),
        custom_parameters={str(k): str(v) for k, v in params.items()},
        media_format=MediaFormat(
            encoding=str(fmt.get("encoding", ULAW_ENCODING)),
            sample_rate=_int(fmt, "sampleRate", 8000),
            channels=_int(fmt, "channels", 1),
        ),
    )


def _parse_media(msg: dict[str, Any]) -> Media:
    media = _obj(msg, "media")
    try:
        payload = base64.b64decode(_str(media, "payload"), validate=True)
    except (binascii.Error, ValueError) as exc:  # ValueError: non-ASCII text
        raise MediaStreamProtocolError(f"media payload is not base64: {exc}") from None
    return Media(
        payload=payload,
        timestamp=_int(media, "timestamp"),
        chunk=_int(media, "chunk"),
        track=str(media.get("track", "inbound")),
    )


def _parse_dtmf(msg: dict[str, Any]) -> Dtmf:
    digit = _str(_obj(msg, "dtmf"), "digit")
    if digit not in DTMF_DIGITS:
        raise MediaStreamProtocolError(f"not a DTMF digit: {digit!r}")
    return Dtmf(digit)


def _parse_stop(msg: dict[str, Any]) -> Stop:
    stop = msg.get("stop")
    stop = stop if isinstance(stop, dict) else {}
    return Stop(call_sid=str(stop.get("callSid", "")), account_sid=str(stop.get("accountSid", "")))


_PARSERS = {
    "connected": lambda m: Connected(str(m.get("protocol", "Call")), str(m.get("version", ""))),
    "start": _parse_start,
    "media": _parse_media,
    "dtmf": _parse_dtmf,
    "mark": lambda m: Mark(_str(_obj(m, "mark"), "name")),
    "stop": _parse_stop,
}


class TwilioSerializer:
    """Parses carrier messages and writes ours for one stream.

    It learns the ``streamSid`` from ``start`` (or takes it up front), because
    every outbound message must name the stream it belongs to.
    """

    def __init__(self, stream_sid: str | None = None) -> None:
        self.stream_sid = stream_sid

    def parse(self, text: str | bytes) -> MediaStreamEvent:
        """One WebSocket text message → one typed event, or a protocol error."""
        try:
            msg = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise MediaStreamProtocolError(f"not JSON: {exc}") from None
        if not isinstance(msg, dict):
            raise MediaStreamProtocolError("message is not a JSON object")
        event = msg.get("event")
        parser = _PARSERS.get(event) if isinstance(event, str) else None
        if parser is None:
            raise UnknownEventError(f"unknown event {event!r}")
        parsed = parser(msg)
        if isinstance(parsed, Start):
            self.stream_sid = parsed.stream_sid
        return parsed

    # ----------------------------------------------------------------- outbound

    def media(self, ulaw: bytes) -> str:
        """Bot audio for the caller: raw μ-law bytes, any length."""
        payload = base64.b64encode(ulaw).decode("ascii")
        return self._dump({"event": "media", "media": {"payload": payload}})

    def mark(self, name: str) -> str:
        """Ask the carrier to echo ``name`` once the audio sent before it has played."""
        return self._dump({"event": "mark", "mark": {"name": name}})

    def clear(self) -> str:
        """Drop the audio the carrier has buffered (barge-in)."""
        return self._dump({"event": "clear"})

    def _dump(self, msg: dict[str, Any]) -> str:
        if not self.stream_sid:
            raise MediaStreamProtocolError("no streamSid yet: outbound messages need a start first")
        return json.dumps({"event": msg["event"], "streamSid": self.stream_sid, **msg})
