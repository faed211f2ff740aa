"""The desk API: no transcript without a token, nobody answers for someone else."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from desk_rig import TOKENS, DeskRig
from handoff_builders import make_package

from voicebot.agent_desk import create_desk_app
from voicebot.handoff import AgentConfig, Answered, NoAgent, Ringing, TransferQueue

API_GETS = ["/api/me", "/api/calls", "/api/calls/call-1", "/api/followups"]
API_POSTS = [
    "/api/availability",
    "/api/finish",
    "/api/rings/call-1/accept",
    "/api/rings/call-1/decline",
    "/api/followups/call-1/done",
    "/api/signout",
]


async def start_offer(rig: DeskRig, call_id: str = "call-1") -> tuple[asyncio.Task, Ringing]:
    """Offer a call and return once its first ring has started."""
    rang: asyncio.Future[Ringing] = asyncio.get_running_loop().create_future()

    def on_step(step: object) -> None:
        if isinstance(step, Ringing) and not rang.done():
            rang.set_result(step)

    task = asyncio.create_task(rig.queue.offer(make_package(call_id), on_step=on_step))
    return task, await asyncio.wait_for(rang, 2.0)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer not-a-real-token"},
        {"Authorization": f"Basic {TOKENS['alice']}"},
        {"Cookie": "voicebot_desk=forged-session-id"},
    ],
)
async def test_every_route_refuses_without_a_valid_token(rig: DeskRig, headers: dict) -> None:
    rig.store.save_handoff(make_package().to_dict(), "no_agent", "2026-01-01T00:00:00+00:00")
    refused_statuses = (401, 429)  # 429: a wrong bearer token repeated earns a back-off
    for path in API_GETS:
        response = await rig.client.get(path, headers=headers)
        assert response.status in refused_statuses, path
        assert "+15550100" not in await response.text()
    for path in API_POSTS:
        response = await rig.client.post(path, json={"available": True}, headers=headers)
        assert response.status in refused_statuses, path
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await rig.client.ws_connect("/ws", headers=headers)
    assert refused.value.status in refused_statuses


async def test_sign_in_sets_a_strict_http_only_session(rig: DeskRig) -> None:
    bad = await rig.client.post("/api/signin", json={"token": "guess"})
    assert bad.status == 401
    good = await rig.client.post("/api/signin", json={"token": TOKENS["alice"]})
    assert good.status == 200
    cookie = good.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert TOKENS["alice"] not in cookie and TOKENS["alice"] not in await good.text()
    me = await rig.client.get("/api/me")  # the client keeps the cookie
    assert me.status == 200 and (await me.json())["agent"]["name"] == "alice"
    assert "Content-Security-Policy" in me.headers
    await rig.client.post("/api/signout", json={})
    assert (await rig.client.get("/api/me")).status == 401


async def test_cross_site_posts_and_sockets_are_refused(rig: DeskRig) -> None:
    await rig.client.post("/api/signin", json={"token": TOKENS["alice"]})
    evil = {"Origin": "https://evil.example"}
    response = await rig.client.post("/api/availability", json={"available": False}, headers=evil)
    assert response.status == 403
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await rig.client.ws_connect("/ws", headers=evil)
    assert refused.value.status == 403


async def test_only_the_ringing_agent_may_accept_or_decline(rig: DeskRig) -> None:
    task, ring = await start_offer(rig)
    assert ring.agent == "alice"  # skill "fraud" matches the fraud call
    other = await rig.client.post("/api/rings/call-1/accept", headers=rig.auth("bob"))
    assert other.status == 403
    missing = await rig.client.post("/api/rings/nope/accept", headers=rig.auth("alice"))
    assert missing.status == 404
    mine = await rig.client.post("/api/rings/call-1/accept", headers=rig.auth("alice"))
    assert mine.status == 200
    result = await asyncio.wait_for(task, 2.0)
    assert isinstance(result, Answered) and result.agent.name == "alice"


async def test_websocket_pushes_the_card_and_the_outcome(rig: DeskRig) -> None:
    rig.queue.config.max_wait_s = 0.5
    ws = await rig.client.ws_connect("/ws", headers=rig.auth("alice"))
    hello = await ws.receive_json(timeout=2)
    assert hello["type"] == "hello" and hello["agent"]["name"] == "alice"
    assert "token" not in str(hello)
    await rig.hub.wait_connected("alice")
    task, _ = await start_offer(rig)
    messages = []
    while not any(m["type"] == "ring" for m in messages):
        messages.append(await ws.receive_json(timeout=2))
    card = next(m for m in messages if m["type"] == "ring")["ring"]
    assert card["package"]["reason"] == "complexity"
    assert card["package"]["transcript"][3]["caller_text"].startswith("there's a charge")
    await rig.client.post("/api/rings/call-1/decline", headers=rig.auth("alice"))
    while True:
        message = await ws.receive_json(timeout=2)
        if message["type"] == "ring_ended":
            assert message == {"type": "ring_ended", "call_id": "call-1", "result": "declined"}
            break
    # Declined by alice, the call rings bob; bob declines too; sam stays
    # offline until the maximum wait, so the caller is offered a callback.
    await asyncio.sleep(0.05)
    assert (await rig.client.post("/api/rings/call-1/decline", headers=rig.auth("bob"))).ok
    assert isinstance(await asyncio.wait_for(task, 2.0), NoAgent)
    await ws.close()


async def test_history_shows_an_agent_only_their_own_transfers(rig: DeskRig) -> None:
    task, _ = await start_offer(rig, "alices-call")
    await rig.client.post("/api/rings/alices-call/accept", headers=rig.auth("alice"))
    await task
    calls = (await (await rig.client.get("/api/calls", headers=rig.auth("alice"))).json())["calls"]
    assert [c["call_id"] for c in calls] == ["alices-call"]
    detail = await rig.client.get("/api/calls/alices-call", headers=rig.auth("alice"))
    assert detail.status == 200
    body = await detail.json()
    assert body["handoff"]["package"]["transcript"] and body["handoff"]["status"] == "answered"
    # Bob was never offered it: not in his list, not readable by ID.
    bobs = (await (await rig.client.get("/api/calls", headers=rig.auth("bob"))).json())["calls"]
    assert bobs == []
    assert (await rig.client.get("/api/calls/alices-call", headers=rig.auth("bob"))).status == 404
    # A supervisor reads everything, and search goes through the store.
    found = await rig.client.get("/api/calls?q=recognise", headers=rig.auth("sam"))
    assert [c["call_id"] for c in (await found.json())["calls"]] == ["alices-call"]
    none = await rig.client.get("/api/calls?q=zebra", headers=rig.auth("sam"))
    assert (await none.json())["calls"] == []


async def test_follow_ups_are_shared_and_can_be_closed(rig: DeskRig) -> None:
    for name in ("alice", "bob"):
        rig.queue.set_available(name, False)
    rig.queue.config.max_wait_s = 0.05
    assert isinstance(await rig.queue.offer(make_package("missed")), NoAgent)
    rig.queue.request_callback("missed", "+15550100")
    listed = await (await rig.client.get("/api/followups", headers=rig.auth("bob"))).json()
    assert [(f["call_id"], f["callback"]["number"]) for f in listed["followups"]] == [
        ("missed", "+15550100")
    ]
    assert (await rig.client.get("/api/calls/missed", headers=rig.auth("bob"))).status == 200
    done = await rig.client.post("/api/followups/missed/done", headers=rig.auth("bob"))
    assert done.status == 200
    listed = await (await rig.client.get("/api/followups", headers=rig.auth("alice"))).json()
    assert listed["followups"] == []
    # Once followed up it is bob's; alice (never rung) can no longer open it.
    assert (await rig.client.get("/api/calls/missed", headers=rig.auth("alice"))).status == 404


async def test_availability_toggle_and_finish(rig: DeskRig) -> None:
    off = await rig.client.post(
        "/api/availability", json={"available": False}, headers=rig.auth("bob")
    )
    assert (await off.json())["agent"]["status"] == "offline"
    assert rig.queue.agents["bob"].available is False
    bad = await rig.client.post(
        "/api/availability", json={"available": "yes"}, headers=rig.auth("bob")
    )
    assert bad.status == 400
    task, _ = await start_offer(rig)
    await rig.client.post("/api/rings/call-1/accept", headers=rig.auth("alice"))
    await task
    assert rig.queue.agents["alice"].status == "on_call"
    done = await rig.client.post("/api/finish", headers=rig.auth("alice"))
    assert (await done.json())["agent"]["status"] == "available"


async def test_after_a_restart_open_transfers_and_callbacks_are_on_the_desk(
    rig: DeskRig,
) -> None:
    """A previous process left one caller ringing and one callback request."""
    at = "2026-01-01T09:00:00.000+00:00"
    rig.store.save_handoff(make_package("cut-off").to_dict(), "ringing", at)
    rig.store.save_handoff(make_package("wants-callback").to_dict(), "no_agent", at)
    rig.store.save_callback("wants-callback", "+15550123", at)
    rig.store.set_handoff_status("wants-callback", "callback", at)
    assert rig.queue.recover() == ["cut-off"]  # what TransferQueue() does at start-up
    listed = await (await rig.client.get("/api/followups", headers=rig.auth("bob"))).json()
    by_id = {f["call_id"]: f for f in listed["followups"]}
    assert by_id["cut-off"]["status"] == "interrupted"
    assert by_id["wants-callback"]["callback"]["number"] == "+15550123"


async def test_pages_and_scripts_carry_a_strict_content_security_policy(rig: DeskRig) -> None:
    page = await rig.client.get("/")
    assert page.status == 200 and "Agent desk" in await page.text()
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    script = await rig.client.get("/static/desk.js")
    assert script.status == 200 and script.headers["X-Content-Type-Options"] == "nosniff"
    assert (await rig.client.get("/static/../app.py")).status == 404
    assert "innerHTML" not in await script.text()


async def test_agents_passed_to_the_factory_can_sign_in(queue: TransferQueue) -> None:
    extra = AgentConfig("dana", "sip:dana@127.0.0.1", token="dana-token-0123456789abcdef")
    app = create_desk_app(queue.store, queue, [extra])
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as client:
        me = await client.get("/api/me", headers={"Authorization": f"Bearer {extra.token}"})
        assert (await me.json())["agent"]["status"] == "available"
