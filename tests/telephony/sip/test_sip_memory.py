"""An ended call is freed by reference counting alone, at once.

Under a flood of short calls (fuzzed INVITEs), calls left to the cycle collector
were freed in late batches between other allocations and left glibc's heap
fragmented: RSS grew while Python's live objects stayed flat.  So no reference
cycle may outlive a call: not leg <-> media (the media session's callbacks),
not media <-> its cancelled clock task, not call <-> its INVITE transaction.
"""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator

import numpy as np
import pytest
from sip_peers import RecordingHandler, wait_until
from sip_uac import Leg, RtpPeer, sdp
from test_sip_server import running

pytestmark = pytest.mark.sip


@pytest.fixture
def no_cycle_collector() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@pytest.mark.usefixtures("no_cycle_collector")
async def test_an_ended_call_and_its_media_are_freed_without_the_cycle_collector() -> None:
    handler = RecordingHandler(clip=np.full(800, 3000, np.int16))
    rtp = await RtpPeer.open()
    # t1 = 10 ms: the INVITE transaction's own lifetime (64·T1) ends well inside the test.
    async with running(handler, t1_s=0.01) as (server, uac):
        leg = Leg(uac)
        uac.send(leg.invite(sdp(rtp.port)))
        ok = await uac.response(200)
        leg.take_tag(ok)
        uac.send(leg.ack())
        assert await wait_until(lambda: bool(handler.records), 1)
        call = next(iter(server.dialogs))
        call_ref, media_ref = weakref.ref(call), weakref.ref(call.media)
        del call
        uac.send(leg.next("BYE"))
        assert (await uac.response()).code == 200
        handler.records.clear()  # the test's own handler let go of it too
        assert await wait_until(lambda: call_ref() is None, 3), "an ended call is still held"
        assert media_ref() is None
        await asyncio.sleep(0)
    rtp.close()
