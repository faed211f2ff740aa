"""The real transfer queue ringing agents through ChannelDialer over SIP.

What ``voicebot serve`` wires: TransferQueue(dialer=ChannelDialer(lookup)).
The caller (a scripted UAC) refuses REFER, so each ring is a bridged INVITE;
the queue's ring timeout must CANCEL the first agent's INVITE before the
second agent's phone rings, and the second agent's answer is the transfer.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sip_peers import wait_until
from sip_transfer_peers import reply
from sip_uac import Leg, Uac, sdp
from sipmessage import Request

from voicebot.handoff import AgentConfig, Answered, HandoffConfig, HandoffPackage, TransferQueue
from voicebot.handoff.dialer import ChannelDialer
from voicebot.storage.call_store import SqliteCallStore
from voicebot.telephony.channel import CallChannel
from voicebot.telephony.sip import SipConfig, SipServer

pytestmark = pytest.mark.sip


def _package(call_id: str) -> HandoffPackage:
    return HandoffPackage(
        call_id=call_id,
        caller_id="+15550100",
        created_at="2026-01-01T00:00:00+00:00",
        reason="explicit",
        summary="Caller asked for a person.",
    )


async def test_ring_timeout_cancels_one_agent_and_the_next_one_answers(tmp_path: Path) -> None:
    channels: dict[str, CallChannel] = {}
    results: list[Any] = []
    outcomes: list[tuple[str, str, dict[str, Any]]] = []

    async def on_call(channel: CallChannel) -> None:  # stands in for the session
        channels[channel.call_id] = channel
        results.append(await queue.offer(_package(channel.call_id)))

    config = SipConfig(listen_port=0, rtp_port_min=44000, rtp_port_max=44999)
    server = SipServer(config, on_call)
    await server.start()
    caller = await Uac.open(server.port)
    alice = await Uac.open(server.port)
    bob = await Uac.open(server.port)
    agents = [
        AgentConfig("alice", f"sip:alice@127.0.0.1:{alice.port}", available=True),
        AgentConfig("bob", f"sip:bob@127.0.0.1:{bob.port}", available=True),
    ]
    store = SqliteCallStore(tmp_path / "calls.db")
    dialer = ChannelDialer(channels.get, on_outcome=lambda *a: outcomes.append(a))
    queue = TransferQueue(
        store, HandoffConfig(ring_timeout_s=1.0, max_wait_s=10.0, agents=agents), dialer
    )
    try:
        leg = Leg(caller)
        await leg.establish(rtp_port=9)
        refer = await caller.request("REFER")
        caller.reply(refer, 501, "Not Implemented")
        first, invite = await _first_invite(alice, bob)
        second = bob if first is alice else alice
        reply(first, invite, 180, "Ringing", tag="r1")
        cancel = await first.request("CANCEL", timeout=3)  # the queue's 1 s ring timeout
        reply(first, cancel, 200, "OK", tag="r1")
        reply(first, invite, 487, "Request Terminated", tag="r1")
        await first.request("ACK")
        refer2 = await caller.request("REFER", timeout=3)  # next ring: REFER first again
        caller.reply(refer2, 501, "Not Implemented")
        invite2 = await second.request("INVITE")
        assert invite2.headers["X-Voicebot-Call"] == leg_call_id(channels)
        reply(second, invite2, 200, "OK", tag="r2", body=sdp(9, "0"))
        await second.request("ACK")
        assert await wait_until(lambda: bool(results), 3)
        result = results[0]
        assert isinstance(result, Answered)
        assert result.agent.name == ("bob" if second is bob else "alice")
        assert [e.result for e in result.attempts] == ["timeout", "answered"]
        assert [o[2]["method"] for o in outcomes] == [
            "bridge"
        ]  # the cancelled ring reports nothing
        assert server.calls[0].bridged
    finally:
        for uac in (caller, alice, bob):
            uac.close()
        await server.close()


def leg_call_id(channels: dict[str, CallChannel]) -> str:
    return next(iter(channels))


async def _first_invite(alice: Uac, bob: Uac) -> tuple[Uac, Request]:
    """Whichever agent the queue rings first (both have been idle equally long)."""
    tasks = {asyncio.ensure_future(u.request("INVITE")): u for u in (alice, bob)}
    done, pending = await asyncio.wait(tasks, timeout=3, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    task = done.pop()
    return tasks[task], task.result()
