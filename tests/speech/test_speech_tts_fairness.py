"""Calls share one espeak-ng engine: one call's long answer must not make
another call's first sentence wait behind all of it (real pyttsx3 + espeak-ng)."""

from __future__ import annotations

import asyncio
import time
import uuid

from voicebot.config import TtsConfig
from voicebot.speech.tts import Synthesizer


def fresh(words: str) -> str:
    """A sentence no cache has seen (every run makes the engine work)."""
    return f"{words} reference {uuid.uuid4().hex[:6]}."


async def test_a_second_call_waits_for_at_most_one_sentence_of_the_first() -> None:
    synth = Synthesizer(TtsConfig(cache_size=0))
    long_answer = " ".join(
        fresh("Here is a long sentence about your recent transactions at the bank")
        for _ in range(5)
    )
    finished: list[tuple[str, float]] = []

    async def first_call() -> None:
        async for _ in synth.synthesize_sentences(long_answer):
            finished.append(("A", time.perf_counter()))
            await asyncio.sleep(0)  # the sentence plays

    async def second_call() -> None:
        await asyncio.sleep(0.01)  # asks just after the first call started
        async for _ in synth.synthesize_sentences(fresh("Hello")):
            finished.append(("B", time.perf_counter()))

    await asyncio.gather(first_call(), second_call())
    order = [who for who, _ in sorted(finished, key=lambda f: f[1])]
    assert order.count("A") == 5 and order.count("B") == 1
    # B's sentence was queued behind A's first (and at most the one A prefetched),
    # not behind all five.
    assert order.index("B") <= 2, order
