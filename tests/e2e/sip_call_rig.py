"""Rig for end-to-end SIP calls against a real ``voicebot serve`` process.

What is under test is the whole product as a user runs it: ``voicebot serve``
started as a subprocess (its own model, its own managed Rasa, its own SQLite
call store), called by real SIP peers (baresip with ctrl_tcp, SIPp).

Pieces:

* :func:`run_module_in_netns` / :func:`netns_proxy` — baresip binds RTP on
  every interface, so the module runs *once* inside ``unshare -n`` (a
  private, loopback-only network namespace), sharing one server between its
  tests.  Outside, each test is replaced by a proxy that reports the inner
  result of the same test.
* :class:`VoicebotProcess` — start (wait for "voicebot ready"), read the call
  store, SIGTERM by PID.
* :class:`BaresipCaller` — a headless baresip driven over ctrl_tcp: dial,
  DTMF, hang up, with timestamped events; its ``sndfile`` module records what
  it sent (``enc``) and heard (``dec``).
* Audio helpers: caller scripts made of fixture utterances and silence,
  speech segmentation of recordings, and transcription with voicebot's own
  :class:`~voicebot.speech.stt.Transcriber`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import wave
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.netns_tools import unshare_command
from voicebot.audio.wavfile import read_audio
from voicebot.config import PROJECT_ROOT

RATE = 8000
FRAME = 160  # 20 ms
IN_NETNS = "VOICEBOT_IN_NETNS"  # the same switch as tests/telephony/sip/conftest.py

SERVER_SIP_PORT = 5090
SERVER_HTTP_PORT = 8090
SIPP_PORT = 5061


def in_netns() -> bool:
    return bool(os.environ.get(IN_NETNS))


def require(program: str, package: str) -> str:
    path = shutil.which(program)
    if path is None:
        pytest.fail(f"{program} is not installed: apt-get install {package}")
    return path


# ====================================================================== netns


_INNER_RESULTS: dict[str, dict[str, Any]] = {}


def netns_proxy(test: Callable[..., Any]) -> Callable[..., Any]:
    """Outside the namespace: a stand-in that reports the inner run's result.

    It asks for no fixture but ``request``, so nothing heavy (server, models)
    starts outside the namespace.
    """

    def proxy(request: pytest.FixtureRequest) -> None:
        report_inner_result(request)

    proxy.__name__ = test.__name__
    proxy.__qualname__ = test.__qualname__
    proxy.__doc__ = test.__doc__
    proxy.__module__ = test.__module__
    marks = [m for m in getattr(test, "pytestmark", []) if m.name != "timeout"]
    proxy.pytestmark = [*marks, pytest.mark.timeout(900)]  # type: ignore[attr-defined]
    return proxy


def report_inner_result(request: pytest.FixtureRequest) -> None:
    module_file = str(request.node.path)
    if module_file not in _INNER_RESULTS:
        selected = [i.nodeid for i in request.session.items if str(i.path) == module_file]
        workdir = request.getfixturevalue("tmp_path_factory").mktemp("netns")
        _INNER_RESULTS[module_file] = run_module_in_netns(request.config, selected, workdir)
    results = _INNER_RESULTS[module_file]
    name = request.node.name
    outcome = results["cases"].get(name)
    if outcome is None:
        pytest.fail(
            f"{name} did not run inside the network namespace (rc={results['rc']}):\n"
            f"{results['output'][-12000:]}",
            pytrace=False,
        )
    if outcome["output"]:
        print(outcome["output"])
    if outcome["status"] == "skipped":
        pytest.skip(outcome["message"])
    if outcome["status"] != "passed":
        pytest.fail(f"in netns: {name} {outcome['status']}\n{outcome['message']}", pytrace=False)


def run_module_in_netns(config: pytest.Config, nodeids: list[str], workdir: Path) -> dict[str, Any]:
    """Run these tests in one pytest subprocess inside ``unshare -n``; per-test results."""
    report = workdir / "junit.xml"
    script = 'ip link set lo up && exec "$@"'
    command = [
        *unshare_command(), "sh", "-c", script, "sh",
        sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rA",
        "-o", "junit_logging=system-out", f"--junitxml={report}", *nodeids,
    ]  # fmt: skip
    try:
        done = subprocess.run(
            command,
            cwd=config.rootpath,
            env={**os.environ, IN_NETNS: "1"},
            capture_output=True,
            text=True,
            timeout=900,
        )
        rc, output = done.returncode, done.stdout + done.stderr
    except subprocess.TimeoutExpired as exc:
        rc, output = -1, f"timed out after 900 s\n{exc.stdout or ''}{exc.stderr or ''}"
    cases: dict[str, dict[str, str]] = {}
    if report.exists():
        for case in ET.parse(report).getroot().iter("testcase"):
            status, message = "passed", ""
            for kind in ("failure", "error", "skipped"):
                node = case.find(kind)
                if node is not None:
                    status = {"failure": "failed", "error": "error", "skipped": "skipped"}[kind]
                    message = (node.get("message") or "") + "\n" + (node.text or "")
                    break
            out = "\n".join((n.text or "").strip() for n in case.iter() if n.tag == "system-out")
            cases[case.get("name", "")] = {"status": status, "message": message, "output": out}
    return {"rc": rc, "output": output, "cases": cases}


# ====================================================================== server


@dataclass
class VoicebotProcess:
    """One ``voicebot serve`` subprocess with its own config and call store."""

    workdir: Path
    sip_port: int = SERVER_SIP_PORT
    http_port: int = SERVER_HTTP_PORT
    log_level: str = "DEBUG"
    extra_config: str = ""  # more TOML after [storage]
    proc: subprocess.Popen[bytes] | None = None
    startup_s: float = 0.0

    @property
    def database(self) -> Path:
        return self.workdir / "calls.sqlite3"

    @property
    def stdout_path(self) -> Path:
        return self.workdir / "serve.stdout"

    @property
    def stderr_path(self) -> Path:
        return self.workdir / "serve.stderr"

    @property
    def config_path(self) -> Path:
        return self.workdir / "voicebot.toml"

    def command(self) -> list[str]:
        script = Path(sys.executable).parent / "voicebot"
        base = [str(script)] if script.exists() else [sys.executable, "-m", "voicebot"]
        return [
            *base, "--config", str(self.config_path), "--log-level", self.log_level, "serve",
            "--sip-listen", f"127.0.0.1:{self.sip_port}",
            "--http-listen", f"127.0.0.1:{self.http_port}",
        ]  # fmt: skip

    def start(self, timeout_s: float = 180.0) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(f'[storage]\ndatabase = "{self.database}"\n{self.extra_config}')
        started = time.monotonic()
        self.proc = subprocess.Popen(
            self.command(),
            cwd=PROJECT_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=self.stdout_path.open("wb"),
            stderr=self.stderr_path.open("wb"),
        )
        while "voicebot ready" not in self.stdout():
            if self.proc.poll() is not None:
                pytest.fail(f"voicebot serve exited with {self.proc.returncode}:\n{self.logs()}")
            if time.monotonic() - started > timeout_s:
                self.kill()
                pytest.fail(f"voicebot serve not ready after {timeout_s:.0f} s:\n{self.logs()}")
            time.sleep(0.1)
        self.startup_s = time.monotonic() - started

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace") if self.stdout_path.exists() else ""

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""

    def logs(self, tail: int = 8000) -> str:
        return f"--- stdout ---\n{self.stdout()[-tail:]}\n--- stderr ---\n{self.stderr()[-tail:]}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def terminate(self) -> None:
        """SIGTERM, by PID (what systemd or a container runtime sends)."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGTERM)

    def wait(self, timeout_s: float = 60.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout_s)

    def stop(self, timeout_s: float = 60.0) -> int:
        """SIGTERM and wait; the exit status (killed after ``timeout_s``: -9)."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.terminate()
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.kill()
        return int(self.proc.returncode)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    # ------------------------------------------------------------ call store

    def records(self) -> list[dict[str, Any]]:
        """Every stored call record (read straight from the SQLite store)."""
        if not self.database.exists():
            return []
        db = sqlite3.connect(f"file:{self.database}?mode=ro", uri=True, timeout=5)
        try:
            rows = db.execute("SELECT record FROM calls ORDER BY started_at").fetchall()
        except sqlite3.OperationalError:
            return []
        finally:
            db.close()
        return [json.loads(r[0]) for r in rows]

    def record_from(self, caller_id: str, after: set[str]) -> dict[str, Any] | None:
        """The newest record from this caller whose call ID is not in ``after``."""
        found = [
            r for r in self.records() if r["caller_id"] == caller_id and r["call_id"] not in after
        ]
        return found[-1] if found else None

    def call_ids(self) -> set[str]:
        return {r["call_id"] for r in self.records()}

    def export(self, call_id: str) -> dict[str, Any]:
        """The record as ``voicebot calls export`` writes it (the documented CLI)."""
        script = Path(sys.executable).parent / "voicebot"
        base = [str(script)] if script.exists() else [sys.executable, "-m", "voicebot"]
        done = subprocess.run(
            [*base, "calls", "--database", str(self.database), "export", call_id],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    async def wait_for_record(
        self,
        predicate: Callable[[dict[str, Any]], bool],
        *,
        caller_id: str,
        after: set[str],
        timeout_s: float,
        what: str,
    ) -> dict[str, Any]:
        """Poll the store until the caller's new record satisfies ``predicate``."""
        deadline = time.monotonic() + timeout_s
        record: dict[str, Any] | None = None
        while time.monotonic() < deadline:
            record = self.record_from(caller_id, after)
            if record is not None and predicate(record):
                return record
            if not self.running:
                break
            await asyncio.sleep(0.05)
        pytest.fail(
            f"timed out waiting for {what}; record now:\n{json.dumps(record, indent=1)}\n"
            f"{self.logs(3000)}"
        )

    async def wait_for_log(self, needles: list[str], *, timeout_s: float, what: str) -> str:
        """Poll the server's log (stderr) for a line holding every needle; return the line.

        The session logs ``event=turn … intent=…`` as soon as Rasa has answered,
        before the reply is spoken — the store only gets the turn once the reply
        has been played out.
        """
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for line in self.stderr().splitlines():
                if all(n in line for n in needles):
                    return line
            if not self.running:
                break
            await asyncio.sleep(0.05)
        pytest.fail(f"timed out waiting for {what} ({needles}) in the log\n{self.logs(3000)}")


