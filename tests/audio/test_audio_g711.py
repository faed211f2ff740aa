"""G.711 against ITU values, error bounds, and libsndfile as an independent codec."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf

from voicebot.audio.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode

ALL_INT16 = np.arange(-32768, 32768, dtype=np.int16)
ALL_CODES = bytes(range(256))
CODECS = {"ULAW": (ulaw_encode, ulaw_decode), "ALAW": (alaw_encode, alaw_decode)}


@pytest.mark.parametrize(
    ("code", "value"),
    [(0xFF, 0), (0x7F, 0), (0x00, -32124), (0x80, 32124), (0xFE, 8), (0x7E, -8), (0xEF, 132)],
)
def test_ulaw_decode_itu_values(code: int, value: int) -> None:
    assert ulaw_decode(bytes([code]))[0] == value


@pytest.mark.parametrize(
    ("code", "value"), [(0xD5, 8), (0x55, -8), (0xAA, 32256), (0x2A, -32256), (0xD4, 24)]
)
def test_alaw_decode_itu_values(code: int, value: int) -> None:
    assert alaw_decode(bytes([code]))[0] == value


def test_encode_itu_values() -> None:
    pcm = np.array([0, 32767, -32768, 8, -8], dtype=np.int16)
    assert ulaw_encode(pcm)[:3] == bytes([0xFF, 0x80, 0x00])
    assert alaw_encode(pcm) == bytes([0xD5, 0xAA, 0x2A, 0xD5, 0x55])


@pytest.mark.parametrize("name", CODECS)
def test_decoded_codes_re_encode_to_themselves(name: str) -> None:
    encode, decode = CODECS[name]
    again = encode(decode(ALL_CODES))
    differing = [c for c in range(256) if again[c] != c]
    # μ-law has two zeros (0xFF = +0, 0x7F = -0); +0 is the canonical encoding.
    assert differing == ([0x7F] if name == "ULAW" else [])


def test_ulaw_round_trip_error_bounds() -> None:
    err = np.abs(ulaw_decode(ulaw_encode(ALL_INT16)).astype(np.int32) - ALL_INT16)
    unclipped = np.abs(ALL_INT16.astype(np.int32)) <= 32124
    # Half a quantiser step: the step doubles per segment from 8 to 1024, i.e. ≤ |x|/16.
    assert np.all(err[unclipped] <= np.abs(ALL_INT16[unclipped]) / 32 + 8)
    assert err.max() <= 644  # clipping at the top of the range (±32124)


def test_alaw_round_trip_error_bounds() -> None:
    err = np.abs(alaw_decode(alaw_encode(ALL_INT16)).astype(np.int32) - ALL_INT16)
    assert np.all(err <= np.abs(ALL_INT16.astype(np.int32)) / 32 + 16)
    assert err.max() <= 512


@pytest.mark.parametrize("name", CODECS)
def test_speech_like_signal_snr(name: str) -> None:
    """G.711 keeps ~38 dB SNR over a wide range of levels: the point of companding."""
    encode, decode = CODECS[name]
    t = np.arange(8000) / 8000
    for amplitude in (300, 3000, 30000):
        x = np.round(amplitude * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
        noise = decode(encode(x)).astype(np.float64) - x
        snr = 10 * np.log10(np.mean(x.astype(np.float64) ** 2) / np.mean(noise**2))
        assert snr > 30, (amplitude, snr)


@pytest.mark.parametrize("name", CODECS)
def test_decode_matches_libsndfile_for_every_code(name: str) -> None:
    reference, _ = sf.read(
        io.BytesIO(ALL_CODES),
        format="RAW",
        subtype=name,
        samplerate=8000,
        channels=1,
        dtype="int16",
    )
    assert np.array_equal(CODECS[name][1](ALL_CODES), reference)


@pytest.mark.parametrize("name", CODECS)
def test_encode_matches_libsndfile_wav(name: str) -> None:
    """libsndfile agrees except at exact negative decision boundaries (rounding convention)."""
    encode, decode = CODECS[name]
    buf = io.BytesIO()
    sf.write(buf, ALL_INT16, 8000, subtype=name, format="WAV")
    theirs = buf.getvalue()[-len(ALL_INT16) :]
    ours = encode(ALL_INT16)
    differ = np.frombuffer(ours, np.uint8) != np.frombuffer(theirs, np.uint8)
    assert differ.sum() <= 127  # one value per negative quantiser boundary
    assert np.all(ALL_INT16[differ] < 0)
    levels = np.unique(decode(ALL_CODES))
    step = np.abs(
        np.searchsorted(levels, decode(ours)[differ])
        - np.searchsorted(levels, decode(theirs)[differ])
    )
    assert np.all(step == 1)


def test_shapes_and_types() -> None:
    assert ulaw_encode(np.zeros(0, np.int16)) == b""
    assert ulaw_decode(b"").dtype == np.int16
    frame = np.zeros(160, np.int16)
    assert len(alaw_encode(frame)) == 160
    assert alaw_decode(alaw_encode(frame)).shape == (160,)
    with pytest.raises(TypeError):
        ulaw_encode(np.zeros(160, np.float32))
