"""Peers for transfer tests: two baresips (caller, agent), SIPp as UAC or UAS,
a tshark capture of loopback, and a handler that transfers every call.

Everything runs inside the private network namespace of the ``netns``
marker, so fixed ports are fine.  Ports here differ from sip_peers' so a
transfer test can run a caller and an agent side by side.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sip_peers import (
    RATE,
    SERVER_PORT,
    connect_retry,
    ctrl_command,
    read_wav,
    require,
    sip_server,
    stop_process,
    write_baresip_files,
)
from sip_uac import Uac
from sipmessage import Request

from voicebot.audio.g711 import ulaw_decode
from voicebot.audio.wavfile import write_wav
from voicebot.telephony.channel import CallChannel
from voicebot.telephony.rtp.packet import RtpPacket
from voicebot.telephony.sip import TransferOutcome

SIPP_DIR = Path(__file__).resolve().parent / "data" / "sipp_transfer"
CALLER_PORT, CALLER_CTRL = 5070, 4444
AGENT_PORT, AGENT_CTRL = 5072, 4445
SIPP_CALLER_PORT = 5061
SIPP_AGENT_PORT = 5074
AGENT_URI = f"sip:agent@127.0.0.1:{AGENT_PORT}"
BOT_URI = f"sip:bot@127.0.0.1:{SERVER_PORT}"


def padded(clip: np.ndarray, lead_s: float, tail_s: float) -> np.ndarray:
    """baresip hangs up at the end of its source file: pad it to set the call length."""
    lead = np.zeros(int(lead_s * 8000), np.int16)
    return np.concatenate([lead, clip, np.zeros(int(tail_s * 8000), np.int16)])


# ---------------------------------------------------------------- baresip


class Softphone:
    """A headless baresip (set up as docs/SIP.md describes) on its own SIP and ctrl_tcp ports."""

    def __init__(
        self,
        workdir: Path,
        source: np.ndarray,
        *,
        user: str,
        port: int,
        ctrl_port: int,
        answermode: str = "manual",
    ) -> None:
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.recordings = workdir / "rec"
        self.recordings.mkdir(exist_ok=True)
        self.log = workdir / "baresip.log"
        self.ctrl_port = ctrl_port
        self.proc: asyncio.subprocess.Process | None = None
        write_baresip_files(
            workdir, write_wav(workdir / "source.wav", source, RATE), self.recordings,
            user=user, port=port, ctrl_port=ctrl_port, answermode=answermode,
        )  # fmt: skip

    async def start(self, quit_after_s: int, dial: str | None = None) -> None:
        baresip = require("baresip", "baresip-core")
        args = [baresip, "-f", str(self.dir), "-t", str(quit_after_s)]
        if dial:
            args += ["-e", f"/dial {dial}"]
        self.proc = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=self.log.open("wb"),
            stderr=asyncio.subprocess.STDOUT,
        )
        await _wait_port(self.ctrl_port)

    async def command(self, command: str, params: str = "") -> dict[str, object]:
        connection = await asyncio.open_connection("127.0.0.1", self.ctrl_port)
        return await ctrl_command(*connection, command, params)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    async def stop(self) -> None:
        await stop_process(self.proc)

    def recording(self, kind: str) -> np.ndarray:
        """What this phone heard ("dec") or sent ("enc"), longest call first."""
        files = sorted(self.recordings.glob(f"*-{kind}.wav"), key=lambda p: p.stat().st_size)
        assert files, f"baresip wrote no {kind} recording:\n{self.text()}"
        return read_wav(files[-1])


async def _wait_port(port: int, timeout_s: float = 5.0) -> None:
    _, writer = await connect_retry(port, timeout_s, interval=0.05)
    writer.close()


def caller_phone(tmp_path: Path, source: np.ndarray) -> Softphone:
    """The caller's baresip (answers nothing), in ``tmp_path / "caller"``."""
    return Softphone(
        tmp_path / "caller", source, user="caller", port=CALLER_PORT, ctrl_port=CALLER_CTRL
    )


def agent_phone(tmp_path: Path, source: np.ndarray) -> Softphone:
    """The agent's baresip, answering every call, in ``tmp_path / "agent"``."""
    return Softphone(
        tmp_path / "agent", source, user="agent", port=AGENT_PORT, ctrl_port=AGENT_CTRL,
        answermode="auto",
    )  # fmt: skip


# ------------------------------------------------------------------- SIPp


