"""RasaClient against a local aiohttp server that plays Rasa (unit tests)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from voicebot.dialogue.rasa_client import REDACTED, DialogueError, RasaClient
from voicebot.dialogue.rasa_server import free_port

TOKEN = "secret-token"


def tracker(text: str, intent: str = "check_balance", **slots: Any) -> dict[str, Any]:
    return {
        "sender_id": "call-1",
        "latest_message": {
            "text": text,
            "intent": {"name": intent, "confidence": 0.93},
            "intent_ranking": [{"name": intent, "confidence": 0.93}],
            "entities": [],
        },
        "slots": {"requested_slot": None, "pin": None, "end_call": None, **slots},
        "active_loop": {},
    }


class FakeRasa:
    """Answers like Rasa; each test swaps in the behaviour it needs."""

    def __init__(self) -> None:
        self.webhook: Callable[[web.Request], Any] = self.ok_webhook
        self.tracker: dict[str, Any] = tracker("what's my balance")
        self.events_tracker: dict[str, Any] | None = None
        self.requests: list[tuple[str, str, dict[str, str]]] = []

    async def ok_webhook(self, request: web.Request) -> web.Response:
        return web.json_response([{"recipient_id": "call-1", "text": "Your PIN, please."}])

    async def handle_webhook(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(("POST", request.path, dict(request.query)))
        self.last_body = await request.json()
        return await self.webhook(request)

    async def handle_tracker(self, request: web.Request) -> web.Response:
        self.requests.append(("GET", request.path, dict(request.query)))
        if request.query.get("token") != TOKEN:
            return web.json_response({"message": "User is not authenticated."}, status=401)
        if request.query.get("include_events") != "NONE" and self.events_tracker:
            return web.json_response(self.events_tracker)
        return web.json_response(self.tracker)

    async def handle_status(self, request: web.Request) -> web.Response:
        if request.query.get("token") != TOKEN:
            return web.json_response({}, status=401)
        return web.json_response({"model_file": "m.tar.gz"})

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/webhooks/rest/webhook", self.handle_webhook)
        app.router.add_get("/conversations/{sender}/tracker", self.handle_tracker)
        app.router.add_get("/status", self.handle_status)
        return app


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeRasa, str]]:
    rasa = FakeRasa()
    server = TestServer(rasa.app(), host="127.0.0.1")
    await server.start_server()
    try:
        yield rasa, str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


async def test_send_fills_the_reply_in_two_requests(fake: tuple[FakeRasa, str]) -> None:
    rasa, url = fake
    rasa.tracker = tracker(
        "what's my balance", requested_slot="pin", caller_id_matched=True, pin_verified=None
    )
    async with RasaClient(url, TOKEN, timeout_s=2) as client:
        reply = await client.send("call-1", "what's my balance", {"caller_id": "+15550100"})
    assert reply.texts == ["Your PIN, please."] and reply.text == "Your PIN, please."
    assert reply.intent == "check_balance" and reply.confidence == 0.93
    assert reply.intent_ranking[0]["name"] == "check_balance"
    assert reply.expects_pin and not reply.end_call
    assert reply.caller_id_matched is True and reply.pin_verified is None
    assert rasa.last_body == {
        "sender": "call-1",
        "message": "what's my balance",
        "metadata": {"caller_id": "+15550100"},
    }
    assert [(m, p) for m, p, _ in rasa.requests] == [
        ("POST", "/webhooks/rest/webhook"),
        ("GET", "/conversations/call-1/tracker"),
    ]
    assert rasa.requests[1][2] == {"include_events": "NONE", "token": TOKEN}


async def test_pin_is_redacted_from_entities_and_slots(fake: tuple[FakeRasa, str]) -> None:
    rasa, url = fake
    rasa.tracker = tracker("my pin is 4321", "provide_pin", pin="4321", end_call=True)
    rasa.tracker["latest_message"]["entities"] = [
        {"entity": "pin", "value": "4321", "start": 10, "end": 14, "extractor": "Regex"}
    ]
    async with RasaClient(url, TOKEN) as client:
        reply = await client.send("call-1", "my pin is 4321", {})
    assert reply.entities == [
        {"entity": "pin", "value": REDACTED, "start": 10, "end": 14, "extractor": "Regex"}
    ]
    assert reply.slots["pin"] == REDACTED
    assert reply.end_call
    assert "4321" not in repr(reply)


async def test_turn_folded_into_a_form_reads_the_events(fake: tuple[FakeRasa, str]) -> None:
    """Rasa reports the form's trigger as latest_message after a happy-path form turn."""
    rasa, url = fake
    rasa.tracker = tracker("what's my balance", pin_verified=True)
    rasa.events_tracker = {
        "events": [
            {"event": "user", "text": "what's my balance", "parse_data": {}},
            {
                "event": "user",
                "text": "4321",
                "parse_data": {
                    "intent": {"name": "provide_pin", "confidence": 0.99},
                    "entities": [{"entity": "pin", "value": "4321", "start": 0, "end": 4}],
                    "intent_ranking": [],
                },
            },
            {"event": "bot", "text": "Your balance is..."},
        ]
    }
    async with RasaClient(url, TOKEN) as client:
        reply = await client.send("call-1", "4321", {})
    assert reply.intent == "provide_pin" and reply.confidence == 0.99
    assert reply.entities[0]["value"] == REDACTED
    assert reply.pin_verified is True
    assert rasa.requests[-1][2]["include_events"] == "AFTER_RESTART"


