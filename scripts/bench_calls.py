#!/usr/bin/env python
"""Voice-to-voice benchmark over real SIP/RTP calls against ``voicebot serve``.

Starts ``voicebot serve`` as a subprocess (SIP + HTTP on 127.0.0.1, random ports, its own
SQLite file), and drives the caller side with a minimal asyncio SIP UAC + RTP player/recorder:
INVITE (SDP, PCMU) → 200 → ACK, 20 ms μ-law RTP from the fixture utterances with silence in
between, records the bot's RTP, BYE.

Latency of a turn = arrival time of the first bot RTP packet carrying speech (RMS above a
threshold) minus the send time of the caller's last voiced RTP packet of the utterance (known
from the fixture: the last 20 ms frame above the threshold).  The disclosure is skipped.

Writes ``bench/results/bench-<timestamp>.json`` and ``.png``.  Usage::

    scripts/bench            # full run: sweep 1,2,4,8 calls + pause fixtures + STT WER
    scripts/bench --quick    # one call, one concurrency level, no sweep (smoke)
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import json
import math
import os
import platform
import re
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from voicebot.audio.g711 import ulaw_decode, ulaw_encode  # noqa: E402
from voicebot.audio.wavfile import read_audio  # noqa: E402
from voicebot.config import EndpointingConfig  # noqa: E402
from voicebot.telephony.rtp.packet import RtpPacket  # noqa: E402

FIXTURES = ROOT / "audio_fixtures"
RESULTS = ROOT / "bench" / "results"
FRAME = 160  # 20 ms at 8 kHz
SPEECH_DBFS = -40.0  # a 20 ms frame louder than this carries speech (fixtures: -24 dBFS speech)
ROUTINE = ["greet_hello", "hours_opening", "thanks_plain", "balance_whats_my"]
# One call's latency is taken over a wider set: short answers, questions, statements, and
# questions ending in a preposition.  (Requests for a person are left out: they hand the
# call over, and the fixtures after them would be heard by the hold music.)
ONE_CALL_SET = [
    *ROUTINE,
    "wcyd_help_with",
    "prep_charge_for",
    "prep_ask_about",
    "prep_pay_with",
    "prep_open_on",
    "lost_card_lost",
    "affirm_yes",
    "password_forgot",
    "transactions_recent",
    "hours_saturday",
    "greet_hey",
    "quiet_lost_card",
]
PAUSE_SET = [
    "pause_balance",
    "pause_card_stolen",
    "pause_opening_hours",
    "pause_reset_password",
    "pause_pin",
    "pause_help_me_with",
    "pause_talk_to_about",
    "pause_send_money_to",
    "pause_pin_each_digit",
    "pause_pin_my_pin_is",
    "pause_card_last_four",
    "pause_card_number",
]
# Barge-in: the caller talks over the bot's long "what can you do" reply.  Speech should stop
# it; line noise and a cough should not.
BARGE_PROMPT = "wcyd_what_can_you_do"
BARGE_SPEECH = [
    "balance_whats_my",
    "human_agent",
    "hours_opening",
    "lost_card_lost",
    "noisy_balance",
    "noisy_agent",
]
BARGE_NOISE = [
    "nonspeech_line_noise_2s",
    "nonspeech_cough",
    "nonspeech_cough_loud",
    "nonspeech_cough_soft",
    "nonspeech_line_noise_loud",
]
BARGE_AFTER_S = 1.5  # into the bot's reply
BOT_STOPPED_QUIET_S = 0.3  # bot silent this long after the caller's onset = it stopped
BARGE_WINDOW_S = 1.5  # looked at after the onset
# Barge-in ducking: a bot frame at least this much quieter than the same frame of the same
# reply played to a caller who stayed silent has "given way" (ducked or stopped).
DUCKED_DB = 12.0
AUDIBLE_DBFS = -60.0  # ducked speech still counts as the bot talking; μ-law silence is -inf
BOT_DONE_SILENCE_S = 1.2  # bot silent this long after speaking = its reply is over
TURN_TIMEOUT_S = 12.0


def dbfs(pcm: np.ndarray) -> float:
    rms = math.sqrt(float(np.mean(pcm.astype(np.float64) ** 2))) if len(pcm) else 0.0
    return 20 * math.log10(max(rms, 1e-9) / 32768.0)


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = math.floor(k), math.ceil(k)
    return round(ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo), 4)


def summary(values: list[float]) -> dict:
    return {
        "n": len(values),
        "p50_s": pct(values, 0.5),
        "p95_s": pct(values, 0.95),
        "max_s": round(max(values), 4) if values else None,
    }


@dataclass
class Utterance:
    id: str
    frames: list[bytes]
    last_voiced: int  # index of the last frame above the speech threshold
    onset: int | None  # first frame 10 dB above the line's noise floor (None: no speech)

    @classmethod
    def load(cls, fid: str) -> Utterance:
        pcm = read_audio(FIXTURES / "utterances" / f"{fid}.wav")
        pcm = np.concatenate([pcm, np.zeros((-len(pcm)) % FRAME, dtype=pcm.dtype)])
        chunks = [pcm[i : i + FRAME] for i in range(0, len(pcm), FRAME)]
        levels = [dbfs(c) for c in chunks]
        voiced = [i for i, db in enumerate(levels) if db > SPEECH_DBFS]
        floor = sorted(levels)[len(levels) // 5]  # noisy fixtures hiss above SPEECH_DBFS
        onset = next((i for i, db in enumerate(levels) if db > max(SPEECH_DBFS, floor + 10)), None)
        return cls(
            fid,
            [ulaw_encode(c) for c in chunks],
            voiced[-1] if voiced else len(chunks) - 1,
            onset,
        )


# ------------------------------------------------------------------ SIP UAC + RTP peer


class SipUac(asyncio.DatagramProtocol):
    """One UDP socket for SIP; hands messages to per-Call-ID queues."""

    def __init__(self, server: tuple[str, int]) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None
        self.queues: dict[str, asyncio.Queue[str]] = {}

    def connection_made(self, transport) -> None:  # type: ignore[no-untyped-def]
        self.transport = transport

    def close(self) -> None:
        if self.transport:
            self.transport.close()

    def datagram_received(self, data: bytes, addr) -> None:  # type: ignore[no-untyped-def]
        text = data.decode(errors="replace")
        m = re.search(r"^(?:Call-ID|i):\s*(\S+)", text, re.M | re.I)
        if m and m.group(1) in self.queues:
            self.queues[m.group(1)].put_nowait(text)

    @property
    def port(self) -> int:
        assert self.transport
        return int(self.transport.get_extra_info("sockname")[1])

    def send(self, text: str) -> None:
        assert self.transport
        self.transport.sendto(text.encode(), self.server)


def header(msg: str, name: str) -> str:
    m = re.search(rf"^{name}:\s*(.*?)\r?$", msg, re.M | re.I)
    return m.group(1) if m else ""


class RtpPeer(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.speech_times: list[float] = []  # arrival times of bot frames carrying speech
        self.frames: list[tuple[float, float]] = []  # (arrival, dBFS) of every bot frame
        self.packets = 0

    def datagram_received(self, data: bytes, addr) -> None:  # type: ignore[no-untyped-def]
        now = time.monotonic()
        try:
            pkt = RtpPacket.parse(data)
        except Exception:
            return
        if pkt.payload_type != 0:
            return
        self.packets += 1
        level = dbfs(ulaw_decode(pkt.payload))
        self.frames.append((now, level))
        if level > SPEECH_DBFS:
            self.speech_times.append(now)


@dataclass
class CallResult:
    sip_call_id: str
    answered_s: float | None = None  # INVITE → 200 OK
    turns: list[dict] = field(default_factory=list)
    error: str | None = None
    reply_starts: list[float] = field(default_factory=list)  # first bot speech per turn
    onsets: list[float] = field(default_factory=list)  # caller's speech onset per turn
    frames: list[tuple[float, float]] = field(default_factory=list)  # every bot frame


async def run_call(
    uac: SipUac,
    utterances: list[Utterance],
    caller: str = "+15550100",
    gap_s: float = 0.6,
    talk_over_s: float | None = None,
    on_answered: Callable[[str, int], None] | None = None,
) -> CallResult:
    """One call.  With ``talk_over_s`` each utterance after the first starts that long after
    the bot's reply to the previous one began (barge-in), instead of after it ended."""
    loop = asyncio.get_running_loop()
    call_id = secrets.token_hex(10) + "@bench"
    res = CallResult(call_id)
    inbox: asyncio.Queue[str] = asyncio.Queue()
    uac.queues[call_id] = inbox
    rtp_tr, rtp = await loop.create_datagram_endpoint(RtpPeer, local_addr=("127.0.0.1", 0))
    rtp.transport = rtp_tr
    rtp_port = rtp_tr.get_extra_info("sockname")[1]
    tag, cseq = secrets.token_hex(4), 1
    to_hdr = "<sip:bot@127.0.0.1>"
    sdp = (
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        f"m=audio {rtp_port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
        "a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
    )

    def request(method: str, body: str = "", n: int | None = None) -> str:
        lines = [
            f"{method} sip:bot@{uac.server[0]}:{uac.server[1]} SIP/2.0",
            f"Via: SIP/2.0/UDP 127.0.0.1:{uac.port};branch=z9hG4bK{secrets.token_hex(6)};rport",
            "Max-Forwards: 70",
            f"From: <sip:{caller}@127.0.0.1>;tag={tag}",
            f"To: {to_hdr}",
            f"Call-ID: {call_id}",
            f"CSeq: {n or cseq} {method}",
            f"Contact: <sip:caller@127.0.0.1:{uac.port}>",
        ]
        if body:
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(body.encode())}")
        return "\r\n".join(lines) + "\r\n\r\n" + body

    sender: asyncio.Task | None = None
    queue: list[bytes] = []
    marks: dict[int, float] = {}  # frame serial → send time (for the last voiced frames)
    try:
        t0 = time.monotonic()
        uac.send(request("INVITE", sdp))
        ok = None
        deadline = t0 + 30
        while ok is None:
            msg = await asyncio.wait_for(inbox.get(), max(0.1, deadline - time.monotonic()))
            first = msg.split("\r\n", 1)[0]
            if first.startswith("SIP/2.0 2"):
                ok = msg
            elif first.startswith("SIP/2.0 ") and int(first.split()[1]) >= 300:
                raise RuntimeError(f"INVITE rejected: {first}")
        res.answered_s = time.monotonic() - t0
        to_hdr = header(ok, "To")
        uac.send(request("ACK"))
        body = ok.split("\r\n\r\n", 1)[1]
        rport = int(re.search(r"m=audio (\d+)", body).group(1))  # type: ignore[union-attr]
        rhost = re.search(r"c=IN IP4 (\S+)", body).group(1)  # type: ignore[union-attr]
        if on_answered is not None:
            on_answered(rhost, rport)  # the bot's media address, e.g. for a junk-RTP flood

        async def sip_loop() -> None:  # answer BYE/re-sent 200s while the call runs
            while True:
                msg = await inbox.get()
                first = msg.split("\r\n", 1)[0]
                if first.startswith("BYE"):
                    vias = re.findall(r"^Via:\s*(.*?)\r?$", msg, re.M)
                    lines = [
                        "SIP/2.0 200 OK",
                        *(f"Via: {v}" for v in vias),
                        *(f"{h}: {header(msg, h)}" for h in ("From", "To", "Call-ID", "CSeq")),
                        "Content-Length: 0",
                        "",
                        "",
                    ]
                    uac.send("\r\n".join(lines))
                    res.error = res.error or "bot hung up"
                elif first.startswith("SIP/2.0 200") and "INVITE" in header(msg, "CSeq"):
                    uac.send(request("ACK", n=1))
                elif not first.startswith("SIP/2.0"):
                    pass

        sip_task = asyncio.create_task(sip_loop())
        silence = b"\xff" * FRAME
        serial = 0

        async def send_loop() -> None:
            nonlocal serial
            seq, ts, ssrc = secrets.randbelow(60000), secrets.randbelow(10**9), secrets.randbits(32)
            start = time.monotonic()
            n = 0
            while True:
                payload = queue.pop(0) if queue else silence
                pkt = RtpPacket(0, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc, payload)
                rtp_tr.sendto(pkt.serialize(), (rhost, rport))
                marks[serial] = time.monotonic()
                serial += 1
                seq, ts, n = seq + 1, ts + FRAME, n + 1
                await asyncio.sleep(max(0.0, start + n * 0.02 - time.monotonic()))

        sender = asyncio.create_task(send_loop())

        async def first_bot_speech(after: float, timeout: float) -> float | None:
            end = time.monotonic() + timeout
            while time.monotonic() < end:
                later = [t for t in rtp.speech_times if t > after]
                if later:
                    return later[0]
                await asyncio.sleep(0.01)
            return None

        async def bot_quiet() -> None:
            end = time.monotonic() + 30
            while time.monotonic() < end:
                if time.monotonic() - rtp.speech_times[-1] > BOT_DONE_SILENCE_S:
                    return
                await asyncio.sleep(0.05)

        async def sent_at(frame_serial: int) -> float:
            while frame_serial not in marks:
                await asyncio.sleep(0.005)
            return marks[frame_serial]

        # the disclosure: wait for it to be spoken, then to end
        if await first_bot_speech(t0, 20.0):
            await bot_quiet()
        talking_over = False
        for i, utt in enumerate(utterances):
            if not talking_over:
                await asyncio.sleep(gap_s)
            base = serial + len(queue)
            queue.extend(utt.frames)
            start_at = await sent_at(base)
            onset_at = await sent_at(base + utt.onset) if utt.onset is not None else None
            last_voiced_at = await sent_at(base + utt.last_voiced)
            turn: dict = {"fixture": utt.id, "sent_at_s": round(start_at - t0, 3)}
            res.onsets.append(onset_at or start_at)
            if talking_over:
                turn["bot_stopped_after_s"] = await bot_stopped(rtp, onset_at or start_at)
            talking_over = talk_over_s is not None and i + 1 < len(utterances)
            first = await first_bot_speech(last_voiced_at, TURN_TIMEOUT_S)
            res.reply_starts.append(first or math.inf)
            turn["latency_s"] = round(first - last_voiced_at, 4) if first else None
            res.turns.append(turn)
            if first and talking_over:
                await asyncio.sleep(max(0.0, first + (talk_over_s or 0.0) - time.monotonic()))
            elif first:
                await bot_quiet()
            if res.error:
                break
        sender.cancel()
        cseq += 1
        uac.send(request("BYE"))
        await asyncio.sleep(0.3)
        sip_task.cancel()
    except Exception as exc:  # a failed call is reported, not fatal to the bench
        res.error = f"{type(exc).__name__}: {exc}"
    finally:
        if sender:
            sender.cancel()
        res.frames = list(rtp.frames)
        rtp_tr.close()
        uac.queues.pop(call_id, None)
    return res


