"""Routing: who rings, for how long, what happens when nobody answers.

A scripted dialer stands in for the SIP one (this is a unit test of the
queue); desk answers go through the real ring board.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from handoff_builders import make_package

from voicebot.handoff import (
    Abandoned,
    AgentConfig,
    Answered,
    DeskDialer,
    HandoffConfig,
    HandoffPackage,
    NoAgent,
    NotYourRing,
    OfferStep,
    RingEnded,
    Ringing,
    TransferQueue,
    Waiting,
    parse_agent_option,
)
from voicebot.storage.call_store import SqliteCallStore

HANG = "hang"  # the phone rings until cancelled


class ScriptedDialer:
    """Each agent's phone answers from a script; records every ring."""

    def __init__(
        self,
        script: dict[str, list[str]] | None = None,
        check: Callable[[HandoffPackage], None] | None = None,
    ) -> None:
        self.script = script or {}
        self.check = check
        self.rang: list[str] = []
        self.cancelled: list[str] = []

    async def ring(self, agent: AgentConfig, package: HandoffPackage) -> str:
        self.rang.append(agent.name)
        if self.check:
            self.check(package)
        outcome = (self.script.get(agent.name) or [HANG]).pop(0)
        if outcome == "raise":
            raise OSError("phone unreachable")
        if outcome != HANG:
            return outcome
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled.append(agent.name)
            raise
        return "failed"


def agents(*specs: str) -> list[AgentConfig]:
    """\"name" or "name:skill1,skill2"; all available from the start."""
    out = []
    for spec in specs:
        name, _, skills = spec.partition(":")
        out.append(
            AgentConfig(
                name,
                f"sip:{name}@127.0.0.1",
                skills.split(",") if skills else [],
                token=f"{name}-token-0123456789",
                available=True,
            )
        )
    return out


def make_queue(
    store: SqliteCallStore,
    *specs: str,
    dialer=None,
    ring: float = 0.2,
    wait: float = 1.0,
    idle: dict[str, float] | None = None,
    rona: bool = True,
) -> TransferQueue:
    config = HandoffConfig(
        ring_timeout_s=ring,
        max_wait_s=wait,
        agents=agents(*specs),
        missed_ring_makes_unavailable=rona,
    )
    queue = TransferQueue(store, config, dialer)
    for name, since in (idle or {}).items():
        queue.agents[name].idle_since = since
    return queue


async def test_longest_idle_agent_rings_first(store: SqliteCallStore) -> None:
    dialer = ScriptedDialer({"bob": ["answered"]})
    queue = make_queue(
        store,
        "alice",
        "bob",
        "carol",
        dialer=dialer,
        idle={"alice": 300.0, "bob": 100.0, "carol": 200.0},
    )
    result = await queue.offer(make_package())
    assert isinstance(result, Answered) and result.agent.name == "bob"
    assert dialer.rang == ["bob"]
    assert queue.agents["bob"].status == "on_call"
    assert store.get_handoff("call-1")["status"] == "answered"  # type: ignore[index]


async def test_a_skill_match_is_preferred_over_idle_time(store: SqliteCallStore) -> None:
    dialer = ScriptedDialer({"fran": ["answered"], "alice": ["answered"]})
    queue = make_queue(
        store,
        "alice",
        "fran:fraud",
        "gil:mortgages",
        dialer=dialer,
        idle={"alice": 1.0, "fran": 50.0, "gil": 2.0},
    )
    first = await queue.offer(make_package("fraud-call"))  # category fraud_dispute
    assert isinstance(first, Answered) and first.agent.name == "fran"
    # With the specialist busy, the next fraud call goes to whoever is free.
    second = await queue.offer(make_package("fraud-call-2"))
    assert isinstance(second, Answered) and second.agent.name == "alice"


async def test_ring_timeout_moves_to_the_next_agent(store: SqliteCallStore) -> None:
    dialer = ScriptedDialer({"alice": [HANG], "bob": ["answered"]})
    queue = make_queue(
        store, "alice", "bob", dialer=dialer, ring=0.05, idle={"alice": 1.0, "bob": 2.0}
    )
    steps: list[OfferStep] = []
    result = await queue.offer(make_package(), on_step=steps.append)
    assert isinstance(result, Answered) and result.agent.name == "bob"
    assert [(s.agent, s.result) for s in steps if isinstance(s, RingEnded)] == [
        ("alice", "timeout"),
        ("bob", "answered"),
    ]
    assert [s.agent for s in steps if isinstance(s, Ringing)] == ["alice", "bob"]
    assert dialer.cancelled == ["alice"]  # the dialer was told to stop ringing
    assert queue.agents["alice"].status == "offline"  # redirected on no answer
    attempts = store.get_handoff("call-1")["attempts"]  # type: ignore[index]
    assert [(a["agent"], a["result"]) for a in attempts] == [
        ("alice", "timeout"),
        ("bob", "answered"),
    ]