def turn_with_intent(record: dict[str, Any], intent: str) -> dict[str, Any] | None:
    return next((t for t in record["turns"] if t.get("intent") == intent), None)


def reply_played(record: dict[str, Any], intent: str) -> bool:
    """The bot's reply to this intent has been played out (or cut off).

    The session fills ``timings.tts_first_audio_s`` once the reply's audio has
    drained to the caller (``CallSession._finish_turn``).
    """
    turn = turn_with_intent(record, intent)
    return turn is not None and "tts_first_audio_s" in turn.get("timings", {})


# ===================================================================== baresip


@dataclass
class CtrlEvent:
    at: float  # time.monotonic()
    type: str
    param: str
    raw: dict[str, Any]


@dataclass
class BaresipCaller:
    """A headless baresip controlled over ctrl_tcp.

    The call is placed with a ctrl_tcp ``dial`` (not ``-e``), so the test can
    time set-up from the command to ``CALL_ESTABLISHED``.
    """

    workdir: Path
    source_wav: Path
    sip_port: int
    ctrl_port: int
    user: str = "+15550100"
    proc: asyncio.subprocess.Process | None = None
    events: list[CtrlEvent] = field(default_factory=list)
    dialled_at: float = 0.0
    _reader: asyncio.StreamReader | None = None
    _writer: asyncio.StreamWriter | None = None
    _pump: asyncio.Task[None] | None = None
    _responses: dict[str, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    _counter: int = 0

    @property
    def recordings(self) -> Path:
        return self.workdir / "rec"

    @property
    def log(self) -> Path:
        return self.workdir / "baresip.log"

    def _write_config(self) -> None:
        self.recordings.mkdir(parents=True, exist_ok=True)
        (self.workdir / "config").write_text(
            f"""sip_listen 127.0.0.1:{self.sip_port}
net_interface 127.0.0.1
audio_source aufile,{self.source_wav}
audio_player aubridge,nil
audio_alert aubridge,nil
snd_path {self.recordings}
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
ctrl_tcp_listen 127.0.0.1:{self.ctrl_port}
"""
        )
        (self.workdir / "accounts").write_text(
            f"<sip:{self.user}@127.0.0.1:{self.sip_port}>;regint=0;audio_codecs=pcmu;"
            "answermode=manual\n"
        )
        (self.workdir / "contacts").write_text("")

    async def start(self, quit_after_s: int = 120) -> None:
        baresip = require("baresip", "baresip-core")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._write_config()
        self.proc = await asyncio.create_subprocess_exec(
            baresip, "-f", str(self.workdir), "-t", str(quit_after_s),
            stdin=asyncio.subprocess.DEVNULL, stdout=self.log.open("wb"),
            stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while True:
            try:
                self._reader, self._writer = await asyncio.open_connection(
                    "127.0.0.1", self.ctrl_port
                )
                break
            except OSError:
                if self.proc.returncode is not None or time.monotonic() > deadline:
                    raise AssertionError(f"baresip ctrl_tcp not up:\n{self.log_text()}") from None
                await asyncio.sleep(0.05)
        self._pump = asyncio.create_task(self._read_messages())

    async def _read_messages(self) -> None:
        assert self._reader is not None
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError, ValueError):
            while True:
                length = int((await self._reader.readuntil(b":"))[:-1])
                message = json.loads((await self._reader.readexactly(length + 1))[:-1])
                now = time.monotonic()
                if message.get("response"):
                    future = self._responses.pop(str(message.get("token")), None)
                    if future is not None and not future.done():
                        future.set_result(message)
                elif message.get("event"):
                    self.events.append(
                        CtrlEvent(now, str(message.get("type")), str(message.get("param")), message)
                    )

    async def command(self, command: str, params: str = "") -> dict[str, Any]:
        assert self._writer is not None
        self._counter += 1
        token = f"{command}-{self._counter}"
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._responses[token] = future
        body = json.dumps({"command": command, "params": params, "token": token}).encode()
        self._writer.write(str(len(body)).encode() + b":" + body + b",")
        await self._writer.drain()
        return await asyncio.wait_for(future, 5)

    async def dial(self, uri: str) -> None:
        self.dialled_at = time.monotonic()
        response = await self.command("dial", uri)
        assert response.get("ok"), response

    async def keys(self, digits: str, gap_s: float = 0.3) -> list[float]:
        """Press keys (RFC 4733 via ``sndcode``); returns when each was pressed."""
        pressed = []
        for digit in digits:
            pressed.append(time.monotonic())
            response = await self.command("sndcode", digit)
            assert response.get("ok"), response
            await asyncio.sleep(gap_s)
        return pressed

    async def hangup(self) -> None:
        with contextlib.suppress(Exception):
            await self.command("hangup")

    def event(self, type_: str) -> CtrlEvent | None:
        return next((e for e in self.events if e.type == type_), None)

    async def wait_event(self, type_: str, timeout_s: float) -> CtrlEvent:
        deadline = time.monotonic() + timeout_s
        while (found := self.event(type_)) is None:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"baresip: no {type_} within {timeout_s} s; events "
                    f"{[(e.type, e.param) for e in self.events]}\n{self.log_text()[-3000:]}"
                )
            await asyncio.sleep(0.02)
        return found

    @property
    def setup_s(self) -> float:
        established = self.event("CALL_ESTABLISHED")
        assert established is not None
        return established.at - self.dialled_at

    async def quit(self) -> None:
        """Leave baresip (it finalises the WAV recordings on the way out)."""
        if self.proc is None:
            return
        if self.proc.returncode is None:
            with contextlib.suppress(Exception):
                await self.command("quit")
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                self.proc.terminate()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.proc.wait(), 5)
        if self._pump is not None:
            self._pump.cancel()
        if self._writer is not None:
            self._writer.close()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def recording(self, kind: str) -> np.ndarray:
        """What baresip sent ("enc") or heard ("dec"), 8 kHz int16."""
        files = sorted(self.recordings.glob(f"*-{kind}.wav"))
        assert files, f"baresip wrote no {kind} recording:\n{self.log_text()[-3000:]}"
        with wave.open(str(files[-1])) as w:
            assert w.getframerate() == RATE and w.getsampwidth() == 2, files[-1]
            return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)


