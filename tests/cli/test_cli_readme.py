"""Every command in README.md runs, as written (CI runs this with `make test`).

Each ``sh`` block in the README is preceded by a marker comment:
``<!-- readme-test: run -->`` (each command runs and must succeed),
``<!-- readme-test: serve -->`` (a long-running server: started in a private
network namespace, ``/health`` and ``/ready`` read, stopped with SIGTERM) or
``<!-- readme-test: skip — why -->``.  A new block without a marker fails the
test, so a command cannot be added to the README without being checked.  Every
``toml`` block is loaded as a configuration file.

Only these substitutions are made: ``.venv/bin/voicebot`` / ``.venv/bin/python``
become this interpreter, ``/tmp/…`` a temporary folder, ``CALL_ID`` the ID of
the call the block's ``simulate`` made.  The call store is a fresh
``$XDG_STATE_HOME``; Rasa is the test session's server (``VOICEBOT_RASA_URL``,
as the README suggests for repeated runs).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.doc_blocks import Block, doc_blocks, substitute
from tests.netns_tools import unshare_command
from voicebot.config import PROJECT_ROOT, load_config
from voicebot.dialogue.rasa_server import ManagedRasa

README = PROJECT_ROOT / "README.md"


def readme_blocks() -> list[Block]:
    return doc_blocks(README, "readme-test")


def test_every_shell_block_is_marked() -> None:
    shell = [b for b in readme_blocks() if b.lang in ("sh", "bash", "console")]
    assert shell, "the README has no shell blocks?"
    unmarked = [b.line for b in shell if b.action is None]
    assert not unmarked, f"README.md lines {unmarked}: add a <!-- readme-test: … --> marker"


def test_every_toml_block_is_a_valid_config(tmp_path: Path) -> None:
    blocks = [b for b in readme_blocks() if b.lang == "toml"]
    assert blocks
    for block in blocks:
        path = tmp_path / f"readme-{block.line}.toml"
        path.write_text(block.text + "\n")
        load_config(path)  # ConfigError names the line's key


@pytest.mark.slow
def test_readme_commands_run(managed_rasa: ManagedRasa, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "VOICEBOT_RASA_URL": managed_rasa.url,
        "VOICEBOT_RASA_TOKEN": managed_rasa.token or "",
    }
    env.pop("VOICEBOT_CONFIG", None)
    call_id = None
    ran = []
    for block in (b for b in readme_blocks() if b.action == "run"):
        for argv in block.commands():
            command = substitute(argv, tmp_path, {"CALL_ID": call_id} if call_id else None)
            done = subprocess.run(
                command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=900
            )
            shown = shlex.join(argv)
            allowed = (0, 1) if "eval" in argv else (0,)  # eval: 1 = a scenario failed
            assert done.returncode in allowed, f"{shown}\n{done.stdout}\n{done.stderr}"
            assert "Traceback" not in done.stderr, f"{shown}\n{done.stderr}"
            if "simulate" in argv and "--json" in argv:
                call_id = json.loads(done.stdout)["call_id"]
            if "eval" in argv:
                # The totals are the one JSON line; the judgement report follows it.
                totals = next(
                    json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")
                )
                assert totals["scenarios"] == totals["passed"] + totals["failed"] > 0
                lines = done.stdout.splitlines()
                shown_each = [line for line in lines if line.startswith(("PASS ", "FAIL "))]
                assert len(shown_each) == totals["scenarios"]
                # ... and they come first, before the totals and the judgement report.
                assert lines[: len(shown_each)] == shown_each
            ran.append(shown)
    assert any("simulate" in c for c in ran) and any("calls export" in c for c in ran)


SERVE_DRIVER = r"""
ip link set lo up
"$@" > "$WORK/serve.out" 2> "$WORK/serve.err" &
pid=$!
for _ in $(seq 1200); do
  grep -q "voicebot ready" "$WORK/serve.out" && break
  kill -0 "$pid" 2>/dev/null || { wait "$pid"; echo "exited $?" > "$WORK/health"; exit 0; }
  sleep 0.25
done
for path in health ready; do
  "$PYTHON" -c 'import sys, urllib.request as u; print(u.urlopen(sys.argv[1]).read().decode())' \
    "http://$HEALTH/$path" > "$WORK/$path" 2>&1
done
kill -TERM "$pid"
wait "$pid"
echo "$?" > "$WORK/status"
"""


@pytest.mark.slow
@pytest.mark.netns
def test_readme_serve_command_answers_health(tmp_path: Path) -> None:
    blocks = [b for b in readme_blocks() if b.action == "serve"]
    assert blocks
    for block in blocks:
        (argv,) = block.commands()
        http = argv[argv.index("--http-listen") + 1]
        env = {
            **os.environ, "WORK": str(tmp_path), "PYTHON": sys.executable, "HEALTH": http,
            "XDG_STATE_HOME": str(tmp_path / "state"),
        }  # fmt: skip
        for name in ("VOICEBOT_RASA_URL", "VOICEBOT_RASA_TOKEN", "VOICEBOT_CONFIG"):
            env.pop(name, None)  # its own Rasa: the session's is outside the namespace
        command = [*unshare_command(), "bash", "-c", SERVE_DRIVER, "serve"]
        subprocess.run(
            [*command, *substitute(argv, tmp_path)],
            cwd=PROJECT_ROOT, env=env, timeout=600, check=True,
        )  # fmt: skip
        logs = (tmp_path / "serve.err").read_text()
        health = (tmp_path / "health").read_text()
        state = {"calls": 0, "dialogue": "up", "draining": False, "full": False}
        assert json.loads(health) == {"status": "ok", **state}, health + logs
        assert json.loads((tmp_path / "ready").read_text()) == {"ready": True, **state}
        assert (tmp_path / "status").read_text().strip() == "0", logs
        assert "agent alice" in (tmp_path / "serve.out").read_text()
        for line in logs.splitlines():  # the README promises key=value lines
            assert re.match(r"ts=\S+ level=[A-Z]+ logger=\S+ \w+=", line), line
