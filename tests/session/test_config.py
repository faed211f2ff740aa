import pytest

from voicebot.config import ConfigError, load_config


def test_defaults_need_no_file(monkeypatch) -> None:
    monkeypatch.delenv("VOICEBOT_CONFIG", raising=False)
    config = load_config()
    assert "automated assistant" in config.session.disclosure
    assert "press zero" in config.session.disclosure


def test_file_overrides_a_subset(tmp_path) -> None:
    path = tmp_path / "voicebot.toml"
    path.write_text(
        '[session]\ndisclosure = "This is the automated line. Press 0 for a person."\n'
        "[speech]\ncpu_threads = 2\n"
    )
    config = load_config(path)
    assert config.session.disclosure.startswith("This is the automated line")
    assert config.speech.cpu_threads == 2
    assert config.speech.beam_size == 1  # untouched default


def test_disclosure_cannot_be_skipped(tmp_path) -> None:
    path = tmp_path / "voicebot.toml"
    path.write_text('[session]\ndisclosure = "  "\n')
    with pytest.raises(ConfigError, match="disclosure"):
        load_config(path)


def test_unknown_setting_is_an_error(tmp_path) -> None:
    path = tmp_path / "voicebot.toml"
    path.write_text("[speech]\nmodel_size = 'large'\n")
    with pytest.raises(ConfigError, match=r"speech\.model_size"):
        load_config(path)