# ======================================================================= audio


def silence(seconds: float) -> np.ndarray:
    return np.zeros(round(seconds * RATE), np.int16)


@dataclass
class Script:
    """A caller's side of a call: utterances placed at fixed times in one WAV."""

    pcm: np.ndarray
    placed: list[tuple[str, float, float]]  # (fixture stem, speech start s, speech end s)

    def speech(self, stem: str) -> tuple[float, float]:
        return next((s, e) for name, s, e in self.placed if name == stem)


def caller_script(parts: Iterable[tuple[float, Path]], total_s: float) -> Script:
    """Place each fixture utterance at its start time; silence elsewhere."""
    pcm = silence(total_s)
    placed = []
    for at_s, path in parts:
        clip = read_audio(path)
        start = int(at_s * RATE)
        assert start + len(clip) <= len(pcm), f"{path.name} does not fit in {total_s} s"
        pcm[start : start + len(clip)] = clip
        active = speech_segments(clip, merge_gap_s=0.5)
        assert active, f"no speech found in {path}"
        placed.append((path.stem, at_s + active[0][0], at_s + active[-1][1]))
    return Script(pcm, placed)


def frame_levels(pcm: np.ndarray) -> np.ndarray:
    """RMS level of each 20 ms frame in dBFS."""
    n = len(pcm) // FRAME
    frames = pcm[: n * FRAME].astype(np.float64).reshape(n, FRAME)
    rms = np.sqrt(np.mean(frames * frames, axis=1))
    return 20 * np.log10(np.maximum(rms, 1e-3) / 32768.0)


