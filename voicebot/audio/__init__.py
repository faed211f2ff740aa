"""Telephone-band audio: G.711, resampling, file I/O, Silero VAD and endpointing.

Everything here speaks 8 kHz int16 mono (``voicebot.core.frames``).  The VAD and
endpointer are imported from their modules (``voicebot.audio.vad``,
``voicebot.audio.endpointing``) so that using a codec does not load onnxruntime.
"""

from voicebot.audio.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from voicebot.audio.resample import resample
from voicebot.audio.wavfile import AudioFileError, read_audio, write_wav

__all__ = [
    "AudioFileError",
    "alaw_decode",
    "alaw_encode",
    "read_audio",
    "resample",
    "ulaw_decode",
    "ulaw_encode",
    "write_wav",
]
