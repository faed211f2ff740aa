"""Real SIP peers for tests (baresip, SIPp), a stand-in call handler, audio checks.

Everything here runs inside the private network namespace that the
``netns`` marker provides (see conftest.py), so fixed ports are fine.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import time
import wave
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from voicebot.core.frames import AudioFrame, DtmfFrame, HangupFrame
from voicebot.telephony.channel import CallChannel
from voicebot.telephony.sip import SipConfig, SipServer

SIPP_SCENARIOS = Path(__file__).resolve().parent.parent / "sipp"
SERVER_PORT = 5090
BARESIP_PORT = 5070
SIPP_PORT = 5061
CTRL_PORT = 4444
RATE = 8000


def require(program: str, package: str) -> str:
    path = shutil.which(program)
    if path is None:
        pytest.fail(f"{program} is not installed: apt-get install {package}")
    return path


# ------------------------------------------------------------------- audio


def noise_clip(seconds: float, seed: int, amplitude: float = 6000) -> np.ndarray:
    """Telephone-band noise: a sharp, unambiguous cross-correlation peak."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / RATE)
    spectrum[(freqs < 300) | (freqs > 3400)] = 0
    x = np.fft.irfft(spectrum, n)
    return (x / np.abs(x).max() * amplitude).astype(np.int16)


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path)) as w:
        assert w.getframerate() == RATE and w.getsampwidth() == 2, path
        return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)


def best_correlation(haystack: np.ndarray, needle: np.ndarray) -> tuple[float, int]:
    """Peak normalised cross-correlation of ``needle`` within ``haystack``, and its lag."""
    h = haystack.astype(np.float64)
    n = needle.astype(np.float64)
    if len(h) < len(n):
        return 0.0, 0
    size = 1 << int(np.ceil(np.log2(len(h) + len(n))))
    num = np.fft.irfft(np.fft.rfft(h, size) * np.conj(np.fft.rfft(n, size)), size)[
        : len(h) - len(n) + 1
    ]
    energy = np.concatenate([[0.0], np.cumsum(h * h)])
    window = energy[len(n) :] - energy[: len(h) - len(n) + 1]
    score = num / (np.sqrt(np.maximum(window, 1e-9)) * np.linalg.norm(n))
    lag = int(np.argmax(score))
    return float(score[lag]), lag


# ------------------------------------------------------- stand-in handler


@dataclass
class CallRecord:
    call_id: str
    caller_id: str | None
    audio: list[np.ndarray] = field(default_factory=list)
    digits: list[str] = field(default_factory=list)
    hangup: HangupFrame | None = None
    started: float = field(default_factory=time.monotonic)
    frame_times: list[float] = field(default_factory=list)

    @property
    def pcm(self) -> np.ndarray:
        return np.concatenate(self.audio) if self.audio else np.zeros(0, np.int16)


class RecordingHandler:
    """Stands in for the call session: plays a clip, records what it hears.

    ``hangup_after_s``: end the call that long after the clip has drained —
    by calling ``channel.hangup()`` when ``explicit_hangup``, else by simply
    returning (the server must then send the BYE); None waits for the caller.
    """

    def __init__(
        self,
        clip: np.ndarray | None = None,
        hangup_after_s: float | None = None,
        explicit_hangup: bool = False,
    ) -> None:
        self.clip = clip
        self.hangup_after_s = hangup_after_s
        self.explicit_hangup = explicit_hangup
        self.records: list[CallRecord] = []
        self.active = 0
        self.max_active = 0
        self.done = asyncio.Event()

    async def __call__(self, channel: CallChannel) -> None:
        record = CallRecord(channel.call_id, channel.caller_id)
        self.records.append(record)
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            if self.clip is not None:
                channel.output.write(self.clip)
            reader = asyncio.create_task(self._read(channel, record))
            if self.hangup_after_s is None:
                await reader
            else:
                await channel.output.drained()
                await asyncio.sleep(self.hangup_after_s)
                if self.explicit_hangup:
                    await channel.hangup()
                    await asyncio.wait_for(reader, 2)  # ends with HangupFrame("bot hung up")
                else:
                    reader.cancel()
        finally:
            self.active -= 1
            self.done.set()

    async def _read(self, channel: CallChannel, record: CallRecord) -> None:
        async for frame in channel.frames():
            if isinstance(frame, AudioFrame):
                record.audio.append(frame.pcm)
                record.frame_times.append(time.monotonic())
            elif isinstance(frame, DtmfFrame):
                record.digits.append(frame.digit)
            elif isinstance(frame, HangupFrame):
                record.hangup = frame


@contextlib.asynccontextmanager
async def sip_server(
    handler: Callable[[CallChannel], Awaitable[None]], **overrides: object
) -> AsyncIterator[SipServer]:
    """The server under test on SERVER_PORT, handing each call to ``handler``."""
    config = SipConfig(listen_host="127.0.0.1", listen_port=SERVER_PORT, **overrides)  # type: ignore[arg-type]
    server = SipServer(config, handler)
    await server.start()
    try:
        yield server
    finally:
        await server.close()


# ------------------------------------------------------------------- SIPp


@dataclass
class SippResult:
    returncode: int
    output: str
    messages: str  # the -trace_msg log: every datagram sent and received

    def received(self, first_line: str, cseq: str) -> int:
        """How many received messages start with ``first_line`` and carry ``cseq``."""
        blocks = [b.split("\n-----")[0] for b in self.messages.split("UDP message received")[1:]]
        return sum(1 for b in blocks if first_line in _start_line(b) and f"\nCSeq: {cseq}\n" in b)


