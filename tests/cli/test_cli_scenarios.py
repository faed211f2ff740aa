"""`voicebot eval` refuses scenario files that would silently check nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from voicebot.config import PROJECT_ROOT
from voicebot.scenario_schema import ScenarioSchemaError, validate_scenarios

WAV = str(PROJECT_ROOT / "audio_fixtures" / "utterances" / "hours_opening.wav")


def scenario(**fields: object) -> dict[str, object]:
    base: dict[str, object] = {
        "id": "hours",
        "turns": [WAV],
        "expect": {"outcome": "served", "intents": ["opening_hours"]},
    }
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}


BAD_FILES = [
    # (file content, words the error must contain)
    (
        {"scenarios": [scenario(expect={"outcome": "served", "intent": ["opening_hours"]})]},
        ["'hours'", "'intent'", "did you mean intents"],
    ),
    (
        {"scenarios": [scenario(turns=None, turn=[WAV])]},
        ["'hours'", "'turn'", "did you mean turns"],
    ),
    (
        {"scenarios": [scenario(expect={"intents": "opening_hours"})]},
        ["'hours'", "intents", "list", "'opening_hours'"],
    ),
    ({"scenarios": ["just a string"]}, ["scenario 1", "mapping", "just a string"]),
    ({"scenarios": [scenario(), scenario()]}, ["'hours'", "twice"]),
    ({"scenarios": [scenario(expect={"outcome": "contianed"})]}, ["'hours'", "outcome"]),
    ({"scenarios": [scenario(expect={"reason": "angry"})]}, ["'hours'", "reason", "frustration"]),
    ({"scenarios": [scenario(expect=None)]}, ["'hours'", "expect"]),
    ({"scenarios": [scenario(turns=[])]}, ["'hours'", "turns"]),
    ({"scenarios": [scenario(turns=[WAV, 42])]}, ["'hours'", "turns"]),
    ({"scenarios": [scenario(caller=15550100)]}, ["'hours'", "caller", "quotes"]),
    ({"scenarios": [scenario(id=None)]}, ["scenario 1", "id"]),
    ({"scenario": [scenario()]}, ["'scenario'", "did you mean scenarios"]),
    ([scenario()], ["'scenarios:'"]),
    ({"scenarios": [scenario(turns=["dtmf:ABCD"])]}, ["'hours'", "dtmf:ABCD"]),
    ({"scenarios": [scenario(turns=["nowhere.wav"])]}, ["'hours'", "nowhere.wav"]),
]


@pytest.mark.parametrize(("content", "words"), BAD_FILES)
def test_bad_scenario_file_is_one_line_exit_2(cli, tmp_path: Path, content, words) -> None:
    path = tmp_path / "scenarios.yaml"
    path.write_text(yaml.safe_dump(content))
    result = cli("eval", str(path))
    assert result.code == 2
    line = result.error_line
    assert line.startswith(f"voicebot: {path}")
    for word in words:
        assert word in line


def test_unknown_only_id(cli) -> None:
    shipped = PROJECT_ROOT / "audio_fixtures" / "scenarios.yaml"
    result = cli("eval", str(shipped), "--only", "opening_hours", "no_such_id")
    assert result.code == 2
    assert "'no_such_id'" in result.error_line and "opening_hours'" not in result.error_line


def test_unreadable_yaml(cli, tmp_path: Path) -> None:
    path = tmp_path / "scenarios.yaml"
    path.write_text("scenarios: [\n")
    assert cli("eval", str(path)).code == 2


def test_shipped_scenarios_match_the_schema() -> None:
    path = PROJECT_ROOT / "audio_fixtures" / "scenarios.yaml"
    validate_scenarios(yaml.safe_load(path.read_text()), path)


def test_good_file_passes() -> None:
    validate_scenarios({"scenarios": [scenario(caller="+15550100")]}, Path("x.yaml"))
    with pytest.raises(ScenarioSchemaError):
        validate_scenarios({"scenarios": []}, Path("x.yaml"))
