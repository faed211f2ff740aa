"""The transport layer: a destination a peer wrote into a message cannot close the socket."""

from __future__ import annotations

import logging

import pytest
from sip_peers import RecordingHandler, wait_until
from sip_uac import Leg
from test_sip_server import running

from voicebot.telephony.addresses import sendable

pytestmark = pytest.mark.sip


@pytest.mark.parametrize(
    ("addr", "ok"),
    [
        (("127.0.0.1", 5060), True),
        (("::1", 5060), True),
        (("pbx.example", 5060), False),  # a name: sendto would block the loop resolving it
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


@pytest.mark.parametrize(
    "via_params",
    [
        ";rport=70000",
        ";rport=0",
        ";rport=abc",
        ";received=10.9.9.9;rport=5",
        ";received=attacker.example",
    ],
)
async def test_responses_go_to_the_socket_address_whatever_the_via_says(
    via_params: str, caplog: pytest.LogCaptureFixture
) -> None:
    """received=/rport= in a request are overwritten with the real source: no
    reflection to a third party, no name resolved, no socket closed."""
    async with running(RecordingHandler()) as (_server, uac):
        leg = Leg(uac)
        hostile = leg.build("OPTIONS").replace(";rport\r\n", f"{via_params}\r\n", 1)
        assert f"{via_params}\r\n" in hostile
        with caplog.at_level(logging.WARNING, "voicebot.telephony.sip"):
            uac.send(hostile)
            response = await uac.response()
        assert response.code == 200
        via = response.via[0].parameters
        assert via["received"] == "127.0.0.1"
        if "rport" in via_params:
            assert via["rport"] == str(uac.port)
        assert "Traceback" not in caplog.text
        uac.send(leg.build("OPTIONS"))
        assert (await uac.response()).code == 200


async def test_a_via_port_out_of_range_gets_400_at_the_source() -> None:
    async with running(RecordingHandler()) as (_server, uac):
        leg = Leg(uac)
        for port in ("70000", "5\u00b2", "\u0665\u0660"):
            hostile = leg.build("OPTIONS").replace(";rport\r\n", "\r\n", 1)
            hostile = hostile.replace(f"127.0.0.1:{uac.port}", f"127.0.0.1:{port}", 1)
            uac.raw.clear()
            uac.send(hostile)
            assert await wait_until(lambda: bool(uac.raw), 2), port
            assert uac.raw[0].startswith(b"SIP/2.0 400 "), (port, uac.raw[0][:80])
        uac.send(leg.build("OPTIONS"))
        assert (await uac.response()).code == 200
