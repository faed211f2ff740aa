"""Endpointing: turn VAD probabilities into turn-taking events on the media clock.

Why a media clock: time is "seconds of audio pushed", never the wall clock, so
a WAV fixture pushed as fast as the CPU allows produces exactly the events a
real-time phone call would.  Events are decided per 32 ms VAD window, in order,
so the same audio gives the same events however it is chunked.

Why hysteresis: Silero's probability flickers around any single threshold
inside words; speech starts at ``speech_threshold`` but only stops below
``speech_threshold - 0.1``, so a soft syllable does not chop a word.  (A wider
band, 0.15, kept ~30 ms more of Silero's decay after the last sound on the
fixtures — 0.118 s vs 0.090 s median — and every reply waited for it.)

Event timeline for one turn::

    SpeechStarted ─► SpeechConfirmed (≥ barge_in_min_speech_s voiced, or
                 │                    ≥ barge_in_clear_voice_s of clear voice: interrupt the bot)
                 ├─► SpeechFaded     (the VAD fell before confirmation: a cough, a blip —
                 │                    whatever ducked the bot on SpeechStarted restores it)
                 ├─► SpeechPaused    (pause_s quiet after ≥ min_speech_s voiced: the words
                 │                    so far, for early STT) ─► SpeechResumed (talking again)
                 ├─► UtteranceEnded  (end_silence_s quiet, ``end_turn()`` during a pause,
                 │                    or max_utterance_s reached)
                 └─► NoiseDiscarded  (went quiet before min_speech_s voiced: a cough, a blip)

Why the end of speech is found in the signal level: Silero's probability decays
for ~0.1 s after the last sound (median 0.10 s on the fixtures, through 8 kHz),
and every pause and end of turn was timed from the end of that decay.  Within the
voiced windows the endpointer keeps the level of each 10 ms block; once the VAD
says the speech is over, the speech ends where the level last stood within
``TAIL_DROP_DB`` of the turn's loudest block and ``FLOOR_MARGIN_DB`` over the
line's noise floor — at most ``MAX_TAIL_TRIM_S`` before the VAD's own end.  On
a noisy line the floor hides the soft tail and the end stays near the VAD's (10 dB
SNR: 0.17 s after the words); a turn never louder than the line keeps
the VAD's end.  The VAD still decides *whether* the caller is talking; the level
only says *when* the sound stopped.

Why ``SpeechPaused`` carries a whole utterance: an utterance keeps exactly
``pause_s`` of silence after the end of speech, so the audio at the pause
is bit-identical to the audio at the end of the turn if the caller stays quiet.
STT can start at the pause and its transcript is simply the final one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from voicebot.config import EndpointingConfig
from voicebot.core.frames import SAMPLE_RATE, Utterance

HYSTERESIS = 0.1
_DBFS_FLOOR = -120.0
BLOCK_SAMPLES = 80  # 10 ms: the level tracker's resolution
TAIL_DROP_DB = 35.0  # a block this far under the turn's loudest is past the words
FLOOR_MARGIN_DB = 6.0  # … and it must stand this far over the line's noise floor
MAX_TAIL_TRIM_S = 0.2  # never move the end of speech further back than this
_NOISE_RISE = 0.02  # per block: the noise floor follows a louder line over ~0.5 s


class ProbabilityStream(Protocol):
    """What the endpointer needs from a VAD: ``VadStream`` satisfies it."""

    window_samples: int
    latency_samples: int

    def push(self, pcm: np.ndarray) -> list[float]: ...

    def reset(self) -> None: ...


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    """The caller may have started talking; ``at`` is when speech began."""

    at: float


@dataclass(frozen=True, slots=True)
class SpeechConfirmed:
    """Speech has lasted ``barge_in_min_speech_s``: real talk, safe to interrupt the bot."""

    at: float


@dataclass(frozen=True, slots=True)
class SpeechFaded:
    """The voice fell silent before it was confirmed: maybe a cough, maybe a short word.

    Sent at most once per ``SpeechStarted``, when the VAD first drops.  Why: barge-in
    ducks the bot at ``SpeechStarted``; a cough must get the bot's full level back as
    soon as it is over, not a second later when the segment is discarded.  A voice
    that rises again and is confirmed still stops the bot (``SpeechConfirmed``).
    """

    at: float


@dataclass(frozen=True, slots=True)
class SpeechPaused:
    """The caller paused for ``pause_s``; ``utterance`` is what ends the turn if they stay quiet."""

    utterance: Utterance


@dataclass(frozen=True, slots=True)
class SpeechResumed:
    """The caller went on talking after a ``SpeechPaused``: that utterance is stale."""

    at: float


@dataclass(frozen=True, slots=True)
class UtteranceEnded:
    """A finished turn, ready for STT."""

    utterance: Utterance


@dataclass(frozen=True, slots=True)
class NoiseDiscarded:
    """A blip that never reached ``min_speech_s`` of speech; ``at`` is when it was dropped."""

    at: float
    started_at: float = 0.0
    voiced_s: float = 0.0
    peak_prob: float = 0.0  # Silero's highest score in it: a clear word the VAD let go is high
    peak_dbfs: float = _DBFS_FLOOR  # its loudest 10 ms block: a word at speech level is loud


EndpointEvent = (
    SpeechStarted
    | SpeechConfirmed
    | SpeechFaded
    | SpeechPaused
    | SpeechResumed
    | UtteranceEnded
    | NoiseDiscarded
)


class _AudioLog:
    """Recent audio addressed by absolute sample index, trimmed as turns complete."""

    def __init__(self) -> None:
        self._chunks: list[np.ndarray] = []
        self.start = 0  # absolute index of the first kept sample
        self.end = 0  # absolute index one past the last sample

    def append(self, pcm: np.ndarray) -> None:
        self._chunks.append(pcm)
        self.end += len(pcm)

    def slice(self, start: int, end: int) -> np.ndarray:
        start, end = max(start, self.start), min(end, self.end)
        if end <= start:
            return np.zeros(0, dtype=np.int16)
        joined = np.concatenate(self._chunks) if len(self._chunks) > 1 else self._chunks[0]
        self._chunks = [joined]
        return joined[start - self.start : end - self.start].copy()

    def trim_before(self, index: int) -> None:
        """Drop audio before ``index`` (kept in whole chunks to stay cheap)."""
        while self._chunks and self.start + len(self._chunks[0]) <= index:
            self.start += len(self._chunks.pop(0))


class _Levels:
    """Level (dBFS) of every 10 ms block of the call, and the line's noise floor."""

    def __init__(self) -> None:
        self._db: list[float] = []
        self.first = 0  # absolute block index of _db[0]
        self._rest = np.zeros(0, dtype=np.int16)
        self.noise_db = -70.0

    def append(self, pcm: np.ndarray) -> None:
        pcm = np.concatenate([self._rest, pcm]) if len(self._rest) else pcm
        n = len(pcm) // BLOCK_SAMPLES
        self._rest = pcm[n * BLOCK_SAMPLES :]
        if n:
            blocks = pcm[: n * BLOCK_SAMPLES].astype(np.float64).reshape(n, BLOCK_SAMPLES)
            power = np.maximum(np.mean(blocks**2, axis=1), 1e-3) / 32768.0**2
            self._db.extend((10 * np.log10(power)).tolist())

    def follow_noise(self, start: int, end: int) -> None:
        """Samples ``[start, end)`` are no one's speech: the floor falls at once, rises slowly."""
        for db in self._range(start, end):
            rise = _NOISE_RISE * (db - self.noise_db)
            self.noise_db = max(-90.0, self.noise_db + rise if db > self.noise_db else db)

    def loudest(self, start: int, end: int) -> float:
        """The loudest whole block in samples ``[start, end)``."""
        return max(self._range(start, end), default=_DBFS_FLOOR)

    def last_above(self, start: int, end: int, db: float) -> int | None:
        """End (sample index) of the last whole block in ``[start, end)`` louder than ``db``."""
        first = -(-start // BLOCK_SAMPLES)
        for i, level in reversed(list(enumerate(self._range(start, end)))):
            if level > db:
                return (first + i + 1) * BLOCK_SAMPLES
        return None

    def _range(self, start: int, end: int) -> list[float]:
        a = max(-(-start // BLOCK_SAMPLES), self.first)
        b = min(end // BLOCK_SAMPLES, self.first + len(self._db))
        return self._db[a - self.first : max(a, b) - self.first]

    def trim_before(self, index: int) -> None:
        drop = max(0, index // BLOCK_SAMPLES - self.first)
        del self._db[:drop]
        self.first += drop


@dataclass
class _Segment:
    """One open stretch of possible speech (sample indices are absolute)."""

    start: int
    last_voiced_end: int
    voiced: int = 0
    prob_sum: float = 0.0  # Silero scores of the voiced windows (their mean: how clearly voice)
    peak_prob: float = 0.0
    windows: int = 0  # voiced windows
    peak_db: float = _DBFS_FLOOR  # loudest 10 ms block of the turn so far
    sound_end: int = 0  # end of the last loud block in a voiced window
    speech_end: int = 0  # where the sound stopped (≤ last_voiced_end), set when the VAD drops
    confirmed: bool = False
    faded: bool = False  # SpeechFaded sent (the VAD fell before confirmation)
    paused: bool = False  # SpeechPaused sent for the current pause
    speaking: bool = True  # hysteresis state within the segment
    runs: list[tuple[int, int]] = field(default_factory=list)  # voiced ranges, merged

    def add_voiced(self, start: int, end: int, prob: float) -> None:
        self.voiced += end - start
        self.prob_sum += prob
        self.peak_prob = max(self.peak_prob, prob)
        self.windows += 1
        self.last_voiced_end = self.speech_end = end
        if self.runs and self.runs[-1][1] >= start:
            self.runs[-1] = (self.runs[-1][0], end)
        else:
            self.runs.append((start, end))


class Endpointer:
    """Per-call endpointing state machine over a VAD probability stream.

    Push 8 kHz int16 audio of any length; get back the events it completes.
    ``started_at``/``ended_at`` of an utterance are the media times of its first
    and last sample, so ``len(pcm) / 8000 == ended_at - started_at``; the
    pcm holds ``pre_roll_s`` before the detected speech start (never audio an
    earlier utterance already had) and ``pause_s`` after the last voiced window.
    ``max_utterance_s`` counts from the speech start; a forced end keeps the
    caller's speech going straight into a new turn, with no gap or overlap.
    """

    def __init__(self, config: EndpointingConfig, vad_stream: ProbabilityStream) -> None:
        self.config = config
        self.vad = vad_stream
        self._win = vad_stream.window_samples
        self._lat = vad_stream.latency_samples
        self._high = config.speech_threshold
        self._low = max(0.0, config.speech_threshold - HYSTERESIS)
        self.reset()

    # ----------------------------------------------------------------- public
    def reset(self) -> None:
        """Start over at media time 0 (a new call)."""
        self.vad.reset()
        self._log = _AudioLog()
        self._levels = _Levels()
        self._samples = 0
        self._windows = 0
        self._segment: _Segment | None = None
        self._floor = 0  # utterances never re-use audio already handed out
        self._last_speech_end = 0  # end of the last voiced window of real speech

    @property
    def now(self) -> float:
        """Media clock: seconds of audio pushed so far."""
        return self._samples / SAMPLE_RATE

    @property
    def in_speech(self) -> bool:
        """True between ``SpeechStarted`` and the event that closes it."""
        return self._segment is not None

    @property
    def paused(self) -> bool:
        """True after ``SpeechPaused`` until the caller talks again or the turn ends."""
        return self._segment is not None and self._segment.paused

    def quiet_s(self) -> float:
        """During a pause: seconds since the speech ended, as far as the VAD has heard."""
        if self._segment is None or not self._segment.paused:
            return 0.0
        heard = self._windows * self._win - self._lat
        return max(0, heard - self._segment.speech_end) / SAMPLE_RATE

    def silence_duration(self, at: float | None = None) -> float:
        """Seconds the caller has been silent as of ``at`` (default: now); 0 while talking.

        Counts from the end of the caller's last real speech (or the start of
        the call); discarded blips such as a cough do not reset it.  The
        session takes the minimum of this and the time since the bot stopped
        speaking to decide when to play a silence prompt.
        """
        if self._segment is not None:
            return 0.0
        at = self.now if at is None else at
        return max(0.0, at - self._last_speech_end / SAMPLE_RATE)

    def push(self, frame: np.ndarray) -> list[EndpointEvent]:
        """Feed caller audio; return the events decided by the VAD windows it completes."""
        pcm = _int16(frame)
        return self.push_scored(pcm, self.vad.push(pcm) if pcm.size else [])

    def push_scored(self, frame: np.ndarray, probs: list[float]) -> list[EndpointEvent]:
        """``push`` with the VAD already run on ``frame`` (``self.vad.push``),
        e.g. on a worker thread so inference never holds the event loop."""
        pcm = _int16(frame)
        if pcm.size == 0:
            return []
        self._log.append(pcm.copy())  # transports may reuse their frame buffers
        self._levels.append(pcm)
        self._samples += len(pcm)
        events: list[EndpointEvent] = []
        for prob in probs:
            events.extend(self._on_window(prob))
        self._trim()
        return events

    def flush(self) -> list[EndpointEvent]:
        """Close any open turn now (hang-up, end of a fixture) as if silence followed."""
        if self._segment is None:
            return []
        return self._close(self._samples, forced=False)

    def end_turn(self) -> list[EndpointEvent]:
        """End the turn now, during a pause: the words so far finish a request.

        The utterance is the one ``SpeechPaused`` announced.  Outside a pause
        (no turn, or the caller talking again) nothing happens.
        """
        if not self.paused:
            return []
        return self._close(self._windows * self._win - self._lat, forced=False)

    # ---------------------------------------------------------------- windows
    def _on_window(self, prob: float) -> list[EndpointEvent]:
        k = self._windows
        self._windows += 1
        start = max(0, k * self._win - self._lat)
        end = max(0, (k + 1) * self._win - self._lat)
        seg = self._segment
        if seg is None:
            self._levels.follow_noise(start, end)
            return self._maybe_start(prob, start, end)
        was_speaking = seg.speaking
        seg.speaking = prob >= (self._low if seg.speaking else self._high)
        events: list[EndpointEvent] = []
        if seg.speaking:
            if seg.paused:
                seg.paused = False
                events.append(SpeechResumed(at=start / SAMPLE_RATE))
            seg.add_voiced(start, end, prob)
            seg.peak_db = max(seg.peak_db, self._levels.loudest(start, end))
            seg.sound_end = self._levels.last_above(start, end, self._loud(seg)) or seg.sound_end
            events.extend(self._maybe_confirm(seg, end))
            return events + self._maybe_force(seg, end)
        if was_speaking:
            seg.speech_end = self._sound_end(seg)
            if not (seg.confirmed or seg.faded):
                seg.faded = True
                events.append(SpeechFaded(at=end / SAMPLE_RATE))
        if end - seg.speech_end >= self._seconds(self.config.end_silence_s):
            return events + self._close(end, forced=False)
        elif self._pause_reached(seg, end):
            seg.paused = True
            events.append(SpeechPaused(self._utterance(seg, end, forced=False)))
        return events + self._maybe_force(seg, end)

    def _maybe_force(self, seg: _Segment, end: int) -> list[EndpointEvent]:
        if end - seg.start >= self._seconds(self.config.max_utterance_s):
            return self._close(end, forced=True)
        return []

    def _sound_end(self, seg: _Segment) -> int:
        """Where the sound stopped inside the VAD's decay (see the module notes)."""
        if seg.sound_end <= seg.start:
            return seg.last_voiced_end  # never louder than the line: the VAD alone decides
        earliest = max(seg.start, seg.last_voiced_end - self._seconds(MAX_TAIL_TRIM_S))
        return max(seg.sound_end, earliest)

    def _loud(self, seg: _Segment) -> float:
        """The level (dBFS) a 10 ms block must pass to count as the words' sound."""
        return max(seg.peak_db - TAIL_DROP_DB, self._levels.noise_db + FLOOR_MARGIN_DB)

    def _maybe_start(self, prob: float, start: int, end: int) -> list[EndpointEvent]:
        if prob < self._high:
            return []
        seg = _Segment(start=start, last_voiced_end=end)
        seg.add_voiced(start, end, prob)
        seg.peak_db = self._levels.loudest(start, end)
        seg.sound_end = self._levels.last_above(start, end, self._loud(seg)) or start
        self._segment = seg
        return [SpeechStarted(at=start / SAMPLE_RATE), *self._maybe_confirm(seg, end)]

    def _pause_reached(self, seg: _Segment, end: int) -> bool:
        return (
            not seg.paused
            and seg.voiced >= self._seconds(self.config.min_speech_s)
            and end - seg.speech_end >= self._seconds(self.config.pause_s)
        )

    def _maybe_confirm(self, seg: _Segment, end: int) -> list[EndpointEvent]:
        if seg.confirmed or not self._is_talk(seg):
            return []
        seg.confirmed = True
        return [SpeechConfirmed(at=end / SAMPLE_RATE)]

    def _is_talk(self, seg: _Segment) -> bool:
        """Enough voice to interrupt the bot: long enough, or shorter but clearly voice.

        Clear voice counts the *sound*, not the VAD's decay after it: a 100 ms burst
        of speech keeps Silero voiced for ~0.2 s but stays short here.
        """
        config = self.config
        if seg.voiced >= self._seconds(config.barge_in_min_speech_s):
            return True
        clear = seg.prob_sum / seg.windows >= config.barge_in_clear_voice_prob
        return clear and seg.sound_end - seg.start >= self._seconds(config.barge_in_clear_voice_s)

    # ---------------------------------------------------------------- closing
    def _close(self, decided: int, forced: bool) -> list[EndpointEvent]:
        seg = self._segment
        assert seg is not None
        self._segment = None
        if seg.voiced < self._seconds(self.config.min_speech_s):
            return [
                NoiseDiscarded(
                    at=decided / SAMPLE_RATE,
                    started_at=seg.start / SAMPLE_RATE,
                    voiced_s=seg.voiced / SAMPLE_RATE,
                    peak_prob=seg.peak_prob,
                    peak_dbfs=seg.peak_db,
                )
            ]
        self._last_speech_end = seg.speech_end
        utterance = self._utterance(seg, decided, forced)
        self._floor = round(utterance.ended_at * SAMPLE_RATE)
        return [UtteranceEnded(utterance)]

    def _utterance(self, seg: _Segment, decided: int, forced: bool) -> Utterance:
        """The segment's audio as of ``decided`` (no state change: pauses peek too)."""
        first = max(seg.start - self._seconds(self.config.pre_roll_s), self._floor, 0)
        trail = seg.speech_end + self._seconds(self.config.pause_s)
        last = decided if forced else min(trail, decided)
        pcm = self._log.slice(first, last)
        first = last - len(pcm)  # the log may hold less than asked at the call's start
        stats = self._stats(seg, pcm, first, forced)
        return Utterance(
            pcm=pcm,
            started_at=first / SAMPLE_RATE,
            ended_at=last / SAMPLE_RATE,
            endpoint_wait_s=0.0 if forced else (decided - seg.speech_end) / SAMPLE_RATE,
            stats=stats,
        )

    def _stats(self, seg: _Segment, pcm: np.ndarray, first: int, forced: bool) -> dict[str, float]:
        """Loudness over voiced audio only, so pauses do not make a shout look quiet."""
        voiced = [pcm[max(0, a - first) : max(0, b - first)] for a, b in seg.runs]
        voiced_pcm = np.concatenate(voiced) if voiced else pcm
        speech_s = (seg.speech_end - seg.start) / SAMPLE_RATE
        voiced_s = seg.voiced / SAMPLE_RATE
        return {
            "rms_dbfs": _dbfs(_rms(voiced_pcm)),
            "peak_dbfs": _dbfs(float(np.abs(pcm.astype(np.int32)).max(initial=0))),
            "voiced_s": voiced_s,
            "duration_s": len(pcm) / SAMPLE_RATE,
            "speech_s": speech_s,
            "pause_s": max(0.0, speech_s - voiced_s),
            "speech_started_at": seg.start / SAMPLE_RATE,
            "speech_ended_at": seg.speech_end / SAMPLE_RATE,
            "clipped_ratio": _clipped_ratio(pcm),
            "forced": 1.0 if forced else 0.0,
        }

    # ---------------------------------------------------------------- helpers
    def _trim(self) -> None:
        """Keep the whole open turn, or just enough history for the next pre-roll."""
        keep_from = self._samples - self._seconds(self.config.pre_roll_s) - 2 * self._win
        if self._segment is not None:
            keep_from = min(keep_from, self._segment.start - self._seconds(self.config.pre_roll_s))
        self._log.trim_before(keep_from)
        self._levels.trim_before(keep_from)

    @staticmethod
    def _seconds(s: float) -> int:
        return round(s * SAMPLE_RATE)


def _rms(pcm: np.ndarray) -> float:
    if pcm.size == 0:
        return 0.0
    return float(np.sqrt(np.mean(np.square(pcm.astype(np.float64)))))


def _dbfs(level: float) -> float:
    """Level relative to int16 full scale; silence floors at -120 dBFS."""
    if level <= 0:
        return _DBFS_FLOOR
    return max(_DBFS_FLOOR, float(20.0 * np.log10(level / 32768.0)))


def _clipped_ratio(pcm: np.ndarray) -> float:
    if pcm.size == 0:
        return 0.0
    return float(np.mean((pcm >= 32767) | (pcm <= -32768)))


def _int16(frame: np.ndarray) -> np.ndarray:
    pcm = np.asarray(frame).reshape(-1)
    if pcm.dtype != np.int16:
        raise TypeError(f"Endpointer expects int16 PCM, got {pcm.dtype}")
    return pcm
