"""Transfer fallbacks and failures with real peers: bridging, decline, ring-out.

* A SIPp caller whose phone refuses REFER (501 / 405): the bot calls the
  baresip agent itself and relays audio both ways (checked by correlation:
  the agent's recording, and the RTP the bot sends to SIPp in a loopback
  capture); a BYE from either side ends the other.
* Agent busy (SIPp UAS, 486) → "declined", on the REFER and the bridge path.
* Agent never answers (SIPp UAS, 180 only) → the ring is cancelled: CANCEL,
  200, 487, ACK.
"""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path

import numpy as np
import pytest
from sip_peers import RATE, best_correlation, noise_clip, wait_until
from sip_transfer_peers import (
    AGENT_URI,
    BOT_URI,
    SIPP_AGENT_PORT,
    SIPP_CALLER_PORT,
    Capture,
    Sipp,
    TransferHandler,
    agent_phone,
    bot,
    caller_phone,
    padded,
)

from voicebot.audio.wavfile import write_wav

pytestmark = [pytest.mark.netns, pytest.mark.sip, pytest.mark.slow]
log = logging.getLogger(__name__)

SIPP_AGENT_URI = f"sip:agent@127.0.0.1:{SIPP_AGENT_PORT}"
BOT_HOSTPORT = BOT_URI.split("@")[1]


def _sipp_rtp_port(sipp: Sipp) -> int:
    match = re.search(r"m=audio (\d+) ", sipp.messages)
    assert match, sipp.messages[:2000]
    return int(match.group(1))


def _agent_invites(messages: list[str]) -> list[str]:
    return [m for m in messages if m.startswith("INVITE sip:agent@")]


async def _sipp_caller(tmp_path: Path, scenario: str, clip: np.ndarray) -> Sipp:
    workdir = tmp_path / "sipp_caller"
    workdir.mkdir()
    write_wav(workdir / "caller_ulaw.wav", clip, RATE, "ulaw")
    return await Sipp.start(
        scenario, workdir, port=SIPP_CALLER_PORT, remote=BOT_HOSTPORT, timeout_s=30
    )


async def test_refused_refer_bridges_audio_both_ways_until_the_caller_hangs_up(
    tmp_path: Path,
) -> None:
    caller_clip = noise_clip(3.0, seed=21)
    agent_clip = noise_clip(3.0, seed=22)
    agent = agent_phone(tmp_path, padded(agent_clip, 1.0, 12.0))
    capture = Capture(tmp_path)
    await capture.start()
    handler = TransferHandler(AGENT_URI, delay_s=0.5)
    try:
        async with bot(handler) as server:
            await agent.start(quit_after_s=30)
            caller = await _sipp_caller(
                tmp_path, "caller_refuses_refer_hangs_up.xml", padded(caller_clip, 1.5, 2.0)
            )
            assert await wait_until(lambda: bool(handler.outcomes), 10)
            outcome = handler.outcomes[0]
            log.warning("transfer outcome: %s", outcome.to_dict())
            assert (outcome.result, outcome.method, outcome.refer_code) == (
                "answered",
                "bridge",
                501,
            )
            call = server.calls[0]
            assert call.bridged  # the handler returned, the caller's leg stays up
            assert await caller.wait(20) == 0, caller.output
            # the caller's BYE ended the bridge: the agent's leg got a BYE too
            assert await wait_until(lambda: not server.legs, 5)
            assert await wait_until(lambda: "terminated" in agent.text(), 5), agent.text()
            bridge = call.bridge
            assert bridge is not None and bridge.end_reason == "caller hung up"
    finally:
        await agent.stop()
        await capture.stop()
    invites = _agent_invites(await capture.sip_messages())
    assert invites and f"X-Voicebot-Call: {handler.channels[0].call_id}" in invites[0], invites
    heard_by_agent, _ = best_correlation(agent.recording("dec"), caller_clip)
    heard_by_caller, _ = best_correlation(
        await capture.rtp_to_port(_sipp_rtp_port(caller)), agent_clip
    )
    log.warning("bridge: agent heard caller %.3f, caller heard agent %.3f",
                heard_by_agent, heard_by_caller)  # fmt: skip
    assert heard_by_agent > 0.9
    assert heard_by_caller > 0.9


async def test_agent_hanging_up_ends_the_bridged_caller(tmp_path: Path) -> None:
    agent = agent_phone(tmp_path, padded(noise_clip(1.0, seed=23), 0.5, 20.0))
    handler = TransferHandler(AGENT_URI, delay_s=0.5)
    async with bot(handler) as server:
        await agent.start(quit_after_s=30)
        caller = await _sipp_caller(
            tmp_path, "caller_refuses_refer_waits.xml", padded(noise_clip(1.0, seed=24), 0.5, 8)
        )
        assert await wait_until(lambda: bool(handler.outcomes), 10)
        assert (handler.outcomes[0].result, handler.outcomes[0].refer_code) == ("answered", 405)
        await asyncio.sleep(1.0)
        response = await agent.command("hangup")
        assert response["ok"], response
        assert await caller.wait(10) == 0, caller.output  # got the BYE, answered 200
        assert await wait_until(lambda: not server.legs, 5)
    await agent.stop()


