"""The pyttsx3 engine: espeak-ng through pyttsx3, one process-wide worker thread.

pyttsx3 2.99 has sharp edges on Linux, each handled here:

* it is not thread-safe and espeak-ng is one global C library per process, so a
  single module-wide worker thread owns the only engine; every ``EspeakEngine``
  queues its work there (and sets its own voice, rate and pitch every time);
* only the last queued file is written per ``runAndWait`` → one
  ``save_to_file`` + ``runAndWait`` per text, each to a new unique path;
* it keeps the last text and may re-synthesise it → we require a *fresh*
  non-empty file at the new path plus a completed ``finished-utterance`` event;
* espeak-ng synthesises on its own thread, so ``runAndWait`` can return early and
  its opening ``stop()`` can cancel the *next* text half-way (found here: 9 of 60
  back-to-back texts cut, one empty) → we wait for completion and idleness, and
  disable that cancel on our private engine (0 failures in 300);
* it prints "Audio saved to …" on stdout → silenced inside the driver module only
  (swapping ``sys.stdout`` would swallow other threads' output);
* ``say()`` needs ``aplay`` and fails silently headless → never used;
* unknown voices and variants are ignored silently → the configured voice is
  checked up front and a ``TtsError`` names the valid ones.
"""

from __future__ import annotations

import atexit
import ctypes
import logging
import shutil
import tempfile
import threading
import time
import uuid
import wave
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from voicebot.config import TtsConfig
from voicebot.speech.engine import Rendered, TtsError

log = logging.getLogger(__name__)

ESPEAK_LIBRARY = "libespeak-ng.so.1"
APT_HINT = "apt-get install espeak-ng libespeak-ng1"
WORD_GAP = 7  # espeakWORDGAP: extra pause between words, in 10 ms units
WAV_HEADER_BYTES = 44
SYNTH_TIMEOUT_S = 10.0
IDLE_TIMEOUT_S = 1.0

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class VoiceSetting:
    """What one engine sets before each of its texts (the espeak library is shared)."""

    voice_id: str
    rate_wpm: int
    pitch: int
    word_gap_ms: int


@dataclass(frozen=True, slots=True)
class VoiceInfo:
    """One espeak-ng voice as pyttsx3 reports it."""

    id: str
    name: str
    languages: tuple[str, ...]


def _load_espeak_library() -> ctypes.CDLL:
    """Fail early and clearly when the shared library pyttsx3 needs is missing."""
    try:
        return ctypes.CDLL(ESPEAK_LIBRARY)
    except OSError as exc:
        raise TtsError(f"espeak-ng is not installed ({exc}); run: {APT_HINT}") from exc


def _espeak_library() -> ctypes.CDLL:
    """The library pyttsx3 loaded (same process-wide instance), for what it does not expose."""
    from pyttsx3.drivers import _espeak

    return _espeak.dll


def _never_cancel(engine: Any) -> None:
    """Stop pyttsx3 from cancelling the text it is about to synthesise.

    Every ``runAndWait`` starts with the driver's ``stop()``, which calls
    ``espeak_Cancel`` whenever espeak still reports "playing" (it does for a
    while after the previous text ended); the cancel then lands on the *new*
    text and cuts it short — measured: 9 of 60 back-to-back texts, one an empty
    file.  ``stop()`` only matters for interrupting ``say()`` playback, which we
    never use, and we wait for each text to finish, so on our private engine it
    becomes a no-op.
    """
    driver = engine.proxy._driver
    driver._stopping = False
    driver.stop = lambda: None


def _silent_print(*args: object, **_kwargs: object) -> None:
    log.debug("pyttsx3: %s", " ".join(str(a) for a in args))


