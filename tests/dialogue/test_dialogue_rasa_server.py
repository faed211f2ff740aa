"""ManagedRasa's failure messages, with stand-in venvs (no real Rasa needed)."""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

import pytest

from voicebot.config import DialogueConfig
from voicebot.dialogue.paths import RASA_PROJECT_DIR, RasaSetupError
from voicebot.dialogue.rasa_client import DialogueError
from voicebot.dialogue.rasa_server import ManagedRasa, RasaStartError, free_port, open_dialogue
from voicebot.dialogue.training import fingerprint, model_path_for


def fake_venv(root: Path, python_script: str) -> Path:
    """A 'venv' whose python is a shell script (bin/rasa only has to exist)."""
    bin_dir = root / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    python = bin_dir / "python"
    python.write_text("#!/bin/sh\n" + python_script)
    python.chmod(python.stat().st_mode | stat.S_IEXEC)
    (bin_dir / "rasa").write_text("")
    return root / "venv"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    copy = tmp_path / "rasa_project"
    shutil.copytree(
        RASA_PROJECT_DIR, copy, ignore=shutil.ignore_patterns("models", ".rasa", "__pycache__")
    )
    return copy


async def test_missing_rasa_venv_says_run_setup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VOICEBOT_RASA_VENV", str(tmp_path / "nowhere"))
    with pytest.raises(RasaSetupError, match="run scripts/setup"):
        async with ManagedRasa(DialogueConfig()):
            pass


async def test_missing_model_says_setup_trains_it(
    tmp_path: Path, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VOICEBOT_RASA_VENV", str(fake_venv(tmp_path, "exit 0\n")))
    with pytest.raises(RasaSetupError, match=r"run scripts/setup \(it trains the model\)"):
        async with ManagedRasa(DialogueConfig(), project_dir=project):
            pass


async def test_process_dying_at_start_shows_its_log(
    tmp_path: Path, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    venv = fake_venv(tmp_path, 'echo "ImportError: no module named sanic (fake)"\nexit 3\n')
    monkeypatch.setenv("VOICEBOT_RASA_VENV", str(venv))
    model = model_path_for(fingerprint(project), project)
    model.parent.mkdir()
    model.write_bytes(b"not really a model")
    with pytest.raises(RasaStartError, match=r"exited with code 3(.|\n)*no module named sanic"):
        async with ManagedRasa(DialogueConfig(startup_timeout_s=20), project_dir=project):
            pass


async def test_rasa_command_line(
    tmp_path: Path, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Loopback only, and the API token nowhere on a command line (``/proc`` is public)."""
    script = 'case "$*" in *launch_actions*) exec sleep 30;; esac\necho "args: $*"\nexit 2\n'
    monkeypatch.setenv("VOICEBOT_RASA_VENV", str(fake_venv(tmp_path, script)))
    model = tmp_path / "m.tar.gz"
    model.write_bytes(b"x")
    config = DialogueConfig(auth_token="-dash-token", startup_timeout_s=20)
    with pytest.raises(RasaStartError, match="the Rasa server exited with code 2") as err:
        async with ManagedRasa(config, project_dir=project, model=model):
            pass
    args = str(err.value).split("args: ", 1)[1]
    assert f"{project}/launch_rasa.py run" in args
    assert "dash-token" not in args and "--enable-api" in args
    assert "-i 127.0.0.1" in args and f"--model {model}" in args


async def test_not_ready_in_time_is_reported(
    tmp_path: Path, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    venv = fake_venv(tmp_path, 'echo "loading forever"\nexec sleep 30\n')
    monkeypatch.setenv("VOICEBOT_RASA_VENV", str(venv))
    model = tmp_path / "m.tar.gz"
    model.write_bytes(b"x")
    rasa = ManagedRasa(DialogueConfig(startup_timeout_s=1), project_dir=project, model=model)
    with pytest.raises(RasaStartError, match=r"did not answer(.|\n)*loading forever"):
        async with rasa:
            pass
    # The stand-in processes were stopped.
    assert rasa._processes == []


async def test_external_rasa_url_starts_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOICEBOT_RASA_VENV", "/nonexistent")  # would fail if it started Rasa
    config = DialogueConfig(rasa_url="http://127.0.0.1:5005/", auth_token="t")
    async with ManagedRasa(config) as rasa:
        assert not rasa.managed and rasa.url == "http://127.0.0.1:5005/"
        client = rasa.client()
        assert client.base_url == "http://127.0.0.1:5005" and client.token == "t"


async def test_unreachable_external_rasa_fails_clearly() -> None:
    config = DialogueConfig(rasa_url=f"http://127.0.0.1:{free_port()}", auth_token="t")
    with pytest.raises(DialogueError, match="cannot reach the Rasa server configured"):
        async with open_dialogue(config):
            pass
