"""Streaming Silero VAD on telephone-band audio."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from voicebot.audio.vad import (
    LATENCY_SAMPLES,
    QUIET_RESET_S,
    WINDOW_SAMPLES,
    SileroVad,
    VadModelError,
    default_model_path,
    shared_vad,
)
from voicebot.audio.wavfile import read_audio
from voicebot.config import PROJECT_ROOT
from voicebot.core.frames import silence, split_frames

SENTENCE = "I would like to check the balance on my savings account please"


def push_frames(stream, pcm: np.ndarray) -> np.ndarray:
    """Push 20 ms frames as a transport would."""
    probs: list[float] = []
    for frame in split_frames(pcm):
        probs.extend(stream.push(frame))
    return np.array(probs)


def test_model_is_found_inside_faster_whisper() -> None:
    path = default_model_path()
    assert path.name == "silero_vad_v6.onnx" and "faster_whisper" in str(path)
    assert WINDOW_SAMPLES == 256 and LATENCY_SAMPLES < 32


def test_missing_model_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(VadModelError, match="not found"):
        SileroVad(tmp_path / "nope.onnx")


def test_shared_vad_is_one_instance() -> None:
    assert shared_vad() is shared_vad()


def test_speech_scores_high(vad: SileroVad, speak) -> None:
    speech = speak(SENTENCE)
    probs = push_frames(vad.stream(), np.concatenate([silence(0.5), speech, silence(0.5)]))
    inside = probs[int(0.6 / 0.032) : int((0.5 + len(speech) / 8000 - 0.1) / 0.032)]
    assert probs.max() > 0.95
    assert np.mean(inside >= 0.5) > 0.8
    assert probs[: int(0.45 / 0.032)].max() < 0.1  # leading silence


def test_digital_silence_scores_low(vad: SileroVad) -> None:
    assert push_frames(vad.stream(), silence(3.0)).max() < 0.1


@pytest.mark.parametrize("amplitude", [30, 300, 1000])
def test_white_noise_scores_low(vad: SileroVad, amplitude: int) -> None:
    noise = np.random.default_rng(amplitude).normal(0, amplitude, 3 * 8000).astype(np.int16)
    assert push_frames(vad.stream(), noise).max() < 0.2


def test_one_probability_per_window_however_audio_is_chunked(vad: SileroVad, speak) -> None:
    pcm = np.concatenate([silence(0.3), speak("hello there"), silence(0.3)])
    whole = vad.stream().push(pcm)
    assert len(whole) == len(pcm) // WINDOW_SAMPLES
    stream = vad.stream()
    rng = np.random.default_rng(0)
    cuts = np.cumsum(rng.integers(1, 700, size=len(pcm) // 50))
    pieces = np.split(pcm, cuts[cuts < len(pcm)])
    chunked = [p for piece in pieces for p in stream.push(piece)]
    np.testing.assert_allclose(chunked, whole, atol=1e-6)


def test_state_is_kept_across_calls_and_reset(vad: SileroVad, speak) -> None:
    """The LSTM state matters: the same window scores differently after speech."""
    speech = speak("hello there")
    stream = vad.stream()
    first = stream.push(speech)
    carried = stream.push(speech)
    assert not np.allclose(first, carried)
    stream.reset()
    assert stream.push(speech) == first


def test_streams_are_independent(vad: SileroVad, speak) -> None:
    speech = speak("hello there")
    a, b = vad.stream(), vad.stream()
    a.push(silence(1.0))
    b_probs = b.push(speech)
    assert vad.stream().push(speech) == b_probs


def test_float_and_int16_input_agree(vad: SileroVad, speak) -> None:
    speech = speak("hello there")
    as_float = speech.astype(np.float32) / 32768
    np.testing.assert_allclose(vad.stream().push(speech), vad.stream().push(as_float), atol=1e-6)
    with pytest.raises(TypeError):
        vad.stream().push(np.zeros(256, np.int32))


def test_a_quiet_second_clears_the_models_memory(vad: SileroVad) -> None:
    """Found on real calls: after earlier turns a short "Hello." scored under the speech
    threshold (peak 0.35–0.41) while a fresh stream scored it 0.62."""
    fixtures = PROJECT_ROOT / "audio_fixtures" / "utterances"
    hello = read_audio(fixtures / "greet_hello.wav")
    names = ("thanks_plain", "balance_whats_my")
    earlier = [read_audio(fixtures / f"{name}.wav") for name in names]
    history = np.concatenate([silence(2.0), *(p for e in earlier for p in (e, silence(5.3)))])
    stream = vad.stream()
    stream.push(history)
    after_turns = max(stream.push(hello))
    fresh = max(vad.stream().push(np.concatenate([silence(2.0), hello])))
    assert after_turns > 0.5 and after_turns == pytest.approx(fresh, abs=0.1)
    assert QUIET_RESET_S <= 1.0  # the pause between two turns always clears it
