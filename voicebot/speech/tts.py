"""Text to speech: pyttsx3 driving espeak-ng, delivered as 8 kHz int16 telephone audio.

pyttsx3 2.99 has sharp edges on Linux, each handled here:

* it is not thread-safe and espeak-ng is one global C library per process, so a
  single module-wide worker thread owns the only engine; every ``Synthesizer``
  queues its work there;
* only the last queued file is written per ``runAndWait`` → one
  ``save_to_file`` + ``runAndWait`` per text, each to a new unique path;
* it keeps the last text and may re-synthesise it → we require a *fresh*
  non-empty file at the new path plus a completed ``finished-utterance`` event;
* espeak-ng synthesises on its own thread, so ``runAndWait`` can return early and
  its opening ``stop()`` can cancel the *next* text half-way (found here: 9 of 60
  back-to-back texts cut, one empty) → we wait for completion and idleness, and
  disable that cancel on our private engine (0 failures in 300);
* empty text raises → blank / punctuation-only text returns empty audio without
  touching the engine;
* it prints "Audio saved to …" on stdout → silenced inside the driver module only
  (swapping ``sys.stdout`` would swallow other threads' output);
* ``say()`` needs ``aplay`` and fails silently headless → never used;
* unknown voices are ignored silently → the configured voice is checked against
  the engine's voice list up front and a ``TtsError`` names the valid ones.

Replies are split into sentences so the first can play while the rest is made,
and an LRU cache makes fixed prompts (disclosure, apologies) free after the first
time (``preload``).
"""

from __future__ import annotations

import asyncio
import atexit
import ctypes
import logging
import re
import shutil
import tempfile
import threading
import time
import uuid
import wave
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from voicebot.audio.resample import resample
from voicebot.config import TtsConfig
from voicebot.core.frames import SAMPLE_RATE

log = logging.getLogger(__name__)

ESPEAK_LIBRARY = "libespeak-ng.so.1"
APT_HINT = "apt-get install espeak-ng libespeak-ng1"
WAV_HEADER_BYTES = 44
SYNTH_TIMEOUT_S = 10.0
IDLE_TIMEOUT_S = 1.0
EMPTY = np.zeros(0, dtype=np.int16)
EMPTY.flags.writeable = False

T = TypeVar("T")


class TtsError(RuntimeError):
    """Speech synthesis is unavailable or failed; the message says what to do."""


# --------------------------------------------------------------------- text


_ABBREVIATIONS = ("mr", "mrs", "ms", "dr", "st", "no", "vs", "etc", "e.g", "i.e", "approx")
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])")


def split_sentences(text: str) -> list[str]:
    """Split a reply at sentence ends ("Mr. Smith" and "e.g. this" stay whole)."""
    clean = " ".join(text.split())
    sentences: list[str] = []
    start = 0
    for match in _SENTENCE_END.finditer(clean):
        head = clean[start : match.start()]
        last_word = head.rsplit(" ", 1)[-1].rstrip(".!?").lower()
        if last_word in _ABBREVIATIONS and head.endswith("."):
            continue
        sentences.append(head.strip())
        start = match.end()
    sentences.append(clean[start:].strip())
    return [s for s in sentences if s]


def is_speakable(text: str) -> bool:
    """Empty, blank or punctuation-only text makes pyttsx3 raise or write nothing."""
    return any(ch.isalnum() for ch in text)


# ------------------------------------------------------------------- engine


@dataclass(frozen=True, slots=True)
class VoiceInfo:
    """One espeak-ng voice as pyttsx3 reports it."""

    id: str
    name: str
    languages: tuple[str, ...]


def _load_espeak_library() -> None:
    """Fail early and clearly when the shared library pyttsx3 needs is missing."""
    try:
        ctypes.CDLL(ESPEAK_LIBRARY)
    except OSError as exc:
        raise TtsError(f"espeak-ng is not installed ({exc}); run: {APT_HINT}") from exc


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
        return resolve_voice(wanted, self.voices()) or self.default_voice

    def voices(self) -> list[VoiceInfo]:
        if self._voices is None:
            self._voices = [
                VoiceInfo(str(v.id), str(v.name), tuple(str(lang) for lang in v.languages or ()))
                for v in self.engine().getProperty("voices")
            ]
        return self._voices

    def synthesize(self, text: str, voice_id: str, rate_wpm: int) -> np.ndarray:
        """One text → 22,050 Hz int16 samples, from a fresh file written for this call."""
        engine = self.engine()
        path = self._folder / f"{uuid.uuid4().hex}.wav"
        self._wait_idle()
        self._finished.clear()
        self._done.clear()
        if voice_id:
            engine.setProperty("voice", voice_id)
        engine.setProperty("rate", rate_wpm)
        engine.save_to_file(text, str(path))
        engine.runAndWait()
        # runAndWait can return while espeak-ng's thread is still synthesising.
        self._done.wait(SYNTH_TIMEOUT_S)
        self._wait_idle()
        try:
            return self._read_fresh(path, text)
        finally:
            path.unlink(missing_ok=True)

    def _read_fresh(self, path: Path, text: str) -> np.ndarray:
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
        pcm = np.frombuffer(frames, dtype="<i2").astype(np.int16)
        return resample(pcm, rate, SAMPLE_RATE)