async def test_decline_and_failure_move_on_and_do_not_ring_again(store: SqliteCallStore) -> None:
    dialer = ScriptedDialer({"alice": ["declined"], "bob": ["raise"], "carol": ["answered"]})
    queue = make_queue(
        store, "alice", "bob", "carol", dialer=dialer, idle={"alice": 1.0, "bob": 2.0, "carol": 3.0}
    )
    result = await queue.offer(make_package())
    assert isinstance(result, Answered) and result.agent.name == "carol"
    assert dialer.rang == ["alice", "bob", "carol"]
    assert [a.result for a in result.attempts] == ["declined", "failed", "answered"]
    assert queue.agents["alice"].status == "available"  # a decline is not "away"


async def test_nobody_available_within_max_wait_gives_no_agent(store: SqliteCallStore) -> None:
    queue = make_queue(store, "alice", dialer=ScriptedDialer(), wait=0.15)
    queue.set_available("alice", False)
    steps: list[OfferStep] = []
    result = await queue.offer(make_package(), on_step=steps.append)
    assert isinstance(result, NoAgent) and result.waited_s >= 0.15
    assert isinstance(steps[0], Waiting)
    assert store.get_handoff("call-1")["status"] == "no_agent"  # type: ignore[index]


async def test_nobody_answering_within_max_wait_gives_no_agent(store: SqliteCallStore) -> None:
    dialer = ScriptedDialer()  # every phone rings forever
    queue = make_queue(store, "alice", "bob", dialer=dialer, ring=0.1, wait=0.25, rona=False)
    result = await queue.offer(make_package())
    assert isinstance(result, NoAgent)
    assert 0.25 <= result.waited_s < 0.6  # the last ring is cut at the deadline
    assert len(dialer.rang) >= 2 and all(a.result == "timeout" for a in result.attempts)
    assert dialer.rang[:2] == ["alice", "bob"]  # one ring each before anyone rings twice


async def test_no_agents_at_all_or_all_declined_ends_at_once(store: SqliteCallStore) -> None:
    empty = make_queue(store, wait=5.0)
    assert isinstance(await empty.offer(make_package("x")), NoAgent)
    queue = make_queue(store, "alice", dialer=ScriptedDialer({"alice": ["declined"]}), wait=5.0)
    result = await asyncio.wait_for(queue.offer(make_package("y")), 1.0)
    assert isinstance(result, NoAgent) and result.waited_s < 1.0


async def test_a_caller_on_hold_rings_the_agent_who_becomes_free(store: SqliteCallStore) -> None:
    queue = make_queue(store, "alice", dialer=ScriptedDialer({"alice": ["answered"]}), wait=2.0)
    queue.set_available("alice", False)
    offer = asyncio.create_task(queue.offer(make_package()))
    await asyncio.sleep(0.05)
    assert store.get_handoff("call-1")["status"] == "waiting"  # type: ignore[index]
    queue.set_available("alice", True)
    result = await asyncio.wait_for(offer, 1.0)
    assert isinstance(result, Answered) and result.agent.name == "alice"


async def test_package_is_stored_before_any_phone_rings(store: SqliteCallStore) -> None:
    seen: list[str] = []

    def check(package: HandoffPackage) -> None:
        stored = store.get_handoff(package.call_id)
        assert stored is not None and stored["package"] == package.to_dict()
        seen.append(stored["status"])

    queue = make_queue(store, "alice", dialer=ScriptedDialer({"alice": ["answered"]}, check))
    await queue.offer(make_package())
    assert seen == ["ringing"]


async def test_desk_accept_and_decline_resolve_the_ring(store: SqliteCallStore) -> None:
    queue = make_queue(store, "alice", "bob", ring=2.0, wait=5.0, idle={"alice": 1.0, "bob": 2.0})
    assert isinstance(queue.dialer, DeskDialer)

    def answer(step: OfferStep) -> None:
        if isinstance(step, Ringing):
            with pytest.raises(NotYourRing):  # nobody answers for someone else
                queue.respond("bob" if step.agent == "alice" else "alice", step.call_id, True)
            queue.respond(step.agent, step.call_id, accept=step.agent == "bob")

    result = await asyncio.wait_for(queue.offer(make_package(), on_step=answer), 1.0)
    assert isinstance(result, Answered) and result.agent.name == "bob"
    assert [a.result for a in result.attempts] == ["declined", "answered"]


async def test_caller_hanging_up_on_hold_keeps_the_package(store: SqliteCallStore) -> None:
    dialer = ScriptedDialer()
    queue = make_queue(store, "alice", dialer=dialer, ring=5.0, wait=10.0)
    offer = asyncio.create_task(queue.offer(make_package()))
    await asyncio.sleep(0.05)
    offer.cancel()  # the session cancels the transfer when the caller hangs up
    with pytest.raises(asyncio.CancelledError):
        await offer
    stored = store.get_handoff("call-1")
    assert stored is not None and stored["status"] == "abandoned"
    assert stored["package"]["transcript"]
    assert stored["attempts"][0]["result"] == "abandoned"
    assert dialer.cancelled == ["alice"] and queue.agents["alice"].status == "available"
    assert queue.board.get("call-1") is None


