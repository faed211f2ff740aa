"""Text to speech: a local engine's voice as 8 kHz int16 telephone audio.

``[tts] engine`` picks the voice: "pyttsx3" (espeak-ng, ``espeak.py``) or
"piper" (a natural voice, ``piper_voice.py``, imported only when chosen).
What they share lives here: numbers, amounts, times and card digits are turned
into the words a person would say (``spoken.for_speech``) while the call record
keeps the written text; replies are split into sentences so the first can play
while the rest is made; an LRU cache makes fixed prompts (disclosure, apologies)
free after the first time (``preload``, ``warm``); every engine's output is
resampled to 8 kHz.

A slow engine (Piper: 0.1-0.6 s per new sentence on this machine) also splits a
sentence it has not said before into phrases (``phrases``): the words before the
first number ("Your checking account balance is") repeat from call to call and
come from the cache at once, and the rest is rendered while they play.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable
from typing import NamedTuple

import numpy as np

from voicebot.audio.resample import resample
from voicebot.config import TtsConfig
from voicebot.core.frames import SAMPLE_RATE
from voicebot.speech.engine import TtsEngine, TtsError
from voicebot.speech.rendered_cache import RenderedCache, keepable
from voicebot.speech.spoken import for_speech

__all__ = ["ENGINES", "Synthesizer", "TtsError", "is_speakable", "open_engine", "split_sentences"]

log = logging.getLogger(__name__)

ENGINES = ("pyttsx3", "piper")
EMPTY = np.zeros(0, dtype=np.int16)
EMPTY.flags.writeable = False


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


_NUMBER_START = re.compile(r"(?<![\w$])[$£€]?\d")
_CLAUSE_END = re.compile(r"[,;:](?=\s)")
MIN_PHRASE_WORDS = 3  # a shorter opening plays too briefly to hide the rest's synthesis
TRIM_TAIL_S = 0.06  # silence kept after a phrase that the rest of its sentence follows
QUIET = 300  # int16 level under which an engine's trailing samples count as silence


def phrases(sentence: str) -> list[str]:
    """Split before the first number, else after the first clause, when enough words lead.

    The opening is the part of a slotted reply that repeats ("Your card ending
    in …"); a phrase too short to play while the rest renders is not split off.
    """
    match = _NUMBER_START.search(sentence) or _CLAUSE_END.search(sentence)
    if match is None:
        return [sentence]
    cut = match.start() if match.re is _NUMBER_START else match.end()
    head, rest = sentence[:cut].strip(), sentence[cut:].strip()
    if len(head.split()) < MIN_PHRASE_WORDS or not is_speakable(rest):
        return [sentence]
    return [head.rstrip(",;:"), rest]


def trim_tail(pcm: np.ndarray, keep_s: float = TRIM_TAIL_S) -> np.ndarray:
    """Drop an engine's end-of-utterance silence beyond ``keep_s`` (phrases join up)."""
    loud = np.flatnonzero(np.abs(pcm.astype(np.int32)) > QUIET)
    if not len(loud):
        return pcm
    return pcm[: min(len(pcm), int(loud[-1]) + 1 + int(keep_s * SAMPLE_RATE))]


def is_speakable(text: str) -> bool:
    """Empty, blank or punctuation-only text makes pyttsx3 raise or write nothing."""
    return any(ch.isalnum() for ch in text)


def open_engine(config: TtsConfig) -> TtsEngine:
    """The configured engine; piper (GPL, ~1 s to load) is imported only when chosen."""
    if config.engine == "pyttsx3":
        from voicebot.speech.espeak import EspeakEngine

        return EspeakEngine(config)
    if config.engine == "piper":
        from voicebot.speech.piper_voice import PiperEngine

        return PiperEngine(config)
    raise TtsError(f"unknown [tts] engine {config.engine!r}; choose one of: {', '.join(ENGINES)}")


# --------------------------------------------------------------- synthesizer


class _Piece(NamedTuple):
    text: str
    joined: bool  # the rest of its sentence follows at once: no end-of-sentence pause


class Synthesizer:
    """Async, cached speech synthesis returning telephone-band audio (8 kHz int16)."""

    def __init__(self, config: TtsConfig, engine: TtsEngine | None = None) -> None:
        self.config = config
        self.engine = engine or open_engine(config)
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_lock = threading.Lock()
        self.engine_calls = 0  # how many sentences went to the engine (cache misses)
        keep = config.disk_cache and config.cache_size > 0
        self._disk = RenderedCache.for_voice(config, self.engine.voice_id) if keep else None

    @property
    def voice_id(self) -> str:
        return self.engine.voice_id

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
        upcoming = iter(self._pieces(text))
        nxt = next(upcoming, None)
        pending = self._render(nxt)
        try:
            while pending is not None:
                pcm = await pending
                nxt = next(upcoming, None)
                pending = self._render(nxt)
                yield pcm
        finally:
            if pending is not None:
                pending.cancel()

    async def warm(self, texts: Iterable[str]) -> int:
        """Render texts into the cache one sentence at a time, in the background.

        Unlike ``preload`` this is meant to run as a task while calls are
        served: each sentence is one engine job, so a call's sentence waits
        behind at most one of these.  Sentences kept on disk load without the
        engine.  Returns how many sentences the engine rendered.
        """
        made = 0
        try:
            for text in texts:
                for sentence in split_sentences(text):
                    if is_speakable(sentence) and self._cached(sentence) is None:
                        before = self.engine_calls
                        await self._sentence(sentence)  # from disk when kept there
                        made += self.engine_calls - before
        except TtsError as exc:  # calls will say so themselves; warming just stops
            log.warning("event=tts_warm_failed error=%r", str(exc))
        return made

    def _pieces(self, text: str) -> list[_Piece]:
        """The sentences to play; a slow engine's new ones split into phrases."""
        pieces = []
        for sentence in split_sentences(text):
            if not is_speakable(sentence):
                continue
            parts = [sentence]
            if self.engine.slow and not self._known(sentence):
                parts = phrases(sentence)
            pieces += [_Piece(p, joined=i < len(parts) - 1) for i, p in enumerate(parts)]
        return pieces

    def _render(self, piece: _Piece | None) -> asyncio.Future[np.ndarray] | None:
        return None if piece is None else asyncio.ensure_future(self._piece(piece))

    async def _piece(self, piece: _Piece) -> np.ndarray:
        pcm = await self._sentence(piece.text)
        return trim_tail(pcm) if piece.joined else pcm

    async def preload(self, texts: Iterable[str]) -> None:
        """Synthesise fixed prompts now so calls get them from the cache."""
        for text in texts:
            await self.synthesize(text)

    async def close(self) -> None:
        """Drop the cache and release the engine."""
        with self._cache_lock:
            self._cache.clear()
        self.engine.close()

    # ----------------------------------------------------------------- helpers

    async def _sentence(self, sentence: str) -> np.ndarray:
        if not is_speakable(sentence):
            return EMPTY
        if (hit := self._cached(sentence)) is not None:
            return hit
        spoken = for_speech(sentence)
        disk = self._disk if self._disk is not None and keepable(sentence) else None
        if disk is not None and (kept := disk.get(spoken)) is not None:
            return self._store(sentence, kept)
        self.engine_calls += 1
        rendered = await asyncio.wrap_future(self.engine.submit(spoken))
        pcm = resample(rendered.pcm, rendered.sample_rate, SAMPLE_RATE)
        if disk is not None:
            disk.put(spoken, pcm)
        return self._store(sentence, pcm)

    def _known(self, sentence: str) -> bool:
        """Rendered before: in memory, or kept on disk."""
        if self._cached(sentence) is not None:
            return True
        disk = self._disk
        return disk is not None and keepable(sentence) and disk.has(for_speech(sentence))

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
