"""read_audio handles every WAV shape we meet and fails clearly on everything else."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from voicebot.audio.wavfile import AudioFileError, read_audio, write_wav


def tone(rate: int, seconds: float = 0.5, freq: float = 440.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(round(rate * seconds)) / rate
    return amp * np.sin(2 * np.pi * freq * t)


def assert_tone(pcm: np.ndarray, seconds: float, amp: float = 0.5, freq: float = 440.0) -> None:
    assert pcm.dtype == np.int16 and pcm.ndim == 1
    assert abs(len(pcm) - seconds * 8000) <= 2
    spectrum = np.abs(np.fft.rfft(pcm.astype(np.float64)))
    assert np.fft.rfftfreq(len(pcm), 1 / 8000)[spectrum.argmax()] == pytest.approx(freq, abs=3)
    assert np.abs(pcm[200:-200]).max() / 32768 == pytest.approx(amp, rel=0.06)


def riff(fmt_tag: int, bits: int, data: bytes, extra: bytes = b"") -> bytes:
    """A hand-built WAV, to make headers libsndfile would never write."""
    fmt = struct.pack("<HHIIHH", fmt_tag, 1, 8000, 8000 * bits // 8, bits // 8, bits) + extra
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


SUBTYPES = ["PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE", "ULAW", "ALAW"]


@pytest.mark.parametrize("subtype", SUBTYPES)
@pytest.mark.parametrize("rate", [8000, 16000, 22050, 44100, 48000])
def test_every_encoding_and_rate(tmp_path: Path, subtype: str, rate: int) -> None:
    path = tmp_path / "x.wav"
    sf.write(path, tone(rate), rate, subtype=subtype)
    assert_tone(read_audio(path), 0.5)


def test_stereo_is_mixed_down(tmp_path: Path) -> None:
    left = tone(16000, amp=0.8)
    sf.write(tmp_path / "s.wav", np.column_stack([left, np.zeros_like(left)]), 16000)
    assert_tone(read_audio(tmp_path / "s.wav"), 0.5, amp=0.4)
    sf.write(tmp_path / "cancel.wav", np.column_stack([left, -left]), 16000)
    assert np.abs(read_audio(tmp_path / "cancel.wav")).max() <= 1


def test_pcm16_8k_is_bit_exact(tmp_path: Path) -> None:
    pcm = np.random.default_rng(0).integers(-32768, 32768, 8000).astype(np.int16)
    write_wav(tmp_path / "x.wav", pcm)
    assert np.array_equal(read_audio(tmp_path / "x.wav"), pcm)


def test_float_beyond_full_scale_is_clipped(tmp_path: Path) -> None:
    sf.write(tmp_path / "loud.wav", tone(8000, amp=1.5), 8000, subtype="FLOAT")
    pcm = read_audio(tmp_path / "loud.wav")
    assert pcm.max() == 32767 and pcm.min() == -32768


@pytest.mark.skipif(shutil.which("sox") is None, reason="sox not installed")
def test_sox_generated_files(tmp_path: Path) -> None:
    for name, args in {
        "st24.wav": ["-r", "44100", "-c", "2", "-b", "24"],
        "ulaw.wav": ["-r", "8000", "-c", "1", "-e", "u-law"],
        "gsm.wav": ["-r", "8000", "-c", "1", "-e", "gsm-full-rate"],
    }.items():
        out = tmp_path / name
        subprocess.run(["sox", "-n", *args, str(out), "synth", "0.5", "sine", "440"], check=True)
        pcm = read_audio(out)
        # GSM 6.10 in WAV pads to whole 320-sample block pairs.
        assert pcm.dtype == np.int16 and 0 <= len(pcm) - 4000 <= 640, name


def test_espeak_output_reads_as_speech(speak) -> None:
    pcm = speak("hello")
    assert pcm.dtype == np.int16 and 0.2 < len(pcm) / 8000 < 2.0
    assert np.abs(pcm).max() > 3000


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(AudioFileError, match="not found"):
        read_audio(tmp_path / "nope.wav")


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(AudioFileError, match="directory"):
        read_audio(tmp_path)


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(AudioFileError, match="empty"):
        read_audio(tmp_path / "empty.wav")


def test_zero_frames(tmp_path: Path) -> None:
    write_wav(tmp_path / "z.wav", np.zeros(0, np.int16))
    with pytest.raises(AudioFileError, match="zero frames"):
        read_audio(tmp_path / "z.wav")


def test_not_audio(tmp_path: Path) -> None:
    (tmp_path / "notes.wav").write_text("this is a shopping list, not a recording\n" * 20)
    with pytest.raises(AudioFileError, match="not an audio file"):
        read_audio(tmp_path / "notes.wav")


def test_truncated_header(tmp_path: Path) -> None:
    (tmp_path / "cut.wav").write_bytes(riff(1, 16, b"\0" * 800)[:30])
    with pytest.raises(AudioFileError, match=r"cut\.wav"):
        read_audio(tmp_path / "cut.wav")


def test_unsupported_codec(tmp_path: Path) -> None:
    (tmp_path / "wma.wav").write_bytes(riff(0x0161, 16, b"\0" * 800, extra=b"\0\0"))
    with pytest.raises(AudioFileError, match="unsupported"):
        read_audio(tmp_path / "wma.wav")


def test_error_is_a_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        read_audio(tmp_path / "nope.wav")


def test_write_ulaw_for_sip_peers(tmp_path: Path) -> None:
    pcm = np.round(tone(8000, 1.0) * 32767).astype(np.int16)
    write_wav(tmp_path / "u.wav", pcm, encoding="ulaw")
    info = sf.info(tmp_path / "u.wav")
    assert (info.subtype, info.samplerate, info.channels) == ("ULAW", 8000, 1)
    back = read_audio(tmp_path / "u.wav")
    assert np.abs(back.astype(np.int32) - pcm).max() <= 1024


def test_write_other_rate_and_float(tmp_path: Path) -> None:
    write_wav(tmp_path / "f.wav", tone(16000).astype(np.float32), rate=16000)
    assert sf.info(tmp_path / "f.wav").samplerate == 16000
    assert_tone(read_audio(tmp_path / "f.wav"), 0.5)


def test_write_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="encoding"):
        write_wav(tmp_path / "x.wav", np.zeros(10, np.int16), encoding="mp3")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="mono"):
        write_wav(tmp_path / "x.wav", np.zeros((10, 2), np.int16))
