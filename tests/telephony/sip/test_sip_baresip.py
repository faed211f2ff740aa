"""baresip, a real softphone, calls the server: audio both ways, DTMF, hold, BYE.

baresip binds RTP on every interface, so each test runs in a private network
namespace (``netns`` marker).  Its caller is the headless configuration
docs/SIP.md describes: an aufile source playing a WAV, sndfile recording what
it sends and hears.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import numpy as np
import pytest
from sip_peers import (
    RATE,
    SERVER_PORT,
    Baresip,
    RecordingHandler,
    best_correlation,
    noise_clip,
    sip_server,
    wait_until,
)

from voicebot.audio.wavfile import write_wav
from voicebot.telephony.sip import CallState

pytestmark = [pytest.mark.netns, pytest.mark.sip, pytest.mark.slow]

BOT_URI = f"sip:bot@127.0.0.1:{SERVER_PORT}"


def _caller_wav(tmp_path: Path, clip: np.ndarray, lead_s: float, tail_s: float) -> Path:
    """baresip hangs up at the end of its source file, so pad it to set the call length."""
    silence = np.zeros
    pcm = np.concatenate(
        [silence(int(lead_s * 8000), np.int16), clip, silence(int(tail_s * 8000), np.int16)]
    )
    return write_wav(tmp_path / "caller.wav", pcm, RATE)


async def _answered(server, handler: RecordingHandler, timeout_s: float = 5) -> None:  # type: ignore[no-untyped-def]
    ok = await wait_until(
        lambda: bool(handler.records) and server.calls[0].state is CallState.CONFIRMED, timeout_s
    )
    assert ok, "baresip's call was not answered"


async def test_audio_both_ways(tmp_path: Path) -> None:
    caller_clip = noise_clip(2.0, seed=1)
    bot_clip = noise_clip(2.0, seed=2)
    baresip = Baresip(tmp_path, _caller_wav(tmp_path, caller_clip, lead_s=1.0, tail_s=2.0))
    handler = RecordingHandler(clip=bot_clip)
    async with sip_server(handler):
        await baresip.dial(BOT_URI, quit_after_s=15)
        try:
            assert await wait_until(lambda: bool(handler.records and handler.records[0].hangup), 12)
        finally:
            await baresip.stop()
    record = handler.records[0]
    assert record.caller_id == "caller"
    assert record.hangup is not None and record.hangup.reason == "caller hung up"
    heard_by_bot, _ = best_correlation(record.pcm, caller_clip)
    heard_by_caller, _ = best_correlation(baresip.recording("dec"), bot_clip)
    logging.getLogger(__name__).warning(
        "correlation: bot heard caller %.3f, caller heard bot %.3f", heard_by_bot, heard_by_caller
    )
    assert heard_by_bot > 0.9, f"server's recording vs caller clip: {heard_by_bot:.3f}"
    assert heard_by_caller > 0.9, f"baresip's recording vs bot clip: {heard_by_caller:.3f}"
    # frames() is clocked: one 20 ms frame per 20 ms of call, whatever the network did.
    span = record.frame_times[-1] - record.frame_times[0]
    assert abs(len(record.audio) * 0.02 - span) < 0.1


async def test_dtmf_digits_reach_the_handler_once_each(tmp_path: Path) -> None:
    baresip = Baresip(
        tmp_path, _caller_wav(tmp_path, noise_clip(0.5, seed=4), lead_s=0.5, tail_s=9.0)
    )
    handler = RecordingHandler()
    async with sip_server(handler) as server:
        await baresip.dial(BOT_URI, quit_after_s=15)
        try:
            await _answered(server, handler)
            for digit in "4321#":
                response = await baresip.command("sndcode", digit)
                assert response["ok"], response
                await asyncio.sleep(0.3)
            assert await wait_until(lambda: len(handler.records[0].digits) >= 5, 3)
            await asyncio.sleep(0.5)  # end-packet retransmits must not add digits
            await baresip.command("hangup")
            assert await wait_until(lambda: handler.records[0].hangup is not None, 5)
        finally:
            await baresip.stop()
    assert handler.records[0].digits == ["4", "3", "2", "1", "#"]


async def test_hold_and_resume(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "voicebot")
    baresip = Baresip(
        tmp_path, _caller_wav(tmp_path, noise_clip(0.5, seed=5), lead_s=0.5, tail_s=9.0)
    )
    handler = RecordingHandler()
    async with sip_server(handler) as server:
        await baresip.dial(BOT_URI, quit_after_s=15)
        try:
            await _answered(server, handler)
            call = server.calls[0]
            await baresip.command("hold")
            assert await wait_until(
                lambda: call.plan is not None and call.plan.direction == "recvonly", 3
            )
            sent_on_hold = call.media.stats.sent
            await asyncio.sleep(0.5)
            assert call.media.stats.sent == sent_on_hold  # a=sendonly from them: we stop sending
            await baresip.command("resume")
            assert await wait_until(
                lambda: call.plan is not None and call.plan.direction == "sendrecv", 3
            )
            await asyncio.sleep(0.3)
            assert call.media.stats.sent > sent_on_hold
            await baresip.command("hangup")
            assert await wait_until(lambda: handler.records[0].hangup is not None, 5)
        finally:
            await baresip.stop()
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "event=sip_hold" in messages and "event=sip_resume" in messages


async def test_bot_hangs_up(tmp_path: Path) -> None:
    baresip = Baresip(
        tmp_path, _caller_wav(tmp_path, noise_clip(0.5, seed=6), lead_s=0.5, tail_s=9.0)
    )
    handler = RecordingHandler(
        clip=noise_clip(1.0, seed=7), hangup_after_s=0.2, explicit_hangup=True
    )
    async with sip_server(handler):
        await baresip.dial(BOT_URI, quit_after_s=15)
        try:
            assert await wait_until(lambda: bool(handler.records and handler.records[0].hangup), 6)
            assert await wait_until(
                lambda: "terminated" in baresip.log.read_text(errors="replace"), 3
            )
        finally:
            await baresip.stop()
    assert handler.records[0].hangup is not None
    assert handler.records[0].hangup.reason == "bot hung up"
