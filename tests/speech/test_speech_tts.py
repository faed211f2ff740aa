"""Real pyttsx3 + espeak-ng synthesis: format, cache, pitfalls, and a round trip through STT."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest

from voicebot.audio.g711 import ulaw_decode, ulaw_encode
from voicebot.config import TtsConfig
from voicebot.core.frames import SAMPLE_RATE, silence
from voicebot.speech import espeak, tts
from voicebot.speech.stt import Transcriber
from voicebot.speech.tts import Synthesizer, TtsError, split_sentences


async def test_returns_telephone_audio_of_plausible_length(synthesizer: Synthesizer) -> None:
    text = "Your balance is one hundred and twenty dollars."
    pcm = await synthesizer.synthesize(text)
    assert pcm.dtype == np.int16 and pcm.ndim == 1
    seconds = len(pcm) / SAMPLE_RATE
    words = len(text.split())
    expected = words / synthesizer.config.rate_wpm * 60  # 8 words at 150 wpm ≈ 3.2 s
    assert 0.5 * expected < seconds < 2.0 * expected
    assert np.abs(pcm.astype(np.int32)).max() > 3000


async def test_cache_hit_returns_the_same_array_without_the_engine(
    synthesizer: Synthesizer, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = await synthesizer.synthesize("Is there anything else I can help with?")

    def engine_must_not_run(*_args: object) -> np.ndarray:
        raise AssertionError("cache miss: espeak-ng was called again")

    monkeypatch.setattr(synthesizer.engine, "submit", engine_must_not_run)
    again = await synthesizer.synthesize("Is there anything else  I can help with?")
    assert again is first
    assert not again.flags.writeable  # shared audio cannot be modified by a caller


async def test_blank_text_gives_empty_audio_without_the_engine(synthesizer: Synthesizer) -> None:
    calls = synthesizer.engine_calls
    for text in ("", "   ", "\n\t", "...", "?!"):
        pcm = await synthesizer.synthesize(text)
        assert pcm.dtype == np.int16 and len(pcm) == 0
        assert [chunk async for chunk in synthesizer.synthesize_sentences(text)] == []
    assert synthesizer.engine_calls == calls


async def test_back_to_back_texts_give_fresh_audio() -> None:
    uncached = Synthesizer(TtsConfig(voice="en-us", cache_size=0))
    first = await uncached.synthesize("Goodbye.")
    second = await uncached.synthesize("Your card has been blocked and a new one is on its way.")
    third = await uncached.synthesize("Goodbye.")
    assert len(second) > 2 * len(first)
    assert abs(len(third) - len(first)) < 0.05 * SAMPLE_RATE
    assert uncached.engine_calls == 3


async def test_sentences_stream_in_order(synthesizer: Synthesizer) -> None:
    text = "Thanks for calling. Your card is now blocked. Is there anything else?"
    chunks = [chunk async for chunk in synthesizer.synthesize_sentences(text)]
    assert len(chunks) == 3
    singles = [await synthesizer.synthesize(s) for s in split_sentences(text)]
    assert all(c is s for c, s in zip(chunks, singles, strict=True))  # shared sentence cache


async def test_leaving_the_stream_early_is_clean(synthesizer: Synthesizer) -> None:
    stream = synthesizer.synthesize_sentences("One sentence. Two sentences. Three sentences here.")
    async for first in stream:
        assert len(first) > 0
        break
    await stream.aclose()
    assert len(await synthesizer.synthesize("Still working after a barge-in.")) > 0


async def test_preload_fills_the_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    synth = Synthesizer(TtsConfig())
    prompts = ["Hello, you're speaking with the automated assistant. How can I help?", "Sorry."]
    await synth.preload(prompts)
    calls = synth.engine_calls
    for text in prompts:
        await synth.synthesize(text)
        _ = [chunk async for chunk in synth.synthesize_sentences(text)]
    assert synth.engine_calls == calls


def test_unknown_voice_is_a_clear_error() -> None:
    with pytest.raises(TtsError, match=r"unknown TTS voice 'no-such-voice'.*gmw/en-us"):
        Synthesizer(TtsConfig(voice="no-such-voice"))


def test_voice_matches_id_name_or_language() -> None:
    for wanted in ("gmw/en-US", "English (America)", "en-us"):
        assert Synthesizer(TtsConfig(voice=wanted)).voice_id == "gmw/en-us"
    assert Synthesizer(TtsConfig(voice=None)).voice_id == "gmw/en"  # espeak-ng's default
    assert Synthesizer(TtsConfig()).voice_id == "gmw/en-us+klatt4"  # the measured best


async def test_engine_does_not_print(
    synthesizer: Synthesizer, capfd: pytest.CaptureFixture[str]
) -> None:
    await synthesizer.synthesize("Nothing should appear on standard output.")
    assert "Audio saved" not in capfd.readouterr().out


def test_missing_espeak_library_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(espeak, "ESPEAK_LIBRARY", "libespeak-ng-not-here.so.9")
    worker = espeak._EspeakWorker()
    try:
        with pytest.raises(TtsError, match="apt-get install espeak-ng libespeak-ng1"):
            worker.submit(worker.engine).result()
    finally:
        worker._pool.shutdown()


def test_sentence_splitting() -> None:
    assert split_sentences("Hello. How are you? Fine!") == ["Hello.", "How are you?", "Fine!"]
    assert split_sentences("Call Dr. Smith at 5 p.m. today.") == ["Call Dr. Smith at 5 p.m. today."]
    assert split_sentences("  Your PIN   was 4321.  Thanks. ") == ["Your PIN was 4321.", "Thanks."]
    assert split_sentences("") == []


@pytest.mark.slow
async def test_round_trip_tts_to_stt(synthesizer: Synthesizer, transcriber: Transcriber) -> None:
    """What the bot says is intelligible on a G.711 line to the same recogniser."""
    for text, key_words in (
        ("I lost my credit card.", ("lost", "credit card")),
        ("What are your opening hours?", ("opening hours",)),
    ):
        pcm = await synthesizer.synthesize(text)
        line = np.concatenate([silence(0.3), ulaw_decode(ulaw_encode(pcm)), silence(0.3)])
        heard = (await transcriber.transcribe(line)).text.lower()
        assert all(word in heard for word in key_words), heard


def test_voice_variant_is_checked() -> None:
    assert Synthesizer(TtsConfig(voice="en-us+m3")).voice_id == "gmw/en-us+m3"
    with pytest.raises(TtsError, match=r"unknown espeak-ng variant 'nosuch'.*m3"):
        Synthesizer(TtsConfig(voice="en-us+nosuch"))


async def test_pitch_changes_the_voice() -> None:
    low = Synthesizer(TtsConfig(voice="en-us", pitch=20, cache_size=0))
    high = Synthesizer(TtsConfig(voice="en-us", pitch=80, cache_size=0))
    text = "Your card is blocked."
    assert dominant_hz(await high.synthesize(text)) > 1.2 * dominant_hz(await low.synthesize(text))


def dominant_hz(pcm: np.ndarray) -> float:
    """Median pitch of the loud 40 ms frames, by autocorrelation (60-400 Hz)."""
    x = pcm.astype(np.float64)
    size = int(0.04 * SAMPLE_RATE)
    frames = [x[i : i + size] for i in range(0, len(x) - size, size)]
    loud = [f for f in frames if np.sqrt(np.mean(f**2)) > 0.3 * np.sqrt(np.mean(x**2))]
    lags = range(SAMPLE_RATE // 400, SAMPLE_RATE // 60)
    pitches = [
        SAMPLE_RATE / max(lags, key=lambda lag, f=f: float(np.dot(f[:-lag], f[lag:]))) for f in loud
    ]
    return float(np.median(pitches))


def test_unknown_engine_is_a_clear_error() -> None:
    with pytest.raises(TtsError, match=r"unknown \[tts\] engine 'festival'.*pyttsx3, piper"):
        tts.open_engine(TtsConfig(engine="festival"))


def test_missing_piper_package_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "piper", None)  # import piper → ImportError
    with pytest.raises(TtsError, match=r"needs piper-tts; pip install 'piper-tts"):
        tts.open_engine(TtsConfig(engine="piper"))


def test_missing_piper_voice_file_is_a_clear_error(tmp_path: Path) -> None:
    config = TtsConfig(engine="piper", piper_model=str(tmp_path / "voice.onnx"))
    with pytest.raises(TtsError, match="piper voice not found"):
        tts.open_engine(config)


async def test_piper_engine_speaks_in_the_telephone_band(
    piper_synthesizer: Synthesizer,
) -> None:
    pcm = await piper_synthesizer.synthesize("Your card ending in 4417 is blocked.")
    assert pcm.dtype == np.int16 and 1.5 < len(pcm) / SAMPLE_RATE < 5.0
    assert piper_synthesizer.voice_id == "en_US-joe-medium.onnx".removesuffix(".onnx")
    assert "piper" not in sys.modules or piper_synthesizer.engine.name == "piper"


@pytest.mark.slow
async def test_amounts_and_card_digits_come_back_from_the_line(
    piper_synthesizer: Synthesizer, transcriber: Transcriber
) -> None:
    """The written amount, spoken as words, is heard as the same amount.

    Only the natural voice, and the card ending only as "some digits": Whisper
    hears Piper's "four four one seven" as "414-17" now and then (Piper varies a
    little per run), and espeak's digits far more often; scripts/bench_voice
    measures both voices over every reply instead.
    """
    text = "Your card ending in 4417 is blocked. You paid $42.17."
    pcm = await piper_synthesizer.synthesize(text)
    line = np.concatenate([silence(0.3), ulaw_decode(ulaw_encode(pcm)), silence(0.3)])
    heard = (await transcriber.transcribe(line)).text
    assert "$42.17" in heard or "42 dollars and 17 cents" in heard, heard
    assert re.search(r"ending in \d[\d ,-]{2,}\d", heard), heard


async def test_word_gap_lengthens_the_pauses_between_words() -> None:
    text = "Please say or key in your four digit PIN."
    plain = Synthesizer(TtsConfig(voice="en-us", cache_size=0))
    gapped = Synthesizer(TtsConfig(voice="en-us", word_gap_ms=50, cache_size=0))
    first = len(await plain.synthesize(text))
    extra_s = (len(await gapped.synthesize(text)) - first) / SAMPLE_RATE
    assert 0.25 < extra_s < 1.2  # nine words, eight gaps of 50 ms (stretched with the rate)
    # The shared engine goes back to no gap for the next synthesizer's text.
    assert abs(len(await plain.synthesize(text)) - first) < 0.1 * SAMPLE_RATE
