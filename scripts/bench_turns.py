#!/usr/bin/env python
"""End-of-turn quality on every caller fixture: held turns, false ends, and the lag
between the end of the words and the moment the endpointer sees it.

Each fixture is one caller turn (finished at its end; a ``pauses`` fixture is unfinished at
each inserted pause).  Its audio goes through the product's endpointer in 20 ms frames, on
the media clock, and every ``SpeechPaused`` is transcribed by the real Whisper model and
judged by ``dialogue/turn_completion.py`` — the same parts, in the same order, as a call.
The race of a real call is replayed from the measured STT time: an early transcript ends
the turn only if it is in before the caller talks again.

* **held**: a finished fixture whose last pause did not read as finished, so the turn
  waited the full ``end_silence_s``.  (Words without Whisper's full stop that do not
  dangle end the turn after a shorter wait, ``UNPUNCTUATED_WAIT_S``: not held.)
* **cut**: a pause inside a fixture (more words follow in the same turn) whose words
  ended the turn before the caller went on.  A cut inside a phrase ("There's a charge on
  my card | that I don't recognise") is a **false end**; a cut where the reference text has
  a comma or full stop ("No, | that's not what I said") is a **split** — the caller paused
  after a whole phrase, and reported apart.
  Because the race depends on the STT time, and this machine's varies with load, the
  cuts are also replayed as if STT had taken a fixed time (``false_ends_if_stt_s``).
* **speech end lag**: the endpointer's end of speech minus the end of the words (the last
  20 ms frame above -40 dBFS, the definition ``scripts/bench_calls.py`` uses over RTP),
  and the pause decision's lag after the end of the words.

Writes ``bench/results/turns-<timestamp>.json``.  Usage::

    .venv/bin/python scripts/bench_turns.py [--only ID ...] [--stt-latency S]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import re
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from voicebot.audio.endpointing import (  # noqa: E402
    Endpointer,
    EndpointEvent,
    SpeechPaused,
    SpeechResumed,
    UtteranceEnded,
)
from voicebot.audio.vad import shared_vad  # noqa: E402
from voicebot.audio.wavfile import read_audio  # noqa: E402
from voicebot.config import load_config  # noqa: E402
from voicebot.core.frames import FRAME_SAMPLES, SAMPLE_RATE, split_frames  # noqa: E402
from voicebot.dialogue.turn_completion import end_of_turn_wait  # noqa: E402
from voicebot.speech.stt import Transcriber  # noqa: E402
from voicebot.speech.vocabulary import domain_prompt  # noqa: E402

FIXTURES = ROOT / "audio_fixtures"
RESULTS = ROOT / "bench" / "results"
SPEECH_DBFS = -40.0  # as scripts/bench_calls.py: a 20 ms frame above this carries speech
END_SILENCE_S = load_config(None).endpointing.end_silence_s


@dataclass
class Pause:
    at: float  # media time the endpointer announced the pause
    speech_end: float  # its end of speech
    resumed_at: float | None  # the caller talked again (None: the turn's last pause)
    text: str = ""
    stt_s: float = 0.0
    wait_s: float | None = None  # end_of_turn_wait of the transcript

    @property
    def ends_turn(self) -> bool:
        """The words end the turn before the caller goes on."""
        return ends_at(self.at, self.speech_end, self.wait_s, self.stt_s, self.resumed_at)


def ends_at(
    at: float, speech_end: float, wait: float | None, stt_s: float, resumed: float | None
) -> bool:
    """An early transcript (in ``stt_s`` after the pause at ``at``) ends the turn when its
    words' wait is over, unless the caller talked again first or the end silence came."""
    if wait is None or wait >= END_SILENCE_S:
        return False
    return resumed is None or max(at + stt_s, speech_end + wait) < resumed


def decided_after(pause: dict, stt_s: float) -> float:
    """When the turn ends, from the end of its speech, had STT taken ``stt_s``."""
    wait = pause["wait_s"]
    if wait is None or wait >= END_SILENCE_S:
        return END_SILENCE_S
    return max(pause["at_s"] + stt_s - pause["speech_end_s"], wait)


