"""The committed audio fixtures match their manifest and look like a phone line.

Runs without Piper or espeak-ng: it only reads the manifest, the scenarios and the WAVs.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "make_fixtures.py"


def _load_script():
    spec = importlib.util.spec_from_file_location("make_fixtures", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    sys.modules["make_fixtures"] = module
    spec.loader.exec_module(module)
    return module


mf = _load_script()
SETTINGS, ENTRIES = mf.load_manifest()
SPEECH = [e for e in ENTRIES if e.get("voice", "piper") != "none"]


def test_check_command_passes():
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr + result.stdout


def test_every_contract_intent_has_at_least_two_utterances():
    counts = {name: 0 for name in mf.INTENTS}
    for entry in SPEECH:
        counts[entry["intent"]] += 1
    assert {k: v for k, v in counts.items() if v < 2} == {}


def test_scenarios_are_consistent_with_manifest():
    assert mf.check_scenarios(ENTRIES) == []


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e["id"])
def test_wav_is_8khz_ulaw_mono(entry):
    info = sf.info(mf.OUT_DIR / f"{entry['id']}.wav")
    assert (info.samplerate, info.channels, info.subtype) == (8000, 1, "ULAW")


@pytest.mark.parametrize("entry", [e for e in SPEECH if not e.get("noise")], ids=lambda e: e["id"])
def test_speech_has_silence_around_it_and_a_sane_level(entry):
    audio, sr = sf.read(mf.OUT_DIR / f"{entry['id']}.wav", dtype="float64")
    lead = int(0.25 * sr)
    assert np.max(np.abs(audio[:lead])) < 0.01, "speech starts too early"
    assert np.max(np.abs(audio[-int(0.35 * sr) :])) < 0.01, "speech runs to the end"
    level = 20 * np.log10(mf.active_rms(audio, sr))
    expected = SETTINGS.speech_level_dbfs + float(entry.get("gain_db", 0))
    assert abs(level - expected) < 3.0


def test_pauses_are_present_as_silence():
    for entry in (e for e in SPEECH if e.get("pauses")):
        audio, sr = sf.read(mf.OUT_DIR / f"{entry['id']}.wav", dtype="float64")
        frame = sr // 100  # 10 ms
        quiet = np.abs(audio[: len(audio) // frame * frame]).reshape(-1, frame).max(1) < 0.005
        # longest quiet run strictly inside the speech
        loud = np.flatnonzero(~quiet)
        inner = quiet[loud[0] : loud[-1]]
        runs = np.diff(np.flatnonzero(np.diff(np.r_[0, inner.astype(int), 0])))[::2]
        longest = (runs.max() if len(runs) else 0) / 100
        shortest_pause = min(float(p["seconds"]) for p in entry["pauses"])
        assert longest >= shortest_pause - 0.05, entry["id"]


def test_split_text_rejects_a_pause_inside_a_word():
    with pytest.raises(mf.ManifestError):
        mf.split_text("opening hours", [{"after": "open", "seconds": 0.5}])
    assert mf.split_text("a b, c", [{"after": "a b", "seconds": 0.4}]) == [
        ("a b", 0.4),
        ("c", 0.0),
    ]
