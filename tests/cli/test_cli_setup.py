"""scripts/setup: switching between `make demo` (setup) and `make test` (setup --dev)
installs the app once, not on every switch.

The real script runs in a copy of the project whose venvs are stand-ins that
log what pip is asked to do; system packages and interpreters are the real ones
(CI's `make test` has just run `scripts/setup --dev`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from voicebot.config import PROJECT_ROOT

LOGGING_STUB = '#!/bin/sh\necho "$(basename "$0") $*" >> "{log}"\n'


def _interpreter(version: str) -> str:
    found = shutil.which(f"python{version}")
    if found is None:
        pytest.fail(f"python{version} is missing: scripts/setup needs it (see README)")
    return found


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "scripts").mkdir(parents=True)
    for name in ("setup", "model-packages.txt", "model-packages-dev.txt"):
        shutil.copy(PROJECT_ROOT / "scripts" / name, root / "scripts" / name)
    shutil.copy(PROJECT_ROOT / "pyproject.toml", root / "pyproject.toml")
    (root / "rasa_project").mkdir()
    for name in ("requirements.txt", "constraints.txt"):
        shutil.copy(PROJECT_ROOT / "rasa_project" / name, root / "rasa_project" / name)
    log = tmp_path / "calls.log"
    for venv in (".venv", ".venv-rasa"):
        bin_dir = root / venv / "bin"
        bin_dir.mkdir(parents=True)
        for tool in ("python", "pip", "rasa"):
            (bin_dir / tool).write_text(LOGGING_STUB.format(log=log))
            (bin_dir / tool).chmod(0o755)
    return root


def _setup(project: Path, *args: str) -> list[str]:
    """Run scripts/setup; the app installs it asked pip for."""
    log = project.parent / "calls.log"
    log.write_text("")
    env = {
        **os.environ,
        "VOICEBOT_PYTHON311": _interpreter("3.11"),
        "VOICEBOT_PYTHON310": _interpreter("3.10"),
        "VOICEBOT_RASA_VENV": str(project / ".venv-rasa"),
    }
    done = subprocess.run(
        [str(project / "scripts" / "setup"), *args],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return [line for line in log.read_text().splitlines() if " -e " in line]


def test_switching_between_runtime_and_dev_installs_once(project: Path) -> None:
    assert _setup(project) == ["pip install -q -e ."]
    assert _setup(project) == []
    assert _setup(project, "--dev") == ["pip install -q -e .[dev]"]
    assert _setup(project) == []  # `make demo` after `make test`: nothing to do
    assert _setup(project, "--dev") == []
    with (project / "pyproject.toml").open("a") as pyproject:
        pyproject.write("\n# changed\n")
    assert _setup(project) == ["pip install -q -e .[dev]"]  # keeps the test tools
    assert _setup(project, "--dev") == []
