"""Blind transfer pieces that need no socket: Refer-To, sipfrag, NOTIFY state.

RFC 3515: we send REFER with ``Refer-To: <agent-uri?X-Voicebot-Call=ID>``;
the caller's phone (the transferee) calls the agent itself and reports how
that INVITE is going in NOTIFYs whose ``message/sipfrag`` body is the status
line it got (``SIP/2.0 180 Ringing`` … ``SIP/2.0 200 OK``).  The header in
the Refer-To URI travels into the transferee's INVITE (RFC 3261 §19.1.5), so
the agent's phone and desk can tell which handoff is calling.

:class:`TransferOutcome` is what :meth:`SipCall.transfer` returns; its
``result`` uses the queue's ring-result words so the dialer maps it 1:1.
"""

from __future__ import annotations

import asyncio
import re
import urllib.parse
from dataclasses import dataclass, field
from typing import Literal

from sipmessage import URI, Request

CALL_HEADER = "X-Voicebot-Call"
SIPFRAG = "message/sipfrag"
# RFC 3261 §25.1 hnv-unreserved + unreserved: everything else is %-escaped.
_HVALUE_SAFE = "-_.!~*'()[]/?:+$"
_STATUS_LINE = re.compile(r"^\s*SIP/2\.0\s+(\d{3})(?:\s+(.*))?$")
DECLINE_CODES = frozenset({486, 600, 603})
NO_ANSWER_CODES = frozenset({408, 480, 487})

Result = Literal["answered", "declined", "timeout", "failed"]
Method = Literal["refer", "bridge", "none"]


class TransferTargetError(ValueError):
    """The agent URI is not a SIP URI we can REFER to or call."""


@dataclass
class TransferOutcome:
    """How a transfer ended, and by which route (for the call record and logs).

    ``result`` is the queue's ring result; ``code`` the last SIP status seen
    (sipfrag or INVITE response); ``refer_code`` the REFER's own final
    response (None when REFER was not tried or timed out).
    """

    result: Result
    method: Method
    code: int | None = None
    reason: str = ""
    refer_code: int | None = None
    elapsed_s: float = 0.0
    steps: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {
            "result": self.result,
            "method": self.method,
            "code": self.code,
            "reason": self.reason,
            "refer_code": self.refer_code,
            "elapsed_s": round(self.elapsed_s, 3),
            "steps": list(self.steps),
        }


# ------------------------------------------------------------ Refer-To


@dataclass(frozen=True)
class TargetUri:
    """An agent's SIP URI split into the part sipmessage parses and its headers."""

    uri: URI
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, text: str) -> TargetUri:
        raw = text.strip()
        if raw.startswith("<") and raw.endswith(">"):
            raw = raw[1:-1].strip()
        base, _, query = raw.partition("?")
        try:
            uri = URI.parse(base)
        except ValueError as exc:
            raise TransferTargetError(f"not a SIP URI: {text!r}") from exc
        if uri.scheme not in ("sip", "sips") or not uri.host:
            raise TransferTargetError(f"not a sip:/sips: URI: {text!r}")
        return cls(uri, _parse_uri_headers(query))

    def with_header(self, name: str, value: str) -> TargetUri:
        kept = tuple((n, v) for n, v in self.headers if n.lower() != name.lower())
        return TargetUri(self.uri, (*kept, (name, value)))

    def __str__(self) -> str:
        if not self.headers:
            return str(self.uri)
        query = "&".join(f"{_escape(n)}={_escape(v)}" for n, v in self.headers)
        return f"{self.uri}?{query}"


def _parse_uri_headers(query: str) -> tuple[tuple[str, str], ...]:
    pairs = []
    for item in filter(None, query.split("&")):
        name, _, value = item.partition("=")
        pairs.append((urllib.parse.unquote(name), urllib.parse.unquote(value)))
    return tuple(pairs)


def _escape(text: str) -> str:
    return urllib.parse.quote(text, safe=_HVALUE_SAFE)


def refer_to(target_uri: str, call_ref: str) -> str:
    """The Refer-To value: the agent's URI carrying ``X-Voicebot-Call`` (escaped)."""
    target = TargetUri.parse(target_uri).with_header(CALL_HEADER, call_ref)
    return f"<{target}>"


# ------------------------------------------------------------- sipfrag


def parse_sipfrag(body: bytes | str) -> tuple[int, str] | None:
    """The status code and reason of a sipfrag body's first line, or None."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    first = text.lstrip("\r\n").split("\n", 1)[0].rstrip("\r")
    match = _STATUS_LINE.match(first)
    if match is None:
        return None
    return int(match.group(1)), (match.group(2) or "").strip()


def result_of(code: int) -> Result:
    """What a final status means for the ring (2xx answered, busy/decline declined)."""
    if 200 <= code < 300:
        return "answered"
    if code in DECLINE_CODES:
        return "declined"
    if code in NO_ANSWER_CODES:
        return "timeout"
    return "failed"


def subscription_terminated(request: Request) -> bool:
    value = request.headers.get("Subscription-State") or ""
    return value.split(";")[0].strip().lower() == "terminated"


def event_id(request: Request) -> str | None:
    """``refer`` events of later REFERs in a dialog carry ``;id=<CSeq>`` (§2.4.6)."""
    value = request.headers.get("Event") or ""
    package, *params = [p.strip() for p in value.split(";")]
    if package.lower() != "refer":
        raise ValueError(f"not a refer event: {value!r}")
    for param in params:
        key, _, val = param.partition("=")
        if key.strip().lower() == "id":
            return val.strip()
    return None


# ------------------------------------------------------ NOTIFY progress


class ReferProgress:
    """The implicit subscription of one REFER: NOTIFY results as they come."""

    def __init__(self, cseq: int) -> None:
        self.cseq = cseq
        self.statuses: list[tuple[int, str]] = []
        self.final: tuple[int, str] | None = None
        self.terminated = False
        self.first_notify_at: float | None = None
        self._changed = asyncio.Event()

    def on_notify(self, request: Request) -> int:
        """Apply one NOTIFY; returns the response code to send back."""
        status = parse_sipfrag(request.body)
        if self.first_notify_at is None:
            self.first_notify_at = asyncio.get_running_loop().time()
        if status is not None:
            self.statuses.append(status)
            if status[0] >= 200 and self.final is None:
                self.final = status
        if subscription_terminated(request):
            self.terminated = True
        self._changed.set()
        return 200 if status is not None else 400

    @property
    def done(self) -> bool:
        return self.final is not None or self.terminated

    @property
    def provisional(self) -> tuple[int, str] | None:
        return next((s for s in reversed(self.statuses) if s[0] < 200), None)

    async def changed(self) -> None:
        await self._changed.wait()
        self._changed.clear()
