"""Read any audio file into telephone band; write 8 kHz WAVs for fixtures and peers.

Fixtures, recordings and carrier test files arrive in every shape (16/24/32-bit,
float, μ-law/A-law, 44.1 kHz stereo…).  Everything inside voicebot is 8 kHz
int16 mono, so ``read_audio`` converts once at the edge and turns every
libsndfile failure into one ``AudioFileError`` with a message a user can act on.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import numpy as np
import soundfile as sf

from voicebot.audio.resample import resample
from voicebot.core.frames import SAMPLE_RATE

Encoding = Literal["pcm16", "ulaw", "alaw"]
_SUBTYPES: dict[str, str] = {"pcm16": "PCM_16", "ulaw": "ULAW", "alaw": "ALAW"}


class AudioFileError(ValueError):
    """An audio file is missing, empty, not audio, or in a format we cannot decode."""


def _open_error(path: Path, exc: Exception) -> AudioFileError:
    """Translate libsndfile's terse errors into what the user should check."""
    detail = (getattr(exc, "error_string", "") or str(exc)).strip()
    if "not recognised" in detail.lower():
        why = "it is not an audio file (format not recognised)"
    else:
        # libsndfile reports unknown WAV codecs (MP3-in-WAV, WMA…) as a bad 'fmt ' chunk.
        why = "unsupported or malformed audio format"
    return AudioFileError(f"cannot read audio file {path}: {why} [libsndfile: {detail}]")


def _check_path(path: Path) -> None:
    if not path.exists():
        raise AudioFileError(f"audio file not found: {path}")
    if path.is_dir():
        raise AudioFileError(f"expected an audio file but {path} is a directory")
    if path.stat().st_size == 0:
        raise AudioFileError(f"audio file is empty (0 bytes): {path}")


def _to_int16(mono: np.ndarray) -> np.ndarray:
    """float [-1, 1) → int16 with rounding and clipping (float WAVs may exceed 1.0)."""
    return np.clip(np.round(mono * 32768.0), -32768, 32767).astype(np.int16)


def read_audio(path: str | os.PathLike[str]) -> np.ndarray:
    """Decode ``path`` to 8 kHz int16 mono: mix channels down, resample, convert.

    Decoding goes through float32 so every source format takes one path;
    16-bit sources survive the round trip bit-exactly.
    """
    p = Path(path)
    _check_path(p)
    try:
        data, rate = sf.read(p, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise _open_error(p, exc) from exc
    if data.shape[0] == 0:
        raise AudioFileError(f"audio file has no samples (zero frames): {p}")
    mono = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
    mono = resample(np.ascontiguousarray(mono), int(rate), SAMPLE_RATE)
    return _to_int16(mono)


def write_wav(
    path: str | os.PathLike[str],
    pcm: np.ndarray,
    rate: int = SAMPLE_RATE,
    encoding: Encoding = "pcm16",
) -> Path:
    """Write mono ``pcm`` as WAV: 16-bit PCM, or G.711 μ-law/A-law for SIP peers (SIPp:
    fmt 7 + fact + data, the layout its rtp_stream reads).  Returns ``path``.

    The samples are written at ``rate`` as given (no resampling): the caller
    decides what rate its audio is in.
    """
    if encoding not in _SUBTYPES:
        raise ValueError(f"unknown WAV encoding {encoding!r}; use one of {sorted(_SUBTYPES)}")
    arr = np.asarray(pcm)
    if arr.ndim != 1:
        raise ValueError(f"write_wav expects mono 1-D audio, got shape {arr.shape}")
    if arr.dtype != np.int16:
        if not np.issubdtype(arr.dtype, np.floating):
            raise TypeError(f"write_wav needs int16 or float audio, got {arr.dtype}")
        arr = _to_int16(arr.astype(np.float32))
    sf.write(Path(path), arr, rate, subtype=_SUBTYPES[encoding], format="WAV")
    return Path(path)
