"""Intent metadata comes from the Rasa project's intents.yml, checked at start-up."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from voicebot.config import DEFAULT_RASA_PROJECT, ConfigError, load_config
from voicebot.dialogue.intents import IntentCatalogError, load_intents
from voicebot.transfer.config import TransferConfig


@pytest.fixture
def project(tmp_path: Path) -> Path:
    copy = tmp_path / "bot"
    copy.mkdir()
    for name in ("domain.yml", "intents.yml"):
        shutil.copy(DEFAULT_RASA_PROJECT / name, copy / name)
    return copy


def _config_for(project: Path, tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "voicebot.toml"
    path.write_text(f'[dialogue]\nproject_dir = "{project}"\n{extra}')
    return path


def test_shipped_catalog_matches_the_policy_defaults() -> None:
    """The bank's intents.yml says what the transfer policy's built-in defaults say."""
    catalog, defaults = load_intents(DEFAULT_RASA_PROJECT), TransferConfig()
    assert catalog.complexity == dict(defaults.complexity_intents)
    assert set(catalog.requests) == set(defaults.request_intents)
    assert list(catalog.keywords.items()) == list(dict(defaults.request_keywords).items())
    assert {"check_balance", "provide_pin", "thank_you"} <= catalog.progress
    assert catalog.labels["lost_card"] == "a lost or stolen card"
    assert catalog.pin_required == {
        "check_balance", "recent_transactions", "lost_card", "reset_password"
    }  # fmt: skip


def test_a_new_intent_needs_no_python(project: Path, tmp_path: Path) -> None:
    domain = project / "domain.yml"
    domain.write_text(domain.read_text().replace("intents:\n", "intents:\n  - mortgage_rates\n", 1))
    with (project / "intents.yml").open("a") as f:
        f.write(
            "  mortgage_rates:\n    label: mortgage rates\n    progress: true\n"
            "    request: true\n    keywords: [mortgage]\n"
        )
    config = load_config(_config_for(project, tmp_path))
    assert config.intents.labels["mortgage_rates"] == "mortgage rates"
    assert "mortgage_rates" in config.intents.progress
    assert "mortgage_rates" in config.transfer.request_intents
    assert config.transfer.request_keywords["mortgage_rates"] == ("mortgage",)


def test_config_file_still_wins(project: Path, tmp_path: Path) -> None:
    extra = '[transfer]\nrequest_intents = ["check_balance"]\n'
    config = load_config(_config_for(project, tmp_path, extra))
    assert list(config.transfer.request_intents) == ["check_balance"]
    assert "complaint" in config.transfer.complexity_intents  # not overridden: from the YAML


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("  chek_balance: {progress: true}\n", ["'chek_balance'", "domain.yml", "check_balance"]),
        ("  greet: {progres: true}\n", ["greet", "'progres'", "progress"]),
        ("  greet: {progress: yes please}\n", ["greet.progress"]),
        ("  greet: {keywords: hello}\n", ["greet.keywords"]),
    ],
)
def test_bad_catalog_is_one_line(project: Path, tmp_path: Path, text: str, words) -> None:
    (project / "intents.yml").write_text("intents:\n" + text)
    with pytest.raises(IntentCatalogError) as err:
        load_intents(project)
    for word in words:
        assert word in str(err.value)
    with pytest.raises(ConfigError, match=r"intents\.yml"):
        load_config(_config_for(project, tmp_path))


def test_intents_are_not_a_config_setting(tmp_path: Path) -> None:
    path = tmp_path / "voicebot.toml"
    path.write_text("[intents]\nx = 1\n")
    with pytest.raises(ConfigError, match="unknown setting intents"):
        load_config(path)
