"""SIP messages: parsing with validation, responses, and the bits RFC 3261 adds.

The message grammar itself is ``sipmessage``'s (aiortc authors, BSD-2).  Two
parts around it are ours, and why:

* ``sipmessage.Message.parse`` accepts any header set and ignores
  Content-Length; a UAS must refuse requests without Via/From/To/Call-ID/CSeq,
  trim or reject bodies by Content-Length (§18.3), unfold continuation lines
  (§7.3.1) and tolerate bare LF line ends, so :func:`parse_message` does that.
* When parsing fails outright we still owe the peer a 400 if the request
  names its Via/Call-ID/CSeq; :class:`RawRequest` is a tolerant line scanner
  that recovers just enough to address that response.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field

from sipmessage import URI, Address, Request, Response, Via
from sipmessage import address as _address_module
from sipmessage import mediatype as _mediatype_module
from sipmessage import via as _via_module
from sipmessage.message import COMPACT_FORMS

from voicebot.core.net import Addr

MAGIC_COOKIE = "z9hG4bK"
DEFAULT_PORT = 5060

# Methods we implement, and methods we know but do not serve here (405 + Allow).
# NOTIFY: in-dialog only, the progress of a REFER we sent (out of dialog: 481).
ALLOWED_METHODS = ("INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "INFO", "NOTIFY")
KNOWN_METHODS = (
    *ALLOWED_METHODS,
    "REGISTER",
    "SUBSCRIBE",
    "PUBLISH",
    "MESSAGE",
    "REFER",
    "UPDATE",
    "PRACK",
)
MANDATORY_HEADERS = ("Via", "From", "To", "Call-ID", "CSeq")
# Headers whose numbers we act on: Python's int() takes any Unicode digit
# ('٥٠' is 50), so only ASCII is accepted in them (RFC 3261 DIGIT is ASCII).
ASCII_HEADERS = ("Via", "CSeq", "Call-ID", "Content-Length", "Max-Forwards", "Expires")

REASONS = {
    100: "Trying",
    180: "Ringing",
    200: "OK",
    202: "Accepted",
    400: "Bad Request",
    403: "Forbidden",
    405: "Method Not Allowed",
    408: "Request Timeout",
    415: "Unsupported Media Type",
    420: "Bad Extension",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    482: "Loop Detected",
    483: "Too Many Hops",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    489: "Bad Event",
    491: "Request Pending",
    500: "Server Internal Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    603: "Decline",
}


class SipParseError(ValueError):
    """The datagram is not a SIP message we can act on (the text says why)."""


# sipmessage raises these same three objects for every bad Address, Via or
# media type.  Raising an object again chains the new traceback onto the one
# it already carries, so each malformed header kept its frames — and the
# datagram they hold — alive for good (the fuzzer's RSS grew ~150 B per
# datagram).  The transport clears them after every datagram.
_SHARED_EXCEPTIONS: tuple[BaseException, ...] = (
    _address_module.ADDRESS_EXCEPTION,
    _mediatype_module.MEDIATYPE_EXCEPTION,
    _via_module.VIA_EXCEPTION,
)


def release_parser_tracebacks() -> None:
    """Drop the tracebacks sipmessage's shared exception objects accumulate."""
    for exc in _SHARED_EXCEPTIONS:
        exc.__traceback__ = None
        exc.__context__ = exc.__cause__ = None


def new_tag() -> str:
    return secrets.token_hex(6)


def new_branch() -> str:
    return MAGIC_COOKIE + secrets.token_hex(8)


def new_call_id(host: str) -> str:
    return f"{secrets.token_hex(10)}@{host}"


# ------------------------------------------------------------------ parsing


def _normalise(data: bytes) -> bytes:
    """Split head/body, accept bare LF, unfold continuation lines."""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        head, sep, body = data.partition(b"\n\n")
        if not sep:
            raise SipParseError("no blank line after the headers")
    head = head.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    head = re.sub(rb"\r\n[ \t]+", b" ", head)
    for line in head.split(b"\r\n")[1:]:
        if b":" not in line:
            raise SipParseError(f"header line without a colon: {line[:40]!r}")
    return head + b"\r\n\r\n" + body


