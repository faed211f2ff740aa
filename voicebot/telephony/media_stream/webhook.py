"""Live-agent transfer on the media-stream transport: a webhook to the integrator.

A carrier media stream (Twilio ``<Connect><Stream>``) cannot move a call by
itself: only the carrier's REST API can, with the integrator's credentials,
which voicebot does not hold.  So voicebot asks the integrator to do it.

The integrator's side of the contract
-------------------------------------

Set ``webhook_url`` (``https://``) and
``secret`` in ``[media_stream_transfer]``
(``voicebot.config.MediaStreamTransferConfig``); both are required (a plain
``http://`` URL only with ``allow_plain_http = true``, for local trials).
When the queue rings an agent for a media-stream call, voicebot POSTs JSON
to that URL::

    POST {webhook_url}
    Content-Type: application/json
    X-Voicebot-Event: transfer
    X-Voicebot-Timestamp: 1767225600
    X-Voicebot-Delivery: 5f0c…             # unique per POST: drop one you have seen
    X-Voicebot-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>

    {
      "event": "transfer",
      "version": 1,
      "delivery_id": "5f0c…",      # same as X-Voicebot-Delivery
      "call_sid": "CA…",          # the carrier's call (Twilio callSid)
      "stream_sid": "MZ…",
      "agent": {"name": "alice", "sip_uri": "sip:alice@pbx.example.com"},
      "sip_headers": {"X-Voicebot-Call": "CA…"},
      "handoff": { …the handoff package: reason, summary, signals, transcript,
                   frustration_timeline, intents, verified, caller_id… },
      "sent_at": "2026-01-01T00:00:00+00:00"
    }

Your endpoint moves the call and answers **2xx** once the carrier accepted
the redirect — e.g. with Twilio, update the call ``call_sid`` with TwiML
``<Dial><Sip>sip:alice@pbx.example.com?X-Voicebot-Call=CA…</Sip></Dial>``
(the header lets the agent desk match the call).  Any other status, a
timeout (``timeout_s``, default 10 s) or a connection error counts as a
failed ring, and the queue tries the next agent.  A 2xx is final: from
then on the caller's ringing happens at the carrier; voicebot's ring timeout
no longer applies, so put your own ``timeout`` on ``<Dial>``.  The redirect
ends the media stream; voicebot treats that as the transfer, not as the
caller hanging up.

Verify the signature before acting: recompute HMAC-SHA256 over
``timestamp + "." + raw body`` with the shared secret, compare in constant
time, reject timestamps older than a few minutes (replays), and drop a
``delivery_id`` you have already handled.  :func:`verify_signature` does the
first two.  The body carries the
transcript, so use HTTPS and keep the URL private.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
import uuid
from typing import Any, Literal, Protocol

import aiohttp

from voicebot.config import MediaStreamTransferConfig
from voicebot.core.logs import format_event

log = logging.getLogger("voicebot.telephony.media_stream")

SIGNATURE_HEADER = "X-Voicebot-Signature"
TIMESTAMP_HEADER = "X-Voicebot-Timestamp"
DELIVERY_HEADER = "X-Voicebot-Delivery"
EVENT_HEADER = "X-Voicebot-Event"
CALL_HEADER = "X-Voicebot-Call"
PAYLOAD_VERSION = 1
DEFAULT_TOLERANCE_S = 300.0

WebhookResult = Literal["answered", "failed"]


class _Agent(Protocol):
    name: str
    sip_uri: str


class _Package(Protocol):
    call_id: str

    def to_dict(self) -> dict[str, Any]: ...


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>`` over ``timestamp.body``: the timestamp is signed so a
    captured request cannot be replayed later with a fresh one."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_signature(
    secret: str,
    body: bytes,
    timestamp: str,
    signature: str,
    *,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> bool:
    """The integrator's check (also used by our tests): right MAC, fresh timestamp."""
    try:
        age = abs((time.time() if now is None else now) - float(timestamp))
    except ValueError:
        return False
    expected = sign(secret, timestamp, body).encode()
    # As bytes: a non-ASCII header must be a mismatch, not a TypeError.
    given = signature.encode("utf-8", "replace")
    return age <= tolerance_s and hmac.compare_digest(expected, given)


def payload(channel: Any, agent: _Agent, package: _Package) -> dict[str, Any]:
    """The JSON body (see the module docstring)."""
    call_sid = getattr(channel, "call_sid", None) or getattr(channel, "call_id", package.call_id)
    return {
        "event": "transfer",
        "version": PAYLOAD_VERSION,
        "delivery_id": uuid.uuid4().hex,
        "call_sid": call_sid,
        "stream_sid": getattr(channel, "stream_sid", None),
        "agent": {"name": agent.name, "sip_uri": agent.sip_uri},
        "sip_headers": {CALL_HEADER: package.call_id},
        "handoff": package.to_dict(),
        "sent_at": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
    }


class TransferWebhook:
    """Posts one transfer per ring; 2xx means the carrier is moving the call."""

    def __init__(self, config: MediaStreamTransferConfig) -> None:
        config.validate()
        self.config = config

    @property
    def configured(self) -> bool:
        return bool(self.config.webhook_url)

    async def ring(self, channel: Any, agent: _Agent, package: _Package) -> WebhookResult:
        """POST the transfer; "answered" on 2xx, "failed" on anything else.

        While the request is out, the channel holds back a stream end: the
        carrier's redirect may close the stream before our 2xx arrives, and
        that is the transfer working, not the caller leaving."""
        hold = getattr(channel, "hold_hangup", None)
        if hold is not None:
            hold()
        result: WebhookResult = "failed"
        try:
            result = await self._post(payload(channel, agent, package), package.call_id)
            return result
        finally:
            release = getattr(channel, "release_hangup", None)
            if release is not None:
                release(transferred=result == "answered")

    async def _post(self, body_json: dict[str, Any], call_id: str) -> WebhookResult:
        url = self.config.webhook_url
        if not url:
            return "failed"
        body = json.dumps(body_json, separators=(",", ":")).encode()
        started = time.monotonic()
        try:
            status = await self._send(url, body, body_json["delivery_id"])
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.warning(format_event("transfer_webhook_failed", call_id=call_id, error=repr(exc)))
            return "failed"
        elapsed = round(time.monotonic() - started, 3)
        log.info(
            format_event("transfer_webhook", call_id=call_id, status=status, elapsed_s=elapsed)
        )
        return "answered" if 200 <= status < 300 else "failed"

    async def _send(self, url: str, body: bytes, delivery_id: str) -> int:
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            EVENT_HEADER: "transfer",
            TIMESTAMP_HEADER: timestamp,
            DELIVERY_HEADER: delivery_id,
        }
        if self.config.secret:
            headers[SIGNATURE_HEADER] = sign(self.config.secret, timestamp, body)
        timeout = aiohttp.ClientTimeout(total=self.config.timeout_s)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.post(url, data=body, headers=headers, allow_redirects=False) as response,
        ):
            await response.read()
            return response.status


async def ring_media_stream(
    webhook: TransferWebhook, channel: Any, agent: _Agent, package: _Package
) -> WebhookResult:
    """Convenience for dialers: never raises (cancellation aside)."""
    try:
        return await webhook.ring(channel, agent, package)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # a broken webhook must not break the queue
        log.exception(format_event("transfer_webhook_error", error=repr(exc)))
        return "failed"
