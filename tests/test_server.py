"""VoicebotServer: one live call per call ID, whatever the transport."""

from __future__ import annotations

import logging

import pytest

from voicebot.server import VoicebotServer


class Channel:
    transport = "test"
    caller_id = "+15550666"

    def __init__(self, call_id: str) -> None:
        self.call_id = call_id
        self.hung_up = False

    async def hangup(self) -> None:
        self.hung_up = True


async def test_a_second_call_under_a_live_call_id_is_refused(
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = VoicebotServer(services=None)  # type: ignore[arg-type]
    live = object()
    server.sessions["CA1"] = live  # type: ignore[assignment]
    intruder = Channel("CA1")
    with caplog.at_level(logging.WARNING, logger="voicebot.server"):
        await server.on_call(intruder)  # type: ignore[arg-type]
    assert intruder.hung_up
    assert server.sessions["CA1"] is live  # the first call keeps its session
    assert "event=call_id_in_use call_id=CA1" in caplog.text
