"""Smoke run of the voice-to-voice benchmark (`scripts/bench --quick`): one real SIP/RTP call
against `voicebot serve`, plus the start-up call and one pause fixture.

It checks that the harness runs end to end and that its JSON has the expected shape.  It asserts
no timings: latency figures belong to the recorded bench runs, not to CI.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from voicebot.config import PROJECT_ROOT

pytestmark = pytest.mark.slow

STAGES = (
    "endpoint_wait_s",
    "stt_wait_s",
    "dialogue_s",
    "tts_first_audio_s",
    "first_packet_s",
    "stt_s",
    "reply_s",
)


def test_quick_bench_writes_a_complete_report(tmp_path: Path) -> None:
    run = subprocess.run(
        [str(PROJECT_ROOT / "scripts" / "bench"), "--quick", "--skip-stt", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=420,
        cwd=PROJECT_ROOT,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    [report_path] = tmp_path.glob("bench-*.json")
    assert report_path.with_suffix(".png").stat().st_size > 0
    report = json.loads(report_path.read_text())

    assert {"nproc", "cpu_model", "mem_gb"} <= report["machine"].keys()
    assert report["startup"]["first_call_error"] is None
    assert isinstance(report["startup"]["launch_to_first_200_ok_s"], float)

    [level] = report["concurrency"]
    assert level["calls"] == 1 and level["failed_calls"] == []
    latency = level["latency"]
    assert latency["n"] >= 1 and level["turns_without_reply"] == 0
    for key in ("p50_s", "p95_s", "max_s"):
        assert isinstance(latency[key], float)
    assert level["peak_rss_mb"] > 0 and level["cpu_percent_of_one_core"] is not None
    assert "rasa" in level["peak_rss_by_process_mb"]

    breakdown = report["breakdown"]
    assert breakdown["calls_matched"] == 1
    for stage in STAGES:
        assert breakdown[stage]["n"] >= 1 and isinstance(breakdown[stage]["median_s"], float)
    rest = breakdown["unexplained_rtp_s"]
    for part in ("outside_session_s", "inside_session_s"):
        assert rest[part]["n"] >= 1 and isinstance(rest[part]["median_s"], float)
    for share in ("stt_early_share", "semantic_end_share"):
        assert 0.0 <= breakdown[share] <= 1.0
    assert breakdown["stt_runs_per_turn"] >= 1.0

    [endpointing] = report["endpointing"]
    assert endpointing["record_found"] and endpointing["utterances"] == 1
    assert endpointing["fixtures"][0]["caller_turns"] >= 1
    assert 0.0 <= endpointing["false_end_of_turn_rate"] <= 1.0

    assert set(report["targets"]) >= {
        "one_call_p50_le_0.8s",
        "one_call_p95_le_1.2s",
        "startup_le_15s",
        "peak_rss_le_1.5GB",
    }

    # barge-in over SIP: words cut the bot's long reply, line noise does not
    barge = {case["interrupter"]: case for case in report["barge_in"]["cases"]}
    spoken, noise = barge["balance_whats_my"], barge["nonspeech_line_noise_2s"]
    assert spoken["bot_interrupted"] and isinstance(spoken["bot_stopped_after_s"], float)
    assert spoken["heard"] and "balance" in spoken["heard"][0].lower()
    assert not noise["bot_interrupted"] and noise["bot_stopped_after_s"] is None
