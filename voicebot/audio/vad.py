"""Streaming Silero voice-activity detection for 8 kHz telephone audio.

Why Silero: Whisper invents words in silence, so only speech may
reach STT, and energy gates fail on line noise.  The Silero v6 ONNX model ships
inside faster-whisper, so it is already installed and works offline.

Model facts (read from the ONNX graph and checked by running it): inputs are
``input`` of shape ``(seq_len, 576)`` float32 plus LSTM state ``h`` and ``c``
of shape ``(1, 1, 128)``; there is no sample-rate input — this export only
knows 16 kHz.  Each row is a 512-sample (32 ms) window preceded by the last 64
samples of the previous window; ``seq_len`` is *time*, so several windows can
go in one call with the state carried through (bit-identical to one call per
window, and about half the CPU).

So 8 kHz audio is upsampled 2x with a small streaming half-band FIR (2 ms of
delay).  soxr's streaming resampler was not used: it releases output in
~100 ms blocks, which would add that much to every end-of-turn decision.
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path

import numpy as np

from voicebot.core.frames import SAMPLE_RATE

MODEL_RATE = 16000
MODEL_WINDOW = 512  # samples per window at 16 kHz (32 ms)
MODEL_CONTEXT = 64  # samples of the previous window prepended to each row
WINDOW_SAMPLES = MODEL_WINDOW * SAMPLE_RATE // MODEL_RATE  # 256 at 8 kHz
WINDOW_S = WINDOW_SAMPLES / SAMPLE_RATE  # 0.032
_HALF_TAPS = 16  # half-band FIR: 32 taps for the interpolated phase
LATENCY_SAMPLES = _HALF_TAPS  # 8 kHz samples of upsampler delay (2 ms)
# Quiet this long (every window under QUIET_PROB) and the model's memory is cleared.
QUIET_PROB = 0.1
QUIET_RESET_S = 1.0
QUIET_RESET_WINDOWS = round(QUIET_RESET_S / WINDOW_S)


class VadModelError(RuntimeError):
    """The Silero model (shipped inside faster-whisper) is missing or unusable."""


def default_model_path() -> Path:
    """Locate ``silero_vad_v6.onnx`` inside the installed faster-whisper package."""
    try:
        path = resources.files("faster_whisper") / "assets" / "silero_vad_v6.onnx"
    except ModuleNotFoundError as exc:
        raise VadModelError(
            "the Silero VAD model ships inside faster-whisper, which is not installed "
            "(pip install 'faster-whisper>=1.2,<1.3')"
        ) from exc
    if not path.is_file():
        raise VadModelError(
            f"Silero VAD model not found at {path}: this faster-whisper version does not "
            "ship silero_vad_v6.onnx; install faster-whisper 1.2.x or pass model_path"
        )
    return Path(str(path))


def _halfband_kernel(half: int = _HALF_TAPS, beta: float = 8.0) -> np.ndarray:
    """Kaiser-windowed sinc that interpolates the sample halfway between two inputs."""
    offsets = np.arange(-half + 1, half + 1) - 0.5
    kernel = np.sinc(offsets) * np.kaiser(2 * half, beta)
    return (kernel / kernel.sum()).astype(np.float32)


class _Upsampler2x:
    """8 kHz → 16 kHz, streaming, output length exactly 2x input (after a fixed delay)."""

    def __init__(self) -> None:
        self._kernel = _halfband_kernel()[::-1].copy()
        self._history = np.zeros(2 * _HALF_TAPS - 1, dtype=np.float32)

    def process(self, x: np.ndarray) -> np.ndarray:
        buf = np.concatenate([self._history, x])
        odd = np.convolve(buf, self._kernel, mode="valid")
        even = buf[_HALF_TAPS - 1 : _HALF_TAPS - 1 + len(x)]
        self._history = buf[len(buf) - len(self._history) :]
        out = np.empty(2 * len(x), dtype=np.float32)
        out[0::2] = even
        out[1::2] = odd
        return out

    def reset(self) -> None:
        self._history[:] = 0.0


class SileroVad:
    """One shared ONNX session for every call; per-call state lives in ``VadStream``.

    ``InferenceSession.run`` is thread-safe, so streams on several calls (or
    threads) may share it.  One intra-op thread: per-window work is tiny and
    extra threads only add contention on the 2-core target machines.
    """

    def __init__(self, model_path: str | Path | None = None, threads: int = 1) -> None:
        import onnxruntime as ort

        path = Path(model_path) if model_path else default_model_path()
        if not path.is_file():
            raise VadModelError(f"Silero VAD model not found: {path}")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 4
        try:
            self.session = ort.InferenceSession(
                str(path), sess_options=opts, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise VadModelError(f"cannot load Silero VAD model {path}: {exc}") from exc
        self._check_inputs(path)

    def _check_inputs(self, path: Path) -> None:
        """Fail at start-up, not mid-call, if a different Silero export is supplied."""
        shapes = {i.name: i.shape for i in self.session.get_inputs()}
        width = shapes.get("input", [None])[-1]
        if width != MODEL_WINDOW + MODEL_CONTEXT or not shapes.keys() >= {"h", "c"}:
            raise VadModelError(
                f"{path} is not the expected Silero v6 16 kHz export "
                f"(input (seq, {MODEL_WINDOW + MODEL_CONTEXT}), h, c); got {shapes}"
            )

    def stream(self) -> VadStream:
        """A fresh stream (own LSTM state and buffers) for one call."""
        return VadStream(self)

    def run(
        self, rows: np.ndarray, h: np.ndarray, c: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Probabilities for ``rows`` (seq, 576) and the updated LSTM state."""
        probs, h, c = self.session.run(None, {"input": rows, "h": h, "c": c})
        return np.asarray(probs, dtype=np.float32).reshape(-1), h, c


