"""The gain stage transports use to duck the bot's voice, and the outputs that apply it."""

from __future__ import annotations

import numpy as np
import pytest

from voicebot.audio.gain import GainStage, db_to_ratio
from voicebot.core.frames import FRAME_SAMPLES
from voicebot.telephony.rtp.session import PlayoutBuffer


def level_db(pcm: np.ndarray) -> float:
    return 20 * np.log10(np.sqrt(np.mean(pcm.astype(np.float64) ** 2)))


def tone(n: int = FRAME_SAMPLES, amplitude: int = 10000) -> np.ndarray:
    return (amplitude * np.sin(np.arange(n) * 0.3)).astype(np.int16)


def test_unity_passes_the_same_array_through() -> None:
    pcm = tone()
    assert GainStage().apply(pcm) is pcm


def test_a_new_gain_ramps_in_over_one_chunk_then_holds() -> None:
    stage = GainStage()
    stage.set_db(-15)
    ramp = stage.apply(np.full(160, 10000, np.int16))
    assert ramp[0] == 10000 and ramp[-1] == round(10000 * db_to_ratio(-15))
    assert np.all(np.diff(ramp.astype(int)) <= 0)  # no step: it glides down
    held = stage.apply(tone())
    assert level_db(tone()) - level_db(held) == pytest.approx(15, abs=0.05)
    stage.set_db(0)
    assert not stage.unity  # still ducked until audio passes
    stage.apply(tone())  # the ramp back up
    assert stage.unity


def test_reset_is_immediate_and_gain_never_wraps() -> None:
    stage = GainStage()
    stage.set_db(12)  # louder than written: clipped, not wrapped round
    stage.apply(tone())
    loud = stage.apply(np.full(160, 30000, np.int16))
    assert loud.min() == 32767
    stage.reset()
    pcm = tone()
    assert stage.apply(pcm) is pcm


def test_playout_buffer_ducks_from_the_next_packet_and_restores() -> None:
    """The SIP output: queued audio plays quieter from the next 20 ms frame, then back."""
    out = PlayoutBuffer()
    out.write(tone(FRAME_SAMPLES * 6))
    full = out.next_frame()
    out.set_gain(-15)
    out.next_frame()  # ramps down
    ducked = out.next_frame()
    assert level_db(full) - level_db(ducked) == pytest.approx(15, abs=0.3)
    out.set_gain(0)
    out.next_frame()  # ramps up
    assert level_db(out.next_frame()) == pytest.approx(level_db(full), abs=0.3)


def test_playout_buffer_clear_keeps_the_gain_for_whoever_sets_it() -> None:
    out = PlayoutBuffer()
    out.set_gain(-20)
    out.clear()
    out.write(tone(FRAME_SAMPLES * 3))
    out.next_frame()
    assert level_db(out.next_frame()) < level_db(tone()) - 19
