"""The media-stream transfer webhook against a local aiohttp server, and the
ChannelDialer's routing (SIP channel, media stream, fallback)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from aiohttp import web

from voicebot.audio.g711 import ulaw_encode
from voicebot.core.frames import AudioFrame, HangupFrame, InputFrame
from voicebot.handoff import AgentConfig, HandoffPackage
from voicebot.handoff.dialer import ChannelDialer
from voicebot.telephony.media_stream import (
    MediaStreamChannel,
    MediaStreamOutput,
    Start,
    TwilioSerializer,
)
from voicebot.telephony.media_stream.webhook import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    MediaStreamTransferConfig,
    TransferWebhook,
    verify_signature,
)
from voicebot.telephony.sip.refer import TransferOutcome

SECRET = "s3cret-shared-with-the-integrator"
AGENT = AgentConfig("alice", "sip:alice@pbx.example.com")


def _package(call_id: str = "CA123") -> HandoffPackage:
    return HandoffPackage(
        call_id=call_id,
        caller_id="+15550100",
        created_at="2026-01-01T00:00:00+00:00",
        reason="explicit",
        summary="Caller asked for a person.",
        transcript=[{"speaker": "caller", "text": "agent please"}],
    )


@dataclass
class Integrator:
    """The integrator's endpoint: records requests, answers as told."""

    status: int = 204
    delay_s: float = 0.0
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    on_request: Any = None

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append((dict(request.headers), body))
        if self.on_request is not None:
            self.on_request()
        await asyncio.sleep(self.delay_s)
        return web.Response(status=self.status)


@contextlib.asynccontextmanager
async def integrator(endpoint: Integrator) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/voicebot/transfer", endpoint.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/voicebot/transfer"
    finally:
        await runner.cleanup()


def _channel() -> MediaStreamChannel:
    async def send(_: str) -> None:
        return None

    async def close() -> None:
        return None

    output = MediaStreamOutput(send, TwilioSerializer("MZ9"))
    return MediaStreamChannel(Start("MZ9", "CA123"), output, close, caller_id="+15550100")


async def _drain(channel: MediaStreamChannel, wait_s: float = 0.2) -> list[InputFrame]:
    frames: list[InputFrame] = []

    async def read() -> None:
        async for frame in channel.frames():
            frames.append(frame)

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(read(), wait_s)
    return frames


# ------------------------------------------------------------------ webhook


async def test_2xx_means_answered_and_the_body_is_signed() -> None:
    endpoint = Integrator(status=204)
    async with integrator(endpoint) as url:
        webhook = TransferWebhook(_config(url, timeout_s=5))
        assert await webhook.ring(_channel(), AGENT, _package()) == "answered"
    headers, body = endpoint.requests[0]
    data = json.loads(body)
    assert data["event"] == "transfer" and data["version"] == 1
    assert data["call_sid"] == "CA123" and data["stream_sid"] == "MZ9"
    assert data["agent"] == {"name": "alice", "sip_uri": "sip:alice@pbx.example.com"}
    assert data["sip_headers"] == {"X-Voicebot-Call": "CA123"}
    assert data["handoff"]["summary"] == "Caller asked for a person."
    assert data["handoff"]["transcript"][0]["text"] == "agent please"
    assert headers["Content-Type"] == "application/json"
    timestamp, signature = headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER]
    assert signature.startswith("sha256=")
    assert verify_signature(SECRET, body, timestamp, signature)
    assert not verify_signature(SECRET, body + b" ", timestamp, signature)
    assert not verify_signature("wrong", body, timestamp, signature)
    assert not verify_signature(SECRET, body, timestamp, signature, now=time.time() + 3600)


def _config(url: str, **options: object) -> MediaStreamTransferConfig:
    """A local trial's webhook: plain HTTP on loopback, said so explicitly."""
    return MediaStreamTransferConfig(
        url,
        **{"secret": SECRET, "allow_plain_http": True, **options},  # type: ignore[arg-type]
    )


def test_a_webhook_needs_a_secret_and_https() -> None:
    MediaStreamTransferConfig("https://crm.example.com/hook", secret=SECRET).validate()
    MediaStreamTransferConfig().validate()  # not configured: nothing to check
    with pytest.raises(ValueError, match="secret is required"):
        MediaStreamTransferConfig("https://crm.example.com/hook").validate()
    with pytest.raises(ValueError, match="https://"):
        MediaStreamTransferConfig("http://crm.example.com/hook", secret=SECRET).validate()
    with pytest.raises(ValueError, match="https://"):
        MediaStreamTransferConfig("ftp://crm.example.com/hook", secret=SECRET).validate()


async def test_every_delivery_has_its_own_id() -> None:
    endpoint = Integrator(status=200)
    async with integrator(endpoint) as url:
        webhook = TransferWebhook(_config(url))
        for _ in range(2):
            assert await webhook.ring(_channel(), AGENT, _package()) == "answered"
    ids = [headers[DELIVERY_HEADER] for headers, _ in endpoint.requests]
    assert len(set(ids)) == 2
    assert [json.loads(body)["delivery_id"] for _, body in endpoint.requests] == ids


def test_a_non_ascii_signature_is_a_mismatch_not_an_error() -> None:
    now = str(int(time.time()))
    assert not verify_signature(SECRET, b"{}", now, "sha256=é∂ƒ")
    assert not verify_signature(SECRET, b"{}", now, "\udcff")  # a lone surrogate, too


