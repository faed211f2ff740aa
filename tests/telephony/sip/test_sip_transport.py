"""The transport layer: a destination a peer wrote into a message cannot close the socket."""

from __future__ import annotations

import logging

import pytest
from sip_peers import RecordingHandler
from sip_uac import Leg, Uac

from voicebot.telephony.addresses import sendable
from voicebot.telephony.sip import SipConfig, SipServer

pytestmark = pytest.mark.sip


@pytest.mark.parametrize(
    ("addr", "ok"),
    [
        (("127.0.0.1", 5060), True),
        (("::1", 5060), True),
        (("pbx.example", 5060), True),  # a name: resolving it may fail, with an OSError
        (("127.0.0.1", 70000), False),
        (("127.0.0.1", 0), False),
        (("127.0.0.1", -1), False),
        (("", 5060), False),
        (("a\0b", 5060), False),
        (("\udcff", 5060), False),
    ],
)
def test_sendable(addr: tuple[str, int], ok: bool) -> None:
    assert sendable(addr) is ok


@pytest.mark.parametrize("rport", ["70000", "0"])
async def test_a_response_to_an_impossible_port_is_dropped_and_the_socket_lives(
    rport: str, caplog: pytest.LogCaptureFixture
) -> None:
    config = SipConfig(listen_port=0, rtp_port_min=42000, rtp_port_max=42999)
    server = SipServer(config, RecordingHandler())
    await server.start()
    uac = await Uac.open(server.port)
    try:
        leg = Leg(uac)
        hostile = leg.build("OPTIONS").replace(";rport\r\n", f";rport={rport}\r\n", 1)
        assert f";rport={rport}\r\n" in hostile
        with caplog.at_level(logging.WARNING, "voicebot.telephony.sip"):
            uac.send(hostile)
            assert await uac.silence(0.3) == []
        assert "sip_unsendable" in caplog.text
        uac.send(leg.build("OPTIONS"))
        assert (await uac.response()).code == 200
    finally:
        uac.close()
        await server.close()
