"""Old import path of :mod:`voicebot.core.frames`, kept only while voicebot/telephony/sip
and rtp are being split; delete once they import ``voicebot.core.frames``."""

from voicebot.core.frames import (  # noqa: F401
    FRAME_MS,
    FRAME_SAMPLES,
    SAMPLE_RATE,
    AudioFrame,
    DtmfFrame,
    HangupFrame,
    InputFrame,
)
