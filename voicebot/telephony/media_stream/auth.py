"""Who may open a media stream: a signed voice webhook mints a one-call token.

A URL signature alone (``X-Twilio-Signature`` on the WebSocket handshake) can
be replayed by anyone who captured one handshake, and says nothing about which
call the stream is.  So the flow is:

1. Twilio POSTs the voice webhook (``/voice``) when a call arrives.  Its
   ``X-Twilio-Signature`` (HMAC-SHA1 over URL + sorted form parameters) proves
   Twilio sent it; voicebot mints a random single-use token bound to that
   ``CallSid`` and ``From`` and answers TwiML that connects the call to
   ``/media-stream`` with the token as a ``<Parameter>``.
2. The WebSocket handshake must carry a valid ``X-Twilio-Signature`` over the
   stream URL; the ``start`` message must carry the token, for the same
   ``CallSid``, within ``token_ttl_s``.  The token is spent on first use.

The caller ID of the call then comes from the signed webhook, never from the
stream's own (client-chosen) parameters.  ``authentication = false`` turns all
of this off, for local trials on a loopback listener only.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol
from xml.sax.saxutils import quoteattr

from aiohttp import web

from voicebot.core.logs import format_event
from voicebot.telephony.media_stream.security import SIGNATURE_HEADER, twilio_signature

log = logging.getLogger("voicebot.telephony.media_stream")

TOKEN_PARAMETER = "voicebot_token"


class AuthSettings(Protocol):
    """The part of ``voicebot.config.MediaStreamConfig`` this module reads."""

    public_url: str | None
    token_ttl_s: float

    def auth_token(self) -> str | None: ...


def request_signature(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    """Twilio's webhook signature: HMAC-SHA1 over the URL + each sorted key+value."""
    return twilio_signature(auth_token, url + "".join(k + params[k] for k in sorted(params)))


def signature_matches(given: str, expected: str) -> bool:
    """Constant-time, as bytes: a non-ASCII header must fail, not raise."""
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode())


@dataclass(frozen=True)
class StreamGrant:
    """What a signed voice webhook vouched for."""

    call_sid: str
    caller_id: str | None
    expires: float


class StreamTokens:
    """Single-use tokens, each bound to one carrier call, short-lived."""

    def __init__(self, ttl_s: float = 60.0, clock=time.monotonic) -> None:
        self.ttl_s = ttl_s
        self._clock = clock
        self._grants: dict[str, StreamGrant] = {}

    def mint(self, call_sid: str, caller_id: str | None) -> str:
        self._prune()
        token = secrets.token_urlsafe(24)
        self._grants[token] = StreamGrant(call_sid, caller_id, self._clock() + self.ttl_s)
        return token

    def redeem(self, token: str, call_sid: str) -> StreamGrant | None:
        """The grant for this call, spent now; None if unknown, used, stale or another call's."""
        grant = self._grants.pop(token, None)
        if grant is None or grant.expires < self._clock() or grant.call_sid != call_sid:
            return None
        return grant

    def _prune(self) -> None:
        now = self._clock()
        for token in [t for t, g in self._grants.items() if g.expires < now]:
            del self._grants[token]

    def __len__(self) -> int:
        return len(self._grants)


class StreamAuth:
    """The voice webhook and both checks on the stream, for one auth token."""

    def __init__(self, auth_token: str, public_url: str, ttl_s: float = 60.0) -> None:
        if not auth_token:
            raise ValueError("a Twilio auth token is needed to authenticate media streams")
        self._auth_token = auth_token
        self.public_url = public_url.rstrip("/")
        self.tokens = StreamTokens(ttl_s)

    @classmethod
    def from_config(cls, config: AuthSettings) -> StreamAuth | None:
        """None when authentication is on but not configured: then no stream is accepted."""
        token = config.auth_token()
        if not (token and config.public_url):
            return None
        return cls(token, config.public_url, config.token_ttl_s)

    def stream_url(self, path: str = "/media-stream") -> str:
        base = self.public_url.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
        return base + path

    def handshake_ok(self, request: web.Request) -> bool:
        """The WebSocket upgrade carries Twilio's signature over the stream URL."""
        given = request.headers.get(SIGNATURE_HEADER, "")
        expected = twilio_signature(self._auth_token, self.public_url_for(request, ws=True))
        return signature_matches(given, expected)

    def public_url_for(self, request: web.Request, *, ws: bool = False) -> str:
        base = self.stream_url("") if ws else self.public_url
        return base + request.rel_url.path_qs

    def redeem(self, parameters: Mapping[str, str], call_sid: str) -> StreamGrant | None:
        return self.tokens.redeem(parameters.get(TOKEN_PARAMETER, ""), call_sid)

    async def voice_webhook(self, request: web.Request) -> web.Response:
        """Twilio's voice webhook: check its signature, answer TwiML with a fresh token."""
        form = await request.post()
        params = {k: str(v) for k, v in form.items()}
        expected = request_signature(self._auth_token, self.public_url_for(request), params)
        if not signature_matches(request.headers.get(SIGNATURE_HEADER, ""), expected):
            log.warning(format_event("voice_webhook_refused", peer=request.remote))
            raise web.HTTPForbidden(text="bad signature")
        call_sid = params.get("CallSid", "")
        if not call_sid:
            raise web.HTTPBadRequest(text="CallSid missing")
        token = self.tokens.mint(call_sid, params.get("From") or None)
        log.info(format_event("voice_webhook", call_sid=call_sid))
        return web.Response(text=twiml(self.stream_url(), token), content_type="text/xml")

    def routes(self, path: str = "/voice") -> list[web.RouteDef]:
        return [web.post(path, self.voice_webhook)]


def twiml(stream_url: str, token: str) -> str:
    """Connect the call to our stream, carrying the token the stream must show."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?><Response><Connect>'
        f"<Stream url={quoteattr(stream_url)}>"
        f"<Parameter name={quoteattr(TOKEN_PARAMETER)} value={quoteattr(token)}/>"
        "</Stream></Connect></Response>"
    )
