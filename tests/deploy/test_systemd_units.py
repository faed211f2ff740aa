"""The shipped systemd units (deploy/systemd/): valid for systemd, ordered so the
instances start after the shared Rasa, secrets only in a 0600 environment
file, and the Rasa units' own commands really serve a conversation.

``systemd-analyze verify`` checks them against a throwaway root (``--root``)
that holds the programs the units run, so it works on any machine with
systemd's tools, booted with systemd or not.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest

from tests.e2e.sip_call_rig import require
from voicebot.config import PROJECT_ROOT, load_config
from voicebot.dialogue.paths import RASA_LAUNCHER, rasa_python, rasa_venv
from voicebot.dialogue.rasa_client import RasaClient
from voicebot.dialogue.rasa_server import ACTIONS_LAUNCHER
from voicebot.dialogue.training import train

UNITS = PROJECT_ROOT / "deploy" / "systemd"
INSTALL = "/opt/voicebot"  # where the units expect the checkout
SECRETS = "/etc/voicebot/rasa.env"
ALEX = "+15550100"  # a demo bank customer (rasa_project/bank/seed.sql)
INSTANCE, RASA, ACTIONS = "voicebot@.service", "voicebot-rasa.service", "voicebot-actions.service"


@dataclass
class Unit:
    """A unit file as systemd reads it: sections of keys, a key may repeat."""

    sections: dict[str, dict[str, list[str]]] = field(default_factory=dict)

    @classmethod
    def load(cls, name: str) -> Unit:
        unit, section = cls(), ""
        text = (UNITS / name).read_text()
        for line in re.sub(r"\\\n\s*", " ", text).splitlines():  # continuation lines
            line = line.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("["):
                section = line.strip("[]")
                unit.sections.setdefault(section, {})
                continue
            key, _, value = line.partition("=")
            unit.sections[section].setdefault(key.strip(), []).append(value.strip())
        return unit

    def values(self, section: str, key: str) -> list[str]:
        return self.sections.get(section, {}).get(key, [])

    def words(self, section: str, key: str) -> set[str]:
        return {w for v in self.values(section, key) for w in v.split()}

    def environment(self) -> dict[str, str]:
        return dict(v.split("=", 1) for v in self.values("Service", "Environment"))

    def command(self, key: str, env: dict[str, str]) -> list[str]:
        """``ExecStart``/``ExecStartPost`` as systemd runs it: ``${VAR}`` expanded."""
        (line,) = self.values("Service", key)
        return shlex.split(re.sub(r"\$\{(\w+)\}", lambda m: env[m[1]], line))


# ------------------------------------------------------------------ systemd's own check


def verify(units: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """``systemd-analyze verify`` of every unit in ``units`` inside a fake root
    holding the programs the shipped units run."""
    analyze = require("systemd-analyze", "systemd")
    root = tmp_path / "root"
    system = root / "etc" / "systemd" / "system"
    system.mkdir(parents=True)
    for program in (".venv/bin/voicebot", ".venv-rasa/bin/python"):
        path = root / INSTALL.lstrip("/") / program
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("#!/bin/sh\n")
        path.chmod(0o755)
    names = []
    for unit in sorted(units.glob("*.service")):
        shutil.copy(unit, system / unit.name)
        names.append(unit.name.replace("@.", "@1."))  # a template is verified as an instance
    return subprocess.run(
        [analyze, "verify", f"--root={root}", "--man=no", "--generators=no",
         "--recursive-errors=no", *names],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_the_shipped_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    assert {p.name for p in UNITS.glob("*.service")} == {INSTANCE, RASA, ACTIONS}
    result = verify(UNITS, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr  # not even a warning


def test_verify_catches_a_broken_unit(tmp_path: Path) -> None:
    """The check above can fail: a mistyped key or value is reported."""
    broken = tmp_path / "units"
    shutil.copytree(UNITS, broken)
    rasa = broken / RASA
    rasa.write_text(rasa.read_text().replace("Type=simple", "Type=simpel\nRestartSecs=2"))
    result = verify(broken, tmp_path)
    assert "simpel" in result.stderr and "RestartSecs" in result.stderr


# ------------------------------------------------------------------ what the units say


def test_instances_start_after_the_shared_rasa_and_its_action_server() -> None:
    instance, rasa = Unit.load(INSTANCE), Unit.load(RASA)
    assert {RASA, ACTIONS} <= instance.words("Unit", "After")
    assert RASA in instance.words("Unit", "Wants")  # one `systemctl start voicebot@1` starts it
    # Not Requires/BindsTo: restarting Rasa must not restart (and cut) every instance.
    assert not instance.words("Unit", "Requires") | instance.words("Unit", "BindsTo")
    assert ACTIONS in rasa.words("Unit", "After") & rasa.words("Unit", "Wants")
    # "Started" means answering: ordering after Rasa then means after its model loaded.
    for name in (RASA, ACTIONS):
        (post,) = Unit.load(name).values("Service", "ExecStartPost")
        assert "wait_ready.py" in post


def test_the_rasa_token_only_travels_in_the_environment_file() -> None:
    for name in (INSTANCE, RASA, ACTIONS):
        unit = Unit.load(name)
        assert SECRETS in unit.values("Service", "EnvironmentFile"), name
        assert "VOICEBOT_RASA_TOKEN" not in unit.environment(), name
        for key in ("ExecStart", "ExecStartPost"):
            assert not re.search(
                "token|password|secret", " ".join(unit.values("Service", key)), re.I
            )


def test_the_rasa_units_run_what_managed_rasa_runs() -> None:
    rasa = " ".join(Unit.load(RASA).values("Service", "ExecStart"))
    actions = " ".join(Unit.load(ACTIONS).values("Service", "ExecStart"))
    assert RASA_LAUNCHER in rasa and "run --enable-api" in rasa
    assert ACTIONS_LAUNCHER in actions
    for unit in (Unit.load(RASA), Unit.load(ACTIONS)):
        assert unit.values("Service", "WorkingDirectory") == [f"{INSTALL}/rasa_project"]


# ------------------------------------------------------------------ the units' commands, run


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def unit_env(unit: Unit, secrets: Path, overrides: dict[str, str]) -> dict[str, str]:
    """The unit's Environment=, then its environment file (which wins, as in systemd)."""
    env = {**unit.environment()}
    env.update(line.split("=", 1) for line in secrets.read_text().split())
    return {**env, **overrides}