_worker_lock = threading.Lock()
_worker: _EspeakWorker | None = None


def _shared_worker() -> _EspeakWorker:
    """espeak-ng is a process-wide C library: one worker for every Synthesizer."""
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


# --------------------------------------------------------------- synthesizer


class Synthesizer:
    """Async, cached speech synthesis returning telephone-band audio (8 kHz int16)."""

    def __init__(self, config: TtsConfig) -> None:
        self.config = config
        self._worker = _shared_worker()
        self._voice_id = self._call(lambda: self._worker.resolve(config.voice))
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_lock = threading.Lock()
        self.engine_calls = 0  # how many texts went to espeak-ng (cache misses)

    @property
    def voice_id(self) -> str:
        return self._voice_id

    def _call(self, fn: Callable[[], T]) -> T:
        """Run on the worker thread and wait (only at construction time)."""
        return self._worker.submit(fn).result()

    # ------------------------------------------------------------------ public

    async def synthesize(self, text: str) -> np.ndarray:
        """The whole text as one array (read-only; cached)."""
        if not is_speakable(text):
            return EMPTY
        key = " ".join(text.split())
        if (hit := self._cached(key)) is not None:
            return hit
        parts = [await self._sentence(s) for s in split_sentences(key)]
        pcm = parts[0] if len(parts) == 1 else np.concatenate(parts)
        return self._store(key, pcm)

    async def synthesize_sentences(self, text: str) -> AsyncIterator[np.ndarray]:
        """Yield one array per sentence, in order, as soon as each is ready.

        Sentence two is queued when sentence one is handed out, so it is made
        while sentence one plays; but never more than that: every call shares
        one engine, and a call's five sentences queued at once would make
        another call's first sentence wait behind all of them.  Leaving early
        (barge-in) cancels the one queued.
        """
        sentences = [s for s in split_sentences(text) if is_speakable(s)]
        upcoming = iter(sentences)
        nxt = next(upcoming, None)
        pending = asyncio.ensure_future(self._sentence(nxt)) if nxt is not None else None
        try:
            while pending is not None:
                pcm = await pending
                nxt = next(upcoming, None)
                pending = asyncio.ensure_future(self._sentence(nxt)) if nxt is not None else None
                yield pcm
        finally:
            if pending is not None:
                pending.cancel()

    async def preload(self, texts: Iterable[str]) -> None:
        """Synthesise fixed prompts now so calls get them from the cache."""
        for text in texts:
            await self.synthesize(text)

    async def close(self) -> None:
        """Drop the cache; the shared engine thread stays for other synthesizers."""
        with self._cache_lock:
            self._cache.clear()

    # ----------------------------------------------------------------- helpers

    async def _sentence(self, sentence: str) -> np.ndarray:
        if not is_speakable(sentence):
            return EMPTY
        if (hit := self._cached(sentence)) is not None:
            return hit
        self.engine_calls += 1
        future = self._worker.submit(
            self._worker.synthesize, sentence, self._voice_id, self.config.rate_wpm
        )
        pcm = await asyncio.wrap_future(future)
        return self._store(sentence, pcm)

    def _cached(self, key: str) -> np.ndarray | None:
        with self._cache_lock:
            pcm = self._cache.get(key)
            if pcm is not None:
                self._cache.move_to_end(key)
            return pcm

    def _store(self, key: str, pcm: np.ndarray) -> np.ndarray:
        """Cache read-only audio: callers share the array, so nobody may modify it."""
        pcm = np.ascontiguousarray(pcm, dtype=np.int16)
        pcm.flags.writeable = False
        if self.config.cache_size <= 0:
            return pcm
        with self._cache_lock:
            existing = self._cache.get(key)
            if existing is not None:
                return existing
            self._cache[key] = pcm
            while len(self._cache) > self.config.cache_size:
                self._cache.popitem(last=False)
        return pcm
