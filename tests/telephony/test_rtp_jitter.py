"""The receive jitter buffer's adaptive depth: shallow on a clean line, deeper after lateness,
and it never skips the caller's speech."""

from __future__ import annotations

import numpy as np

from voicebot.core.frames import FRAME_SAMPLES
from voicebot.telephony.rtp.jitter import JitterBuffer

QUIET = np.zeros(FRAME_SAMPLES, np.int16)


def loud(label: int) -> np.ndarray:
    return np.full(FRAME_SAMPLES, 1000 + label, np.int16)


def frames_until_heard(jb: JitterBuffer, seq: int, pcm: np.ndarray) -> int:
    """Push one packet, then pop until its audio comes out; how many pops that took."""
    jb.push(seq * FRAME_SAMPLES, pcm, ssrc=7)
    for pops in range(1, 30):
        if np.array_equal(jb.pop(), pcm):
            return pops
    raise AssertionError("the packet never played")


def quiet_line(jb: JitterBuffer, packets: int) -> None:
    for seq in range(packets):  # silence between the caller's words, one packet a tick
        jb.push(seq * FRAME_SAMPLES, QUIET, ssrc=7)
        jb.pop()


def test_a_clean_line_settles_two_frames_shallower() -> None:
    fresh = JitterBuffer(target_ms=60, max_ms=200)
    quiet_line(fresh, 5)
    jb = JitterBuffer(target_ms=60, max_ms=200)
    quiet_line(jb, 120)
    assert jb.stats.shrinks == 2 and jb.stats.late == 0 and jb.stats.concealed == 0
    assert jb.buffered_ms <= 40
    # The caller's next word reaches the session 40 ms sooner than at the start.
    assert frames_until_heard(fresh, 5, loud(1)) == 4
    assert frames_until_heard(jb, 120, loud(1)) == 2


def test_speech_is_never_skipped_to_shrink() -> None:
    jb = JitterBuffer(target_ms=60, max_ms=200)
    played = []
    for seq in range(120):
        jb.push(seq * FRAME_SAMPLES, loud(seq), ssrc=7)
        played.append(int(jb.pop()[0]))
    assert jb.stats.shrinks == 0
    assert [p - 1000 for p in played if p] == list(range(117))  # every frame, in order


def test_a_late_packet_makes_playout_hold_so_the_next_ones_are_in_time() -> None:
    """Every tenth packet is 60 ms late (overtaken by the next ones): one loss, then none."""
    jb = JitterBuffer(target_ms=20, max_ms=200)
    arrivals: dict[int, list[int]] = {}
    for seq in range(60):
        arrivals.setdefault(seq + (3 if seq % 10 == 5 else 0), []).append(seq)
    for tick in range(64):
        for seq in arrivals.get(tick, []):
            jb.push(seq * FRAME_SAMPLES, loud(seq), ssrc=7)
        jb.pop()
    assert jb.stats.late == 1 and jb.stats.holds >= 3
