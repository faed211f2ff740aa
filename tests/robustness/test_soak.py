"""A short slice of ``scripts/soak`` in CI: 8 simultaneous SIPp calls, no call
dropped, no descriptor leaked (the full run is ``scripts/soak --minutes 10``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from harness import soak


@pytest.mark.netns
@pytest.mark.sip
@pytest.mark.timeout(200)
async def test_soak_slice(tmp_path: Path) -> None:
    report = await soak(tmp_path, minutes=0.4, calls=8, sample_s=2.0)
    (tmp_path / "soak.json").write_text(json.dumps(report))
    assert report["sipp_returncode"] == 0, report
    assert report["dropped_calls"] == 0, report
    assert report["max_active"] == 8, report
    assert report["calls_answered"] == report["calls_placed"]
    assert report["fds_after"] <= report["fds_before"], report  # every RTP socket closed
