"""Speech to text for endpointed telephone utterances (faster-whisper, CPU, int8).

Why not just ``WhisperModel.transcribe``?  It always pads to a 30 s window, and
the encoder alone costs ~840 ms at 30 s vs ~90–110 ms at 8–10 s.
A turn is usually 1–3 s, so we compute the log-mel features ourselves, pad them
to a window that scales with the utterance (≥ ``min_window_s``, ≥ ~2× the
speech, 30 s for long speech) and call the CTranslate2 model's ``encode`` /
``generate`` directly — what whisper.cpp's ``audio_ctx`` does.

Short windows have one known failure: when the window is too tight the decoder
repeats itself.  The window rule avoids it, and a repetition guard falls back to
the standard path when it happens anyway.  A domain prompt helps on the
telephone band but can be echoed back on unintelligible audio; the echo is
stripped (and the decode retried once without the prompt).

No ``vad_filter``: the endpointer already cut the utterance, and a second VAD
pass on telephone audio clipped words ("No! That is not what I asked for!" read
as "No.").

One ``WhisperModel`` serves every call; a bounded thread pool of
``num_workers`` makes extra requests queue instead of oversubscribing the cores.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from faster_whisper import WhisperModel
from faster_whisper.tokenizer import Tokenizer
from faster_whisper.transcribe import get_suppressed_tokens

from voicebot.audio.resample import resample
from voicebot.config import SpeechConfig
from voicebot.core.frames import SAMPLE_RATE
from voicebot.speech.whisper_model import resolve_model_dir

log = logging.getLogger(__name__)

WHISPER_RATE = 16_000
FULL_WINDOW_S = 30.0
FRAMES_PER_S = 100  # Whisper's mel hop is 10 ms
# Below this RMS the "utterance" is line silence: Whisper would invent words.
SILENCE_DBFS = -55.0
MIN_AUDIO_S = 0.1
# Whisper's own thresholds for "this window has no speech".
NO_SPEECH_PROB = 0.6
NO_SPEECH_LOGPROB = -1.0
COMPRESSION_RATIO_LIMIT = 2.4
# Natural speech stays under ~6 tokens/s; the cap stops a runaway decode early.
MAX_TOKENS_PER_S = 8
EXTRA_TOKENS = 10
MAX_PROMPT_TOKENS = 223  # Whisper's max_length // 2 - 1, as faster-whisper uses
MIN_ECHO_WORDS = 4


@dataclass(frozen=True, slots=True)
class Transcript:
    """What was said, how sure Whisper was, and what it cost.

    ``elapsed_s`` includes any wait for a free worker: it is the delay the caller hears.
    """

    text: str
    avg_logprob: float
    no_speech_prob: float
    audio_s: float
    elapsed_s: float
    window_s: float  # encoder window used; 0.0 when the model was not run


@dataclass(frozen=True, slots=True)
class _Decoded:
    text: str
    tokens: int
    avg_logprob: float
    no_speech_prob: float


def window_for(audio_s: float, min_window_s: float) -> float:
    """Encoder window for an utterance: ≥ min_window_s, ≥ 2× speech, whole seconds, ≤ 30 s."""
    wanted = max(min_window_s, math.ceil(2.0 * audio_s))
    return float(min(FULL_WINDOW_S, wanted))


def is_near_silent(pcm: np.ndarray) -> bool:
    """True for digital silence or a faint line hiss: nothing worth decoding."""
    if len(pcm) < MIN_AUDIO_S * SAMPLE_RATE:
        return True
    rms = float(np.sqrt(np.mean(np.square(pcm, dtype=np.float64))))
    return rms <= 0.0 or 20.0 * math.log10(rms / 32768.0) < SILENCE_DBFS


_WORD = re.compile(r"[\w']+")


def _words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def looks_repetitive(text: str) -> bool:
    """The short-window failure: a phrase looping, or the whole output said twice."""
    words = _words(text)
    if len(text) > 40 and len(text) / len(zlib.compress(text.encode())) > COMPRESSION_RATIO_LIMIT:
        return True
    half = len(words) // 2
    if half >= 3 and len(words) % 2 == 0 and words[:half] == words[half:]:
        return True
    return _has_looping_ngram(words)


def _has_looping_ngram(words: list[str]) -> bool:
    """An n-gram repeated back to back (single words 5×, phrases 3×)."""
    for n in range(1, 5):
        needed = 5 if n == 1 else 3
        for start in range(len(words) - n * needed + 1):
            gram = words[start : start + n]
            if all(words[start + k * n : start + (k + 1) * n] == gram for k in range(needed)):
                return True
    return False


def tidy(text: str) -> str:
    """Trim stray separators and capitalise: a prompt ending in "." makes Whisper start
    in lower case, and agents read these transcripts."""
    text = text.strip().lstrip(",;:- ").rstrip(",;:- ")
    return text[:1].upper() + text[1:]


def has_stutter(text: str) -> bool:
    """A word or two-word phrase repeated back to back ("yes, yes", "my card my card")."""
    words = _words(text)
    return any(
        words[i : i + n] == words[i + n : i + 2 * n]
        for n in (1, 2)
        for i in range(len(words) - 2 * n + 1)
    )


def strip_prompt_echo(text: str, prompt: str | None) -> str:
    """Remove a run of ≥ 4 words copied verbatim from the prompt (Whisper echoing it)."""
    if not prompt or not text:
        return text
    prompt_words = _words(prompt)
    spans = [(m.start(), m.end(), m.group().lower()) for m in _WORD.finditer(text)]
    best = _longest_common_run([s[2] for s in spans], prompt_words)
    if best is None:
        return text
    first, last = best
    cut_to = spans[last + 1][0] if last + 1 < len(spans) else len(text)
    head = text[: spans[first][0]].rstrip(" ,;:-")
    tail = text[cut_to:].lstrip(" ,.;:-")
    stripped = f"{head} {tail}".strip()
    return stripped if _words(stripped) else ""


def _longest_common_run(words: list[str], prompt_words: list[str]) -> tuple[int, int] | None:
    """Indices (first, last) in ``words`` of the longest run also contiguous in the prompt."""
    best: tuple[int, int] | None = None
    best_len = MIN_ECHO_WORDS - 1
    for i in range(len(words)):
        for j in range(len(prompt_words)):
            k = 0
            while (
                i + k < len(words)
                and j + k < len(prompt_words)
                and words[i + k] == prompt_words[j + k]
            ):
                k += 1
            if k > best_len:
                best, best_len = (i, i + k - 1), k
    return best


class Transcriber:
    """One shared Whisper model; ``await transcribe(pcm)`` per endpointed utterance."""

    def __init__(self, config: SpeechConfig, prompt: str | None = None) -> None:
        self.config = config
        self.prompt = prompt.strip() if prompt and prompt.strip() else None
        self.model_dir = resolve_model_dir(config.model_dir)
        self._model = WhisperModel(
            str(self.model_dir),
            device="cpu",
            compute_type="int8",
            cpu_threads=config.cpu_threads,
            num_workers=config.num_workers,
        )
        self._tokenizer = Tokenizer(
            self._model.hf_tokenizer,
            self._model.model.is_multilingual,
            task="transcribe",
            language="en",
        )
        self._suppress = list(get_suppressed_tokens(self._tokenizer, [-1]) or [])
        self._prompt_ids = self._encode_prompt(self.prompt)
        self._pool = ThreadPoolExecutor(
            max_workers=max(1, config.num_workers), thread_name_prefix="stt"
        )
        self._warm_up()

    # ------------------------------------------------------------------ public

    async def transcribe(self, pcm: np.ndarray) -> Transcript:
        """Transcribe one endpointed 8 kHz int16 utterance (queues behind busy workers)."""
        started = time.perf_counter()
        audio_s = len(pcm) / SAMPLE_RATE
        if is_near_silent(pcm):
            return Transcript("", 0.0, 1.0, audio_s, time.perf_counter() - started, 0.0)
        loop = asyncio.get_running_loop()
        decoded, window_s = await loop.run_in_executor(self._pool, self._transcribe_sync, pcm)
        return Transcript(
            text=decoded.text,
            avg_logprob=decoded.avg_logprob,
            no_speech_prob=decoded.no_speech_prob,
            audio_s=audio_s,
            elapsed_s=time.perf_counter() - started,
            window_s=window_s,
        )

    async def transcribe_standard(self, pcm: np.ndarray) -> Transcript:
        """The stock 30 s-window ``WhisperModel.transcribe`` path (for evaluation)."""
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        audio = _to_whisper_audio(pcm)
        decoded = await loop.run_in_executor(self._pool, self._standard_sync, audio)
        elapsed = time.perf_counter() - started
        return Transcript(
            decoded.text, decoded.avg_logprob, decoded.no_speech_prob,
            len(pcm) / SAMPLE_RATE, elapsed, FULL_WINDOW_S,
        )  # fmt: skip

    @property
    def queued(self) -> int:
        """Utterances waiting for a free decoder (a metric of STT overload)."""
        return self._pool._work_queue.qsize()

    def close(self) -> None:
        """Let queued transcriptions finish, then stop the workers."""
        self._pool.shutdown(wait=True)

    # ----------------------------------------------------------------- helpers

    def _encode_prompt(self, prompt: str | None) -> list[int]:
        """Prompt tokens without special tokens (with them, Whisper echoes the prompt)."""
        if not prompt:
            return []
        ids = self._model.hf_tokenizer.encode(" " + prompt, add_special_tokens=False).ids
        return list(ids[-MAX_PROMPT_TOKENS:])

    def _decoder_prompt(self, with_prompt: bool) -> list[int]:
        """<|startofprev|> domain words, then <|startoftranscript|><|en|><|transcribe|>."""
        tok = self._tokenizer
        prefix = [tok.sot_prev, *self._prompt_ids] if with_prompt and self._prompt_ids else []
        return [*prefix, *tok.sot_sequence, tok.no_timestamps]

    def _warm_up(self) -> None:
        """Run one tiny decode so the first caller does not pay for allocations."""
        window = window_for(0.0, self.config.min_window_s)
        n_mels = self._model.feature_extractor.mel_filters.shape[0]
        features = np.zeros((n_mels, int(window * FRAMES_PER_S)), dtype=np.float32)
        encoded = self._model.encode(features)
        self._generate(encoded, self._decoder_prompt(False), max_new=2)

    def _transcribe_sync(self, pcm: np.ndarray) -> tuple[_Decoded, float]:
        """Short-window path, with fallbacks; runs on a worker thread."""
        audio = _to_whisper_audio(pcm)
        audio_s = len(audio) / WHISPER_RATE
        if audio_s > FULL_WINDOW_S:
            return self._standard_sync(audio), FULL_WINDOW_S
        window_s = window_for(audio_s, self.config.min_window_s)
        encoded = self._model.encode(self._features(audio, window_s))
        max_new = int(audio_s * MAX_TOKENS_PER_S) + EXTRA_TOKENS
        prompted = bool(self._prompt_ids)
        decoded = self._decode(encoded, max_new, with_prompt=prompted)
        if prompted and (decoded is None or not decoded.text):
            decoded = self._without_prompt(encoded, max_new, decoded)
        if decoded is None:
            log.info("event=stt_fallback audio_s=%.2f window_s=%.0f", audio_s, window_s)
            return self._standard_sync(audio), FULL_WINDOW_S
        return decoded, window_s

    def _features(self, audio: np.ndarray, window_s: float) -> np.ndarray:
        """Log-mel frames of the audio, zero-padded to the window (as faster-whisper pads)."""
        features = self._model.feature_extractor(audio)
        frames = int(window_s * FRAMES_PER_S)
        content = features[:, : min(features.shape[-1] - 1, frames)]
        padded = np.zeros((content.shape[0], frames), dtype=np.float32)
        padded[:, : content.shape[1]] = content
        return padded

    def _decode(self, encoded: object, max_new: int, *, with_prompt: bool) -> _Decoded | None:
        """Greedy/beam decode; None when the result repeats or is only a prompt echo."""
        result = self._generate(encoded, self._decoder_prompt(with_prompt), max_new)
        if _is_no_speech(result):
            return _Decoded("", result.tokens, result.avg_logprob, result.no_speech_prob)
        if result.tokens >= max_new or looks_repetitive(result.text):
            return None
        text = tidy(strip_prompt_echo(result.text, self.prompt) if with_prompt else result.text)
        if with_prompt and not text:
            return None  # a pure echo: try again without the prompt
        decoded = _Decoded(text, result.tokens, result.avg_logprob, result.no_speech_prob)
        if with_prompt and has_stutter(text):
            return self._prefer_unprompted(encoded, max_new, decoded)
        return decoded

    def _without_prompt(
        self, encoded: object, max_new: int, prompted: _Decoded | None
    ) -> _Decoded | None:
        """The prompted decode failed or heard nothing: the prompt can mislead on a noisy
        line (a spoken PIN read as "431," and judged no speech; unprompted "4-3-2-1")."""
        plain = self._decode(encoded, max_new, with_prompt=False)
        if plain is None or (prompted is not None and not plain.text):
            return prompted
        return plain

    def _prefer_unprompted(self, encoded: object, max_new: int, prompted: _Decoded) -> _Decoded:
        """A word said twice may be the prompt talking ("yes, yes"): ask again without it."""
        plain = self._decode(encoded, max_new, with_prompt=False)
        if plain is not None and plain.text and not has_stutter(plain.text):
            log.debug("event=stt_prompt_stutter prompted=%r plain=%r", prompted.text, plain.text)
            return plain
        return prompted

    def _generate(self, encoded: object, prompt: list[int], max_new: int) -> _Decoded:
        """One CTranslate2 ``generate`` call, scored the way faster-whisper scores it."""
        result = self._model.model.generate(
            encoded,
            [prompt],
            beam_size=self.config.beam_size,
            max_length=len(prompt) + max_new,
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=self._suppress,
        )[0]
        tokens = result.sequences_ids[0]
        avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1)
        text = self._tokenizer.decode(tokens).strip()
        return _Decoded(text, len(tokens), avg_logprob, result.no_speech_prob)

    def _standard_sync(self, audio: np.ndarray) -> _Decoded:
        """faster-whisper's own path: 30 s windows, temperature fallback, no VAD filter."""
        segments, _info = self._model.transcribe(
            audio,
            language="en",
            beam_size=self.config.beam_size,
            vad_filter=False,
            condition_on_previous_text=False,
            without_timestamps=True,
            initial_prompt=self.prompt,
        )
        segments = list(segments)
        if not segments:
            return _Decoded("", 0, 0.0, 1.0)
        text = " ".join(s.text.strip() for s in segments).strip()
        text = tidy(strip_prompt_echo(text, self.prompt))
        avg = sum(s.avg_logprob for s in segments) / len(segments)
        tokens = sum(len(s.tokens) for s in segments)
        return _Decoded(text, tokens, avg, max(s.no_speech_prob for s in segments))


def _is_no_speech(result: _Decoded) -> bool:
    """Whisper's rule: likely silence *and* a low-confidence decode."""
    return result.no_speech_prob > NO_SPEECH_PROB and result.avg_logprob < NO_SPEECH_LOGPROB


def _to_whisper_audio(pcm: np.ndarray) -> np.ndarray:
    """8 kHz int16 → 16 kHz float32 in [-1, 1], what Whisper's features expect."""
    samples = np.asarray(pcm, dtype=np.int16)
    return resample(samples.astype(np.float32) / 32768.0, SAMPLE_RATE, WHISPER_RATE)
