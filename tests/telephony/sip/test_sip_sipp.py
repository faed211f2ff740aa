"""SIPp against the real server: the RFC 3261 corner cases a carrier exercises.

Each test runs inside its own network namespace (``netns`` marker), so the
server can sit on the fixed port 5090 and SIPp on 5061.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from sip_peers import (
    RATE,
    RecordingHandler,
    best_correlation,
    noise_clip,
    run_sipp,
    sip_server,
    wait_until,
)

from voicebot.audio.wavfile import write_wav

pytestmark = [pytest.mark.netns, pytest.mark.sip, pytest.mark.slow]


def _events(caplog: pytest.LogCaptureFixture, event: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if f"event={event} " in r.getMessage() + " "]


async def test_options_gets_200(tmp_path: Path) -> None:
    async with sip_server(RecordingHandler()):
        result = await run_sipp("options.xml", tmp_path)
    assert result.returncode == 0, result.output
    assert "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, NOTIFY" in result.messages


async def test_cancel_before_answer_gets_487(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "voicebot")
    handler = RecordingHandler()
    async with sip_server(handler, ring_s=5.0) as server:
        result = await run_sipp("cancel.xml", tmp_path)
        assert result.returncode == 0, result.output
        assert not server.calls
    assert handler.records == []  # never answered, so no session ran
    assert _events(caplog, "sip_cancelled")
    assert result.received("SIP/2.0 487", "1 INVITE") >= 1


async def test_lost_ack_makes_the_server_retransmit_200(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "voicebot")
    handler = RecordingHandler()
    async with sip_server(handler):
        result = await run_sipp("lost_ack.xml", tmp_path)
        assert result.returncode == 0, result.output
        assert await wait_until(lambda: bool(handler.records and handler.records[0].hangup), 3)
    # SIPp held back its ACK for 1.7 s: 200 at 0, then again at 0.5 s and 1.5 s (T1, 2·T1).
    assert result.received("SIP/2.0 200 OK", "1 INVITE") >= 3, result.messages[-3000:]
    assert handler.records[0].hangup is not None
    assert handler.records[0].hangup.reason == "caller hung up"


async def test_no_common_codec_gets_488(tmp_path: Path) -> None:
    handler = RecordingHandler()
    async with sip_server(handler) as server:
        result = await run_sipp("no_codec.xml", tmp_path)
        assert result.returncode == 0, result.output
        assert not server.calls
    assert handler.records == []
    assert "Warning: 399" in result.messages and "no common codec" in result.messages


async def test_malformed_and_oversized_requests(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "voicebot")
    async with sip_server(RecordingHandler()):
        result = await run_sipp("malformed.xml", tmp_path)
    assert result.returncode == 0, result.output
    assert result.received("SIP/2.0 400", "abc OPTIONS") == 1
    assert result.received("SIP/2.0 400", "2 OPTIONS") == 1
    assert result.received("SIP/2.0 400", "3 OPTIONS") == 1
    assert result.received("SIP/2.0", "4 OPTIONS") == 0  # oversized: dropped unread
    assert result.received("SIP/2.0 200", "5 OPTIONS") == 1  # and still serving
    assert len(_events(caplog, "sip_malformed")) == 3
    assert len(_events(caplog, "sip_dropped")) == 1


async def test_handler_return_sends_bye(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "voicebot")
    handler = RecordingHandler(clip=noise_clip(0.5, seed=3), hangup_after_s=0.2)
    async with sip_server(handler):
        result = await run_sipp("server_bye.xml", tmp_path)
    assert result.returncode == 0, result.output
    assert any('reason="bot hung up"' in line for line in _events(caplog, "call_ended"))
    assert any("code=200" in line for line in _events(caplog, "sip_bye_answered"))


@pytest.mark.timeout(120)
async def test_eight_simultaneous_calls(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "voicebot")
    caller_audio = noise_clip(3.0, seed=8)
    write_wav(tmp_path / "caller_ulaw.wav", caller_audio, RATE, "ulaw")
    handler = RecordingHandler(clip=noise_clip(2.0, seed=9))
    async with sip_server(handler):
        result = await run_sipp(
            "call_rtp.xml", tmp_path, calls=8, concurrent=8, rate=50, timeout_s=40
        )
        assert result.returncode == 0, result.output
        assert await wait_until(lambda: len(handler.records) == 8 and handler.active == 0, 5)
    assert handler.max_active == 8
    assert len({r.call_id for r in handler.records}) == 8
    for record in handler.records:
        assert record.hangup is not None and record.hangup.reason == "caller hung up"
        assert record.caller_id == "+15550100"
        score, _ = best_correlation(record.pcm, caller_audio[8000:16000])
        assert score > 0.9, f"{record.call_id}: caller audio correlation {score:.2f}"
        assert np.abs(record.pcm).mean() > 100
    assert len(_events(caplog, "call_ended")) == 8
