"""The robustness suite: torture messages, a mutational fuzzer, malformed RTP and
media-stream frames — each followed by proof that the server still answers
OPTIONS and completes a real call (SIPp), inside a private network namespace."""

from __future__ import annotations

import asyncio
import json
import random
import socket
from pathlib import Path

import pytest
from harness import answers_options, spray
from sip_fuzz import TORTURE, datagrams
from sip_peers import (
    RATE,
    SERVER_PORT,
    RecordingHandler,
    noise_clip,
    run_sipp,
    sip_server,
    wait_until,
)

from voicebot.audio.wavfile import write_wav
from voicebot.telephony.media_stream.serializer import MediaStreamProtocolError, TwilioSerializer
from voicebot.telephony.rtp.packet import RtpPacket
from voicebot.telephony.sip import SipServer

FUZZ_SEED = 4475
FUZZ_DATAGRAMS = 20_000
MEDIA_STREAM_SESSION = (
    Path(__file__).resolve().parent.parent / "telephony" / "media_stream" / "data" / "session.jsonl"
)


async def completes_a_real_call(server: SipServer, workdir: Path) -> None:
    """OPTIONS answered, and a SIPp call with RTP goes INVITE → audio → BYE."""
    assert await answers_options(server.port), "the listener no longer answers OPTIONS"
    write_wav(workdir / "caller_ulaw.wav", noise_clip(2.0, seed=3), RATE, "ulaw")
    result = await run_sipp("call_rtp.xml", workdir, timeout_s=30)
    assert result.returncode == 0, result.output[-3000:]


@pytest.mark.netns
@pytest.mark.sip
async def test_torture_messages(tmp_path: Path) -> None:
    """RFC 4475-style messages: valid ones are answered, invalid ones never get a 2xx."""
    async with sip_server(RecordingHandler(), source_rate=0) as server:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", 5061))  # where the torture messages' Via points
            sock.setblocking(False)
            for path in sorted(TORTURE.glob("*.sip")):
                sock.sendto(path.read_bytes(), ("127.0.0.1", SERVER_PORT))
                answers = await _collect(sock)
                finals = [a for a in answers if not a.startswith(b"SIP/2.0 1")]
                if path.name.startswith("valid-"):
                    # parsed and understood: answered, but not as a bad request or a failure
                    assert finals, (path.name, answers)
                    assert not finals[0].startswith((b"SIP/2.0 400", b"SIP/2.0 5")), path.name
                else:
                    assert not any(a.startswith(b"SIP/2.0 2") for a in finals), (path.name, answers)
        assert await wait_until(lambda: not server.calls, 5)
        await completes_a_real_call(server, tmp_path)


async def _collect(sock: socket.socket, quiet_s: float = 0.4) -> list[bytes]:
    """Every datagram until none has come for ``quiet_s`` (the server runs meanwhile)."""
    loop = asyncio.get_running_loop()
    got = []
    try:
        while True:
            got.append(await asyncio.wait_for(loop.sock_recv(sock, 65535), quiet_s))
    except TimeoutError:
        return got


@pytest.mark.netns
@pytest.mark.sip
@pytest.mark.timeout(400)
async def test_mutational_fuzz(tmp_path: Path) -> None:
    """20,000 seeded mutations: no crash, alive after every batch, no state left behind."""
    t1 = 0.05
    async with sip_server(RecordingHandler(), source_rate=0, t1_s=t1, t4_s=0.2) as server:
        report = await spray(server, datagrams(FUZZ_SEED, FUZZ_DATAGRAMS), batch=2000)
        (tmp_path / "fuzz.json").write_text(json.dumps(report.__dict__))
        assert report.crashes == 0, report.events
        assert report.tracebacks == 0, report.events
        assert report.alive_after_every_batch
        # Every transaction and unACKed call ends on its timers (64·T1 plus Timer I).
        assert await wait_until(
            lambda: not server.transactions._server and not server.calls, 64 * t1 * 3
        ), (len(server.transactions._server), len(server.calls))
        assert server.allocator.in_use == 0
        await completes_a_real_call(server, tmp_path)


