"""Where the Rasa project and the Rasa venv live.

Rasa 3.6 needs Python 3.10 and pins that clash with the app, so it runs from
its own venv: ``<project>/.venv-rasa`` by default, or wherever
``$VOICEBOT_RASA_VENV`` points.  voicebot only ever runs it as a subprocess.
"""

from __future__ import annotations

import os
from pathlib import Path

from voicebot.config import PROJECT_ROOT

RASA_PROJECT_DIR = PROJECT_ROOT / "rasa_project"

# Runs Rasa's CLI after two start-up/latency fixes (skops.io before TensorFlow,
# a compiled validator for action results); see the file itself.
RASA_LAUNCHER = "launch_rasa.py"


class RasaSetupError(RuntimeError):
    """Rasa is not installed or the model is not trained: a set-up problem."""


def rasa_venv() -> Path:
    """The Rasa venv folder ($VOICEBOT_RASA_VENV or <project>/.venv-rasa)."""
    configured = os.environ.get("VOICEBOT_RASA_VENV")
    return Path(configured).expanduser() if configured else PROJECT_ROOT / ".venv-rasa"


def rasa_python() -> Path:
    """The Rasa venv's interpreter, or a RasaSetupError saying how to get one."""
    venv = rasa_venv()
    python = venv / "bin" / "python"
    if not python.exists() or not (venv / "bin" / "rasa").exists():
        raise RasaSetupError(
            f"Rasa is not installed (no Rasa venv at {venv}): run scripts/setup, "
            "or point VOICEBOT_RASA_VENV at a Python 3.10 venv with rasa==3.6.21"
        )
    return python


def rasa_cli(project_dir: Path = RASA_PROJECT_DIR) -> list[str]:
    """The command that stands for ``rasa`` (add ``run``/``train`` and arguments)."""
    return [str(rasa_python()), str(project_dir / RASA_LAUNCHER)]


def rasa_env(**extra: str) -> dict[str, str]:
    """Environment for Rasa subprocesses: no telemetry, no stray bytecode."""
    env = dict(os.environ)
    env.update(
        RASA_TELEMETRY_ENABLED="false",
        PYTHONDONTWRITEBYTECODE="1",
        # TensorFlow's start-up chatter is noise in our logs.
        TF_CPP_MIN_LOG_LEVEL="2",
        SQLALCHEMY_SILENCE_UBER_WARNING="1",
    )
    env.update(extra)
    return env
