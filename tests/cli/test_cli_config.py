"""Bad configuration values stop voicebot at start-up: one line naming the key, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.conftest import voicebot_process
from voicebot.config import ConfigError, default_database, load_config

BAD_CONFIGS = [
    # (TOML, words the one-line error must contain)
    ('[session]\nsilence_prompt_s = "eight"', ["session.silence_prompt_s", "number", "'eight'"]),
    ('[sip]\nlisten_port = "5193"', ["sip.listen_port", "whole number", "'5193'"]),
    ("[endpointing]\nend_silence_s = -1", ["endpointing.end_silence_s", "> 0"]),
    ("[endpointing]\npre_roll_s = -0.1", ["endpointing.pre_roll_s", ">= 0"]),
    ("[http]\nlisten_port = 70000", ["http.listen_port", "<= 65535"]),
    ("[speech]\ncpu_threads = 0", ["speech.cpu_threads", ">= 1"]),
    ("[endpointing]\nsemantic_end_of_turn = 1", ["semantic_end_of_turn", "true or false"]),
    ("[endpointing]\npause_s = 2.0", ["endpointing.pause_s", "end_silence_s"]),
    ("[session]\nsilense_prompt_s = 3", ["session.silense_prompt_s", "session.silence_prompt_s"]),
    ("[sesion]\nmax_call_s = 60", ["sesion", "did you mean session"]),
    ('[transfer]\nexplicit_phrases = "agent"', ["transfer.explicit_phrases", "list"]),
    ('[transfer]\nno_progress_reason = "bored"', ["transfer.no_progress_reason", "complexity"]),
    ('[transfer]\ncomplexity_weights = {complaint = "high"}', ["complexity_weights.complaint"]),
    ("[handoff]\nring_timeout_s = 0", ["ring_timeout_s", "positive"]),
    (
        '[[handoff.agents]]\nname = "bob"\nsip_urri = "sip:bob@127.0.0.1"',
        ["handoff.agents[0].sip_urri", "sip_uri"],
    ),
    ('[[handoff.agents]]\nname = "bob"', ["handoff.agents[0]", "sip_uri"]),
    ("[sip]\nrtp_port_min = 30000\nrtp_port_max = 20000", ["rtp_port_min"]),
    ("[media_stream_transfer]\ntimeout_s = 0", ["timeout_s"]),
    ("speech = 3", ["speech", "table"]),
    ("[session\n", ["cannot read"]),
]


@pytest.mark.parametrize(("toml", "words"), BAD_CONFIGS)
def test_bad_config_is_one_line_exit_2_before_models(cli, tmp_path: Path, toml, words) -> None:
    path = tmp_path / "voicebot.toml"
    path.write_text(toml + "\n")
    result = cli("--config", str(path), "simulate", "dtmf:1")
    assert result.code == 2
    line = result.error_line
    assert line.startswith(f"voicebot: config {path}: ")
    for word in words:
        assert word in line


def test_the_real_command_names_the_key(tmp_path: Path) -> None:
    path = tmp_path / "voicebot.toml"
    path.write_text('[session]\nsilence_prompt_s = "eight"\n')
    result = voicebot_process("--config", str(path), "serve")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"voicebot: config {path}: session.silence_prompt_s must be a number, got 'eight'"
    ]


def test_good_values_are_normalised(tmp_path: Path) -> None:
    path = tmp_path / "voicebot.toml"
    path.write_text("[session]\nsilence_prompt_s = 5\n[sip]\nlisten_port = 5193\n")
    config = load_config(path)
    assert config.session.silence_prompt_s == 5.0 and isinstance(
        config.session.silence_prompt_s, float
    )
    assert config.sip.listen_port == 5193


def test_environment_overrides_are_checked_too(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VOICEBOT_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(ConfigError, match=r"missing\.toml: cannot read"):
        load_config()


def test_every_default_passes_its_own_checks(monkeypatch) -> None:
    monkeypatch.delenv("VOICEBOT_CONFIG", raising=False)
    load_config()  # a default out of its own range would stop every start-up


def test_call_store_defaults_to_the_state_directory(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.delenv("VOICEBOT_CONFIG", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert load_config().storage.path() == tmp_path / "state" / "voicebot" / "calls.sqlite3"
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_database() == tmp_path / ".local/state/voicebot/calls.sqlite3"


def test_relative_database_is_next_to_the_config_file(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "etc" / "voicebot.toml"
    path.parent.mkdir()
    path.write_text('[storage]\ndatabase = "calls.sqlite3"\n')
    monkeypatch.chdir("/")
    assert load_config(path).storage.path() == tmp_path / "etc" / "calls.sqlite3"
