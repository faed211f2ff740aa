"""Model fingerprint and the "is the model current?" lookup (no Rasa needed)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from voicebot.dialogue.paths import RASA_PROJECT_DIR, RasaSetupError
from voicebot.dialogue.training import find_model, fingerprint, model_path_for, train


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of rasa_project's model inputs (no models, no caches)."""
    copy = tmp_path / "rasa_project"
    shutil.copytree(
        RASA_PROJECT_DIR,
        copy,
        ignore=shutil.ignore_patterns("models", ".rasa", "__pycache__", "*.sqlite3"),
    )
    return copy


def test_fingerprint_is_stable_and_location_independent(project: Path) -> None:
    assert fingerprint(project) == fingerprint(project)
    assert fingerprint(project) == fingerprint(RASA_PROJECT_DIR)
    assert len(fingerprint(project)) == 64


def test_fingerprint_ignores_outputs_caches_and_the_runtime_bank(project: Path) -> None:
    before = fingerprint(project)
    (project / "models").mkdir()
    (project / "models" / "voicebot-000000000000.tar.gz").write_bytes(b"model")
    (project / ".rasa" / "cache").mkdir(parents=True)
    (project / ".rasa" / "cache" / "x").write_text("cache")
    (project / "actions" / "__pycache__").mkdir()
    (project / "actions" / "__pycache__" / "actions.cpython-310.pyc").write_bytes(b"pyc")
    (project / "bank" / "demo_bank.sqlite3").write_bytes(b"runtime data")
    assert fingerprint(project) == before


def test_fingerprint_changes_with_training_data(project: Path) -> None:
    before = fingerprint(project)
    nlu = project / "data" / "nlu.yml"
    nlu.write_text(nlu.read_text() + "\n# changed\n")
    assert fingerprint(project) != before


def test_fingerprint_changes_when_a_file_is_renamed(project: Path) -> None:
    before = fingerprint(project)
    (project / "data" / "rules.yml").rename(project / "data" / "rules2.yml")
    assert fingerprint(project) != before


def test_model_path_is_named_after_the_fingerprint(project: Path) -> None:
    fp = fingerprint(project)
    assert model_path_for(fp, project) == project / "models" / f"voicebot-{fp[:12]}.tar.gz"


def test_find_model_without_a_model_says_run_setup(project: Path) -> None:
    with pytest.raises(RasaSetupError, match=r"run scripts/setup \(it trains the model\)"):
        find_model(project)


def test_find_model_returns_the_current_model(project: Path) -> None:
    path = model_path_for(fingerprint(project), project)
    path.parent.mkdir()
    path.write_bytes(b"model")
    assert find_model(project) == path


def test_train_is_a_no_op_when_the_model_is_current(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = model_path_for(fingerprint(project), project)
    path.parent.mkdir()
    path.write_bytes(b"model")
    monkeypatch.setenv("VOICEBOT_RASA_VENV", "/nonexistent")  # would fail if it trained
    assert train(project_dir=project) == path


def test_train_without_rasa_says_run_setup(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOICEBOT_RASA_VENV", str(project / "no-venv"))
    with pytest.raises(RasaSetupError, match="run scripts/setup"):
        train(project_dir=project)
