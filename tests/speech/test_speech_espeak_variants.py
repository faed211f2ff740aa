"""voicebot's own espeak-ng voice variants: found by the real library through a data
folder of symlinks, without touching the system's espeak-ng data."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from voicebot.config import TtsConfig
from voicebot.speech import espeak
from voicebot.speech.tts import Synthesizer


def test_data_folder_links_the_system_data_and_adds_ours(tmp_path: Path) -> None:
    system = tmp_path / "system"
    (system / "voices" / "!v").mkdir(parents=True)
    (system / "voices" / "gmw").mkdir()
    (system / "voices" / "!v" / "klatt4").write_text("klatt 4\n")
    (system / "phontab").write_text("x")
    ours = tmp_path / "ours"
    ours.mkdir()
    (ours / "mine").write_text("name mine\nklatt 4\n")
    root = tmp_path / "cache" / "espeak" / "abc"
    espeak._build_data_folder(system, [ours / "mine"], root)
    data = root / "espeak-ng-data"
    assert (data / "phontab").resolve() == (system / "phontab").resolve()
    assert (data / "voices" / "gmw").is_symlink()
    assert (data / "voices" / "!v" / "klatt4").read_text() == "klatt 4\n"
    assert (data / "voices" / "!v" / "mine").read_text() == "name mine\nklatt 4\n"
    assert not (system / "voices" / "!v" / "mine").exists()  # the system is untouched
    espeak._build_data_folder(system, [ours / "mine"], root)  # built already: no error


def test_an_operators_data_path_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ESPEAK_DATA_PATH", "/somewhere/else")

    class Untouched:
        def __getattr__(self, name: str) -> None:
            raise AssertionError(f"library used: {name}")

    espeak._use_own_variants(Untouched())  # type: ignore[arg-type]
    assert os.environ["ESPEAK_DATA_PATH"] == "/somewhere/else"


@pytest.mark.parametrize("variant", sorted(p.name for p in espeak.OWN_VARIANTS.iterdir()))
async def test_each_shipped_variant_speaks(variant: str) -> None:
    synth = Synthesizer(TtsConfig(voice=f"gmw/en-US+{variant}", cache_size=0))
    assert synth.voice_id == f"gmw/en-us+{variant}"
    pcm = await synth.synthesize("Is there anything else I can help with?")
    plain = Synthesizer(TtsConfig(voice="gmw/en-US+klatt4", cache_size=0))
    reference = await plain.synthesize("Is there anything else I can help with?")
    assert len(pcm) > 0.5 * len(reference) and not np.array_equal(pcm, reference)