def localise(command: list[str]) -> list[str]:
    """The unit's paths under /opt/voicebot mapped onto this checkout and its Rasa venv."""
    venv = f"{INSTALL}/.venv-rasa"
    return [str(rasa_venv()) + w[len(venv) :] if w.startswith(venv) else w for w in command]


@pytest.fixture
def rasa_from_units(tmp_path: Path) -> Iterator[dict[str, str]]:
    """Actions server and Rasa started with the units' commands and environment."""
    train()  # the units load the newest model in rasa_project/models
    secrets = tmp_path / "rasa.env"
    secrets.write_text(f"VOICEBOT_RASA_TOKEN={os.urandom(12).hex()}\n")
    secrets.chmod(0o600)
    ports = {"VOICEBOT_ACTION_PORT": str(free_port()), "RASA_PORT": str(free_port())}
    overrides = {**ports, "VOICEBOT_BANK_DB": str(tmp_path / "bank.sqlite3"),
                 "HOME": str(tmp_path), "PATH": os.environ["PATH"]}  # fmt: skip
    started: list[subprocess.Popen[bytes]] = []
    envs = {}
    try:
        for name in (ACTIONS, RASA):  # in the units' order
            unit = Unit.load(name)
            env = envs[name] = unit_env(unit, secrets, overrides)
            cwd = PROJECT_ROOT / "rasa_project"
            log = (tmp_path / f"{name}.log").open("wb")
            started.append(subprocess.Popen(
                localise(unit.command("ExecStart", env)), cwd=cwd, env=env,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            ))  # fmt: skip
            post = subprocess.run(
                localise(unit.command("ExecStartPost", env)), cwd=cwd, env=env,
                capture_output=True, text=True, timeout=200,
            )  # fmt: skip
            assert post.returncode == 0, post.stderr + (tmp_path / f"{name}.log").read_text()
        env = envs[RASA]
        yield {**env, "url": f"http://{env['RASA_HOST']}:{env['RASA_PORT']}",
               "pids": " ".join(str(p.pid) for p in started)}  # fmt: skip
    finally:
        for proc in reversed(started):
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


@pytest.mark.slow
async def test_the_units_commands_serve_a_conversation_only_with_the_token(
    rasa_from_units: dict[str, str],
) -> None:
    url, token = rasa_from_units["url"], rasa_from_units["VOICEBOT_RASA_TOKEN"]
    # What a voicebot instance does with `[dialogue] rasa_url` + $VOICEBOT_RASA_TOKEN.
    async with RasaClient(url, token, 10.0) as client:
        assert await client.health()
        reply = await client.send(f"units-{time.time_ns()}", "Hello", {"caller_id": ALEX})
    assert reply.intent == "greet" and reply.text
    # Matching the caller ID is a custom action: Rasa reached the action server
    # (with the token) and it opened the bank database where its unit says.
    assert reply.caller_id_matched is True
    assert Path(rasa_from_units["VOICEBOT_BANK_DB"]).is_file()
    async with aiohttp.ClientSession() as http, http.get(f"{url}/status") as resp:
        assert resp.status == 401  # no token, no answer
    for pid in rasa_from_units["pids"].split():
        assert token.encode() not in Path(f"/proc/{pid}/cmdline").read_bytes()
    # The readiness wait says at once (not after its timeout) when the token is wrong.
    wait = Unit.load(RASA).command("ExecStartPost", rasa_from_units)
    started = time.monotonic()
    result = subprocess.run(
        localise(wait), cwd=PROJECT_ROOT / "rasa_project", capture_output=True, text=True,
        env={**rasa_from_units, "VOICEBOT_RASA_TOKEN": "wrong"}, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1 and time.monotonic() - started < 10
    assert result.stderr.count("\n") == 1 and "refuses the token" in result.stderr


def test_the_readiness_wait_gives_up_with_one_line_when_nothing_answers() -> None:
    started = time.monotonic()
    result = subprocess.run(
        [str(rasa_python()), "wait_ready.py",
         f"http://127.0.0.1:{free_port()}/status", "--timeout", "1.5"],
        cwd=PROJECT_ROOT / "rasa_project", capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 1 and 1.5 <= time.monotonic() - started < 10
    assert result.stderr.strip().endswith("not ready within 1.5 s (nothing answered)")


def test_the_deployment_guides_settings_are_a_valid_config(tmp_path: Path) -> None:
    guide = (PROJECT_ROOT / "docs" / "DEPLOYMENT.md").read_text()
    (toml,) = re.findall(r"<<'TOML'\n(.*?)\nTOML\n", guide, re.S)
    path = tmp_path / "voicebot.toml"
    path.write_text(toml)
    config = load_config(path)  # ConfigError names a wrong key
    assert config.dialogue.rasa_url == "http://127.0.0.1:5005"  # voicebot-rasa's defaults
    assert "5005" in Unit.load(RASA).environment()["RASA_PORT"]
