"""A slow engine's first audio: new sentences split into a cached opening and the rest.

Real Piper where the timing claim is made (the opening comes from the cache, not
from the engine); pure functions for the splitting rules.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from voicebot.config import TtsConfig
from voicebot.core.frames import SAMPLE_RATE
from voicebot.dialogue.responses import fixed_texts, knowledge_answers
from voicebot.speech.tts import Synthesizer, phrases, trim_tail


@pytest.mark.parametrize(
    ("sentence", "pieces"),
    [
        (
            "Your checking account balance is $15,020 and your savings are $1.",
            ["Your checking account balance is", "$15,020 and your savings are $1."],
        ),
        (
            "Your card ending in 3310 is already blocked, so nobody can use it.",
            ["Your card ending in", "3310 is already blocked, so nobody can use it."],
        ),
        (
            "New cards usually arrive within five working days, and up to ten abroad.",
            ["New cards usually arrive within five working days", "and up to ten abroad."],
        ),
        ("Yesterday, $42.17 to Green Grocer.", ["Yesterday, $42.17 to Green Grocer."]),
        ("I'm sorry, I can't find that.", ["I'm sorry, I can't find that."]),
        ("Is there anything else I can help with?", ["Is there anything else I can help with?"]),
        ("Here are your last 3 transactions.", ["Here are your last", "3 transactions."]),
    ],
)
def test_phrases_split_before_the_first_number_or_after_a_clause(
    sentence: str, pieces: list[str]
) -> None:
    assert phrases(sentence) == pieces


def test_trim_tail_keeps_the_voice_and_a_short_pause() -> None:
    voice = np.full(800, 5000, dtype=np.int16)
    pcm = np.concatenate([voice, np.zeros(4000, dtype=np.int16)])
    trimmed = trim_tail(pcm)
    assert len(trimmed) == 800 + int(0.06 * SAMPLE_RATE)
    assert len(trim_tail(np.zeros(100, dtype=np.int16))) == 100  # all silence: left alone


def test_fixed_texts_are_the_replies_without_slots_and_the_knowledge_answers(
    tmp_path: Path,
) -> None:
    (tmp_path / "domain.yml").write_text(
        "responses:\n"
        "  utter_hi:\n    - text: Hello there.\n    - text: Hi.\n"
        "  utter_card:\n    - text: Your card ending in {last4} is blocked.\n"
        "  utter_x:\n    - text: '{name}, welcome.'\n    - image: a.png\n"
    )
    (tmp_path / "knowledge.yml").write_text(
        "topics:\n  fees:\n    answer: There is no monthly fee.\n"
    )
    assert fixed_texts(tmp_path) == [
        "Hello there.", "Hi.", "Your card ending in", "There is no monthly fee.",
    ]  # fmt: skip
    (tmp_path / "knowledge.yml").write_text("topics: [broken")
    assert knowledge_answers(tmp_path) == []  # training reports it; warming just has less


def test_the_shipped_project_has_fixed_texts() -> None:
    from voicebot.dialogue.paths import RASA_PROJECT_DIR

    texts = fixed_texts(RASA_PROJECT_DIR)
    assert len(texts) > 30 and not any("{" in t for t in texts)


async def test_espeak_keeps_whole_sentences(synthesizer: Synthesizer) -> None:
    text = "Your card ending in 4417 is blocked."
    chunks = [c async for c in synthesizer.synthesize_sentences(text)]
    assert len(chunks) == 1


async def test_piper_plays_a_cached_opening_while_it_renders_the_rest(
    piper_synthesizer: Synthesizer,
) -> None:
    synth = piper_synthesizer
    await synth.warm(["Your checking account balance is"])
    calls = synth.engine_calls
    assert await synth.warm(["Your checking account balance is"]) == 0  # already there
    text = "Your checking account balance is $1,234.56. Is there anything else?"
    started = time.perf_counter()
    stream = synth.synthesize_sentences(text)
    chunks = []
    async for chunk in stream:
        chunks.append((time.perf_counter() - started, chunk))
    first_s, opening = chunks[0]
    assert first_s < 0.05, first_s  # from the cache, not from Piper
    assert len(chunks) == 3 and synth.engine_calls == calls + 2
    # The opening's end-of-utterance pause is trimmed: the amount follows on.
    whole_opening = await synth.synthesize("Your checking account balance is")
    assert len(opening) < len(whole_opening)
    # Said again, the whole sentence splits the same way and is all cached.
    again = [c async for c in synth.synthesize_sentences(text)]
    assert synth.engine_calls == calls + 2
    assert [len(c) for c in again] == [len(c) for _, c in chunks]


async def test_a_restarted_synthesizer_plays_kept_sentences_without_the_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VOICEBOT_CACHE", str(tmp_path))
    text = "Thanks for holding. Your balance is $42.17."
    first = Synthesizer(TtsConfig(voice="gmw/en-us"))
    said = [c async for c in first.synthesize_sentences(text)]
    assert first.engine_calls == 2
    kept = list((tmp_path / "tts").rglob("*.npy"))
    assert len(kept) == 1  # the amount is personal: never written to disk

    again = Synthesizer(TtsConfig(voice="gmw/en-us"))
    assert await again.warm([text]) == 1  # only the amount needs the engine
    assert np.array_equal(await again.synthesize("Thanks for holding."), said[0])
    other_voice = Synthesizer(TtsConfig(voice="gmw/en-us", pitch=20))
    await other_voice.synthesize("Thanks for holding.")
    assert other_voice.engine_calls == 1  # another setting never plays this recording

    kept[0].write_bytes(b"not an array")
    broken = Synthesizer(TtsConfig(voice="gmw/en-us"))
    assert len(await broken.synthesize("Thanks for holding.")) > 0  # a miss, not an error
    assert broken.engine_calls == 1
    off = Synthesizer(TtsConfig(voice="gmw/en-us", disk_cache=False))
    await off.synthesize("Thanks for holding.")
    assert off.engine_calls == 1


def test_the_disk_cache_is_bounded(tmp_path: Path) -> None:
    from voicebot.speech.rendered_cache import RenderedCache

    cache = RenderedCache(tmp_path / "voice", max_files=2)
    pcm = np.ones(80, dtype=np.int16)
    for text in ("one", "two", "three"):
        cache.put(text, pcm)
    assert len(list((tmp_path / "voice").glob("*.npy"))) == 2
    assert cache.has("two") and not cache.has("three")
    again = RenderedCache(tmp_path / "voice", max_files=2)  # counts what is there
    again.put("four", pcm)
    assert not again.has("four") and np.array_equal(again.get("one"), pcm)
