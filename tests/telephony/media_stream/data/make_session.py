"""Regenerate ``session.jsonl``: a recorded Twilio Media Streams session.

The caller speaks one sentence (espeak-ng → 8 kHz → μ-law, exactly what a
carrier would stream), then keys 4 3 2 1 while the line stays open, then
hangs up.  Each line is one WebSocket message in Twilio's real format, in
order; ``media`` timestamps give the replay its real-time pacing.

    PYTHONPATH=. python tests/telephony/media_stream/data/make_session.py

Needs the ``espeak-ng`` program (Debian package ``espeak-ng``).
"""

from __future__ import annotations

import base64
import json
import subprocess
import tempfile
import wave
from pathlib import Path

import numpy as np

from voicebot.audio.g711 import ulaw_encode
from voicebot.audio.resample import resample
from voicebot.core.frames import FRAME_MS, FRAME_SAMPLES, SAMPLE_RATE, silence, split_frames

HERE = Path(__file__).resolve().parent
OUT = HERE / "session.jsonl"

TEXT = "Hello, what are your opening hours on Saturday?"
CALLER = "+15550100"
ACCOUNT_SID = "AC" + "0" * 31 + "1"
CALL_SID = "CA" + "5e55" * 8
STREAM_SID = "MZ" + "c0ffee" * 5 + "00"
LEAD_SILENCE_S = 0.3
DIGITS = "4321"
DIGIT_GAP_FRAMES = 10  # 200 ms between key presses, as a person types
TAIL_SILENCE_S = 0.6


def speak(text: str) -> np.ndarray:
    """espeak-ng speech as 8 kHz int16."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "speech.wav"
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "160", "-w", str(path), text], check=True)
        with wave.open(str(path), "rb") as wav:
            rate = wav.getframerate()
            pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").astype(np.int16)
    return resample(pcm, rate, SAMPLE_RATE)


def session_messages(pcm: np.ndarray, speech_end: int) -> list[dict]:
    """Messages for ``pcm``; digits are keyed after frame ``speech_end``."""
    seq = iter(range(1, 1_000_000))
    ulaw = ulaw_encode(pcm)
    frames = [ulaw[i : i + FRAME_SAMPLES] for i in range(0, len(ulaw), FRAME_SAMPLES)]
    digit_at = {speech_end + DIGIT_GAP_FRAMES * (i + 1): d for i, d in enumerate(DIGITS)}
    msgs: list[dict] = [{"event": "connected", "protocol": "Call", "version": "1.0.0"}]
    msgs.append(_start(next(seq)))
    for i, frame in enumerate(frames):
        msgs.append(_media(next(seq), i, frame))
        if i in digit_at:
            msgs.append(_dtmf(next(seq), digit_at[i]))
    msgs.append(
        {
            "event": "stop",
            "sequenceNumber": str(next(seq)),
            "streamSid": STREAM_SID,
            "stop": {"accountSid": ACCOUNT_SID, "callSid": CALL_SID},
        }
    )
    return msgs


def _start(seq: int) -> dict:
    return {
        "event": "start",
        "sequenceNumber": str(seq),
        "streamSid": STREAM_SID,
        "start": {
            "accountSid": ACCOUNT_SID,
            "streamSid": STREAM_SID,
            "callSid": CALL_SID,
            "tracks": ["inbound"],
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            "customParameters": {"caller": CALLER, "campaign": "fixture"},
        },
    }


def _media(seq: int, index: int, payload: bytes) -> dict:
    return {
        "event": "media",
        "sequenceNumber": str(seq),
        "streamSid": STREAM_SID,
        "media": {
            "track": "inbound",
            "chunk": str(index + 1),
            "timestamp": str(index * FRAME_MS),
            "payload": base64.b64encode(payload).decode("ascii"),
        },
    }


def _dtmf(seq: int, digit: str) -> dict:
    return {
        "event": "dtmf",
        "sequenceNumber": str(seq),
        "streamSid": STREAM_SID,
        "dtmf": {"track": "inbound_track", "digit": digit},
    }


def main() -> None:
    speech = speak(TEXT)
    tail = TAIL_SILENCE_S + DIGIT_GAP_FRAMES * FRAME_MS * len(DIGITS) / 1000
    pcm = np.concatenate([silence(LEAD_SILENCE_S), speech, silence(tail)])
    pcm = np.concatenate(split_frames(pcm))  # carriers send whole 20 ms frames
    speech_end = (len(pcm) - len(silence(tail))) // FRAME_SAMPLES
    lines = [json.dumps(m, separators=(",", ":")) for m in session_messages(pcm, speech_end)]
    OUT.write_text("\n".join(lines) + "\n")
    print(f"wrote {OUT} ({len(lines)} messages, {len(pcm) / SAMPLE_RATE:.2f} s)")


if __name__ == "__main__":
    main()
