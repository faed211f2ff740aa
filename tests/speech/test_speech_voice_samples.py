"""`voicebot demo --voices`: both engines render the same replies as telephone audio."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from voicebot.audio.wavfile import read_audio
from voicebot.config import PROJECT_ROOT
from voicebot.speech.voice_samples import SAMPLE_REPLIES


@pytest.mark.slow
def test_demo_voices_writes_every_reply_in_every_voice(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "voicebot", "demo", "--voices", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=180, cwd=PROJECT_ROOT, env=os.environ.copy(),
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    folder = tmp_path / "voices"
    assert f"{folder}/pyttsx3/" in run.stdout and f"{folder}/piper/" in run.stdout
    for engine in ("pyttsx3", "piper"):
        files = sorted((folder / engine).glob("reply-*.wav"))
        assert len(files) == len(SAMPLE_REPLIES)
        for path in files:
            assert len(read_audio(path)) > 0.8 * 8000  # at least 0.8 s of speech at 8 kHz
    assert (folder / "replies.txt").read_text().count("\n") == len(SAMPLE_REPLIES)
