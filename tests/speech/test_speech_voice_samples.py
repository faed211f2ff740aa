"""`voicebot demo --voices`: both engines render the same replies as telephone audio."""

from __future__ import annotations

from pathlib import Path

from voicebot.audio.wavfile import read_audio
from voicebot.config import TtsConfig
from voicebot.speech.voice_samples import SAMPLE_REPLIES, write_voice_samples


async def test_every_engine_writes_every_reply(tmp_path: Path) -> None:
    lines = await write_voice_samples(TtsConfig(), tmp_path)
    assert any(line.startswith("pyttsx3") for line in lines)
    assert any(line.startswith("piper") for line in lines)
    for engine in ("pyttsx3", "piper"):
        files = sorted((tmp_path / engine).glob("reply-*.wav"))
        assert len(files) == len(SAMPLE_REPLIES)
        for path in files:
            assert len(read_audio(path)) > 0.8 * 8000  # at least 0.8 s of speech at 8 kHz
    assert (tmp_path / "replies.txt").read_text().count("\n") == len(SAMPLE_REPLIES)
