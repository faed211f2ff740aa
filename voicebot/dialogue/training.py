"""Train the Rasa model only when rasa_project/ changed.

``python -m voicebot.dialogue.training [--force]``

The model file is named after a fingerprint of the project's files
(``models/voicebot-<fingerprint[:12]>.tar.gz``), so "is the model current?"
is a file lookup, and training is idempotent: scripts/setup can run it every
time.  Training runs in the Rasa venv (Python 3.10) as a subprocess.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from voicebot.dialogue.knowledge import write_training_files
from voicebot.dialogue.paths import (
    RASA_PROJECT_DIR,
    RasaSetupError,
    rasa_cli,
    rasa_env,
)

MODEL_PREFIX = "voicebot-"
# The bank's knowledge base: generated into intents and rules at training.
KNOWLEDGE_FILE = "knowledge.yml"
# Not inputs of the model: outputs, caches, and the demo bank's runtime data.
_SKIP_DIRS = {"models", ".rasa", "__pycache__", ".pytest_cache", ".ruff_cache"}
_SKIP_SUFFIXES = (".pyc", ".sqlite3", ".sqlite3-journal", ".sqlite3-wal", ".sqlite3-shm", ".tmp")


class TrainingError(RuntimeError):
    """``rasa train`` failed; the message carries the end of its output."""


# What ``rasa train`` reads: editing an action, the demo bank or a README must
# not force a retrain (actions run in their own server, outside the model).
_TRAINING_INPUTS = ("config.yml", "domain.yml", "data", KNOWLEDGE_FILE, "known_words.py")


def _project_files(project_dir: Path) -> Iterator[Path]:
    for name in _TRAINING_INPUTS:
        top = project_dir / name
        candidates = sorted(top.rglob("*")) if top.is_dir() else [top]
        for path in candidates:
            rel = path.relative_to(project_dir)
            if any(part in _SKIP_DIRS for part in rel.parts[:-1]):
                continue
            if path.is_file() and not path.name.endswith(_SKIP_SUFFIXES):
                yield path


def fingerprint(project_dir: Path = RASA_PROJECT_DIR) -> str:
    """sha256 over the project's files (relative path and content), in a stable order."""
    digest = hashlib.sha256()
    for path in _project_files(project_dir):
        digest.update(path.relative_to(project_dir).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def model_path_for(fp: str, project_dir: Path = RASA_PROJECT_DIR) -> Path:
    return project_dir / "models" / f"{MODEL_PREFIX}{fp[:12]}.tar.gz"


def find_model(project_dir: Path = RASA_PROJECT_DIR) -> Path:
    """The model trained from the current project files, or RasaSetupError."""
    path = model_path_for(fingerprint(project_dir), project_dir)
    if not path.is_file():
        raise RasaSetupError(
            f"No trained Rasa model for the current rasa_project (expected {path.name}): "
            "run scripts/setup (it trains the model), or python -m voicebot.dialogue.training"
        )
    return path


@contextmanager
def _train_lock(models_dir: Path) -> Iterator[None]:
    """Two processes (setup and a test run) must not train into the same folder."""
    models_dir.mkdir(parents=True, exist_ok=True)
    with open(models_dir / ".train.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def train(force: bool = False, project_dir: Path = RASA_PROJECT_DIR, verbose: bool = False) -> Path:
    """Train unless a model with the current fingerprint exists; return its path."""
    fp = fingerprint(project_dir)
    target = model_path_for(fp, project_dir)
    if target.is_file() and not force:
        return target
    cli = rasa_cli(project_dir)  # RasaSetupError when the Rasa venv is missing
    models_dir = target.parent
    with _train_lock(models_dir):
        if target.is_file() and not force:  # another process trained it meanwhile
            return target
        with tempfile.TemporaryDirectory(dir=models_dir, prefix=".training-") as out:
            log = Path(out) / "train.log"
            domain_dir, kb_data = _knowledge_inputs(project_dir, Path(out))
            command = [
                *cli, "train",
                "--config", "config.yml", "--domain", str(domain_dir),
                "--data", "data", *([str(kb_data)] if kb_data else []),
                "--out", out, "--fixed-model-name", target.name.removesuffix(".tar.gz"),
            ]  # fmt: skip
            started = time.monotonic()
            with open(log, "wb") as log_file:
                result = subprocess.run(
                    command,
                    cwd=project_dir,
                    env=rasa_env(),
                    stdout=None if verbose else log_file,
                    stderr=subprocess.STDOUT if not verbose else None,
                    check=False,
                )
            built = Path(out) / target.name
            if result.returncode != 0 or not built.is_file():
                tail = "" if verbose else _tail(log)
                raise TrainingError(
                    f"rasa train failed (exit {result.returncode}) in {project_dir}.\n{tail}"
                )
            built.replace(target)  # atomic: never a half-written model under the real name
        for old in models_dir.glob(f"{MODEL_PREFIX}*.tar.gz"):
            if old != target:
                old.unlink(missing_ok=True)
        print(
            f"trained {target.name} in {time.monotonic() - started:.1f} s",
            file=sys.stderr,
        )
    return target


def _knowledge_inputs(project_dir: Path, out: Path) -> tuple[Path, Path | None]:
    """A domain folder (domain.yml plus the knowledge-base intents) and the
    generated knowledge-base data file; just domain.yml when there is no KB."""
    knowledge = project_dir / KNOWLEDGE_FILE
    if not knowledge.is_file():
        return project_dir / "domain.yml", None
    domain_dir, data = write_training_files(knowledge, out / "generated")
    (domain_dir / "domain.yml").write_bytes((project_dir / "domain.yml").read_bytes())
    return domain_dir, data


def _tail(log: Path, lines: int = 40) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m voicebot.dialogue.training",
        description="Train the Rasa model if rasa_project/ changed since the last training.",
    )
    parser.add_argument("--force", action="store_true", help="train even if the model is current")
    parser.add_argument("--verbose", action="store_true", help="show Rasa's own output")
    args = parser.parse_args(argv)
    try:
        path = train(force=args.force, verbose=args.verbose)
    except (RasaSetupError, TrainingError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
