"""Smoke run of the flood benchmark (`scripts/bench_flood.py --quick`): one quiet and one
flooded real SIP/RTP call against `voicebot serve`, the flood being junk from a stranger
into the call's own RTP port.

It asserts behaviour, not timings: the flood really ran, and the flooded caller still got
an answer to every one of their turns.  The latency ratio belongs to recorded runs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from voicebot.config import PROJECT_ROOT

pytestmark = pytest.mark.slow


def test_a_flooded_call_is_answered_turn_for_turn(tmp_path: Path) -> None:
    script = PROJECT_ROOT / "scripts" / "bench_flood.py"
    args = ["--quick", "--rounds", "1", "--kind", "rtp", "--rate", "500", "--out", str(tmp_path)]
    run = subprocess.run(
        [sys.executable, str(script), *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=PROJECT_ROOT,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    [report_path] = tmp_path.glob("flood-rtp-*.json")
    report = json.loads(report_path.read_text())

    quiet, flooded = report["calls"]
    assert quiet["flood_rate"] == 0 and quiet["flood_sent"] == 0
    assert flooded["flood_rate"] == 500 and flooded["flood_sent"] > 1000
    for call in (quiet, flooded):
        assert call["error"] is None
        assert len(call["by_fixture"]) == 4  # every turn got a reply
    assert report["paired"]["n"] == 4
    assert 0 < report["server_cpu_share_median"]["flooded"] < 2
