"""Run our own Rasa server and actions server, so a user starts one command.

``ManagedRasa`` (an async context manager) starts both from the Rasa venv
on free loopback ports, waits until they answer, and stops them on exit.
When ``DialogueConfig.rasa_url`` is set it starts nothing and just points at
that server.

    async with ManagedRasa(config.dialogue) as rasa:
        async with rasa.client() as client:
            reply = await client.send(call_id, "what's my balance", {"caller_id": "+15550100"})

Rasa is launched through ``rasa_project/launch_rasa.py``: importing skops.io
before TensorFlow takes model loading from ~10 s to ~0.5 s (skops scans
``sys.modules``, which is slow once TensorFlow is in), and a
compiled validator for action results saves ~30 ms per custom action.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp

from voicebot.config import DialogueConfig
from voicebot.dialogue.paths import (
    RASA_PROJECT_DIR,
    RasaSetupError,
    rasa_cli,
    rasa_env,
    rasa_python,
)
from voicebot.dialogue.rasa_client import DialogueError, RasaClient
from voicebot.dialogue.training import find_model

log = logging.getLogger(__name__)

_POLL_S = 0.2
ACTIONS_LAUNCHER = "launch_actions.py"
_STOP_GRACE_S = 5.0


class RasaStartError(DialogueError):
    """A Rasa process died or did not become ready; the message has its log tail."""


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


class _Process:
    """One child process with its log file."""

    def __init__(
        self, name: str, command: list[str], cwd: Path, env: dict[str, str], log_path: Path
    ):
        self.name = name
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        try:
            self.proc = subprocess.Popen(
                command, cwd=cwd, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )  # fmt: skip
        except OSError as exc:
            self._log.close()
            raise RasaStartError(f"cannot start the {name} ({command[0]}): {exc}") from exc

    def check_alive(self) -> None:
        code = self.proc.poll()
        if code is not None:
            raise RasaStartError(
                f"the {self.name} exited with code {code} while starting. "
                f"End of its log ({self.log_path}):\n{_tail(self.log_path)}"
            )

    async def stop(self) -> None:
        """SIGTERM by PID, then SIGKILL after a grace period."""
        if self.proc.poll() is None:
            self.proc.terminate()
            deadline = time.monotonic() + _STOP_GRACE_S
            while self.proc.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            if self.proc.poll() is None:
                log.warning("%s (pid %d) ignored SIGTERM; killing it", self.name, self.proc.pid)
                self.proc.kill()
                await asyncio.to_thread(self.proc.wait)
        self._log.close()


class ManagedRasa:
    """Rasa + actions server for the lifetime of an ``async with`` block."""

    def __init__(
        self,
        config: DialogueConfig | None = None,
        *,
        project_dir: Path = RASA_PROJECT_DIR,
        model: Path | None = None,
        bank_db: Path | None = None,
        log_dir: Path | None = None,
    ) -> None:
        self.config = config or DialogueConfig()
        self.project_dir = project_dir
        self.model = model
        self.bank_db = bank_db  # None = the project's demo database
        self._log_dir = log_dir
        self._own_log_dir: Path | None = None
        self._processes: list[_Process] = []
        self.url: str = self.config.rasa_url or ""
        self.token: str | None = self.config.auth_token
        self.action_url: str | None = None
        self.startup_s: float | None = None  # measured time until both answered

    @property
    def managed(self) -> bool:
        """False when pointing at an external Rasa (config.rasa_url)."""
        return not self.config.rasa_url

    def client(self) -> RasaClient:
        if not self.url:
            raise DialogueError("ManagedRasa is not started: use it as 'async with'")
        # Our own Rasa takes the token as a header; an external one as Rasa's query token.
        return RasaClient(
            self.url, self.token, self.config.request_timeout_s, token_in_header=self.managed
        )

    async def __aenter__(self) -> ManagedRasa:
        if not self.managed:
            return self
        try:
            await self._start()
        except BaseException:
            self._own_log_dir = None  # keep the logs: the error points at them
            await self._stop()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stop()

    async def _start(self) -> None:
        python = rasa_python()  # RasaSetupError: "run scripts/setup"
        # Both children run in the project folder: hand them absolute paths.
        model = (self.model or find_model(self.project_dir)).resolve()
        if not model.is_file():
            raise RasaSetupError(f"Rasa model {model} does not exist: run scripts/setup")
        self.token = self.config.auth_token or secrets.token_hex(24)
        rasa_port = self.config.rasa_port or free_port()
        action_port = self.config.action_port or free_port()
        while action_port == rasa_port:
            action_port = free_port()
        log_dir = self._log_dir or Path(tempfile.mkdtemp(prefix="voicebot-rasa-"))
        if self._log_dir is None:
            self._own_log_dir = log_dir
        log_dir.mkdir(parents=True, exist_ok=True)

        # The token travels in the environment (private to this user), never argv.
        extra = {
            "VOICEBOT_ACTION_PORT": str(action_port),
            "VOICEBOT_RASA_TOKEN": self.token,
            # They die with us (PR_SET_PDEATHSIG).  The kernel ties that to the thread
            # that started them: start ManagedRasa on a long-lived thread (the loop's).
            "VOICEBOT_PARENT_PID": str(os.getpid()),
        }
        if self.bank_db is not None:
            extra["VOICEBOT_BANK_DB"] = str(Path(self.bank_db).resolve())
        # launch_actions.py listens on SANIC_HOST (as rasa_sdk does).
        actions_env = rasa_env(SANIC_HOST="127.0.0.1", ACTION_SERVER_SANIC_WORKERS="1", **extra)
        started = time.monotonic()
        actions = _Process(
            "Rasa actions server",
            [str(python), str(self.project_dir / ACTIONS_LAUNCHER), "--port", str(action_port)],
            self.project_dir, actions_env, log_dir / "actions.log",
        )  # fmt: skip
        self._processes.append(actions)
        rasa = _Process(
            "Rasa server",
            [
                *rasa_cli(self.project_dir), "run",
                "--enable-api", "-i", "127.0.0.1", "-p", str(rasa_port),
                "--model", str(model),
                "--endpoints", "endpoints.yml", "--credentials", "credentials.yml",
            ],
            self.project_dir, rasa_env(SANIC_WORKERS="1", **extra), log_dir / "rasa.log",
        )  # fmt: skip
        self._processes.append(rasa)
        self.url = f"http://127.0.0.1:{rasa_port}"
        self.action_url = f"http://127.0.0.1:{action_port}"

        deadline = started + self.config.startup_timeout_s
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
            await self._wait_ready(http, actions, f"{self.action_url}/health", deadline)
            await self._wait_ready(http, rasa, f"{self.url}/status", deadline)
        self.startup_s = time.monotonic() - started
        log.info("Rasa ready at %s in %.1f s (model %s)", self.url, self.startup_s, model.name)

    async def _wait_ready(
        self,
        http: aiohttp.ClientSession,
        process: _Process,
        url: str,
        deadline: float,
    ) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        while True:
            for each in self._processes:  # either dying ends the wait at once
                each.check_alive()
            try:
                async with http.get(url, headers=headers) as resp:
                    if resp.status == 200:
                        return
                    if resp.status in (401, 403):
                        raise RasaStartError(f"the {process.name} rejected our auth token")
            except (aiohttp.ClientError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise RasaStartError(
                    f"the {process.name} did not answer {url} within "
                    f"{self.config.startup_timeout_s:g} s. End of its log "
                    f"({process.log_path}):\n{_tail(process.log_path)}"
                )
            await asyncio.sleep(_POLL_S)

    async def _stop(self) -> None:
        processes, self._processes = self._processes, []
        await asyncio.gather(*(p.stop() for p in reversed(processes)))
        if self._own_log_dir is not None:
            shutil.rmtree(self._own_log_dir, ignore_errors=True)
            self._own_log_dir = None


@asynccontextmanager
async def open_dialogue(
    config: DialogueConfig, **managed_options: Any
) -> AsyncIterator[RasaClient]:
    """A ready RasaClient: our own Rasa (started and stopped here) or config.rasa_url.

    ``managed_options`` go to ManagedRasa (project_dir, model, bank_db, log_dir).
    """
    async with ManagedRasa(config, **managed_options) as rasa:
        client = rasa.client()
        try:
            if not rasa.managed and not await client.health():
                raise DialogueError(
                    f"cannot reach the Rasa server configured at {rasa.url} (dialogue.rasa_url"
                    " / VOICEBOT_RASA_URL), or it rejects the auth token"
                )
            yield client
        finally:
            await client.close()


__all__ = ["ManagedRasa", "RasaSetupError", "RasaStartError", "free_port", "open_dialogue"]