def speech_segments(
    pcm: np.ndarray, *, threshold_dbfs: float = -45.0, merge_gap_s: float = 0.8
) -> list[tuple[float, float]]:
    """(start, end) seconds of active audio; pauses shorter than ``merge_gap_s`` merged.

    Good enough for clean recordings: the server sends digital silence when
    the bot is quiet, and the fixtures are band-limited speech over silence.
    """
    active = frame_levels(pcm) > threshold_dbfs
    segments: list[list[float]] = []
    for i in np.flatnonzero(active):
        start, end = i * FRAME / RATE, (i + 1) * FRAME / RATE
        if segments and start - segments[-1][1] < merge_gap_s:
            segments[-1][1] = end
        else:
            segments.append([start, end])
    return [(s, e) for s, e in segments]


def first_audio_after(segments: list[tuple[float, float]], t: float) -> float | None:
    return next((s for s, _ in segments if s >= t), None)


def segment_at(segments: list[tuple[float, float]], t: float) -> tuple[float, float] | None:
    return next(((s, e) for s, e in segments if s <= t < e), None)


def clip(pcm: np.ndarray, start_s: float, end_s: float) -> np.ndarray:
    return pcm[max(0, int(start_s * RATE)) : max(0, int(end_s * RATE))]


def dec_offset(enc: np.ndarray, dec: np.ndarray) -> float:
    """Seconds to add to a time on baresip's ``dec`` timeline to put it on the ``enc`` one.

    baresip closes both recordings when the call ends and both run on the
    20 ms audio clock, so their *ends* line up; the streams may start a few
    frames apart.  (``enc`` starts with the first sample of the aufile source,
    i.e. the caller script's t = 0.)
    """
    return (len(enc) - len(dec)) / RATE