@dataclass
class Sipp:
    """One SIPp process (UAC towards the bot, or UAS playing the agent)."""

    proc: asyncio.subprocess.Process
    workdir: Path
    output: str = ""

    @classmethod
    async def start(
        cls,
        scenario: str,
        workdir: Path,
        *,
        port: int,
        remote: str | None = None,
        timeout_s: int = 30,
        variables: dict[str, str] | None = None,
    ) -> Sipp:
        sipp = require("sipp", "sip-tester")
        workdir.mkdir(parents=True, exist_ok=True)
        args = [
            sipp, "-sf", str(SIPP_DIR / scenario), "-i", "127.0.0.1", "-p", str(port),
            "-mi", "127.0.0.1", "-m", "1", "-timeout", f"{timeout_s}s", "-timeout_error",
            "-trace_msg", "-message_file", str(workdir / "messages.log"),
            "-trace_err", "-error_file", str(workdir / "errors.log"), "-nostdin",
        ]  # fmt: skip
        for name, value in (variables or {}).items():
            args += ["-key", name, value]
        if remote:
            args.append(remote)
        proc = await asyncio.create_subprocess_exec(
            *args, cwd=workdir, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        return cls(proc, workdir)

    async def wait(self, timeout_s: float) -> int:
        out, _ = await asyncio.wait_for(self.proc.communicate(), timeout_s)
        self.output = out.decode(errors="replace")
        errors = self.workdir / "errors.log"
        if errors.exists():
            self.output += "\n--- errors.log ---\n" + errors.read_text(errors="replace")
        return self.proc.returncode or 0

    @property
    def messages(self) -> str:
        path = self.workdir / "messages.log"
        return path.read_text(errors="replace") if path.exists() else ""

    async def stop(self) -> None:
        await stop_process(self.proc)


# ----------------------------------------------------------------- tshark


class Capture:
    """tshark on loopback, written to a pcap for SIP and RTP checks afterwards."""

    def __init__(self, workdir: Path) -> None:
        self.pcap = workdir / "lo.pcap"
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        tshark = require("tshark", "tshark")
        self.proc = await asyncio.create_subprocess_exec(
            tshark, "-i", "lo", "-w", str(self.pcap), "-f", "udp",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert self.proc.stderr is not None
        seen = b""
        try:
            while b"Capturing on" not in seen:  # tshark is ready once it says so
                line = await asyncio.wait_for(self.proc.stderr.readline(), 10)
                assert line, f"tshark did not start: {seen!r}"
                seen += line
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        if self.proc and self.proc.returncode is None:
            await asyncio.sleep(0.3)  # let the last packets reach the file
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 5)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()

    async def sip_messages(self) -> list[str]:
        """Every SIP message in the capture, as text."""
        out = await _run(
            "tshark", "-r", str(self.pcap), "-d", f"udp.port=={AGENT_PORT},sip",
            "-Y", "sip", "-T", "fields", "-e", "udp.payload",
        )  # fmt: skip
        return [
            bytes.fromhex(line.strip()).decode(errors="replace")
            for line in out.splitlines()
            if line.strip()
        ]

    async def rtp_to_port(self, port: int) -> np.ndarray:
        """The μ-law audio sent to ``port`` (RTP, PT 0), decoded, in arrival order."""
        out = await _run(
            "tshark", "-r", str(self.pcap), "-Y", f"udp.dstport=={port}",
            "-T", "fields", "-e", "udp.payload",
        )  # fmt: skip
        pcm = []
        for line in out.splitlines():
            if not line.strip():
                continue
            with contextlib.suppress(ValueError):
                packet = RtpPacket.parse(bytes.fromhex(line.strip()))
                if packet.payload_type == 0:
                    pcm.append(ulaw_decode(packet.payload))
        return np.concatenate(pcm) if pcm else np.zeros(0, np.int16)


async def _run(*args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    return out.decode(errors="replace")


# ---------------------------------------------------- scripted SIP replies


def reply(uac: Uac, request: Request, code: int, reason: str, *, tag: str = "", body: str = "",
          extra: tuple[str, ...] = ()) -> None:  # fmt: skip
    """A response from a scripted peer, with our To-tag, Contact and SDP as asked."""
    to = request.headers["To"] + (
        f";tag={tag}" if tag and "tag=" not in request.headers["To"] else ""
    )
    lines = [f"SIP/2.0 {code} {reason}"]
    lines += [f"Via: {v}" for v in request.headers.getlist("Via")]
    lines += [f"From: {request.headers['From']}", f"To: {to}"]
    lines += [f"Call-ID: {request.call_id}", f"CSeq: {request.headers['CSeq']}"]
    lines += [f"Contact: <sip:peer@127.0.0.1:{uac.port}>", *extra]
    if body:
        lines.append("Content-Type: application/sdp")
    lines.append(f"Content-Length: {len(body.encode())}")
    uac.send("\r\n".join(lines) + "\r\n\r\n" + body)


# ------------------------------------------------------------- the handler


@dataclass
class TransferHandler:
    """Stands in for the session: answer, wait, transfer the call, return.

    ``cancel_after_s`` cancels the transfer like the queue's ring timeout.
    """

    target: str
    delay_s: float = 1.0
    cancel_after_s: float | None = None
    mode: str | None = None
    outcomes: list[TransferOutcome] = field(default_factory=list)
    cancelled: int = 0
    channels: list[CallChannel] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(self, channel: CallChannel) -> None:
        self.channels.append(channel)
        try:
            await asyncio.sleep(self.delay_s)
            transfer = channel.transfer(self.target, channel.call_id, mode=self.mode)  # type: ignore[attr-defined]
            try:
                self.outcomes.append(await asyncio.wait_for(transfer, self.cancel_after_s))
            except TimeoutError:
                self.cancelled += 1
        finally:
            self.done.set()


bot = sip_server  # the server under test, transferring calls with a TransferHandler