async def bot_stopped(rtp: RtpPeer, onset_at: float) -> float | None:
    """Seconds from the caller's speech onset to the bot's last speech packet before it went
    quiet (None: it talked on for BARGE_WINDOW_S).  A pause between the bot's own words can
    look the same, so the phase reports this only where the call record says interrupted."""
    await asyncio.sleep(max(0.0, onset_at + BARGE_WINDOW_S - time.monotonic()))
    return stopped_after(rtp.speech_times, onset_at)


def stopped_after(times: list[float], onset_at: float) -> float | None:
    """``bot_stopped`` on given frame arrival times (those above some level)."""
    heard = [t for t in times if onset_at <= t <= onset_at + BARGE_WINDOW_S]
    for t, nxt in zip(heard, [*heard[1:], math.inf], strict=True):
        if nxt - t >= BOT_STOPPED_QUIET_S:
            return round(t - onset_at, 4) if t < onset_at + BARGE_WINDOW_S - 0.1 else None
    return 0.0  # quiet from the onset on


def gave_way_after(call: CallResult, reference: list[float]) -> dict:
    """When the bot's reply got ≥ DUCKED_DB quieter than the same reply unheard (``reference``:
    its frames' dBFS from its first speech frame, in a call where the caller stayed silent).

    Frames are matched by their index from the reply's first speech frame: the reply is the
    same cached audio, paced one frame per 20 ms.  ``aligned`` is the share of frames before
    the onset within 1 dB of the reference (1.0: the match holds).
    """
    if len(call.reply_starts) < 1 or len(call.onsets) < 2:
        return {"ducked_after_s": None, "aligned": None}
    first = next((i for i, (t, _) in enumerate(call.frames) if t >= call.reply_starts[0]), None)
    onset = call.onsets[1]
    if first is None:
        return {"ducked_after_s": None, "aligned": None}
    before, ducked = [], None
    for k, (t, db) in enumerate(call.frames[first : first + len(reference)]):
        if t > onset + BARGE_WINDOW_S:
            break
        if reference[k] <= SPEECH_DBFS:
            continue  # the reply is quiet here anyway
        if t < onset:
            before.append(abs(db - reference[k]) <= 1.0)
        elif reference[k] - db >= DUCKED_DB:
            ducked = round(t - onset, 4)
            break
    aligned = round(sum(before) / len(before), 3) if before else None
    return {"ducked_after_s": ducked, "aligned": aligned}