def words_end(pcm: np.ndarray) -> float:
    """End of the last 20 ms frame above SPEECH_DBFS (bench_calls' end of the words)."""
    frames = split_frames(pcm)
    loud = [i for i, f in enumerate(frames) if _dbfs(f) > SPEECH_DBFS]
    return (loud[-1] + 1) * FRAME_SAMPLES / SAMPLE_RATE if loud else 0.0


def _dbfs(frame: np.ndarray) -> float:
    rms = math.sqrt(float(np.mean(frame.astype(np.float64) ** 2)))
    return 20 * math.log10(max(rms, 1e-9) / 32768.0)


def timed_events(endpointer: Endpointer, pcm: np.ndarray) -> list[tuple[float, EndpointEvent]]:
    """Every event with the media time of the frame push that produced it (+2 s silence)."""
    out: list[tuple[float, EndpointEvent]] = []
    tail = np.zeros(2 * SAMPLE_RATE, dtype=np.int16)
    for frame in split_frames(np.concatenate([pcm, tail])):
        out += [(endpointer.now + 0.0, e) for e in endpointer.push(frame)]
    return out


def pauses_of(events: list[tuple[float, EndpointEvent]]) -> list[tuple[Pause, SpeechPaused]]:
    found: list[tuple[Pause, SpeechPaused]] = []
    for now, event in events:
        if isinstance(event, SpeechPaused):
            end = event.utterance.stats["speech_ended_at"]
            found.append((Pause(now, end, None), event))
        elif isinstance(event, SpeechResumed) and found and found[-1][0].resumed_at is None:
            found[-1][0].resumed_at = now
        elif isinstance(event, UtteranceEnded):
            break  # a fixture is one turn; what follows an end is not judged here
    return found


async def judge(entry: dict, stt: Transcriber, fixed_stt_s: float | None) -> dict:
    pcm = read_audio(FIXTURES / "utterances" / f"{entry['id']}.wav")
    config = load_config(None).endpointing
    events = timed_events(Endpointer(config, shared_vad().stream()), pcm)
    expects_pin = "pin" in entry.get("tags", [])
    pauses = pauses_of(events)
    for pause, event in pauses:
        result = await stt.transcribe(event.utterance.pcm)
        pause.text, pause.stt_s = result.text, fixed_stt_s or result.elapsed_s
        pause.wait_s = end_of_turn_wait(result.text, expects_pin=expects_pin)
    ends = [e for _, e in events if isinstance(e, UtteranceEnded)]
    end = words_end(pcm)
    last = pauses[-1][0] if pauses else None
    return {
        "id": entry["id"],
        "spoken": entry.get("say", entry["text"]),
        "pauses_inserted": len(entry.get("pauses", [])),
        "words_end_s": round(end, 3),
        "speech_end_s": round(ends[0].utterance.stats["speech_ended_at"], 3) if ends else None,
        "pause_seen_s": round(last.at, 3) if last else None,
        "mid_pauses": [_row(p) for p, _ in pauses[:-1]],
        "last_pause": _row(last) if last else None,
        "any_mid_pause_read_finished": any(p.wait_s is not None for p, _ in pauses[:-1]),
        "held": last is None or not last.ends_turn,
    }


def _row(p: Pause) -> dict:
    return {
        "at_s": round(p.at, 3),
        "speech_end_s": round(p.speech_end, 3),
        "resumed_at_s": None if p.resumed_at is None else round(p.resumed_at, 3),
        "text": p.text,
        "stt_s": round(p.stt_s, 3),
        "wait_s": p.wait_s,
        "ends_turn": p.ends_turn,
    }


ASSUMED_STT_S = (0.1, 0.15, 0.25, 0.4)  # the race replayed as if STT took this long


def cut_at(row: dict, stt_s: float | None) -> dict | None:
    """The mid pause that ended this fixture's turn, had STT taken ``stt_s`` (None: the
    time measured)."""
    return next(
        (
            p
            for p in row["mid_pauses"]
            if ends_at(
                p["at_s"], p["speech_end_s"], p["wait_s"], stt_s or p["stt_s"], p["resumed_at_s"]
            )
        ),
        None,
    )


