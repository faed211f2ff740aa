"""Real-model speech recognition on telephone-band audio (packaged Whisper base)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from voicebot.audio.wavfile import read_audio
from voicebot.core.frames import SAMPLE_RATE, silence
from voicebot.speech import stt
from voicebot.speech.numbers import normalize_digits
from voicebot.speech.stt import (
    Transcriber,
    has_stutter,
    is_near_silent,
    looks_repetitive,
    strip_prompt_echo,
    window_for,
)

Say = Callable[[str], np.ndarray]
pytestmark = pytest.mark.slow


async def test_transcribes_a_telephone_utterance(transcriber: Transcriber, piper_say: Say) -> None:
    result = await transcriber.transcribe(piper_say("I lost my credit card and I need a new one."))
    words = result.text.lower()
    assert "lost" in words and "credit card" in words and "new one" in words
    assert result.window_s == 8.0  # the short window, not the 30 s default
    assert 2.0 < result.audio_s < 4.0
    assert 0.0 < result.elapsed_s < 5.0
    assert result.avg_logprob > -1.0 and 0.0 <= result.no_speech_prob <= 1.0


async def test_spoken_pin_becomes_digits(transcriber: Transcriber, piper_say: Say) -> None:
    result = await transcriber.transcribe(piper_say("My PIN is four three two one."))
    assert "4321" in normalize_digits(result.text)


async def test_silence_gives_empty_text_without_the_model(transcriber: Transcriber) -> None:
    result = await transcriber.transcribe(silence(1.5))
    assert result.text == "" and result.window_s == 0.0
    faint = (np.random.default_rng(1).normal(0, 20, SAMPLE_RATE)).astype(np.int16)  # ≈ -64 dBFS
    assert (await transcriber.transcribe(faint)).text == ""
    assert (await transcriber.transcribe(np.zeros(0, dtype=np.int16))).text == ""


async def test_concurrent_calls_share_one_model(transcriber: Transcriber, piper_say: Say) -> None:
    first, second = await asyncio.gather(
        transcriber.transcribe(piper_say("What are your opening hours?")),
        transcriber.transcribe(piper_say("I want to talk to a real person.")),
    )
    assert "opening hours" in first.text.lower()
    assert "real person" in second.text.lower()


async def test_long_utterance_uses_a_wider_window(transcriber: Transcriber, piper_say: Say) -> None:
    text = (
        "I was charged twice for the same purchase at the grocery store last week, and I would "
        "like the second payment refunded to my checking account as soon as possible."
    )
    result = await transcriber.transcribe(piper_say(text))
    assert result.window_s >= 2 * (result.audio_s - 0.6) - 1
    assert "charged twice" in result.text.lower() and "refunded" in result.text.lower()
    assert not looks_repetitive(result.text)


def test_window_scales_with_the_utterance() -> None:
    assert window_for(1.0, 8.0) == 8.0
    assert window_for(3.9, 8.0) == 8.0
    assert window_for(5.2, 8.0) == 11.0
    assert window_for(12.0, 8.0) == 24.0
    assert window_for(20.0, 8.0) == 30.0
    assert window_for(2.0, 10.0) == 10.0


def test_near_silence() -> None:
    assert is_near_silent(silence(1.0))
    assert is_near_silent(np.full(400, 3000, dtype=np.int16))  # 50 ms: too short to be a turn
    assert not is_near_silent(np.full(SAMPLE_RATE, 3000, dtype=np.int16))


def test_repetition_guard() -> None:
    assert looks_repetitive("I want my balance I want my balance")
    assert looks_repetitive("thank you thank you thank you")
    assert looks_repetitive("no no no no no")
    assert not looks_repetitive("No, no, I meant my savings account.")
    assert not looks_repetitive("Agent. Agent! Agent!")
    assert has_stutter("yes, yes") and not has_stutter("Yes, please.")


def test_prompt_echo_is_stripped() -> None:
    prompt = "Account balance, card, password, recent transactions, PIN."
    assert strip_prompt_echo("account balance, card, password, recent transactions", prompt) == ""
    assert (
        strip_prompt_echo("Card, password, recent transactions. I lost my card.", prompt)
        == "I lost my card."
    )
    assert strip_prompt_echo("What's my account balance?", prompt) == "What's my account balance?"
    assert strip_prompt_echo("anything", None) == "anything"


async def test_repeating_decode_falls_back_to_the_standard_path(
    transcriber: Transcriber, piper_say: Say, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unit test of the guard: force the short-window decoder to loop."""
    looping = stt._Decoded("I lost my card I lost my card I lost my card", 14, -0.2, 0.01)
    monkeypatch.setattr(transcriber, "_generate", lambda *_args, **_kw: looping)
    result = await transcriber.transcribe(piper_say("I lost my card."))
    assert result.window_s == 30.0
    assert result.text.lower().rstrip(".") == "i lost my card"


async def test_prompt_echo_is_retried_without_the_prompt(
    transcriber: Transcriber, piper_say: Say, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unit test of the echo guard: the prompted decode returns the prompt itself."""
    real = transcriber._generate
    prompted: list[bool] = []

    def echo_when_prompted(encoded: object, prompt: list[int], max_new: int) -> stt._Decoded:
        prompted.append(len(prompt) > 5)
        if len(prompt) > 5:
            return stt._Decoded(transcriber.prompt or "", 5, -0.3, 0.01)  # under the cap
        return real(encoded, prompt, max_new)

    monkeypatch.setattr(transcriber, "_generate", echo_when_prompted)
    result = await transcriber.transcribe(piper_say("What are your opening hours?"))
    assert prompted == [True, False]
    assert result.window_s == 8.0
    assert "opening hours" in result.text.lower()


async def test_a_noisy_pin_the_prompt_misreads_is_read_without_it(transcriber: Transcriber) -> None:
    """Captured from a fixture call: with the domain prompt Whisper reads "431," and judges
    it no speech (0.62, log-prob -1.35); without the prompt it hears "4-3-2-1"."""
    pcm = read_audio(Path(__file__).parent / "data" / "noisy_pin_misread_with_prompt.wav")
    assert transcriber.prompt  # the production set-up: with the domain prompt
    result = await transcriber.transcribe(pcm)
    assert normalize_digits(result.text).replace("-", "").replace(" ", "") == "4321"
