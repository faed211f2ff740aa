"""soxr resampling keeps dtype, length, pitch, and removes what 8 kHz cannot carry."""

from __future__ import annotations

import numpy as np
import pytest

from voicebot.audio.resample import resample


def tone(freq: float, rate: int, seconds: float = 1.0, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(round(rate * seconds)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def dominant_hz(x: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(x.astype(np.float64)))
    return float(np.fft.rfftfreq(len(x), 1 / rate)[spectrum.argmax()])


def test_identity_when_rates_match() -> None:
    x = np.arange(160, dtype=np.int16)
    assert resample(x, 8000, 8000) is x


@pytest.mark.parametrize("rate", [16000, 22050, 44100, 48000])
def test_int16_down_to_8k_keeps_pitch_and_level(rate: int) -> None:
    x = np.round(tone(1000, rate) * 32767).astype(np.int16)
    y = resample(x, rate, 8000)
    assert y.dtype == np.int16
    assert abs(len(y) - 8000) <= 1
    assert dominant_hz(y, 8000) == pytest.approx(1000, abs=2)
    assert np.abs(y[500:-500]).max() == pytest.approx(16384, rel=0.02)


def test_float32_stays_float32_and_upsamples() -> None:
    y = resample(tone(440, 8000), 8000, 16000)
    assert y.dtype == np.float32 and len(y) == 16000
    assert dominant_hz(y, 16000) == pytest.approx(440, abs=2)


def test_content_above_4khz_is_filtered_not_aliased() -> None:
    y = resample(tone(6000, 22050), 22050, 8000)  # would alias to 2 kHz without a filter
    assert np.sqrt(np.mean(y[500:-500] ** 2)) < 0.005


def test_int16_output_is_clipped_not_wrapped() -> None:
    square = np.tile(np.r_[np.full(20, 32767), np.full(20, -32768)], 200).astype(np.int16)
    y = resample(square, 8000, 22050)  # Gibbs overshoot beyond full scale
    assert y.dtype == np.int16
    assert y.max() == 32767 and y.min() == -32768


def test_rejects_bad_input() -> None:
    with pytest.raises(TypeError):
        resample(np.zeros(10, np.int32), 16000, 8000)
    with pytest.raises(ValueError):
        resample(np.zeros(10, np.int16), 0, 8000)
    assert resample(np.zeros(0, np.int16), 16000, 8000).size == 0