_WORDS = re.compile(r"[a-z0-9']+")


def words(text: str) -> set[str]:
    return set(_WORDS.findall(text.lower()))


class Heard:
    """Transcribes recordings with voicebot's own Transcriber (loaded once)."""

    _transcriber: Any = None

    @classmethod
    def transcriber(cls) -> Any:
        if cls._transcriber is None:
            from voicebot.config import SpeechConfig
            from voicebot.speech.stt import Transcriber

            cls._transcriber = Transcriber(SpeechConfig(), prompt=None)
        return cls._transcriber

    @classmethod
    async def text(cls, pcm: np.ndarray) -> str:
        if len(pcm) < RATE // 4:
            return ""
        transcript = await cls.transcriber().transcribe(pcm)
        return str(transcript.text)

    @classmethod
    async def segments(cls, pcm: np.ndarray, segments: list[tuple[float, float]]) -> list[str]:
        """One transcript per speech segment (each a bot reply or part of one)."""
        texts = []
        for start, end in segments:
            texts.append(await cls.text(clip(pcm, start - 0.1, end + 0.1)))
        return texts


# =============================================================== SIPp callers


SIPP_SCENARIO = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<!-- A caller that plays caller_ulaw.wav as RTP, then hangs up after {pause_ms} ms
     (through a proxy too: [routes] holds its Record-Route).  The INVITE is a SIPp
     transaction so a provisional that a proxy relays after the 200 (Kamailio's
     workers may reorder a 180 and a 200 sent back to back) is ignored, not fatal. -->