async def test_errors_slowness_and_unreachable_urls_fail() -> None:
    endpoint = Integrator(status=503)
    async with integrator(endpoint) as url:
        webhook = TransferWebhook(_config(url, timeout_s=0.3))
        assert await webhook.ring(_channel(), AGENT, _package()) == "failed"
        endpoint.status, endpoint.delay_s = 200, 1.0
        started = time.monotonic()
        assert await webhook.ring(_channel(), AGENT, _package()) == "failed"
        assert time.monotonic() - started < 0.9
        endpoint.status, endpoint.delay_s = 302, 0.0  # a redirect is not an acceptance
        assert await webhook.ring(_channel(), AGENT, _package()) == "failed"
    gone = TransferWebhook(_config(url, timeout_s=1))
    assert await gone.ring(_channel(), AGENT, _package()) == "failed"
    assert (
        await TransferWebhook(MediaStreamTransferConfig()).ring(_channel(), AGENT, _package())
        == "failed"
    )


async def test_the_redirect_ending_the_stream_is_a_transfer_not_a_hang_up() -> None:
    channel = _channel()
    endpoint = Integrator(status=204, delay_s=0.5)
    endpoint.on_request = lambda: channel.end("carrier sent stop")  # the redirect lands first
    async with integrator(endpoint) as url:
        webhook = TransferWebhook(_config(url))
        ring = asyncio.create_task(webhook.ring(channel, AGENT, _package()))
        await asyncio.sleep(0.05)
        assert channel.ended_reason == "carrier sent stop"
        assert await _drain(channel, 0.05) == []  # held while the webhook is out
        assert await ring == "answered"
    frames = await _drain(channel)
    assert [f.reason for f in frames if isinstance(f, HangupFrame)] == ["transferred"]


async def test_a_stream_end_during_a_failed_webhook_is_the_caller_leaving() -> None:
    channel = _channel()
    channel.feed_audio(ulaw_encode(np.zeros(160, np.int16)))
    endpoint = Integrator(status=500)
    endpoint.on_request = lambda: channel.end("socket closed")
    async with integrator(endpoint) as url:
        assert await TransferWebhook(_config(url)).ring(channel, AGENT, _package()) == "failed"
    frames = await _drain(channel)
    assert isinstance(frames[0], AudioFrame)
    assert [f.reason for f in frames if isinstance(f, HangupFrame)] == ["socket closed"]


# ------------------------------------------------------------- ChannelDialer


class SipLike:
    transport = "sip"

    def __init__(self, result: str) -> None:
        self.call_id = "sip-1"
        self.result = result
        self.calls: list[tuple[str, str]] = []

    async def transfer(self, target_uri: str, call_ref: str) -> TransferOutcome:
        self.calls.append((target_uri, call_ref))
        return TransferOutcome(self.result, "refer", 200)  # type: ignore[arg-type]


class FixtureLike:
    transport = "fixture"
    call_id = "fx-1"


@dataclass
class FakeDesk:
    rings: list[str] = field(default_factory=list)

    async def ring(self, agent: AgentConfig, package: HandoffPackage) -> str:
        self.rings.append(package.call_id)
        return "answered"


async def test_dialer_routes_each_transport() -> None:
    sip = SipLike("declined")
    stream = _channel()
    channels: dict[str, Any] = {"sip-1": sip, "CA123": stream, "fx-1": FixtureLike()}
    desk = FakeDesk()
    seen: list[tuple[str, str, dict[str, Any]]] = []
    endpoint = Integrator(status=204)
    async with integrator(endpoint) as url:
        dialer = ChannelDialer(
            channels.get,
            desk,
            media_stream=TransferWebhook(_config(url)),
            on_outcome=lambda *args: seen.append(args),
        )
        assert await dialer.ring(AGENT, _package("sip-1")) == "declined"
        assert sip.calls == [("sip:alice@pbx.example.com", "sip-1")]
        assert await dialer.ring(AGENT, _package("CA123")) == "answered"
        assert len(endpoint.requests) == 1
        assert await dialer.ring(AGENT, _package("fx-1")) == "answered"  # the desk
        assert await dialer.ring(AGENT, _package("gone")) == "answered"  # the desk
        desk_only = AgentConfig("bob", "")
        assert await dialer.ring(desk_only, _package("sip-1")) == "answered"  # no phone: desk
    assert desk.rings == ["fx-1", "gone", "sip-1"]
    assert [(c, a, d["result"]) for c, a, d in seen] == [
        ("sip-1", "alice", "declined"),
        ("CA123", "alice", "answered"),
    ]
    assert seen[0][2]["method"] == "refer"


async def test_dialer_without_a_fallback_fails_what_it_cannot_ring() -> None:
    dialer = ChannelDialer(lambda _: FixtureLike())  # type: ignore[arg-type, return-value]
    assert await dialer.ring(AGENT, _package("fx-1")) == "failed"
    stream_without_webhook = ChannelDialer(lambda _: _channel())
    assert await stream_without_webhook.ring(AGENT, _package("CA123")) == "failed"
    weird = SipLike("maybe")
    assert await ChannelDialer(lambda _: weird).ring(AGENT, _package()) == "failed"  # type: ignore[arg-type, return-value]