@pytest.mark.netns
@pytest.mark.sip
async def test_malformed_rtp_into_a_live_sipp_call(tmp_path: Path) -> None:
    """1,000 junk packets a second (short, wrong version, oversized, new SSRCs,
    sequence jumps, sprayed DTMF) into a live call's port: the call completes,
    its audio arrives, no digit is invented, the bot's audio is not captured."""
    handler = RecordingHandler(clip=noise_clip(3.0, seed=5))
    write_wav(tmp_path / "caller_ulaw.wav", noise_clip(3.0, seed=3), RATE, "ulaw")
    async with sip_server(handler) as server:
        sipp = asyncio.create_task(run_sipp("call_rtp.xml", tmp_path, timeout_s=30))
        assert await wait_until(lambda: bool(handler.records and server.calls), 10)
        call = server.calls[0]
        await asyncio.sleep(0.3)  # the caller's source is latched by now
        remote = call.media.remote
        sent = await _spray_rtp(call.media.port, seconds=2.5, per_second=1000)
        result = await sipp
        assert result.returncode == 0, result.output[-3000:]
        assert call.media.remote == remote
        assert handler.records[0].digits == []
        # Most junk reached the port and was counted, not played (the rest the
        # kernel dropped while a busy machine held the loop).
        assert call.media.stats.ignored >= sent * 0.5
        assert call.media.stats.received > 100  # the caller's 20 ms packets: ~200 sent
        await completes_a_real_call(server, tmp_path)


async def _spray_rtp(port: int, seconds: float, per_second: int) -> int:
    rng = random.Random(7)
    sent = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        for tick in range(int(seconds * 100)):
            for _ in range(per_second // 100):
                sock.sendto(junk_rtp(rng, sent), ("127.0.0.1", port))
                sent += 1
            await asyncio.sleep(0.01)
            del tick
    return sent


def junk_rtp(rng: random.Random, i: int) -> bytes:
    """Malformed or foreign RTP: what an attacker sprays at a port range."""
    kind = i % 6
    if kind == 0:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(12)))  # short
    if kind == 1:
        return bytes([rng.choice((0x00, 0x40, 0xC0))]) + bytes(171)  # wrong version
    if kind == 2:
        return RtpPacket(0, i & 0xFFFF, i * 160, 0xBAD, b"\xff" * 4000).serialize()  # oversized
    if kind == 3:  # a new SSRC every packet
        return RtpPacket(0, rng.randrange(65536), rng.randrange(2**32), rng.randrange(2**32),
                         b"\x7f" * 160).serialize()  # fmt: skip
    if kind == 4:  # sequence jumps on one SSRC
        return RtpPacket(
            0, rng.randrange(65536), rng.randrange(2**32), 0x5EED, b"\x00" * 160
        ).serialize()
    return RtpPacket(101, i & 0xFFFF, 4242, 0xD7F, bytes([0, 10, 0, 160])).serialize()  # DTMF "0"


def test_malformed_media_stream_frames() -> None:
    """Mutated Twilio media-stream frames: a protocol error or an event, never anything else."""
    lines = MEDIA_STREAM_SESSION.read_text().splitlines()
    rng = random.Random(11)
    unexpected: list[str] = []
    for i in range(5000):
        frame = _mutate_frame(rng, rng.choice(lines))
        serializer = TwilioSerializer()
        try:
            serializer.parse(frame)
        except MediaStreamProtocolError:
            pass
        except Exception as exc:  # a crash the endpoint would have to absorb
            unexpected.append(f"{i}: {type(exc).__name__}: {exc} <- {frame[:120]!r}")
    assert unexpected == [], "\n".join(unexpected[:10])
    assert TwilioSerializer().parse(lines[0]) is not None


def _mutate_frame(rng: random.Random, line: str) -> str | bytes:
    try:
        message = json.loads(line)
    except json.JSONDecodeError:
        return line
    choice = rng.randrange(5)
    if choice == 0:
        return line[: rng.randrange(len(line) + 1)]
    if choice == 1:
        return line.encode()[:-3] + bytes([rng.randrange(256)]) * 3
    _poke(rng, message)
    text = json.dumps(message)
    return text if choice < 4 else text.replace('"', "", 1)


POISON = [None, 0, -1, 2**70, 1e308, float("nan"), "", "\u00b2", [], {}, True, "x" * 10_000, "A==="]


def _poke(rng: random.Random, value: object) -> None:
    """Replace a random field deep in the message with a hostile value."""
    while isinstance(value, dict) and value:
        key = rng.choice(list(value))
        if rng.random() < 0.4 or not isinstance(value[key], dict):
            value[key] = rng.choice(POISON)
            return
        value = value[key]