async def run_sipp(
    scenario: str,
    workdir: Path,
    *,
    calls: int = 1,
    concurrent: int = 1,
    rate: int = 10,
    timeout_s: float = 30,
    extra: tuple[str, ...] = (),
) -> SippResult:
    """Run one SIPp UAC scenario from tests/telephony/sipp against the server."""
    sipp = require("sipp", "sip-tester")
    command = [
        sipp, "-sf", str(SIPP_SCENARIOS / scenario), "-i", "127.0.0.1", "-p", str(SIPP_PORT),
        "-mi", "127.0.0.1", "-m", str(calls), "-l", str(concurrent), "-r", str(rate),
        "-timeout", f"{int(timeout_s)}s", "-timeout_error", "-trace_msg", "-trace_err",
        "-message_file", str(workdir / "messages.log"), "-error_file", str(workdir / "errors.log"),
        "-nostdin", *extra, f"127.0.0.1:{SERVER_PORT}",
    ]  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        *command, cwd=workdir, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout_s + 15)
    messages = workdir / "messages.log"
    errors = workdir / "errors.log"
    text = out.decode(errors="replace")
    if errors.exists():
        text += "\n--- errors.log ---\n" + errors.read_text(errors="replace")
    return SippResult(
        proc.returncode or 0,
        text,
        messages.read_text(errors="replace") if messages.exists() else "",
    )


def _start_line(block: str) -> str:
    """The SIP start line of one -trace_msg entry (after the 'bytes :' line)."""
    lines = [line.strip() for line in block.splitlines()[1:]]
    return next((line for line in lines if line), "")


# ---------------------------------------------------------------- baresip


class Baresip:
    """A headless baresip caller (configured as docs/SIP.md describes), driven over ctrl_tcp."""

    def __init__(self, workdir: Path, source_wav: Path) -> None:
        self.dir = workdir
        self.recordings = workdir / "rec"
        self.recordings.mkdir(parents=True, exist_ok=True)
        self.log = workdir / "baresip.log"
        self.proc: asyncio.subprocess.Process | None = None
        write_baresip_files(
            workdir, source_wav, self.recordings, user="caller", port=BARESIP_PORT,
            ctrl_port=CTRL_PORT,
        )  # fmt: skip

    async def dial(self, uri: str, quit_after_s: int) -> None:
        baresip = require("baresip", "baresip-core")
        self.proc = await asyncio.create_subprocess_exec(
            baresip, "-f", str(self.dir), "-e", f"/dial {uri}", "-t", str(quit_after_s),
            stdin=asyncio.subprocess.DEVNULL, stdout=self.log.open("wb"),
            stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip

    async def command(self, command: str, params: str = "") -> dict[str, object]:
        """One ctrl_tcp command (JSON in a netstring), waiting for its response."""
        return await ctrl_command(*await connect_retry(CTRL_PORT), command, params)

    async def wait(self, timeout_s: float) -> int:
        assert self.proc is not None
        return await asyncio.wait_for(self.proc.wait(), timeout_s)

    async def stop(self) -> None:
        await stop_process(self.proc)

    def recording(self, kind: str) -> np.ndarray:
        """What baresip heard ("dec") or sent ("enc")."""
        files = sorted(self.recordings.glob(f"*-{kind}.wav"))
        assert files, f"baresip wrote no {kind} recording:\n{self.log.read_text(errors='replace')}"
        return read_wav(files[-1])


def write_baresip_files(
    workdir: Path,
    source_wav: Path,
    recordings: Path,
    *,
    user: str,
    port: int,
    ctrl_port: int,
    answermode: str = "manual",
) -> None:
    """config, accounts and contacts for a baresip playing ``source_wav``."""
    config = f"""
sip_listen 127.0.0.1:{port}
net_interface 127.0.0.1
audio_source aufile,{source_wav}
audio_player aubridge,nil
audio_alert aubridge,nil
snd_path {recordings}
module_path /usr/lib/baresip/modules
module g711.so
module aufile.so
module aubridge.so
module sndfile.so
module_app uuid.so
module_app account.so
module_app contact.so
module_app menu.so
module_app ctrl_tcp.so
ctrl_tcp_listen 127.0.0.1:{ctrl_port}
"""
    (workdir / "config").write_text(config)
    (workdir / "accounts").write_text(
        f"<sip:{user}@127.0.0.1:{port}>;regint=0;audio_codecs=pcmu;answermode={answermode}\n"
    )
    (workdir / "contacts").write_text("")


async def ctrl_command(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, command: str, params: str = ""
) -> dict[str, object]:
    """One baresip ctrl_tcp command (JSON in a netstring) on a fresh connection, then close it."""
    body = json.dumps({"command": command, "params": params, "token": command}).encode()
    writer.write(str(len(body)).encode() + b":" + body + b",")
    await writer.drain()
    try:
        while True:
            length = int((await reader.readuntil(b":"))[:-1])
            message = json.loads((await reader.readexactly(length + 1))[:-1])
            if message.get("response"):
                return message
    finally:
        writer.close()


async def stop_process(proc: asyncio.subprocess.Process | None) -> None:
    """Terminate a peer still running and give it 5 s to exit."""
    if proc and proc.returncode is None:
        proc.terminate()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), 5)


async def connect_retry(
    port: int, timeout_s: float = 5.0, interval: float = 0.1
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect to a loopback port, retrying until something listens there."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(interval)


async def wait_until(predicate, timeout_s: float, interval: float = 0.02) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(interval)
    return True
