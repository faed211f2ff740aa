"""How scripts/bench_calls.py reads barge-in off the wire: ducked vs stopped, on scripted frames."""

from __future__ import annotations

import importlib.util
import math
import sys

from voicebot.config import PROJECT_ROOT

_spec = importlib.util.spec_from_file_location(
    "bench_calls", PROJECT_ROOT / "scripts/bench_calls.py"
)
assert _spec and _spec.loader
bench_calls = importlib.util.module_from_spec(_spec)
sys.modules["bench_calls"] = bench_calls
_spec.loader.exec_module(bench_calls)

FRAME_S = 0.02
REPLY = [-20.0, -25.0, -70.0, -22.0] * 40  # the reply's frames heard in silence (dBFS)


def call(levels: list[float], onset_frame: int) -> object:
    """A barge call whose reply starts at t=1.0 s and whose caller starts at ``onset_frame``."""
    frames = [(1.0 + k * FRAME_S, db) for k, db in enumerate(levels)]
    return bench_calls.CallResult(
        "x", reply_starts=[1.0], onsets=[0.0, 1.0 + onset_frame * FRAME_S], frames=frames
    )


def test_a_ducked_reply_gives_way_before_it_stops() -> None:
    duck, stop = 5, 15  # frames after the onset (50)
    levels = [
        db - 15 if 50 + duck <= k < 50 + stop else (-math.inf if k >= 50 + stop else db)
        for k, db in enumerate(REPLY)
    ]
    got = bench_calls.gave_way_after(call(levels, 50), REPLY)
    assert got == {"ducked_after_s": round(duck * FRAME_S, 4), "aligned": 1.0}
    audible = [t for t, db in call(levels, 50).frames if db > bench_calls.AUDIBLE_DBFS]
    speech = [t for t, db in call(levels, 50).frames if db > bench_calls.SPEECH_DBFS]
    onset = 1.0 + 50 * FRAME_S
    # ducked speech still counts as the bot talking on the audible measure
    assert bench_calls.stopped_after(audible, onset) == round((stop - 1) * FRAME_S, 4)
    assert bench_calls.stopped_after(speech, onset) <= round((stop - 1) * FRAME_S, 4)


def test_without_ducking_it_gives_way_when_it_stops() -> None:
    levels = [db if k < 63 else -math.inf for k, db in enumerate(REPLY)]
    got = bench_calls.gave_way_after(call(levels, 50), REPLY)
    assert got["ducked_after_s"] == round(13 * FRAME_S, 4)


def test_a_reply_that_talks_on_never_gave_way_and_misalignment_shows() -> None:
    got = bench_calls.gave_way_after(call(list(REPLY), 50), REPLY)
    assert got == {"ducked_after_s": None, "aligned": 1.0}
    shifted = bench_calls.gave_way_after(call([*REPLY[1:], -20.0], 50), REPLY)
    assert shifted["aligned"] is not None and shifted["aligned"] < 0.5
