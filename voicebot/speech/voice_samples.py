"""``voicebot demo --voices``: the same replies in every voice, as the caller hears them.

A new user decides between the voices by ear; these files are 8 kHz telephone
audio through μ-law, exactly what a SIP caller gets, one folder per engine.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from voicebot.audio.g711 import ulaw_decode, ulaw_encode
from voicebot.audio.wavfile import write_wav
from voicebot.config import TtsConfig
from voicebot.speech.tts import ENGINES, Synthesizer

SAMPLE_REPLIES = (
    "Hello, this is the bank's automated assistant. How can I help?",
    "Your checking account balance is $1,234.56. Is there anything else I can help with?",
    "Yesterday, $42.17 to Green Grocer.",
    "I can block your debit card ending in 4417 right away. Shall I block it now?",
    "Our branches are open Monday to Friday, 9 a.m. to 5 p.m.",
    "For your security, please say or key in your four digit PIN.",
)


async def write_voice_samples(config: TtsConfig, folder: Path) -> list[str]:
    """Render ``SAMPLE_REPLIES`` with each engine into ``folder/<engine>/``; lines to print."""
    lines = []
    for engine in ENGINES:
        synth = Synthesizer(replace(config, engine=engine, cache_size=0))
        target = folder / engine
        target.mkdir(parents=True, exist_ok=True)
        try:
            for number, text in enumerate(SAMPLE_REPLIES, start=1):
                pcm = await synth.synthesize(text)
                write_wav(target / f"reply-{number:02d}.wav", ulaw_decode(ulaw_encode(pcm)))
        finally:
            await synth.close()
        lines.append(
            f"{engine} ({synth.voice_id}): {target}/reply-01..{len(SAMPLE_REPLIES):02d}.wav"
        )
    (folder / "replies.txt").write_text(
        "".join(f"reply-{n:02d}: {t}\n" for n, t in enumerate(SAMPLE_REPLIES, start=1))
    )
    lines.append(f"the texts: {folder / 'replies.txt'}")
    return lines
