"""Run the real ``voicebot`` command line, in process or as a subprocess.

In process, ``open_services`` (which loads Whisper, the voice, the VAD and
Rasa) is replaced by a tripwire: a bad-input test passes only when the error
comes *before* anything heavy is loaded.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass

import pytest


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    @property
    def error_line(self) -> str:
        """The only line on stderr (the test fails if there are more)."""
        lines = self.err.splitlines()
        assert len(lines) == 1, f"expected one line on stderr, got:\n{self.err}"
        assert "Traceback" not in self.err
        return lines[0]


class ModelsLoaded(AssertionError):
    pass


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    """``cli(*argv)`` runs ``voicebot.cli.main`` with a tripwire on model loading."""
    import voicebot.cli
    import voicebot.runtime

    def tripwire(*args: object, **kwargs: object) -> None:
        raise ModelsLoaded("open_services was called: the models would load")

    monkeypatch.setattr(voicebot.runtime, "open_services", tripwire)
    monkeypatch.setattr(voicebot.cli, "setup_logging", lambda level: None)
    previous = signal.getsignal(signal.SIGTERM)

    def run(*argv: str) -> CliResult:
        try:
            code = voicebot.cli.main(list(argv))
        except SystemExit as exc:  # argparse
            code = int(exc.code or 0)
        finally:
            signal.signal(signal.SIGTERM, previous)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


def voicebot_process(*args: str, env: dict[str, str] | None = None, timeout: float = 60):
    """The real command in a subprocess (what a user types)."""
    return subprocess.run(
        [sys.executable, "-m", "voicebot", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