async def test_abandon_by_call_id_returns_abandoned(store: SqliteCallStore) -> None:
    queue = make_queue(store, "alice", dialer=ScriptedDialer(), ring=5.0, wait=10.0)
    offer = asyncio.create_task(queue.offer(make_package()))
    await asyncio.sleep(0.05)
    assert queue.abandon("call-1")
    result = await asyncio.wait_for(offer, 1.0)
    assert isinstance(result, Abandoned)
    assert store.get_handoff("call-1")["status"] == "abandoned"  # type: ignore[index]


async def test_callback_request_is_stored(store: SqliteCallStore) -> None:
    queue = make_queue(store, wait=0.05)
    assert isinstance(await queue.offer(make_package()), NoAgent)
    request = queue.request_callback("call-1", "+15550100")
    assert request.number == "+15550100"
    stored = store.get_handoff("call-1")
    assert stored is not None and stored["status"] == "callback"
    assert stored["callback"]["number"] == "+15550100"
    assert queue.follow_up_done("call-1", "alice")
    assert store.list_callbacks() == []


async def test_restart_keeps_pending_handoffs_callbacks_and_availability(tmp_path: Path) -> None:
    path = tmp_path / "calls.sqlite3"
    store = SqliteCallStore(path)
    queue = make_queue(store, "alice", "bob", dialer=ScriptedDialer(), ring=30.0, wait=60.0)
    queue.set_available("bob", False)
    assert isinstance(await make_queue(store, wait=0.01).offer(make_package("cb")), NoAgent)
    queue.request_callback("cb", "+15550199")
    ringing = asyncio.create_task(queue.offer(make_package("live")))
    await asyncio.sleep(0.05)
    store.close()  # the process dies mid-ring: nothing more is written
    ringing.cancel()
    with pytest.raises(Exception):  # noqa: B017 — the store is gone, any error will do
        await ringing

    again = SqliteCallStore(path)
    restarted = make_queue(again, "alice", "bob")
    assert again.get_handoff("live")["status"] == "interrupted"  # type: ignore[index]
    assert [c["call_id"] for c in again.list_callbacks()] == ["cb"]
    assert restarted.agents["bob"].available is False  # saved state beats config
    assert restarted.agents["alice"].available is True
    again.close()


def test_serve_agent_option_adds_a_signed_in_available_agent(store: SqliteCallStore) -> None:
    queue = make_queue(store)
    name, uri = parse_agent_option("alice=sip:alice@127.0.0.1:5070")
    agent = queue.add_agent(name, uri)
    assert len(agent.token) >= 16 and queue.agent_by_token(agent.token).name == "alice"
    assert queue.agents["alice"].status == "available"
    assert queue.agent_by_token("wrong") is None and queue.agent_by_token("") is None
    with pytest.raises(ValueError):
        parse_agent_option("alice@127.0.0.1")
    with pytest.raises(ValueError):
        queue.add_agent("alice", "sip:other@127.0.0.1")


def test_config_from_toml_tables_and_token_rules() -> None:
    config = HandoffConfig(agents=[{"name": "a", "sip_uri": "sip:a@h", "skills": ["Fraud"]}])
    config.validate()
    assert isinstance(config.agents[0], AgentConfig) and config.agents[0].skills == ["fraud"]
    assert config.agents[0].token  # generated
    with pytest.raises(ValueError, match="at least"):
        HandoffConfig(agents=[AgentConfig("a", "sip:a@h", token="short")]).validate()
    twins = [AgentConfig(n, "sip:x@h", token="same-token-0123456789") for n in "ab"]
    with pytest.raises(ValueError, match="own token"):
        HandoffConfig(agents=twins).validate()


async def test_the_queue_serves_the_sessions_handoff_port(store: SqliteCallStore) -> None:
    """hand_off builds the package from the record and answers in the caller's terms."""
    from handoff_builders import fraud_decision, fraud_record

    from voicebot.session.handoff import OfferOutcome

    ringing: list[str] = []
    waiting: list[float] = []
    queue = make_queue(
        store, "alice", "bob", dialer=ScriptedDialer({"alice": ["declined"], "bob": ["answered"]})
    )
    record = fraud_record("call-p")
    record.transfer = fraud_decision()
    outcome = await queue.hand_off(record, ringing.append, waiting.append)
    assert outcome == OfferOutcome("answered", 2, "bob")
    assert sorted(ringing) == ["alice", "bob"] and not waiting
    assert store.get_handoff("call-p")["status"] == "answered"  # type: ignore[index]

    busy = make_queue(store, "carol", dialer=ScriptedDialer(), wait=0.1)
    busy.set_available("carol", False)
    other = fraud_record("call-q")
    other.transfer = fraud_decision()
    outcome = await busy.hand_off(other, ringing.append, waiting.append)
    assert outcome == OfferOutcome("no_agent", 0) and waiting
