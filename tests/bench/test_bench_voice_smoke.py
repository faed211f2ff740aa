"""Smoke run of the voice benchmark (`scripts/bench_voice.py --quick`).

A bounded slice of the bot's texts through both engines, the telephone band and
Whisper.  It checks the report is complete and sane; it asserts no timings or WER
targets (those belong to recorded runs, not to CI).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from voicebot.config import PROJECT_ROOT

pytestmark = pytest.mark.slow


def test_quick_voice_bench_writes_a_sane_report(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "scripts" / "bench_voice.py"), "--quick",
         "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=420, cwd=PROJECT_ROOT, env=os.environ.copy(),
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    [path] = tmp_path.glob("voice-*.json")
    report = json.loads(path.read_text())
    assert report["quick"] is True
    engines = report["engines"]
    assert {"pyttsx3-best", "piper"} <= set(engines)
    for result in engines.values():
        assert 3 <= result["texts"] == len(result["rows"]) <= 6
        assert 0.0 <= result["wer"] <= 2.0 and result["words"] > 20
        assert all(row["text"] and isinstance(row["heard"], str) for row in result["rows"])
        assert 0 < result["first_audio_s_p50"] < 30 and 0 < result["rtf_p50"] < 10
        assert 0 <= result["first_audio_cached_s_p50"] <= result["first_audio_s_p50"]
        kinds = result["first_audio_by_kind"]
        assert sum(k["n"] for k in kinds.values()) == result["texts"]
        # A fixed reply is warmed as at start-up: it starts from the cache.
        assert kinds["fixed"]["n"] >= 1 and kinds["fixed"]["p50_ms"] < 50, kinds
    # Every kind of text the bot says is in the slice's source pool.
    sources = {row["source"].split(":")[0] for r in engines.values() for row in r["rows"]}
    assert len(sources) >= 2, sources
    # The natural voice is heard at all: most of its words come back.
    assert engines["piper"]["wer"] < 0.5, engines["piper"]["rows"]
