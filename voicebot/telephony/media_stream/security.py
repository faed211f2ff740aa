"""Only the carrier may open a media stream: check Twilio's request signature.

Anyone who learns the WebSocket URL could otherwise inject a "call" with any
caller ID — and the caller ID is what the bank's dialogue trusts for a first
identity match.  Twilio signs the WebSocket handshake like its webhooks:
``X-Twilio-Signature`` = base64(HMAC-SHA1(auth token, URL)), where the URL is
the one in the TwiML ``<Stream url=…>`` (a GET has no parameters to append).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable

from aiohttp import web

SIGNATURE_HEADER = "X-Twilio-Signature"


def twilio_signature(auth_token: str, url: str) -> str:
    digest = hmac.new(auth_token.encode(), url.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def twilio_signature_authorizer(auth_token: str, public_url: str) -> Callable[[web.Request], bool]:
    """An ``authorize`` hook for :class:`MediaStreamEndpoint`.

    ``public_url`` is the URL exactly as the TwiML gives it
    (``wss://bot.example.com/media-stream``): behind a TLS proxy the URL the
    server sees is not the one Twilio signed.
    """
    if not auth_token:
        raise ValueError("a Twilio auth token is needed to check stream signatures")
    expected = twilio_signature(auth_token, public_url)

    def authorize(request: web.Request) -> bool:
        given = request.headers.get(SIGNATURE_HEADER, "")
        return hmac.compare_digest(given.encode(), expected.encode())

    return authorize