@functools.cache
def shared_vad() -> SileroVad:
    """The process-wide model: load once, share across calls."""
    return SileroVad()


class VadStream:
    """Speech probability per 32 ms window of one call's audio, keeping model state.

    Window ``k`` (0-based) covers 8 kHz samples
    ``[k*256 - LATENCY_SAMPLES, (k+1)*256 - LATENCY_SAMPLES)`` of the pushed
    audio and is returned by the push that brings the total to ``(k+1)*256``.
    """

    window_samples = WINDOW_SAMPLES
    latency_samples = LATENCY_SAMPLES

    def __init__(self, vad: SileroVad) -> None:
        self._vad = vad
        self._up = _Upsampler2x()
        self.reset()

    def reset(self) -> None:
        """Forget everything: new LSTM state, no buffered audio."""
        self._up.reset()
        self._pending = np.zeros(0, dtype=np.float32)
        self._context = np.zeros(MODEL_CONTEXT, dtype=np.float32)
        self._clear_state()
        self.windows = 0

    def push(self, pcm: np.ndarray) -> list[float]:
        """Add audio (int16, or float32 in [-1, 1]); return probabilities of completed windows."""
        x = _as_float(pcm)
        if x.size == 0:
            return []
        self._pending = np.concatenate([self._pending, self._up.process(x)])
        n = len(self._pending) // MODEL_WINDOW
        if n == 0:
            return []
        frames = self._pending[: n * MODEL_WINDOW].reshape(n, MODEL_WINDOW)
        self._pending = self._pending[n * MODEL_WINDOW :]
        contexts = np.vstack([self._context[None, :], frames[:-1, -MODEL_CONTEXT:]])
        self._context = frames[-1, -MODEL_CONTEXT:].copy()
        rows = np.ascontiguousarray(np.hstack([contexts, frames]))
        self.windows += n
        return self._infer(rows)

    def _infer(self, rows: np.ndarray) -> list[float]:
        """Run the model over ``rows``, clearing its memory after a long quiet stretch.

        Why: after seconds of silence the LSTM state depresses the next onset's
        score — the same "Hello." peaked at 0.35 after two earlier turns and 0.62
        from a fresh state (fixtures through 8 kHz), and slipped under the speech
        threshold on real calls.  Zeroing the state once the line has been quiet
        for ``QUIET_RESET_S`` gives every turn a fresh model, as a new stream
        would.  Windows run batched; a reset inside a batch re-runs the rest from
        the zero state, so results do not depend on how the audio was chunked.
        """
        out: list[float] = []
        while len(rows):
            probs, h, c = self._vad.run(rows, self._h, self._c)
            done = len(rows)
            for i, p in enumerate(probs):
                out.append(float(p))
                self._quiet = self._quiet + 1 if p < QUIET_PROB else 0
                if self._quiet >= QUIET_RESET_WINDOWS:
                    done = i + 1
                    break
            rows = rows[done:]
            if self._quiet >= QUIET_RESET_WINDOWS:
                self._clear_state()
            else:
                self._h, self._c = h, c
        return out

    def _clear_state(self) -> None:
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._quiet = 0


def _as_float(pcm: np.ndarray) -> np.ndarray:
    arr = np.asarray(pcm).reshape(-1)
    if arr.dtype == np.int16:
        return arr.astype(np.float32) / 32768.0
    if np.issubdtype(arr.dtype, np.floating):
        return arr.astype(np.float32, copy=False)
    raise TypeError(f"VAD needs int16 or float audio, got {arr.dtype}")