<scenario name="voicebot_caller">
  <send retrans="500" start_txn="invite">
    <![CDATA[
      INVITE sip:bot@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      From: "SIPp" <sip:{caller_prefix}[call_number]@[local_ip]:[local_port]>;tag=sipp[call_number]
      To: <sip:bot@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:sipp@[local_ip]:[local_port]>
      Max-Forwards: 70
      User-Agent: SIPp
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=sipp 1 1 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [rtpstream_audio_port] RTP/AVP 0 101
      a=rtpmap:0 PCMU/8000
      a=rtpmap:101 telephone-event/8000

    ]]>
  </send>
  <recv response="100" optional="true" response_txn="invite"/>
  <recv response="180" optional="true" response_txn="invite"/>
  <recv response="200" rtd="true" rrs="true" response_txn="invite"/>
  <send ack_txn="invite">
    <![CDATA[
      ACK [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      [routes]
      [last_From:]
      [last_To:]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Contact: <sip:sipp@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <nop>
    <action>
      <exec rtp_stream="{wav},1,0"/>
    </action>
  </nop>
  <pause milliseconds="{pause_ms}"/>
  <send retrans="500">
    <![CDATA[
      BYE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      [routes]
      [last_From:]
      [last_To:]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200"/>
  <ResponseTimeRepartition value="100, 200, 500, 1000, 2000"/>
</scenario>
"""


@dataclass
class SippRun:
    returncode: int
    output: str
    stats: str


async def run_sipp_callers(
    workdir: Path,
    wav: Path,
    *,
    calls: int,
    pause_ms: int,
    caller_prefix: str,
    server_port: int = SERVER_SIP_PORT,
    timeout_s: float = 90,
    server_host: str = "127.0.0.1",
    at_once: int | None = None,
    rate: float = 100,
    local_port: int = SIPP_PORT,
) -> SippRun:
    """``calls`` SIPp callers (``at_once`` at a time, default all, started at
    ``rate`` per second), each playing ``wav`` then sending BYE."""
    sipp = require("sipp", "sip-tester")
    scenario = workdir / "caller.xml"
    scenario.write_text(
        SIPP_SCENARIO.format(wav=wav, pause_ms=pause_ms, caller_prefix=caller_prefix)
    )
    stats = workdir / "stats.csv"
    command = [
        sipp, "-sf", str(scenario), "-i", "127.0.0.1", "-p", str(local_port), "-mi", "127.0.0.1",
        "-mp", str(6000 + 2000 * (local_port - SIPP_PORT)),  # RTP ports apart per SIPp
        "-m", str(calls), "-l", str(at_once or calls), "-r", str(rate),
        "-timeout", f"{int(timeout_s)}s",
        "-timeout_error", "-trace_err", "-error_file", str(workdir / "errors.log"),
        "-trace_stat", "-stf", str(stats), "-nostdin", f"{server_host}:{server_port}",
    ]  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        *command, cwd=workdir, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout_s + 20)
    text = out.decode(errors="replace")
    errors = workdir / "errors.log"
    if errors.exists():
        text += "\n--- errors.log ---\n" + errors.read_text(errors="replace")
    return SippRun(
        proc.returncode or 0, text, stats.read_text(errors="replace") if stats.exists() else ""
    )


# ==================================================================== figures


@dataclass
class Figures:
    """Timings observed over the module, printed at the end."""

    server_startup_s: float = 0.0
    setup_s: list[float] = field(default_factory=list)
    first_audio_s: list[float] = field(default_factory=list)  # answer → disclosure audio
    voice_to_voice_s: dict[str, float] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        v2v = sorted(self.voice_to_voice_s.values())
        return {
            "server_startup_s": round(self.server_startup_s, 2),
            "call_setup_s": [round(s, 3) for s in self.setup_s],
            "established_to_disclosure_audio_s": [round(s, 3) for s in self.first_audio_s],
            "voice_to_voice_s": {k: round(v, 3) for k, v in self.voice_to_voice_s.items()},
            "voice_to_voice_p50_s": round(float(np.median(v2v)), 3) if v2v else None,
            "voice_to_voice_max_s": round(max(v2v), 3) if v2v else None,
            **self.notes,
        }