def parse_message(data: bytes) -> Request | Response:
    """Parse and validate one SIP datagram; raises :class:`SipParseError`."""
    try:
        message = _parse(_normalise(data.lstrip(b"\r\n")))
    except SipParseError:
        raise
    except (ValueError, IndexError) as exc:
        raise SipParseError(f"unparsable message: {exc}") from exc
    _validate(message)
    return message


def _parse(data: bytes) -> Request | Response:
    """``sipmessage.Message.parse``, linear in the header count.

    Its ``Headers.add`` scans every header already stored, so a datagram of
    700 headers cost hundreds of times a normal one; here the lines are
    grouped by name first and stored once.  Names are stripped (``Call-ID :``
    is legal, §7.3.1) and the start line is checked for ASCII digits."""
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("utf-8").split("\r\n")
    message = _start_line(lines[0], body)
    grouped: dict[str, tuple[str, list[str]]] = {}
    for line in lines[1:]:
        key, _, value = line.partition(":")
        key = key.strip()
        if not key or not _TOKEN.fullmatch(key):
            raise SipParseError(f"bad header name: {key[:40]!r}")
        key = COMPACT_FORMS.get(key.lower(), key)
        grouped.setdefault(key.lower(), (key, []))[1].append(value.strip())
    message.headers._list = list(grouped.values())  # the same shape add() builds
    return message


_TOKEN = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
_REQUEST_LINE = re.compile(r"([A-Za-z0-9\-.!%*_+`'~]+) (\S+) SIP/2\.0")
_STATUS_LINE = re.compile(r"SIP/2\.0 ([1-6][0-9][0-9]) (.*)")


def _start_line(line: str, body: bytes) -> Request | Response:
    request = _REQUEST_LINE.fullmatch(line)
    if request:
        return Request(method=request.group(1), uri=URI.parse(request.group(2)), body=body)
    status = _STATUS_LINE.fullmatch(line)
    if status:
        return Response(code=int(status.group(1)), phrase=status.group(2), body=body)
    raise SipParseError(f"neither a request nor a status line: {line[:60]!r}")


def _validate(message: Request | Response) -> None:
    for name in MANDATORY_HEADERS:
        if message.headers.get(name) is None:
            raise SipParseError(f"missing {name} header")
    try:
        vias, cseq = message.via, message.cseq
        message.from_address, message.to_address  # noqa: B018 - parse to validate
        max_forwards = message.max_forwards
    except ValueError as exc:
        raise SipParseError(f"bad header: {exc}") from exc
    if not vias:
        raise SipParseError("empty Via header")
    for name in ASCII_HEADERS:
        if not all(v.isascii() for v in message.headers.getlist(name)):
            raise SipParseError(f"non-ASCII {name} header")
    if any(via.port is not None and not 0 < via.port < 65536 for via in vias):
        raise SipParseError("Via port out of range")
    if not 0 <= cseq.sequence < 2**31:
        raise SipParseError("CSeq number out of range")
    if isinstance(message, Request) and cseq.method != message.method:
        raise SipParseError(f"CSeq method {cseq.method} does not match {message.method}")
    if max_forwards is not None and max_forwards < 0:
        raise SipParseError("negative Max-Forwards")
    _apply_content_length(message)


def _apply_content_length(message: Request | Response) -> None:
    """§18.3: over UDP, trim to Content-Length; a short body is an error."""
    try:
        length = message.content_length
    except ValueError as exc:
        raise SipParseError("bad Content-Length") from exc
    if length is None:
        return
    if length < 0 or length > len(message.body):
        raise SipParseError(f"Content-Length {length} but {len(message.body)} body bytes")
    message.body = message.body[:length]