class _EspeakWorker:
    """The one thread that owns the pyttsx3 engine; everything else queues on it."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tts")
        self._engine: Any = None
        self._finished: list[bool] = []
        self._done = threading.Event()
        self._voices: list[VoiceInfo] | None = None
        self._variants: list[str] | None = None
        self.default_voice = ""  # espeak-ng's own default, read when the engine starts
        self._folder = Path(tempfile.mkdtemp(prefix="voicebot-tts-"))
        atexit.register(shutil.rmtree, self._folder, ignore_errors=True)

    def submit(self, fn: Callable[..., T], *args: object) -> Future[T]:
        return self._pool.submit(fn, *args)

    # The methods below run on the worker thread only.

    def engine(self) -> Any:
        """Create the engine on first use (on this thread), mapping failures to TtsError."""
        if self._engine is None:
            _load_espeak_library()
            try:
                import pyttsx3
                import pyttsx3.drivers.espeak as espeak_driver

                espeak_driver.print = _silent_print  # type: ignore[attr-defined]
                engine = pyttsx3.init("espeak")
            except Exception as exc:
                raise TtsError(
                    f"cannot start espeak-ng through pyttsx3 ({exc}); run: {APT_HINT}"
                ) from exc
            engine.connect("finished-utterance", self._on_finished)
            _never_cancel(engine)
            self.default_voice = str(engine.getProperty("voice") or "")
            self._engine = engine
        return self._engine

    def _on_finished(self, name: object = None, completed: bool = False) -> None:
        # Called from espeak-ng's own thread in retrieval mode.
        self._finished.append(bool(completed))
        if completed:
            self._done.set()

    @staticmethod
    def _wait_idle(timeout_s: float = IDLE_TIMEOUT_S) -> None:
        """Wait until espeak-ng's own synthesis thread is idle before the next text."""
        from pyttsx3.drivers import _espeak

        deadline = time.monotonic() + timeout_s
        while _espeak.IsPlaying() and time.monotonic() < deadline:
            time.sleep(0.001)

    def resolve(self, wanted: str | None) -> str:
        """The voice id to set before every text (the engine is shared, so never "as is")."""
        self.engine()
        base, _, variant = (wanted or "").partition("+")
        voice = resolve_voice(base, self.voices()) or self.default_voice
        if not variant:
            return voice
        if variant not in self.variants():
            raise TtsError(
                f"unknown espeak-ng variant {variant!r}; variants: {', '.join(self.variants())}"
            )
        return f"{voice}+{variant}"

    def voices(self) -> list[VoiceInfo]:
        if self._voices is None:
            self._voices = [
                VoiceInfo(str(v.id), str(v.name), tuple(str(lang) for lang in v.languages or ()))
                for v in self.engine().getProperty("voices")
            ]
        return self._voices

    def variants(self) -> list[str]:
        """espeak-ng's voice variants (``+m3``, ``+klatt4``…), from its data folder."""
        if self._variants is None:
            library = _load_espeak_library()
            library.espeak_Info.restype = ctypes.c_char_p
            data = ctypes.c_char_p()
            library.espeak_Info(ctypes.byref(data))
            folder = Path((data.value or b"").decode()) / "voices" / "!v"
            self._variants = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
        return self._variants

    def synthesize(self, text: str, voice: VoiceSetting) -> Rendered:
        """One text → int16 samples at espeak's rate, from a fresh file written for this call."""
        engine = self.engine()
        path = self._folder / f"{uuid.uuid4().hex}.wav"
        self._wait_idle()
        self._finished.clear()
        self._done.clear()
        if voice.voice_id:
            engine.setProperty("voice", voice.voice_id)
        engine.setProperty("rate", voice.rate_wpm)
        engine.setProperty("pitch", voice.pitch)
        _espeak_library().espeak_SetParameter(WORD_GAP, voice.word_gap_ms // 10, 0)
        engine.save_to_file(text, str(path))
        engine.runAndWait()
        # runAndWait can return while espeak-ng's thread is still synthesising.
        self._done.wait(SYNTH_TIMEOUT_S)
        self._wait_idle()
        try:
            return self._read_fresh(path, text)
        finally:
            path.unlink(missing_ok=True)

    def _read_fresh(self, path: Path, text: str) -> Rendered:
        """Refuse a missing, empty or stale result instead of playing the wrong audio."""
        if not self._done.is_set() or False in self._finished:
            raise TtsError(f"espeak-ng did not finish synthesising {text[:40]!r}")
        if not path.is_file() or path.stat().st_size <= WAV_HEADER_BYTES:
            raise TtsError(f"espeak-ng wrote no audio for {text[:40]!r}")
        with wave.open(str(path), "rb") as wav:
            rate, width = wav.getframerate(), wav.getsampwidth()
            frames = wav.readframes(wav.getnframes())
        if width != 2 or not frames:
            raise TtsError(f"unexpected espeak-ng output ({width * 8}-bit, {len(frames)} bytes)")
        return Rendered(np.frombuffer(frames, dtype="<i2").astype(np.int16), rate)


_worker_lock = threading.Lock()
_worker: _EspeakWorker | None = None


def _shared_worker() -> _EspeakWorker:
    """espeak-ng is a process-wide C library: one worker for every engine."""
    global _worker
    with _worker_lock:
        if _worker is None:
            _worker = _EspeakWorker()
        return _worker


def resolve_voice(wanted: str | None, voices: Iterable[VoiceInfo]) -> str | None:
    """Match a configured voice by id, name, language or id tail, case-insensitively."""
    if wanted is None or not wanted.strip():
        return None
    key = wanted.strip().lower()
    voices = list(voices)
    for v in voices:
        keys = {v.id.lower(), v.name.lower(), v.id.lower().rsplit("/", 1)[-1]}
        keys.update(lang.lower() for lang in v.languages)
        if key in keys:
            return v.id
    english = ", ".join(sorted(v.id for v in voices if v.id.split("/")[-1].startswith("en")))
    raise TtsError(f"unknown TTS voice {wanted!r}; English voices: {english}")


class EspeakEngine:
    """``[tts] engine = "pyttsx3"``: the voice, rate and pitch of one configuration."""

    name = "pyttsx3"
    slow = False

    def __init__(self, config: TtsConfig) -> None:
        self._worker = _shared_worker()
        voice_id = self._worker.submit(self._worker.resolve, config.voice).result()
        self._voice = VoiceSetting(voice_id, config.rate_wpm, config.pitch, config.word_gap_ms)

    @property
    def voice_id(self) -> str:
        return self._voice.voice_id

    def submit(self, text: str) -> Future[Rendered]:
        return self._worker.submit(self._worker.synthesize, text, self._voice)

    def close(self) -> None:
        """The shared worker thread stays for other engines in this process."""