async def test_busy_agent_declines_a_referred_call(tmp_path: Path) -> None:
    caller = caller_phone(tmp_path, padded(noise_clip(1.0, seed=25), 0.5, 10.0))
    agent = await Sipp.start("agent_busy.xml", tmp_path / "sipp_agent", port=SIPP_AGENT_PORT)
    handler = TransferHandler(SIPP_AGENT_URI, delay_s=0.5)
    try:
        async with bot(handler):
            await caller.start(quit_after_s=20, dial=BOT_URI)
            assert await wait_until(lambda: bool(handler.outcomes), 10), caller.text()
            assert await agent.wait(10) == 0, agent.output
    finally:
        await caller.stop()
        await agent.stop()
    outcome = handler.outcomes[0]
    log.warning("transfer outcome: %s", outcome.to_dict())
    assert (outcome.result, outcome.method, outcome.code) == ("declined", "refer", 486)
    assert "NOTIFY 486" in outcome.steps


async def test_busy_agent_declines_a_bridged_call(tmp_path: Path) -> None:
    agent = await Sipp.start("agent_busy.xml", tmp_path / "sipp_agent", port=SIPP_AGENT_PORT)
    handler = TransferHandler(SIPP_AGENT_URI, delay_s=0.5)
    async with bot(handler):
        caller = await _sipp_caller(
            tmp_path, "caller_refuses_refer_waits.xml", padded(noise_clip(1.0, seed=26), 0.5, 8)
        )
        assert await agent.wait(10) == 0, agent.output
        assert await caller.wait(10) == 0, caller.output  # the bot BYEs it afterwards
    outcome = handler.outcomes[0]
    assert (outcome.result, outcome.method, outcome.code) == ("declined", "bridge", 486)
    assert "X-Voicebot-Call: sip-" in agent.messages


async def test_ring_timeout_cancels_the_bridged_invite(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "voicebot")
    agent = await Sipp.start("agent_rings.xml", tmp_path / "sipp_agent", port=SIPP_AGENT_PORT)
    handler = TransferHandler(SIPP_AGENT_URI, delay_s=0.5, cancel_after_s=2.0)
    async with bot(handler) as server:
        caller = await _sipp_caller(
            tmp_path, "caller_refuses_refer_waits.xml", padded(noise_clip(1.0, seed=27), 0.5, 8)
        )
        assert await agent.wait(15) == 0, agent.output  # CANCEL → 200, 487 → ACK
        assert await caller.wait(10) == 0, caller.output
        assert await wait_until(lambda: not server.legs, 3)
    assert handler.cancelled == 1 and not handler.outcomes
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "event=sip_cancel_sent" in messages
    assert "agent answered 487" in messages


async def test_sigterm_drain_keeps_a_bridged_call_to_the_limit_then_byes_both_legs(
    tmp_path: Path,
) -> None:
    """A deploy must not cut a caller off from the agent they waited for: the
    bridge runs on through the drain limit; then the caller and the agent
    both get a BYE (SIPp's scenario passes only if its BYE came, and was 200'd)."""
    from voicebot.server import VoicebotServer

    agent = agent_phone(tmp_path, padded(noise_clip(1.0, seed=25), 0.5, 20.0))
    handler = TransferHandler(AGENT_URI, delay_s=0.5)
    async with bot(handler) as server:
        await agent.start(quit_after_s=30)
        caller = await _sipp_caller(
            tmp_path, "caller_refuses_refer_waits.xml", padded(noise_clip(1.0, seed=26), 0.5, 8)
        )
        assert await wait_until(lambda: bool(handler.outcomes), 10)
        assert handler.outcomes[0].method == "bridge" and server.calls[0].bridged
        process = VoicebotServer(services=None)  # type: ignore[arg-type]  # no session left
        loop = asyncio.get_running_loop()
        started = loop.time()
        server.stop_accepting()  # as serve() does on SIGTERM
        await process.drain(2.0, bridged=server.bridge_ends)
        assert loop.time() - started >= 1.9  # the bridge kept the drain waiting…
        assert server.calls and server.calls[0].bridged  # …and was still up at the limit
        await server.close(grace_s=2.0)
        assert await caller.wait(10) == 0, caller.output  # the caller got its BYE
        assert await wait_until(lambda: "terminated" in agent.text(), 5), agent.text()
        assert not server.legs
    await agent.stop()