# ------------------------------------------------------------------ the server under test


class Server:
    def __init__(self, config_toml: str, workdir: Path) -> None:
        self.workdir = workdir
        self.db = workdir / "bench.sqlite3"
        cfg = workdir / "bench.toml"
        cfg.write_text(f'[storage]\ndatabase = "{self.db}"\n' + config_toml)
        self.cmd = [
            sys.executable,  # the project's venv (scripts/bench); a worktree imports its own code
            "-m",
            "voicebot",
            "--config",
            str(cfg),
            "--log-level",
            "INFO",
            "serve",
            "--sip-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
        ]
        self.proc: subprocess.Popen | None = None
        self.log_lines: list[str] = []
        self.sip_port = 0
        self.launched = 0.0
        self.ready_s = 0.0

    def start(self, timeout: float = 240.0) -> None:
        self.launched = time.monotonic()
        env = dict(os.environ, RASA_TELEMETRY_ENABLED="false")
        self.proc = subprocess.Popen(
            self.cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        threading.Thread(target=self._drain, args=(self.proc.stderr,), daemon=True).start()
        assert self.proc.stdout
        deadline = time.monotonic() + timeout
        for line in self.proc.stdout:
            m = re.search(r"voicebot ready: SIP udp [\d.]+:(\d+)", line)
            if m:
                self.sip_port = int(m.group(1))
                self.ready_s = time.monotonic() - self.launched
                threading.Thread(target=self._drain, args=(self.proc.stdout,), daemon=True).start()
                return
            if time.monotonic() > deadline:
                break
        raise RuntimeError("voicebot serve did not become ready:\n" + "".join(self.log_lines[-30:]))

    def _drain(self, stream) -> None:  # type: ignore[no-untyped-def]
        for line in stream:
            self.log_lines.append(line)

    def tree(self) -> list[psutil.Process]:
        assert self.proc
        try:
            root = psutil.Process(self.proc.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                for p in reversed(self.tree()):
                    p.kill()

    def records(self) -> dict[str, dict]:
        """Call records keyed by SIP Call-ID (mapped through the log lines)."""
        import sqlite3

        if not self.db.exists():
            return {}
        con = sqlite3.connect(self.db)
        rows = {
            cid: json.loads(rec) for cid, rec in con.execute("SELECT call_id, record FROM calls")
        }
        con.close()
        mapping = {}
        for line in self.log_lines:
            a = re.search(r"\bsip_call_id=(\S+)", line)
            b = re.search(r"\bcall_id=(\S+)", line)
            if a and b and b.group(1) in rows:
                mapping[a.group(1)] = rows[b.group(1)]
        return mapping


class Sampler:
    """CPU and RSS of the server's process tree (voicebot + Rasa + action server)."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.peak_rss = 0
        self.by_name: dict[str, int] = {}
        self._stop = threading.Event()
        self._cpu0: dict[int, float] = {}
        self._cpu_last: dict[int, float] = {}

    def _cpu(self) -> dict[int, float]:
        out = {}
        for p in self.server.tree():
            try:
                t = p.cpu_times()
                out[p.pid] = t.user + t.system + t.children_user + t.children_system
            except psutil.Error:
                pass
        return out

    def __enter__(self) -> Sampler:
        self._cpu0 = self._cpu()
        self.t0 = time.monotonic()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.25):
            total = 0
            for p in self.server.tree():
                try:
                    rss = p.memory_info().rss
                    total += rss
                    name = "rasa" if "rasa" in " ".join(p.cmdline()) else p.name()
                    self.by_name[name] = max(self.by_name.get(name, 0), rss)
                except psutil.Error:
                    pass
            self.peak_rss = max(self.peak_rss, total)
            self._cpu_last = self._cpu() or self._cpu_last

    def __exit__(self, *exc) -> None:  # type: ignore[no-untyped-def]
        self._stop.set()
        self._thread.join()
        wall = time.monotonic() - self.t0
        end = self._cpu() or self._cpu_last
        used = sum(v - self._cpu0.get(pid, 0.0) for pid, v in end.items())
        self.cpu_percent = round(100 * used / wall, 1) if wall > 0 else None
        self.wall_s = round(wall, 2)


# ------------------------------------------------------------------ phases


async def open_uac(server: Server) -> SipUac:
    """A caller-side SIP socket on loopback, aimed at the server under test."""
    loop = asyncio.get_running_loop()
    _, uac = await loop.create_datagram_endpoint(
        lambda: SipUac(("127.0.0.1", server.sip_port)), local_addr=("127.0.0.1", 0)
    )
    return uac


async def start_and_first_call(
    server: Server, utterances: list[Utterance]
) -> tuple[float | None, CallResult]:
    """Launch the server; time from launch to the first 200 OK."""
    await asyncio.to_thread(server.start)
    uac = await open_uac(server)
    result = await run_call(uac, utterances)
    startup = server.ready_s + (result.answered_s or 0) if result.answered_s else None
    uac.close()
    return startup, result


async def concurrent_calls(
    server: Server, n: int, utterances: list[Utterance], min_turns: int = 1
) -> dict:
    """``n`` calls at once, repeated in rounds until at least ``min_turns`` turns are timed
    (one call of four turns is too few for a median)."""
    uac = await open_uac(server)
    rounds = max(1, math.ceil(min_turns / (n * len(utterances))))
    results: list[CallResult] = []
    with Sampler(server) as sampler:
        # stagger starts a little, as real calls do; rotate the utterance order per call
        async def one(i: int) -> CallResult:
            await asyncio.sleep(0.25 * (i % n))
            k = i % len(utterances)
            return await run_call(uac, utterances[k:] + utterances[:k])

        for r in range(rounds):
            results += await asyncio.gather(*(one(r * n + i) for i in range(n)))
    uac.close()
    lat = [t["latency_s"] for r in results for t in r.turns if t["latency_s"] is not None]
    per_call = [
        statistics.median(
            [t["latency_s"] for t in r.turns if t["latency_s"] is not None] or [float("nan")]
        )
        for r in results
    ]
    return {
        "calls": n,
        "rounds": rounds,
        "latency": summary(lat),
        "per_call_median_s": [round(x, 4) for x in per_call],
        "turns_without_reply": sum(1 for r in results for t in r.turns if t["latency_s"] is None),
        "failed_calls": [r.error for r in results if r.error],
        "answer_s": summary([r.answered_s for r in results if r.answered_s is not None]),
        "cpu_percent_of_one_core": sampler.cpu_percent,
        "wall_s": sampler.wall_s,
        "peak_rss_mb": round(sampler.peak_rss / 2**20, 1),
        "peak_rss_by_process_mb": {k: round(v / 2**20, 1) for k, v in sampler.by_name.items()},
        "_results": results,
    }


async def pause_calls(server: Server, utterances: list[Utterance]) -> dict:
    """Each pause fixture is one caller utterance: >1 caller turn for it = a false end-of-turn."""
    uac = await open_uac(server)
    result = await run_call(uac, utterances, gap_s=0.8)
    uac.close()
    await asyncio.sleep(0.5)
    record = server.records().get(result.sip_call_id)
    per = []
    if record:
        speech = [t for t in record["turns"] if t["input"] == "speech"]
        starts = [t["sent_at_s"] for t in result.turns]
        for i, t in enumerate(result.turns):
            hi = starts[i + 1] if i + 1 < len(starts) else float("inf")
            mine = [s for s in speech if starts[i] <= s["offset_s"] < hi]
            per.append(
                {
                    "fixture": t["fixture"],
                    "caller_turns": len(mine),
                    "texts": [s["caller_text"] for s in mine],
                }
            )
    cut = sum(1 for p in per if p["caller_turns"] > 1)
    return {
        "fixtures": per,
        "cut_ins": cut,
        "utterances": len(per),
        "false_end_of_turn_rate": round(cut / len(per), 3) if per else None,
        "error": result.error,
        "record_found": record is not None,
    }


async def barge_calls(
    server: Server, prompt: Utterance, others: list[Utterance], rounds: int = 1
) -> dict:
    """One call per interrupter, two at a time: ask "what can you do", talk over the reply
    BARGE_AFTER_S into it.  The record says whether the reply was cut; RTP says how fast.
    A first call hears the whole reply in silence: the reference for "ducked"."""
    uac = await open_uac(server)
    quiet = await run_call(uac, [prompt])
    start = quiet.reply_starts[0] if quiet.reply_starts else math.inf
    reference = [db for t, db in quiet.frames if t >= start]
    others = others * rounds
    results: list[CallResult] = []
    for i in range(0, len(others), 2):
        results += await asyncio.gather(
            *(run_call(uac, [prompt, o], talk_over_s=BARGE_AFTER_S) for o in others[i : i + 2])
        )
    uac.close()
    await asyncio.sleep(0.5)
    records = server.records()
    cases = []
    for other, r in zip(others, results, strict=True):
        record = records.get(r.sip_call_id) or {}
        replies = [t for t in record.get("turns", []) if t["input"] == "speech"]
        interrupted = bool(replies) and replies[0]["bot_interrupted"]
        stop = r.turns[1].get("bot_stopped_after_s") if len(r.turns) > 1 else None
        onset = r.onsets[1] if len(r.onsets) > 1 else math.inf
        audible = stopped_after([t for t, db in r.frames if db > AUDIBLE_DBFS], onset)
        log = call_log(server, record.get("call_id"))
        cases.append(
            {
                "interrupter": other.id,
                "speech": other.id not in BARGE_NOISE,
                "bot_interrupted": interrupted,
                "bot_stopped_after_s": stop if interrupted else None,
                "bot_silent_after_s": audible if interrupted else None,
                **gave_way_after(r, reference),
                "ducks": sum("event=bot_ducked" in line for line in log),
                "restores": sum("event=bot_restored" in line for line in log),
                "heard": [t["caller_text"] for t in replies[1:]],
                "error": r.error if r.error != "bot hung up" else None,
            }
        )
    speech = [c for c in cases if c["speech"]]
    stops = [c["bot_stopped_after_s"] for c in speech if c["bot_stopped_after_s"] is not None]
    silent = [c["bot_silent_after_s"] for c in speech if c["bot_silent_after_s"] is not None]
    ducked = [c["ducked_after_s"] for c in speech if c["ducked_after_s"] is not None]
    noise = [c for c in cases if not c["speech"]]
    return {
        "reference_frames": len(reference),
        "ducked_after_onset": summary(ducked),
        "stop_after_onset_audible": summary(silent),
        "noise_ducked_bot": f"{sum(c['ducks'] > 0 for c in noise)}/{len(noise)}",
        "noise_left_bot_ducked": sum(c["ducks"] - c["restores"] for c in noise),
        "cases": cases,
        "speech_stopped_bot": f"{sum(c['bot_interrupted'] for c in speech)}/{len(speech)}",
        "noise_stopped_bot": (
            f"{sum(c['bot_interrupted'] for c in cases if not c['speech'])}/"
            f"{len(cases) - len(speech)}"
        ),
        "stop_after_onset": summary(stops),
    }


def unmatched_calls(
    results: list[CallResult], records: dict[str, dict], server: Server
) -> list[dict]:
    """Calls whose record does not have one speech turn per utterance sent: what the bot
    heard instead (a dropped "Hello" answered only by the silence prompt, a split turn)."""
    out = []
    for r in results:
        record = records.get(r.sip_call_id)
        turns = [t for t in (record or {}).get("turns", []) if t["input"] != "none" or t["index"]]
        if record is not None and sum(t["input"] == "speech" for t in turns) == len(r.turns):
            continue
        out.append(
            {
                "sip_call_id": r.sip_call_id,
                "sent": [t["fixture"] for t in r.turns],
                "record_turns": [
                    {k: t.get(k) for k in ("input", "caller_text", "bot_text", "timings")}
                    | {"voiced_s": (t.get("audio") or {}).get("voiced_s")}
                    for t in turns
                ],
                "log": call_log(server, (record or {}).get("call_id")),
            }
        )
    return out


def call_log(server: Server, call_id: str | None) -> list[str]:
    """The server's log lines for one call (why a turn went unanswered)."""
    if not call_id:
        return []
    return [line.strip() for line in server.log_lines if f"call_id={call_id}" in line][:80]


def call_turns(result: CallResult, record: dict | None) -> list[dict]:
    speech = [t for t in (record or {}).get("turns", []) if t["input"] == "speech"]
    out = []
    for i, t in enumerate(result.turns):
        row = dict(t)
        if len(speech) == len(result.turns):
            row.update(
                caller_text=speech[i]["caller_text"],
                intent=speech[i]["intent"],
                timings=speech[i]["timings"],
            )
        out.append(row)
    return out


# The stages a caller waits through, in order (stt_wait_s: STT still running after the
# turn ended; STT that ran during the caller's pause costs the caller nothing).
PATH_STAGES = ["endpoint_wait_s", "stt_wait_s", "dialogue_s", "tts_first_audio_s", "first_packet_s"]


def outcomes(records: list[dict]) -> dict:
    """How the benchmark's calls ended; containment counts only calls the bot served."""
    from voicebot.session.outcome import containment

    ended = [rec["outcome"] for rec in records]
    return {"counts": dict(Counter(ended)), "containment": containment(ended)}


def speech_turns(records: list[dict]) -> list[dict]:
    return [t for rec in records for t in rec["turns"] if t["input"] == "speech"]


def breakdown(records: list[dict], end_silence_s: float) -> dict:
    turns = speech_turns(records)
    keys = [*PATH_STAGES, "stt_s", "reply_s"]
    vals = {k: [t["timings"][k] for t in turns if k in t.get("timings", {})] for k in keys}
    out: dict = {
        k: {"median_s": pct(v, 0.5), "p95_s": pct(v, 0.95), "n": len(v)} for k, v in vals.items()
    }
    out["sum_of_path_medians_s"] = round(sum(out[k]["median_s"] or 0.0 for k in PATH_STAGES), 4)
    timed = [t["timings"] for t in turns if "endpoint_wait_s" in t.get("timings", {})]
    if timed:
        out["stt_early_share"] = round(sum(t.get("stt_early", 0) for t in timed) / len(timed), 3)
        out["semantic_end_share"] = round(
            sum(t["endpoint_wait_s"] < end_silence_s - 0.05 for t in timed) / len(timed), 3
        )
        out["stt_runs_per_turn"] = round(sum(t.get("stt_runs", 1) for t in timed) / len(timed), 3)
    return out


def machine() -> dict:
    lines = Path("/proc/cpuinfo").read_text().splitlines()
    model = next(
        (line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")),
        platform.processor(),
    )
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "mem_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def latest_stt(path: str | None = None) -> dict | None:
    files = [path] if path else sorted(glob.glob(str(RESULTS / "stt-*.json")))
    if not files:
        return None
    data = json.loads(Path(files[-1]).read_text())
    return {
        "source": os.path.relpath(files[-1], ROOT),
        **{k: data[k] for k in ("model", "prompt", "min_window_s", "summary") if k in data},
    }


def run_script(name: str) -> str | None:
    """Run ``scripts/<name>`` after the calls (quiet CPU); the JSON file it wrote."""
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / name)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    m = re.search(r"written (\S+)", out)
    return m.group(1) if m else None


def run_stt_bench() -> str | None:
    """scripts/bench_stt.py on every fixture (telephone band)."""
    print("bench: STT WER (scripts/bench_stt.py)…", file=sys.stderr, flush=True)
    return run_script("bench_stt.py")


def run_turns_bench() -> dict | None:
    """scripts/bench_turns.py: held turns and false ends on every fixture (in-process)."""
    print("bench: end of turn on every fixture (scripts/bench_turns.py)…", file=sys.stderr)
    path = run_script("bench_turns.py")
    if not path:
        return None
    data = json.loads(Path(path).read_text())
    return {"source": os.path.relpath(path, ROOT), "stt_p50_s": data["stt_p50_s"]} | data["summary"]


def residuals(results: list[CallResult], records: dict[str, dict]) -> dict:
    """Measured RTP latency minus the stages the record explains (endpoint wait, STT wait,
    Rasa, TTS first audio, first packet), split in two by the record's ``reply_s`` (end of
    turn → first packet out, wall clock):

    * ``outside_session_s`` = latency − endpoint wait − reply_s: the VAD's lag behind the
      end of the sound, the inbound jitter buffer, packet clocks and the wire;
    * ``inside_session_s`` = reply_s − the stages: record save, transfer policy, task hops.
    """
    total, outside, inside = [], [], []
    for r in results:
        rec = records.get(r.sip_call_id)
        if not rec:
            continue
        speech = [t for t in rec["turns"] if t["input"] == "speech"]
        if len(speech) != len(r.turns):
            continue
        for mine, theirs in zip(r.turns, speech, strict=True):
            timings = theirs["timings"]
            if mine["latency_s"] is None or not all(k in timings for k in PATH_STAGES):
                continue
            stages = sum(timings[k] for k in PATH_STAGES)
            total.append(mine["latency_s"] - stages)
            if "reply_s" in timings:
                outside.append(mine["latency_s"] - timings["endpoint_wait_s"] - timings["reply_s"])
                inside.append(timings["reply_s"] - (stages - timings["endpoint_wait_s"]))

    def stat(values: list[float]) -> dict:
        return {"median_s": pct(values, 0.5), "p95_s": pct(values, 0.95), "n": len(values)}

    return stat(total) | {"outside_session_s": stat(outside), "inside_session_s": stat(inside)}


def endpointing_toml(args: argparse.Namespace, end_silence_s: float | None) -> str:
    lines = ["", "[endpointing]"]
    if end_silence_s is not None:
        lines.append(f"end_silence_s = {end_silence_s}")
    if args.no_semantic:
        lines.append("semantic_end_of_turn = false")
    return "\n".join(lines) + "\n"


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sweep = report["concurrency"]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    ns = [s["calls"] for s in sweep]
    for key, style in (("p50_s", "o-"), ("p95_s", "s-"), ("max_s", "^:")):
        axes[0].plot(ns, [s["latency"][key] for s in sweep], style, label=key[:-2])
    axes[0].axhline(0.8, color="g", ls="--", lw=0.8, label="p50 target (1 call)")
    axes[0].axhline(1.5, color="r", ls="--", lw=0.8, label="p95 target (4 calls)")
    axes[0].set(
        xlabel="simultaneous calls",
        ylabel="voice-to-voice latency (s)",
        title="Latency over SIP/RTP",
        xticks=ns,
    )
    axes[0].legend(fontsize=8)
    bd = report["breakdown"]
    stages = [s for s in PATH_STAGES if s in bd]
    labels = [s.removesuffix("_s") for s in stages]
    medians = [bd[s]["median_s"] or 0 for s in stages]
    rest = bd.get("unexplained_rtp_s") or {}
    if (rest.get("outside_session_s") or {}).get("n"):  # split by the record's reply_s
        labels += ["session other", "vad lag/jitter/wire"]
        medians += [rest["inside_session_s"]["median_s"], rest["outside_session_s"]["median_s"]]
    else:
        labels.append("vad lag/jitter/wire/other")
        medians.append(rest.get("median_s") or 0)
    axes[1].bar(labels, medians, color=["C0"] * len(stages) + ["C7"] * (len(labels) - len(stages)))
    if "stt_s" in bd:  # STT runs during the pause, inside the endpoint wait
        axes[1].bar(
            labels[0],
            bd["stt_s"]["median_s"] or 0,
            color="none",
            hatch="//",
            edgecolor="C1",
            label="of which STT (early)",
        )
        axes[1].legend(fontsize=8)
    axes[1].set(ylabel="median (s)", title="Per-stage breakdown (all sweep turns)")
    axes[1].tick_params(axis="x", rotation=20)
    ax2 = axes[2]
    ax2.bar([str(n) for n in ns], [s["peak_rss_mb"] for s in sweep], color="tab:purple", alpha=0.6)
    ax2.set(xlabel="simultaneous calls", ylabel="peak RSS voicebot+Rasa (MB)", title="Resources")
    ax3 = ax2.twinx()
    ax3.plot([str(n) for n in ns], [s["cpu_percent_of_one_core"] for s in sweep], "ko-")
    ax3.set_ylabel("CPU % of one core (server tree)")
    fig.suptitle(
        f"voicebot bench {report['timestamp']} — {report['machine']['nproc']} × "
        f"{report['machine']['cpu_model']}",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


async def main(args: argparse.Namespace) -> dict:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    levels = [1] if args.quick else [int(x) for x in args.concurrency.split(",")]
    routine = [Utterance.load(f) for f in (ROUTINE[:1] if args.quick else ROUTINE)]
    one_call = routine if args.quick else [Utterance.load(f) for f in ONE_CALL_SET]
    pause = [Utterance.load(f) for f in (PAUSE_SET[:1] if args.quick else PAUSE_SET)]
    interrupters = [BARGE_SPEECH[0], BARGE_NOISE[0]] if args.quick else BARGE_SPEECH + BARGE_NOISE
    barge = (Utterance.load(BARGE_PROMPT), [Utterance.load(f) for f in interrupters])
    report: dict = {
        "timestamp": stamp,
        "quick": args.quick,
        "config_extra": args.config_extra,  # TOML on top of the defaults ("" = defaults)
        "machine": machine(),
        "method": {
            "latency": f"first bot RTP frame above {SPEECH_DBFS:.0f} dBFS minus send time of "
            "the "
            "caller's last frame above it; disclosure skipped",
            "routine_fixtures": [u.id for u in routine],
            "one_call_fixtures": [u.id for u in one_call],
            "pause_fixtures": [u.id for u in pause],
            "barge_in": f"talk over the reply to {BARGE_PROMPT} {BARGE_AFTER_S} s into it; "
            "stop = caller's speech onset (10 dB over the line's noise floor) to the bot's "
            f"last speech frame before {BOT_STOPPED_QUIET_S} s of quiet",
        },
    }
    silences = [None] if not args.end_silence else [float(x) for x in args.end_silence.split(",")]
    with tempfile.TemporaryDirectory(prefix="voicebot-bench-") as tmp:
        server = Server(args.config_extra, Path(tmp))
        try:
            startup, first = await start_and_first_call(server, routine[:1])
            report["startup"] = {
                "launch_to_ready_s": round(server.ready_s, 3),
                "launch_to_first_200_ok_s": round(startup, 3) if startup else None,
                "first_call_error": first.error,
            }
            sweep = []
            for n in levels:
                print(f"bench: {n} simultaneous call(s)…", file=sys.stderr, flush=True)
                min_turns = 1 if args.quick else args.min_turns
                fixtures = one_call if n == 1 else routine
                sweep.append(await concurrent_calls(server, n, fixtures, min_turns))
            records = server.records()
            for level in sweep:  # every turn, with the record's stage timings beside it
                level["call_turns"] = [
                    call_turns(r, records.get(r.sip_call_id)) for r in level["_results"]
                ]
                level["unmatched_calls"] = unmatched_calls(level["_results"], records, server)
            all_results = [r for s in sweep for r in s.pop("_results")]
            report["concurrency"] = sweep
            report["breakdown"] = breakdown(
                [records[r.sip_call_id] for r in all_results if r.sip_call_id in records],
                args.configured_end_silence,
            )
            report["breakdown"]["calls_matched"] = sum(
                r.sip_call_id in records for r in all_results
            )
            report["breakdown"]["unexplained_rtp_s"] = residuals(all_results, records)
            report["outcomes"] = outcomes([records[r.sip_call_id] for r in all_results
                                           if r.sip_call_id in records])  # fmt: skip
            one = [r for r in all_results[:1] if r.sip_call_id in records]
            report["example_turns"] = (
                [
                    {k: t.get(k) for k in ("caller_text", "intent", "bot_text", "timings", "audio")}
                    for t in records[one[0].sip_call_id]["turns"]
                ]
                if one
                else []
            )
            if silences == [None]:
                print("bench: pause fixtures…", file=sys.stderr, flush=True)
                ep = await pause_calls(server, pause)
                ep["end_silence_s"] = args.configured_end_silence
                ep["semantic_end_of_turn"] = not args.no_semantic
                report["endpointing"] = [ep]
            print("bench: barge-in…", file=sys.stderr, flush=True)
            report["barge_in"] = await barge_calls(server, *barge)
        finally:
            server.stop()
        if silences != [None]:
            report["endpointing"] = []
            for i, s in enumerate(silences):
                print(f"bench: pause fixtures at end_silence_s={s}…", file=sys.stderr, flush=True)
                sub = Path(tmp) / f"s{i}"
                sub.mkdir()
                srv = Server(args.config_extra + endpointing_toml(args, s), sub)
                try:
                    await asyncio.to_thread(srv.start)
                    ep = await pause_calls(srv, pause)
                    ep["end_silence_s"] = s
                    ep["semantic_end_of_turn"] = not args.no_semantic
                    report["endpointing"].append(ep)
                finally:
                    srv.stop()
    stt_path = None if (args.quick or args.skip_stt) else run_stt_bench()
    report["stt"] = latest_stt(stt_path)
    report["turns"] = None if (args.quick or args.skip_stt) else run_turns_bench()
    report["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    c1 = next((s for s in report["concurrency"] if s["calls"] == 1), None)
    c4 = next((s for s in report["concurrency"] if s["calls"] == 4), None)
    c8 = next((s for s in report["concurrency"] if s["calls"] == 8), None)
    outside = report["breakdown"]["unexplained_rtp_s"]["outside_session_s"]["median_s"]
    pauses = report.get("endpointing") or [{}]
    barge = report["barge_in"]
    rss = max(s["peak_rss_mb"] for s in report["concurrency"])
    wer = (report["stt"] or {}).get("summary", {}).get("piper", {}).get("wer")

    def within(level: dict | None, key: str, limit: float, part: str = "latency") -> bool | None:
        value = level[part][key] if level else None
        return None if value is None else value <= limit

    report["targets"] = {
        "one_call_p50_le_0.8s": within(c1, "p50_s", 0.8),
        "one_call_p95_le_1.2s": within(c1, "p95_s", 1.2),
        "four_calls_p95_le_1.5s": within(c4, "p95_s", 1.5),
        # issue 14, on a machine whose bench STT p50 is about 0.15 s (quote it beside):
        "one_call_p50_le_0.45s": within(c1, "p50_s", 0.45),
        "one_call_p95_le_0.70s": within(c1, "p95_s", 0.70),
        "one_call_max_le_0.90s": within(c1, "max_s", 0.90),
        "eight_calls_p95_le_0.9s": within(c8, "p95_s", 0.9),
        "outside_session_median_le_0.13s": None if outside is None else outside <= 0.13,
        "pause_fixtures_no_false_end": pauses[0].get("cut_ins") == 0,
        "barge_in_stop_median_le_0.30s": within(barge, "p50_s", 0.30, "stop_after_onset"),
        "noise_never_stops_the_bot": barge["noise_stopped_bot"].startswith("0/"),
        "startup_le_15s": (report["startup"]["launch_to_first_200_ok_s"] or 1e9) <= 15,
        "peak_rss_le_1.5GB": rss <= 1536,
        "telephone_wer_le_10pct_natural": (wer <= 0.10) if wer is not None else None,
    }
    return report


async def barge_only(args: argparse.Namespace) -> dict:
    """Only the barge-in phase (``--barge-only``): a fresh server, every interrupter, N rounds."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    report: dict = {
        "timestamp": stamp,
        "config_extra": args.config_extra,
        "machine": machine(),
        "method": {
            "barge_in": f"talk over the reply to {BARGE_PROMPT} {BARGE_AFTER_S} s into it, "
            f"{args.barge_rounds} round(s); stop = caller's speech onset to the bot's last frame "
            f"above {SPEECH_DBFS:.0f} dBFS before {BOT_STOPPED_QUIET_S} s of quiet "
            f"(stop_after_onset_audible: above {AUDIBLE_DBFS:.0f} dBFS, so ducked speech counts "
            f"as talking); ducked = first frame after the onset at least {DUCKED_DB:.0f} dB "
            "under the same frame of the reply heard in silence (ducked or stopped)",
        },
    }
    interrupters = [Utterance.load(f) for f in BARGE_SPEECH + BARGE_NOISE]
    with tempfile.TemporaryDirectory(prefix="voicebot-bench-") as tmp:
        server = Server(args.config_extra, Path(tmp))
        try:
            await asyncio.to_thread(server.start)
            report["barge_in"] = await barge_calls(
                server, Utterance.load(BARGE_PROMPT), interrupters, args.barge_rounds
            )
        finally:
            server.stop()
    report["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    barge = report["barge_in"]
    report["targets"] = {
        "barge_in_stop_median_le_0.30s": (barge["stop_after_onset"]["p50_s"] or 1e9) <= 0.30,
        "noise_never_stops_the_bot": barge["noise_stopped_bot"].startswith("0/"),
    }
    return report


def cli() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one call, short: a smoke run")
    parser.add_argument("--concurrency", default="1,2,4,8")
    parser.add_argument(
        "--min-turns",
        type=int,
        default=12,
        help="repeat a concurrency level in rounds until this many turns are timed",
    )
    parser.add_argument(
        "--end-silence",
        default="",
        help="comma list of end_silence_s to sweep with the pause fixtures "
        "(restarts the server per value); default: the configured one",
    )
    parser.add_argument(
        "--no-semantic",
        action="store_true",
        help="end turns on silence only (endpointing.semantic_end_of_turn = false)",
    )
    parser.add_argument("--config-extra", default="", help="extra TOML for the server config")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results folder")
    parser.add_argument("--no-plot", action="store_true")
    parser.add_argument(
        "--skip-stt",
        action="store_true",
        help="do not run scripts/bench_stt.py; read its latest JSON if any",
    )
    parser.add_argument("--replot", type=Path, help="only redraw the PNG of a bench JSON")
    parser.add_argument(
        "--barge-only",
        action="store_true",
        help="only the barge-in phase (~1 min a round); writes barge-<timestamp>.json",
    )
    parser.add_argument("--barge-rounds", type=int, default=1, help="with --barge-only")
    args = parser.parse_args()
    if args.barge_only:
        report = asyncio.run(barge_only(args))
        args.out.mkdir(parents=True, exist_ok=True)
        path = args.out / f"barge-{report['timestamp']}.json"
        path.write_text(json.dumps(report, indent=2) + "\n")
        print(path)
        return 0
    if args.replot:
        plot(json.loads(args.replot.read_text()), args.replot.with_suffix(".png"))
        return 0
    args.configured_end_silence = EndpointingConfig().end_silence_s
    if args.no_semantic and not args.end_silence:
        args.config_extra += endpointing_toml(args, None)
    report = asyncio.run(main(args))
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"bench-{report['timestamp']}.json"
    if not args.no_plot:
        png = path.with_suffix(".png")
        plot(report, png)
        report["plot"] = os.path.relpath(png, ROOT) if png.is_relative_to(ROOT) else str(png)
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(cli())
