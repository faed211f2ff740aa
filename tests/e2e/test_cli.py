"""The developer entry points as a developer runs them: the real `voicebot` command."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import utterance
from voicebot.dialogue.rasa_server import ManagedRasa

pytestmark = pytest.mark.slow


def voicebot(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "voicebot", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


def write_wav(path: Path, rate: int, seconds: float = 1.0) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        t = np.arange(int(rate * seconds)) / rate
        out.writeframes((3000 * np.sin(2 * np.pi * 300 * t)).astype(np.int16).tobytes())
    return path


def _file(name: str, content: bytes | None) -> object:
    def make(folder: Path) -> Path:
        path = folder / name
        if content is not None:
            path.write_bytes(content)
        return path

    return make


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (_file("empty.wav", b""), "empty"),
        (_file("notes.wav", b"not audio at all\n"), "not"),
        (_file("missing.wav", None), "missing"),
    ],
)
def test_bad_audio_gets_a_clear_error_before_anything_loads(tmp_path, make, message) -> None:
    path = make(tmp_path)
    result = voicebot("simulate", str(path))
    assert result.returncode == 2
    assert result.stderr.startswith("voicebot: ")
    assert str(path.name) in result.stderr
    assert message in result.stderr.lower(), result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("spec", ["dtmf:12x4", "dtmf:", "dtmf:#9%"])
def test_unknown_dtmf_gets_a_clear_error(spec: str) -> None:
    result = voicebot("simulate", spec)
    assert result.returncode == 2
    assert "DTMF" in result.stderr and "Traceback" not in result.stderr


def test_any_sample_rate_is_accepted(tmp_path) -> None:
    from voicebot.telephony.fixture import parse_turn

    for rate in (8000, 16000, 44100, 48000):
        turn = parse_turn(str(write_wav(tmp_path / f"tone{rate}.wav", rate)))
        assert turn.pcm is not None and abs(len(turn.pcm) - 8000) <= 2


def test_simulated_balance_call_prints_the_record(
    managed_rasa: ManagedRasa, tmp_path: Path
) -> None:
    """`voicebot simulate --json` reusing a running Rasa (as the README says)."""
    config = tmp_path / "voicebot.toml"
    config.write_text(f'[storage]\ndatabase = "{tmp_path / "calls.sqlite3"}"\n')
    env = {"VOICEBOT_RASA_URL": managed_rasa.url, "VOICEBOT_RASA_TOKEN": managed_rasa.token or ""}
    result = voicebot(
        "--config",
        str(config),
        "simulate",
        "--caller",
        "+15550100",
        "--json",
        "--out",
        str(tmp_path / "audio"),
        str(utterance("check_balance")),
        "dtmf:4321",
        env=env,
    )
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert set(record) >= {"call_id", "disclosure", "turns", "transfer", "outcome"}
    assert record["disclosure"]["text"] == record["turns"][0]["bot_text"]
    assert record["transfer"] is None and record["outcome"] == "served"
    last = [t for t in record["turns"] if t["caller_text"] is not None][-1]
    assert last["intent"] == "provide_pin" and "balance" in last["bot_text"].lower()
    # Then the caller stays on the line, silent, as on a phone: the prompt and the goodbye,
    # at offsets on the caller's timeline (the run itself takes seconds).
    prompt, goodbye = record["turns"][-2:]
    assert prompt["caller_text"] is None and "still there" in prompt["bot_text"].lower()
    assert goodbye["bot_text"].endswith("Goodbye.") and record["end_reason"] == "caller silent"
    assert goodbye["offset_s"] - last["offset_s"] >= 16.0  # two 8 s silence_prompt_s waits
    for turn in record["turns"][1:]:
        assert {"caller_text", "intent", "confidence", "bot_text"} <= set(turn)
    assert "4321" not in result.stdout and "4321" not in result.stderr
    # At the default log level every call event is logged, each line key=value.
    log_lines = result.stderr.splitlines()
    assert all(re.match(r"ts=\S+ level=[A-Z]+ logger=\S+ \w+=", line) for line in log_lines)
    assert any(f"call_id={record['call_id']}" in line and "event=call_ended" in line
               for line in log_lines)  # fmt: skip
    assert sorted(p.name for p in (tmp_path / "audio").iterdir())[:2] == [
        "bot-00.wav",
        "bot-01.wav",
    ]
    exported = voicebot("--config", str(config), "calls", "export", record["call_id"])
    assert exported.returncode == 0 and json.loads(exported.stdout)["call_id"] == record["call_id"]