@dataclass
class RawRequest:
    """Just enough of an unparsable request to answer it with 400."""

    method: str
    headers: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def scan(cls, data: bytes) -> RawRequest | None:
        """The request line and raw Via/From/To/Call-ID/CSeq, or None (drop it)."""
        text = data.decode("utf-8", "replace").lstrip("\r\n")
        lines = re.split(r"\r?\n", text.split("\r\n\r\n", 1)[0])
        parts = lines[0].split(" ")
        if len(parts) != 3 or parts[2] != "SIP/2.0" or not parts[0].isalpha():
            return None
        raw = cls(parts[0].upper())
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            name = COMPACT_FORMS.get(name.strip().lower(), name.strip())
            canonical = next((h for h in MANDATORY_HEADERS if h.lower() == name.lower()), None)
            if sep and canonical:
                raw.headers.setdefault(canonical, []).append(value.strip())
        if raw.method == "ACK" or not all(h in raw.headers for h in ("Via", "Call-ID", "CSeq")):
            return None
        return raw

    def bad_request(self, reason: str, to_tag: str) -> bytes:
        return self.stateless(400, reason, to_tag)

    def stateless(
        self, code: int, reason: str, to_tag: str, extra: Iterable[tuple[str, str]] = ()
    ) -> bytes:
        """A final response built from the raw headers, no transaction kept."""
        lines = [f"SIP/2.0 {code} {REASONS.get(code, 'Error')}"]
        for name in MANDATORY_HEADERS:
            for value in self.headers.get(name, []):
                if name == "To" and "tag=" not in value:
                    value += f";tag={to_tag}"
                lines.append(f"{name}: {value}")
        lines += [f"{name}: {value}" for name, value in extra]
        lines += [f'Warning: 399 voicebot "{_quote_warning(reason)}"', "Content-Length: 0"]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _quote_warning(text: str) -> str:
    return text.replace("\\", "").replace('"', "'")[:200]


# ------------------------------------------------------------ Via handling


def stamp_via(request: Request, source: Addr) -> None:
    """§18.2.1 + RFC 3581: record where the request really came from.

    ``received`` and ``rport`` are always overwritten with the socket's
    address: values a peer wrote there would let it bounce our responses to
    a third party (reflection), or make us resolve a name."""
    vias = request.via
    top = vias[0]
    params = top.parameters.replace(received=source[0])
    if "rport" in params:
        params = params.replace(rport=str(source[1]))
    vias[0] = Via(top.transport, top.host, top.port, params)
    request.via = vias


def response_address(request: Request, source: Addr) -> Addr:
    """Where responses go (§18.2.2, RFC 3581 §4): always the source IP; its
    port with rport, else the Via's port.  Never a name from the Via."""
    top = request.via[0]
    if "rport" in top.parameters:
        return source
    port = top.port if top.port and 0 < top.port < 65536 else DEFAULT_PORT
    return (source[0], port)


def transaction_branch(message: Request | Response) -> str:
    return message.via[0].parameters.get("branch") or ""


def header_tag(value: str | None) -> str:
    """The tag parameter of a From/To header value ('' when absent)."""
    if not value:
        return ""
    try:
        return Address.parse(value).parameters.get("tag") or ""
    except ValueError:
        return ""


def with_tag(value: str, tag: str) -> str:
    return value if header_tag(value) else f"{value};tag={tag}"


# ---------------------------------------------------------------- responses


def make_response(
    request: Request,
    code: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
    content_type: str | None = None,
    record_route: bool = False,
) -> Response:
    """A response copying Via/From/To/Call-ID/CSeq (§8.2.6), with our To-tag."""
    response = Response(code, reason or REASONS.get(code, "Unknown"))
    response.headers.setlist("Via", request.headers.getlist("Via"))
    response.headers.set("From", request.headers["From"])
    to = request.headers["To"]
    response.headers.set("To", with_tag(to, to_tag) if to_tag and code > 100 else to)
    response.headers.set("Call-ID", request.call_id)
    response.headers.set("CSeq", request.headers["CSeq"])
    if record_route and request.headers.getlist("Record-Route"):
        response.headers.setlist("Record-Route", request.headers.getlist("Record-Route"))
    for name, value in headers:
        response.headers.add(name, value)
    if content_type and body:
        response.headers.set("Content-Type", content_type)
    response.body = body
    response.headers.set("Content-Length", str(len(body)))
    return response
