#!/usr/bin/env python
"""How well a caller understands the bot: every reply and prompt, per voice, on a phone line.

Each text the bot can say — Rasa's domain responses, the custom actions' replies
for every demo customer (real amounts, dates and card endings, built in the Rasa
venv by ``voice_texts_rasa.py``) and the scripted prompts in ``voicebot/`` — is
synthesised by each engine, sent through the telephone band (8 kHz μ-law) and
transcribed by Whisper base without the domain prompt (a listener who does not
know what to expect).  WER is against the text the bot meant to say, after
Whisper's English normalisation (numbers as digits: "forty-two dollars and
seventeen cents" and "$42.17" are the same words).  Time to first audio (first
sentence, uncached and cached) and real-time factor are measured per engine.

    scripts/bench_voice                  # default espeak, best espeak, piper on all texts
    scripts/bench_voice --sweep          # also choose espeak voice/variant, rate, pitch, gap
    scripts/bench_voice --quick          # a bounded slice (CI smoke; asserts no figures)

Writes ``bench/results/voice-<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import json
import os
import platform
import re
import statistics
import subprocess
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import jiwer
import numpy as np
from whisper_normalizer.english import EnglishTextNormalizer

from voicebot.audio.g711 import ulaw_decode, ulaw_encode
from voicebot.config import PROJECT_ROOT, Config, SpeechConfig, TtsConfig
from voicebot.core.frames import SAMPLE_RATE, silence
from voicebot.dialogue.responses import fixed_texts, knowledge_answers, response_templates
from voicebot.runtime import fixed_prompts
from voicebot.speech.stt import Transcriber
from voicebot.speech.tts import Synthesizer

RESULTS = PROJECT_ROOT / "bench" / "results"
RASA_PROJECT = PROJECT_ROOT / "rasa_project"
SAMPLE_SLOTS = {"last4": "0100", "amount": "$42.17", "time": "9 a.m."}
QUICK_TEXTS = 6
SWEEP_VOICES = (
    "gmw/en-US", "gmw/en", "gmw/en-GB-x-rp", "gmw/en-US+m3", "gmw/en-US+klatt4",
    "gmw/en-US+m1", "gmw/en-GB-x-rp+m3", "gmw/en-US+f3",
)  # fmt: skip
SWEEP_RATES = (130, 145, 160, 175)
SWEEP_PITCHES = (35, 50, 65)
SWEEP_GAPS = (0, 10, 30)


@dataclass(frozen=True)
class Sample:
    source: str
    text: str


# ------------------------------------------------------------------ texts


def domain_texts() -> list[Sample]:
    """Every response variant in the Rasa domain, and every knowledge-base answer."""
    samples = [
        Sample(f"domain:{name}", fill(text)) for name, text in response_templates(RASA_PROJECT)
    ]
    return samples + [Sample("knowledge", text) for text in knowledge_answers(RASA_PROJECT)]


def fill(text: str) -> str:
    """Slot and format placeholders ({last4}, {amount}) with sample values."""
    return re.sub(
        r"\{(\w+)\}", lambda m: SAMPLE_SLOTS.get(m.group(1), "4417"), " ".join(text.split())
    )


def _is_spoken(text: str) -> bool:
    """A sentence a caller hears: capitalised, ends like a sentence, no code or paths."""
    return (
        len(text.split()) >= 2
        and text[:1].isupper()
        and text.rstrip().endswith((".", "?", "!"))
        and not re.search(r"[_/\\<>=]|apt-get|pip |\bSELECT\b", text)
    )


def _literals(node: ast.AST) -> list[str]:
    """The strings assigned (``X = "…"``, ``x: str = "…"``) or passed as ``text="…"``."""
    if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
        value: ast.AST = node.value
    elif isinstance(node, ast.keyword) and node.arg == "text":
        value = node.value
    else:
        return []
    return [
        c.value for c in ast.walk(value) if isinstance(c, ast.Constant) and isinstance(c.value, str)
    ]


def scripted_texts(folder: Path, source: str) -> list[Sample]:
    """String literals assigned or passed as ``text=`` that read as spoken sentences."""
    samples = []
    for path in sorted(folder.rglob("*.py")):
        if path.name == "voice_samples.py":  # demo texts, never said on a call
            continue
        where = f"{source}:{path.relative_to(PROJECT_ROOT)}"
        for node in ast.walk(ast.parse(path.read_text())):
            samples += [Sample(where, fill(t)) for t in _literals(node) if _is_spoken(t.strip())]
    return samples


def action_replies() -> list[Sample]:
    """The custom actions' replies for every demo customer, built by the real actions."""
    rasa_python = Path(os.environ.get("VOICEBOT_RASA_VENV", PROJECT_ROOT / ".venv-rasa"))
    run = subprocess.run(
        [str(rasa_python / "bin" / "python"), str(Path(__file__).with_name("voice_texts_rasa.py"))],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return [Sample("actions:customer", text) for text in json.loads(run.stdout)]


def all_texts() -> list[Sample]:
    samples = (
        domain_texts()
        + scripted_texts(RASA_PROJECT / "actions", "actions")
        + action_replies()
        + scripted_texts(PROJECT_ROOT / "voicebot", "voicebot")
    )
    unique = {s.text: s for s in samples}
    return list(unique.values())


# -------------------------------------------------------------- measuring

_whisper_normalise = EnglishTextNormalizer()


def normalise(text: str) -> str:
    """Whisper's English normaliser, plus the spellings it leaves apart."""
    text = _whisper_normalise(text)
    text = re.sub(r"\b([ap]) m\b", r"\1m", text)
    text = re.sub(r"\bok\b", "okay", text)
    text = re.sub(r"\balright\b", "all right", text)
    text = re.sub(r"\bone\b(?=\s\d)|(?<=\d\s)one\b", "1", text)
    return re.sub(r"(?<=\b\d)\s(?=\d\b)", "", text)  # "4 4 1 7" → "4417"


def telephone_line(pcm: np.ndarray) -> np.ndarray:
    return np.concatenate([silence(0.3), ulaw_decode(ulaw_encode(pcm)), silence(0.3)])


@dataclass
class Setting:
    engine: str
    voice: str | None = None
    rate_wpm: int = 170
    pitch: int = 50
    word_gap_ms: int = 0

    @property
    def label(self) -> str:
        if self.engine == "piper":
            return "piper"
        gap = f" gap {self.word_gap_ms}ms" if self.word_gap_ms else ""
        return f"pyttsx3 {self.voice or 'default'} {self.rate_wpm}wpm pitch {self.pitch}{gap}"

    def config(self, cache_size: int = 256) -> TtsConfig:
        return TtsConfig(
            engine=self.engine, voice=self.voice, rate_wpm=self.rate_wpm,
            pitch=self.pitch, word_gap_ms=self.word_gap_ms, cache_size=cache_size,
            disk_cache=False,  # figures for a first start, not for what an earlier run kept
        )  # fmt: skip


async def intelligibility(
    setting: Setting, samples: list[Sample], transcriber: Transcriber
) -> dict:
    synth = Synthesizer(setting.config(cache_size=0))
    refs, hyps, rows = [], [], []
    for sample in samples:
        pcm = await heard_audio(synth, sample.text)
        heard = (await transcriber.transcribe(telephone_line(pcm))).text
        ref, hyp = normalise(sample.text), normalise(heard)
        refs.append(ref)
        hyps.append(hyp)
        rows.append({"source": sample.source, "text": sample.text, "heard": heard,
                     "wer": round(jiwer.wer(ref, hyp), 4)})  # fmt: skip
    await synth.close()
    return {
        "setting": asdict(setting),
        "label": setting.label,
        "wer": round(jiwer.wer(refs, hyps), 4),
        "median_text_wer": round(statistics.median(r["wer"] for r in rows), 4),
        "texts": len(rows),
        "words": sum(len(r.split()) for r in refs),
        "rows": rows,
    }


async def heard_audio(synth: Synthesizer, text: str) -> np.ndarray:
    """What a caller hears: the streamed pieces (sentences, or a slow engine's phrases)."""
    parts = [pcm async for pcm in synth.synthesize_sentences(text)]
    return np.concatenate(parts) if parts else np.zeros(0, np.int16)


async def first_audio(synth: Synthesizer, text: str) -> float:
    started = time.perf_counter()
    stream = synth.synthesize_sentences(text)
    async for _chunk in stream:
        break
    elapsed = time.perf_counter() - started
    await stream.aclose()
    return elapsed


def reply_kind(text: str, warmed: set[str]) -> str:
    """fixed: rendered at start-up; slotted: carries numbers; free: any other new text."""
    if text in warmed:
        return "fixed"
    return "slotted" if re.search(r"\d", text) else "free"


def summary(values: list[float]) -> dict:
    return {
        "n": len(values),
        "p50_ms": round(statistics.median(values) * 1000, 2) if values else None,
        "p95_ms": round(percentile(values, 0.95) * 1000, 2) if values else None,
        "max_ms": round(max(values) * 1000, 2) if values else None,
    }


async def server_first_audio(setting: Setting, samples: list[Sample], quick: bool) -> dict:
    """Time to first audio per reply kind on a synthesizer warmed as ``serve`` warms it.

    The samples are said in order, as calls would: a slotted reply's opening
    words are cached once any earlier reply used them ("seen" counts those).
    """
    synth = Synthesizer(setting.config())
    config = Config()
    await synth.preload(fixed_prompts(config))
    warm_texts = fixed_texts(RASA_PROJECT)
    if quick:  # the smoke slice: warm only what it says (Piper takes a minute for all)
        warm_texts = [t for t in warm_texts if t in {s.text for s in samples}]
    await synth.warm(warm_texts)
    warmed = set(fixed_prompts(config)) | set(warm_texts)
    kinds: dict[str, list[float]] = {}
    for sample in samples:
        kinds.setdefault(reply_kind(sample.text, warmed), []).append(
            await first_audio(synth, sample.text)
        )
    await synth.close()
    return {kind: summary(values) for kind, values in sorted(kinds.items())}


async def speed(setting: Setting, samples: list[Sample], quick: bool = False) -> dict:
    """Time to the first audio (nothing cached; a warmed server) and real-time factor."""
    uncached = Synthesizer(setting.config(cache_size=0))
    cached = Synthesizer(setting.config())
    await uncached.synthesize("Warming up.")
    first, first_cached, rtf = [], [], []
    for sample in samples:
        first.append(await first_audio(uncached, sample.text))
        started = time.perf_counter()
        pcm = await uncached.synthesize(sample.text)
        rtf.append((time.perf_counter() - started) / (len(pcm) / SAMPLE_RATE))
        await cached.preload([sample.text])
        first_cached.append(await first_audio(cached, sample.text))
    await uncached.close()
    await cached.close()
    return {
        "first_audio_s_p50": round(statistics.median(first), 4),
        "first_audio_s_p95": round(percentile(first, 0.95), 4),
        "first_audio_cached_s_p50": round(statistics.median(first_cached), 5),
        "first_audio_by_kind": await server_first_audio(setting, samples, quick),
        "rtf_p50": round(statistics.median(rtf), 4),
        "first_piece_words_p50": statistics.median(
            len(_first_piece(uncached, s.text).split()) for s in samples
        ),
    }


def _first_piece(synth: Synthesizer, text: str) -> str:
    pieces = synth._pieces(text)
    return pieces[0].text if pieces else ""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# ------------------------------------------------------------------ sweep


def _wer(trial: tuple[float, Setting]) -> float:
    """Ties keep the earlier setting (``Setting`` has no order)."""
    return trial[0]


async def sweep(
    samples: list[Sample], transcriber: Transcriber, args: argparse.Namespace
) -> tuple[Setting, list[dict]]:
    """Voice/variant at a middle rate, then rate × pitch, then word gap (on a slice)."""
    trials: list[dict] = []

    async def trial(setting: Setting) -> tuple[float, Setting]:
        result = await intelligibility(setting, samples, transcriber)
        trials.append(result)  # with its rows: what each text was heard as
        print(f"  {setting.label}: WER {result['wer']:.3f}", flush=True)
        return result["wer"], setting

    start = Setting("pyttsx3", None, args.espeak_rate, args.espeak_pitch)
    best = min(
        [await trial(replace(start, voice=v)) for v in args.sweep_voices.split(",")], key=_wer
    )
    for rate in map(int, args.sweep_rates.split(",")):
        for pitch in map(int, args.sweep_pitches.split(",")):
            if (rate, pitch) != (best[1].rate_wpm, best[1].pitch):
                best = min(
                    best, await trial(replace(best[1], rate_wpm=rate, pitch=pitch)), key=_wer
                )
    for gap in map(int, args.sweep_gaps.split(",")):
        if gap != best[1].word_gap_ms:
            best = min(best, await trial(replace(best[1], word_gap_ms=gap)), key=_wer)
    return best[1], trials


# ------------------------------------------------------------------- main


async def run(args: argparse.Namespace) -> dict:
    samples = all_texts()
    print(f"{len(samples)} texts the bot can say", flush=True)
    if args.matching:
        samples = [s for s in samples if re.search(args.matching, s.text)]
        print(f"{len(samples)} of them match {args.matching!r}", flush=True)
    if args.quick:
        samples = samples[:: max(1, len(samples) // QUICK_TEXTS)][:QUICK_TEXTS]
    transcriber = Transcriber(SpeechConfig(), prompt=None)
    report: dict = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "quick": args.quick,
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "load_avg_start": [round(x, 2) for x in os.getloadavg()],
        "matching": args.matching,
    }
    best = Setting(
        "pyttsx3", args.espeak_voice, args.espeak_rate, args.espeak_pitch, args.espeak_gap
    )
    if args.sweep:
        print("espeak sweep:", flush=True)
        best, report["sweep"] = await sweep(samples[:: args.sweep_every], transcriber, args)
    report["engines"] = {}
    if args.sweep_only:
        report["best"] = asdict(best)
        transcriber.close()
        return report
    defaults = TtsConfig()
    settings = {
        "pyttsx3-default": Setting(
            "pyttsx3", defaults.voice, defaults.rate_wpm, defaults.pitch, defaults.word_gap_ms
        ),
        "pyttsx3-best": best,
        "piper": Setting("piper"),
    }
    if settings["pyttsx3-default"] == best:
        settings.pop("pyttsx3-default")
    for name, setting in settings.items():
        result = await intelligibility(setting, samples, transcriber)
        result.update(await speed(setting, samples, args.quick))
        report["engines"][name] = result
        kinds = ", ".join(
            f"{k} {v['p50_ms']}/{v['p95_ms']} ms" for k, v in result["first_audio_by_kind"].items()
        )
        print(f"{name} ({setting.label}): WER {result['wer']:.3f}, first audio "
              f"{result['first_audio_s_p50'] * 1000:.0f} ms uncached, cached "
              f"{result['first_audio_cached_s_p50'] * 1000:.1f} ms; served p50/p95 by kind: "
              f"{kinds}; RTF {result['rtf_p50']:.3f}", flush=True)  # fmt: skip
    transcriber.close()
    report["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_TEXTS} texts, no sweep")
    parser.add_argument("--sweep", action="store_true", help="choose espeak voice, rate, pitch")
    parser.add_argument("--sweep-only", action="store_true", help="no full run after it")
    parser.add_argument("--sweep-every", type=int, default=3, help="sweep on every Nth text")
    parser.add_argument("--sweep-voices", default=",".join(SWEEP_VOICES))
    parser.add_argument("--sweep-rates", default=",".join(map(str, SWEEP_RATES)))
    parser.add_argument("--sweep-pitches", default=",".join(map(str, SWEEP_PITCHES)))
    parser.add_argument("--sweep-gaps", default=",".join(map(str, SWEEP_GAPS)))
    parser.add_argument("--espeak-voice", default="gmw/en-US+klatt4", help="'best' espeak voice")
    parser.add_argument("--espeak-rate", type=int, default=160)
    parser.add_argument("--espeak-pitch", type=int, default=50)
    parser.add_argument("--espeak-gap", type=int, default=0, help="word gap in ms")
    parser.add_argument(
        "--matching", default="", help="only texts matching this regex (r'\\d': slotted replies)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.quick:
        args.sweep = False
    report = asyncio.run(run(args))
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"voice-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    path.write_text(json.dumps(report, indent=1))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
