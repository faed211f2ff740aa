"""Blind transfer with REFER between real softphones.

A baresip caller calls the bot; the bot REFERs it to a second baresip (the
agent, auto-answer).  The caller's baresip places the new call itself and
reports progress in NOTIFYs.  Checked: the outcome, the X-Voicebot-Call
header on the agent's INVITE (in a loopback capture), and that the agent
hears the caller's audio.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from sip_peers import best_correlation, noise_clip, wait_until
from sip_transfer_peers import (
    AGENT_PORT,
    AGENT_URI,
    BOT_URI,
    Capture,
    TransferHandler,
    agent_phone,
    bot,
    caller_phone,
    padded,
)

pytestmark = [pytest.mark.netns, pytest.mark.sip, pytest.mark.slow]
log = logging.getLogger(__name__)


async def test_refer_reaches_a_softphone_agent(tmp_path: Path) -> None:
    caller_clip = noise_clip(3.0, seed=11)
    caller = caller_phone(tmp_path, padded(caller_clip, 1.0, 6.0))
    agent = agent_phone(tmp_path, padded(noise_clip(1.0, seed=12), 0.5, 12.0))
    capture = Capture(tmp_path)
    await capture.start()
    handler = TransferHandler(AGENT_URI, delay_s=1.0)
    try:
        async with bot(handler) as server:
            await agent.start(quit_after_s=25)
            await caller.start(quit_after_s=25, dial=BOT_URI)
            assert await wait_until(lambda: bool(handler.outcomes), 15), caller.text()
            outcome = handler.outcomes[0]
            log.warning("transfer outcome: %s", outcome.to_dict())
            assert outcome.result == "answered", outcome
            assert outcome.method == "refer"
            assert outcome.refer_code == 202
            # the bot's leg is BYEd once the handler returned
            assert await wait_until(lambda: not server.calls, 5)
            await asyncio.sleep(5.5)  # baresip restarts its source file for the new call
    finally:
        await caller.stop()
        await agent.stop()
        await capture.stop()
    messages = await capture.sip_messages()
    invites = [
        m for m in messages if m.startswith("INVITE ") and f":{AGENT_PORT}" in m.split("\r\n")[0]
    ]
    log.warning("agent INVITE:\n%s", invites[0] if invites else "(none)")
    assert invites, "\n\n".join(m[:300] for m in messages)
    # baresip 1.0.0 keeps the Refer-To URI's header in the Request-URI (and To)
    # instead of turning it into a header field; either way it reaches the agent.
    call_id = handler.channels[0].call_id
    assert any(
        f"X-Voicebot-Call={call_id}" in m or f"X-Voicebot-Call: {call_id}" in m for m in invites
    )
    heard, _ = best_correlation(agent.recording("dec"), caller_clip)
    log.warning("agent heard the caller: correlation %.3f", heard)
    assert heard > 0.9
