"""Two instances sharing one PostgreSQL: one agent queue, one desk, leases.

Two TransferQueues, each with its own PostgresStore connection and
ClusterNode (LISTEN/NOTIFY over a real server), in one event loop: every
cross-instance step goes through PostgreSQL exactly as between processes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import psycopg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from tests.handoff.handoff_builders import make_package
from voicebot.agent_desk import create_desk_app
from voicebot.cluster.node import ClusterNode
from voicebot.core.record import CallRecord
from voicebot.handoff import AgentConfig, Answered, HandoffConfig, TransferQueue
from voicebot.storage.postgres import LEASE_S, PostgresStore

TOKEN = "alice-token-0123456789"


def config(max_wait: float = 5.0) -> HandoffConfig:
    alice = AgentConfig("alice", "sip:alice@127.0.0.1", token=TOKEN, available=True)
    return HandoffConfig(ring_timeout_s=3.0, max_wait_s=max_wait, agents=[alice])


class Instance:
    def __init__(self, url: str, name: str) -> None:
        self.store = PostgresStore(url, instance=name)
        self.queue = TransferQueue(self.store, config(), claims=self.store)
        self.node = ClusterNode(self.store, self.queue)


@pytest.fixture
async def pair(pg_url: str) -> AsyncIterator[tuple[Instance, Instance]]:
    a, b = Instance(pg_url, "a"), Instance(pg_url, "b")
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(a.node)
        await stack.enter_async_context(b.node)
        yield a, b
    a.store.close()
    b.store.close()


async def until(check, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.02)


def attempts(store: PostgresStore) -> list[tuple[str, str]]:
    return [(a["agent"], h["call_id"]) for h in store.list_handoffs() for a in h["attempts"]]


async def test_two_handoffs_on_two_instances_ring_the_one_free_agent_once(pair) -> None:
    a, b = pair
    steps: dict[str, list[str]] = {"on-a": [], "on-b": []}

    def recorder(call_id: str):
        return lambda step: steps[call_id].append(type(step).__name__)

    offer_a = asyncio.create_task(a.queue.offer(make_package("on-a"), recorder("on-a")))
    offer_b = asyncio.create_task(b.queue.offer(make_package("on-b"), recorder("on-b")))
    await until(lambda: "Ringing" in steps["on-a"] + steps["on-b"])
    await until(lambda: "Waiting" in steps["on-a"] + steps["on-b"])
    await asyncio.sleep(0.3)  # nothing else may ring meanwhile
    assert len(attempts(a.store)) == 1
    ringing_call = "on-a" if "Ringing" in steps["on-a"] else "on-b"
    waiting_call = "on-b" if ringing_call == "on-a" else "on-a"
    holder, other = (a, b) if ringing_call == "on-a" else (b, a)
    # The agent answers on the desk served by the *other* instance.
    await until(lambda: other.queue.board.get(ringing_call) is not None)
    assert other.queue.board.get(ringing_call).owner == holder.store.instance
    other.queue.respond("alice", ringing_call, accept=True)
    first = await asyncio.wait_for(offer_a if ringing_call == "on-a" else offer_b, 5)
    assert isinstance(first, Answered)
    assert steps[waiting_call] == ["Waiting"]
    # The agent finishes on the other desk: the waiting caller is rung next.
    await until(lambda: other.queue.agents["alice"].on_call == ringing_call)
    other.queue.set_available("alice", True)  # "ready again" on instance `other`
    await until(lambda: "Ringing" in steps[waiting_call])
    waiting_holder = b if waiting_call == "on-b" else a
    waiting_holder.queue.respond("alice", waiting_call, accept=True)
    second = await asyncio.wait_for(offer_b if waiting_call == "on-b" else offer_a, 5)
    assert isinstance(second, Answered)
    assert sorted(attempts(a.store)) == [("alice", "on-a"), ("alice", "on-b")]


async def test_decline_from_another_instance_reaches_the_call(pair) -> None:
    a, b = pair
    b.queue.config.max_wait_s = 1.0
    offer = asyncio.create_task(b.queue.offer(make_package("c1")))
    await until(lambda: a.queue.board.get("c1") is not None)
    a.queue.respond("alice", "c1", accept=False)
    result = await asyncio.wait_for(offer, 5)
    assert type(result).__name__ == "NoAgent"
    assert attempts(a.store) == [("alice", "c1")]
    assert a.store.get_handoff("c1")["attempts"][0]["result"] == "declined"
    await until(lambda: a.queue.board.get("c1") is None)


async def test_a_dead_instances_handoffs_are_interrupted_and_live_ones_kept(pair, pg_url) -> None:
    a, b = pair
    a.store.save_handoff(make_package("live").to_dict(), "waiting", "t0")
    dead = PostgresStore(pg_url, instance="dead")
    dead.save(CallRecord("lost", "+15550100", "sip"))
    a.store.save(CallRecord("live", "+15550100", "sip"))
    dead.save_handoff(make_package("lost").to_dict(), "ringing", "t0")
    assert dead.claim_agent("alice", "lost")
    with psycopg.connect(pg_url, autocommit=True) as db:  # as after kill -9
        db.execute(
            "UPDATE instances SET heartbeat_at = now() - make_interval(secs => %s) "
            "WHERE id = 'dead'",
            (LEASE_S + 1,),
        )
    # A new instance starting now recovers nothing that is live.
    fresh = TransferQueue(PostgresStore(pg_url, instance="fresh"), config())
    assert fresh.store.get_handoff("live")["status"] == "waiting"
    assert fresh.store.get_handoff("lost")["status"] == "interrupted"
    # The cluster (whichever instance's heartbeat comes first) reaps it.
    gone = a.node.beat() + b.node.beat()
    assert gone in ([], ["dead"])  # [] when a heartbeat task got there first
    assert {i["id"] for i in a.store.live_instances()} == {"a", "b", "fresh"}
    assert a.store.get("lost")["outcome"] == "interrupted"
    assert a.store.get("live")["outcome"] == "in_progress"
    # The dead instance's claim on alice lapsed: a call elsewhere can ring her.
    offer = asyncio.create_task(a.queue.offer(make_package("next")))
    await until(lambda: a.queue.board.get("next") is not None)
    a.queue.respond("alice", "next", accept=True)
    assert isinstance(await asyncio.wait_for(offer, 5), Answered)
    fresh.store.close()


async def test_one_desk_sign_in_serves_every_instance_and_sees_their_rings(pair) -> None:
    a, b = pair
    async with AsyncExitStack() as stack:
        desks = []
        for inst in (a, b):
            app = web.Application()
            app.add_subapp("/desk", create_desk_app(inst.store, inst.queue))
            desks.append(await stack.enter_async_context(TestClient(TestServer(app))))
        desk_a, desk_b = desks
        signed = await desk_a.post("/desk/api/signin", json={"token": TOKEN})
        assert signed.status == 200
        cookie = signed.cookies["voicebot_desk"].value
        # The same browser session, served by instance B.
        me = await desk_b.get("/desk/api/me", cookies={"voicebot_desk": cookie})
        assert me.status == 200 and (await me.json())["agent"]["name"] == "alice"
        ws = await desk_a.ws_connect("/desk/ws", headers={"Cookie": f"voicebot_desk={cookie}"})
        offer = asyncio.create_task(b.queue.offer(make_package("from-b")))
        async with asyncio.timeout(5):
            while (msg := await ws.receive_json())["type"] != "ring":
                pass
        assert msg["ring"]["call_id"] == "from-b"
        assert msg["ring"]["package"]["reason"] == "complexity"
        assert msg["ring"]["package"]["transcript"]
        accepted = await desk_a.post(
            "/desk/api/rings/from-b/accept", cookies={"voicebot_desk": cookie}
        )
        assert accepted.status == 200
        assert isinstance(await asyncio.wait_for(offer, 5), Answered)
        await ws.close()
        signed_out = await desk_b.post("/desk/api/signout", cookies={"voicebot_desk": cookie})
        assert signed_out.status in (200, 204)
        again = await desk_a.get("/desk/api/me", cookies={"voicebot_desk": cookie})
        assert again.status == 401
