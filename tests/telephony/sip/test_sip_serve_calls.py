"""``VoicebotServer`` behind a real SIP socket, with a scripted pipeline.

* A caller chooses the SIP Call-ID; voicebot chooses the call ID.  Two calls
  under the same Call-ID (one after the other, as a buggy or hostile phone
  would) end up as two records, each with its own transcript and its own
  Rasa conversation, both carrying the wire Call-ID for correlation.
* SIGTERM while a caller is on hold for an agent: the caller hears why the
  call ends and that a callback is recorded, then gets a BYE; the record and
  the handoff say ``callback``, never ``in_progress``.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import numpy as np
from sip_peers import wait_until
from sip_uac import Leg, RtpPeer, Uac
from test_sip_server import rtp_port_of

from voicebot.audio.g711 import ulaw_encode
from voicebot.config import Config
from voicebot.handoff import HandoffConfig, TransferQueue
from voicebot.server import VoicebotServer
from voicebot.session.services import Services
from voicebot.storage.call_store import SqliteCallStore
from voicebot.telephony.sip import SipConfig, SipServer

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "session"))
from session_fakes import FakeVad, speech
from test_call_session import FakeDialogue, FakeSynthesizer, FakeTranscriber, reply

WIRE_ID = "reused-call-id@198.51.100.7"


def ulaw_frames(pcm: np.ndarray) -> list[bytes]:
    return [ulaw_encode(pcm[i : i + 160]) for i in range(0, len(pcm) - 159, 160)]


async def one_call(server: SipServer, store: SqliteCallStore, known: set[str]) -> str:
    """A call under WIRE_ID that says one thing, then hangs up; its record's call ID."""
    uac, rtp = await Uac.open(server.port), await RtpPeer.open()
    leg = Leg(uac, call_id=WIRE_ID)
    try:
        port = rtp_port_of(await leg.establish(rtp.port))
        await asyncio.sleep(0.5)  # the disclosure
        await speak(port, rtp)

        def turn_recorded() -> bool:
            new = [r for r in store.list_calls(10) if r["call_id"] not in known]
            return bool(new and any(t["caller_text"] for t in new[0]["turns"]))

        await wait_until(turn_recorded, 10)
        uac.send(leg.next("BYE"))
        await uac.response(200)
    finally:
        uac.close()
        rtp.close()
    await wait_until(lambda: not server.calls, 5)
    (new,) = [r["call_id"] for r in store.list_calls(10) if r["call_id"] not in known]
    return new


async def speak(port: int, rtp: RtpPeer) -> None:
    """One utterance (the fake VAD's tone), then the silence that ends the turn."""
    await rtp.send_audio(
        port, ulaw_frames(np.concatenate([speech(0.8), np.zeros(12_000, np.int16)]))
    )


async def test_a_reused_sip_call_id_gets_a_new_record_and_conversation(tmp_path: Path) -> None:
    store = SqliteCallStore(tmp_path / "calls.sqlite3")
    dialogue = FakeDialogue(lambda text: reply(f"You said {text}."))
    senders: list[str] = []
    send = dialogue.send

    async def spy(sender_id: str, text: str, metadata: dict) -> object:
        senders.append(sender_id)
        return await send(sender_id, text, metadata)

    dialogue.send = spy  # type: ignore[method-assign]
    services = Services(
        config=Config(), transcriber=FakeTranscriber(["my balance please", "opening hours"]),
        synthesizer=FakeSynthesizer(), dialogue=dialogue, vad=FakeVad(), store=store,  # type: ignore[arg-type]
    )  # fmt: skip
    bot = VoicebotServer(services)
    sip = SipServer(SipConfig(listen_host="127.0.0.1", listen_port=0), bot.on_call)
    await sip.start()
    try:
        first = await one_call(sip, store, set())
        second = await one_call(sip, store, {first})
    finally:
        await sip.close()
    store.flush()
    a, b = store.get(first), store.get(second)
    assert a and b and first != second
    assert first.startswith("sip-") and WIRE_ID not in first + second
    assert a["wire_call_id"] == b["wire_call_id"] == WIRE_ID
    said = [[t["caller_text"] for t in r["turns"] if t["caller_text"]] for r in (a, b)]
    assert said == [["my balance please"], ["opening hours"]]
    assert {a["outcome"], b["outcome"]} <= {"served", "abandoned"}
    assert set(senders) == {first, second}  # one Rasa conversation per call


class NeverAnswers:
    """Every agent's phone rings on and on: the caller stays on hold."""

    async def ring(self, agent: object, package: object) -> str:
        await asyncio.Event().wait()
        return "timeout"


async def test_sigterm_gives_a_caller_on_hold_a_goodbye_and_a_callback(tmp_path: Path) -> None:
    store = SqliteCallStore(tmp_path / "calls.sqlite3")
    queue = TransferQueue(store, HandoffConfig(ring_timeout_s=30, max_wait_s=60), NeverAnswers())
    queue.add_agent("bob", "sip:bob@127.0.0.1:5999")
    services = Services(
        config=Config(), transcriber=FakeTranscriber(["I want to talk to a person"]),
        synthesizer=FakeSynthesizer(), vad=FakeVad(), store=store, queue=queue,  # type: ignore[arg-type]
        dialogue=FakeDialogue(lambda _: reply("One moment.", intent="request_human")),  # type: ignore[arg-type]
    )  # fmt: skip
    bot = VoicebotServer(services)
    sip = SipServer(SipConfig(listen_host="127.0.0.1", listen_port=0), bot.on_call)
    await sip.start()
    uac, rtp = await Uac.open(sip.port), await RtpPeer.open()
    try:
        leg = Leg(uac)
        port = rtp_port_of(await leg.establish(rtp.port))
        await asyncio.sleep(0.5)
        await speak(port, rtp)
        assert await wait_until(lambda: bool(queue._offers), 10)  # on hold, bob ringing
        (call_id,) = list(bot.sessions)
        sip.stop_accepting()
        drained = asyncio.create_task(bot.drain(0.0))  # what SIGTERM does
        bye = await uac.request("BYE", timeout=10)
        uac.reply(bye)
        await drained
    finally:
        uac.close()
        rtp.close()
        await sip.close()
    store.flush()
    record = store.get(call_id)
    assert record is not None and record["outcome"] == "callback"
    assert record["transfer"]["handoff"]["shutdown"] is True
    assert "restarting" in record["turns"][-1]["bot_text"]  # the goodbye, said and kept
    assert "call back" in record["turns"][-1]["bot_text"]
    handoff = store.get_handoff(call_id)
    assert handoff is not None and handoff["status"] == "callback"
