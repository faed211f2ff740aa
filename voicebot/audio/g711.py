"""G.711 μ-law and A-law companding with numpy lookup tables.

Why hand-written: the standard library's ``audioop`` is deprecated and removed
in Python 3.13, and its drop-in ``audioop-lts`` only installs on 3.13+, while
voicebot runs on 3.11.  G.711 is a fixed 256-entry mapping, so two small
tables make encoding and decoding a single numpy indexing operation — fast
enough for hundreds of 20 ms RTP frames per second without any C extension.

Encoding follows the ITU-T G.191 reference (``g711.c``): μ-law works on the
top 14 bits, A-law on the top 13; negative samples are ones'-complemented
before truncation so the quantiser is symmetric about zero.  The tables cover
every int16 value, so results are bit-exact with that reference.
"""

from __future__ import annotations

import numpy as np

_ALL_INT16 = np.arange(-32768, 32768, dtype=np.int32)


def _ulaw_decode_table() -> np.ndarray:
    """Code → linear, per ITU-T G.711 (0xFF and 0x7F are ±0, 0x00 is -32124)."""
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    t = (((u & 0x0F) << 3) + 0x84) << ((u & 0x70) >> 4)
    return np.where(u & 0x80, 0x84 - t, t - 0x84).astype(np.int16)


def _ulaw_encode_table() -> np.ndarray:
    """int16 (offset by 32768) → μ-law code, G.191 style (14-bit magnitude)."""
    x = _ALL_INT16
    mag = np.where(x < 0, ~x, x) >> 2
    mag = np.minimum(mag + 0x21, 0x1FFF)
    seg = np.searchsorted(np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF]), mag)
    code = (seg << 4) | ((mag >> (seg + 1)) & 0x0F)
    mask = np.where(x < 0, 0x7F, 0xFF)
    return ((code ^ mask) & 0xFF).astype(np.uint8)


def _alaw_decode_table() -> np.ndarray:
    """Code → linear, per ITU-T G.711 (0xD5 is +8, 0x55 is -8, 0xAA is 32256)."""
    a = np.arange(256, dtype=np.int32) ^ 0x55
    seg = (a & 0x70) >> 4
    t = ((a & 0x0F) << 4) + np.where(seg == 0, 8, 0x108)
    t = np.where(seg > 1, t << np.maximum(seg - 1, 0), t)
    return np.where(a & 0x80, t, -t).astype(np.int16)


def _alaw_encode_table() -> np.ndarray:
    """int16 (offset by 32768) → A-law code, G.191 style (13-bit magnitude)."""
    x = _ALL_INT16
    mag = np.where(x < 0, ~x, x) >> 3
    seg = np.searchsorted(np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF]), mag)
    quant = np.where(seg < 2, mag >> 1, mag >> np.maximum(seg, 1)) & 0x0F
    code = np.where(seg >= 8, 0x7F, (seg << 4) | quant)
    mask = np.where(x < 0, 0x55, 0xD5)
    return ((code ^ mask) & 0xFF).astype(np.uint8)


_ULAW_DEC = _ulaw_decode_table()
_ULAW_ENC = _ulaw_encode_table()
_ALAW_DEC = _alaw_decode_table()
_ALAW_ENC = _alaw_encode_table()


def _as_int16(pcm: np.ndarray) -> np.ndarray:
    """Accept only int16: silently truncating floats would corrupt audio."""
    arr = np.asarray(pcm)
    if arr.dtype != np.int16:
        raise TypeError(f"G.711 encoding needs int16 PCM, got {arr.dtype}")
    return arr.reshape(-1)


def ulaw_encode(pcm: np.ndarray) -> bytes:
    """int16 PCM → μ-law bytes (one byte per sample)."""
    return _ULAW_ENC[_as_int16(pcm).astype(np.int32) + 32768].tobytes()


def ulaw_decode(data: bytes) -> np.ndarray:
    """μ-law bytes → int16 PCM."""
    return _ULAW_DEC[np.frombuffer(data, dtype=np.uint8)]


def alaw_encode(pcm: np.ndarray) -> bytes:
    """int16 PCM → A-law bytes (one byte per sample)."""
    return _ALAW_ENC[_as_int16(pcm).astype(np.int32) + 32768].tobytes()


def alaw_decode(data: bytes) -> np.ndarray:
    """A-law bytes → int16 PCM."""
    return _ALAW_DEC[np.frombuffer(data, dtype=np.uint8)]
