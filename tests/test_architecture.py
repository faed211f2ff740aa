"""The layering of docs/ARCHITECTURE.md, checked on every test run.

The contracts live in pyproject.toml (``[tool.importlinter]``): layers import
only downward, transports share only the channel contract, and no sibling
modules import each other in a cycle.  The second test proves the check bites:
the same contracts, run on a copy of the package with one upward import or
one new cycle added, must fail.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = [
    sys.executable,
    "-c",
    "import sys; from importlinter.cli import lint_imports_command as c; sys.exit(c())",
]


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [*LINT_IMPORTS, "--config", str(root / "pyproject.toml"), "--no-cache"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_every_import_contract_is_kept() -> None:
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        # the call record must not know about the session (upward import)
        ("core/record.py", "import voicebot.session.call_session", "Layers import only downward"),
        # a media stream must not reach into the SIP stack
        (
            "telephony/media_stream/serializer.py",
            "import voicebot.telephony.sip.sdp",
            "Transports share only the channel contract",
        ),
        # the session's caller-side handoff must not import the session back (cycle)
        (
            "session/handoff.py",
            "import voicebot.session.call_session",
            "No import cycles between sibling modules",
        ),
    ],
)
def test_an_upward_import_or_a_cycle_breaks_a_contract(
    tmp_path: Path, module: str, line: str, broken: str
) -> None:
    shutil.copytree(
        ROOT / "voicebot", tmp_path / "voicebot", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    path = tmp_path / "voicebot" / module
    path.write_text(path.read_text() + f"\n{line}  # noqa\n")
    result = _lint(tmp_path)
    assert result.returncode != 0
    assert f"{broken} BROKEN" in result.stdout, result.stdout