async def test_sender_id_is_url_quoted(fake: tuple[FakeRasa, str]) -> None:
    rasa, url = fake
    async with RasaClient(url, TOKEN) as client:
        await client.send("call/1 x", "what's my balance", {})
    assert rasa.requests[-1][1] == "/conversations/call/1 x/tracker"


@pytest.mark.parametrize(
    ("status", "expected"),
    [(500, "HTTP 500"), (404, "HTTP 404"), (401, "auth token")],
)
async def test_bad_status_is_a_dialogue_error(
    fake: tuple[FakeRasa, str], status: int, expected: str
) -> None:
    rasa, url = fake

    async def failing(request: web.Request) -> web.Response:
        return web.json_response({"error": "boom"}, status=status)

    rasa.webhook = failing
    async with RasaClient(url, TOKEN) as client:
        with pytest.raises(DialogueError, match=expected) as err:
            await client.send("call-1", "hi", {})
    assert "/webhooks/rest/webhook" in str(err.value)


async def test_wrong_token_on_tracker_is_explained(fake: tuple[FakeRasa, str]) -> None:
    _, url = fake
    async with RasaClient(url, "wrong") as client:
        with pytest.raises(DialogueError, match=r"401.*auth token"):
            await client.send("call-1", "hi", {})


async def test_timeout_is_a_dialogue_error(fake: tuple[FakeRasa, str]) -> None:
    rasa, url = fake

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(2)
        return web.json_response([])

    rasa.webhook = slow
    async with RasaClient(url, TOKEN, timeout_s=0.2) as client:
        with pytest.raises(DialogueError, match=r"timed out after 0.2 s"):
            await client.send("call-1", "hi", {})


async def test_invalid_json_is_a_dialogue_error(fake: tuple[FakeRasa, str]) -> None:
    rasa, url = fake

    async def garbage(request: web.Request) -> web.Response:
        return web.Response(text="<html>proxy error</html>")

    rasa.webhook = garbage
    async with RasaClient(url, TOKEN) as client:
        with pytest.raises(DialogueError, match="invalid JSON"):
            await client.send("call-1", "hi", {})


async def test_connection_refused_is_a_dialogue_error() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    async with RasaClient(url, TOKEN, timeout_s=2) as client:
        with pytest.raises(DialogueError, match="cannot connect to Rasa"):
            await client.send("call-1", "hi", {})
        assert not await client.health()


async def test_health(fake: tuple[FakeRasa, str]) -> None:
    _, url = fake
    async with RasaClient(url, TOKEN) as good, RasaClient(url, "wrong") as bad:
        assert await good.health()
        assert not await bad.health()


async def test_close_is_idempotent_and_client_reopens(fake: tuple[FakeRasa, str]) -> None:
    _, url = fake
    client = RasaClient(url, TOKEN)
    await client.close()
    assert await client.health()
    await client.close()
    await client.close()