def at_phrase_end(reference: str, heard: str) -> bool:
    """The words heard so far end where the reference has a comma or full stop: the caller
    paused after a whole phrase ("No," … "that's not what I said") rather than inside one."""
    ref = reference.split()
    k = len(re.findall(r"[\w']+", heard))
    return 0 < k <= len(ref) and ref[k - 1][-1] in ",.?!;:"


def false_ends_if(rows: list[dict], stt_s: float | None) -> dict:
    """Fixtures cut at a mid pause had every transcript taken ``stt_s``: inside a phrase
    (false ends) and at a phrase boundary (splits)."""
    cuts = [(r, p) for r in rows if (p := cut_at(r, stt_s))]
    split = [r["id"] for r, p in cuts if at_phrase_end(r["spoken"], p["text"])]
    return {"false_ends": [r["id"] for r, _ in cuts if r["id"] not in split], "splits": split}


def end_after_words(rows: list[dict], stt_s: float) -> dict:
    """Turn end minus the end of the words over every fixture, had STT taken ``stt_s``:
    the endpointing share of voice-to-voice latency."""
    values = sorted(
        r["last_pause"]["speech_end_s"] + decided_after(r["last_pause"], stt_s) - r["words_end_s"]
        for r in rows
        if r["last_pause"]
    )
    if not values:
        return {}
    return {
        "p50_s": round(statistics.median(values), 3),
        "p95_s": round(values[min(len(values) - 1, round(0.95 * (len(values) - 1)))], 3),
        "max_s": round(values[-1], 3),
    }


def summarise(rows: list[dict]) -> dict:
    n = len(rows)
    measured = false_ends_if(rows, None)
    pause_rows = [r for r in rows if r["pauses_inserted"]]
    lag = [r["speech_end_s"] - r["words_end_s"] for r in rows if r["speech_end_s"] is not None]
    seen = [r["pause_seen_s"] - r["words_end_s"] for r in rows if r["pause_seen_s"] is not None]
    return {
        "fixtures": n,
        "held": sum(r["held"] for r in rows),
        "held_share": round(sum(r["held"] for r in rows) / n, 3) if n else None,
        "held_ids": [r["id"] for r in rows if r["held"]],
        "cut_with_measured_stt": measured,
        "false_end_share": round(len(measured["false_ends"]) / n, 3) if n else None,
        "pause_fixtures": len(pause_rows),
        "pause_fixtures_cut": [r["id"] for r in pause_rows if cut_at(r, None)],
        "any_mid_pause_read_finished": sum(r["any_mid_pause_read_finished"] for r in rows),
        "false_ends_if_stt_s": {str(t): false_ends_if(rows, t) for t in ASSUMED_STT_S},
        "turn_end_after_words_if_stt_s": {str(t): end_after_words(rows, t) for t in ASSUMED_STT_S},
        "speech_end_lag_median_s": round(statistics.median(lag), 3) if lag else None,
        "pause_seen_after_words_median_s": round(statistics.median(seen), 3) if seen else None,
    }


async def run(args: argparse.Namespace) -> dict:
    config = load_config(None)
    stt = Transcriber(config.speech, prompt=domain_prompt(ROOT / "rasa_project"))
    entries = [
        e
        for e in yaml.safe_load((FIXTURES / "manifest.yaml").read_text())["utterances"]
        if e.get("voice", "piper") != "none" and (not args.only or e["id"] in args.only)
    ]
    rows = []
    for entry in entries:
        rows.append(await judge(entry, stt, args.stt_latency))
        if args.verbose:
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    stt.close()
    stt_times = [p["stt_s"] for r in rows for p in [*r["mid_pauses"], r["last_pause"]] if p]
    return {
        "benchmark": "turns",
        "endpointing": vars(config.endpointing),
        "stt_latency_fixed_s": args.stt_latency,
        "stt_p50_s": round(statistics.median(stt_times), 3) if stt_times else None,
        "summary": summarise(rows),
        "fixtures": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", help="fixture id (repeatable)")
    parser.add_argument(
        "--stt-latency", type=float, help="assume this STT time (s) in the race, not the measured"
    )
    parser.add_argument("--verbose", action="store_true", help="one JSON line per fixture")
    args = parser.parse_args()
    report = asyncio.run(run(args))
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"turns-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["summary"], indent=2))
    print(f"written {path}")


if __name__ == "__main__":
    main()
