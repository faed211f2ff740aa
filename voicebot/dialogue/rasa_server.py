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
import contextlib
import logging
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from voicebot.config import DialogueConfig
from voicebot.core.logs import format_event
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
        self,
        name: str,
        role: str,
        command: list[str],
        cwd: Path,
        env: dict[str, str],
        log_path: Path,
    ):
        self.name = name
        self.role = role
        self.log_path = log_path
        # Appended to: a restart must not erase the log of the crash before it.
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
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
                log.warning(
                    format_event(
                        "rasa_kill", process=self.name, pid=self.proc.pid, why="ignored SIGTERM"
                    )
                )
                self.proc.kill()
                await asyncio.to_thread(self.proc.wait)
        self._log.close()


class ManagedRasa:
    """Rasa + actions server for the lifetime of an ``async with`` block.

    While the block runs, a supervisor watches both: when either dies (or
    stops answering), ``client.available`` turns False — new callers then go
    to a person instead of hearing "I'm having trouble" — and both are
    restarted on the same ports with back-off until they answer again.
    """

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
        self.restarts = 0
        self._launch_plan: _LaunchPlan | None = None
        self._clients: list[RasaClient] = []
        self._available = True
        self._supervisor: asyncio.Task[None] | None = None
        self._delay = 0.0  # the back-off of the last restart
        self._last_restart = -float("inf")

    @property
    def managed(self) -> bool:
        """False when pointing at an external Rasa (config.rasa_url)."""
        return not self.config.rasa_url

    @property
    def available(self) -> bool:
        """The dialogue answers (as far as the supervisor last saw)."""
        return self._available

    def pids(self) -> dict[str, int]:
        """PIDs of the running children by role (``rasa``, ``actions``)."""
        return {p.role: p.proc.pid for p in self._processes if p.proc.poll() is None}

    def client(self) -> RasaClient:
        if not self.url:
            raise DialogueError("ManagedRasa is not started: use it as 'async with'")
        # Our own Rasa takes the token as a header; an external one as Rasa's query token.
        client = RasaClient(
            self.url, self.token, self.config.request_timeout_s, token_in_header=self.managed
        )
        client.available = self._available
        self._clients.append(client)
        return client

    async def __aenter__(self) -> ManagedRasa:
        if self.managed:
            try:
                await self._start()
            except BaseException:
                self._own_log_dir = None  # keep the logs: the error points at them
                await self._stop()
                raise
        if self.config.health_interval_s > 0:
            self._supervisor = asyncio.create_task(self._supervise(), name="rasa-supervisor")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
            self._supervisor = None
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
        self.url = f"http://127.0.0.1:{rasa_port}"
        self.action_url = f"http://127.0.0.1:{action_port}"
        self._launch_plan = _LaunchPlan(python, model, rasa_port, action_port, log_dir)
        await self._launch()

    async def _launch(self) -> None:
        """Start both children from the plan and wait until both answer."""
        plan = self._launch_plan
        assert plan is not None and self.token is not None
        # The token travels in the environment (private to this user), never argv.
        extra = {
            "VOICEBOT_ACTION_PORT": str(plan.action_port),
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
            "Rasa actions server", "actions",
            [str(plan.python), str(self.project_dir / ACTIONS_LAUNCHER),
             "--port", str(plan.action_port)],
            self.project_dir, actions_env, plan.log_dir / "actions.log",
        )  # fmt: skip
        self._processes.append(actions)
        rasa = _Process(
            "Rasa server", "rasa",
            [
                *rasa_cli(self.project_dir), "run",
                "--enable-api", "-i", "127.0.0.1", "-p", str(plan.rasa_port),
                "--model", str(plan.model),
                "--endpoints", "endpoints.yml", "--credentials", "credentials.yml",
            ],
            self.project_dir, rasa_env(SANIC_WORKERS="1", **extra), plan.log_dir / "rasa.log",
        )  # fmt: skip
        self._processes.append(rasa)

        deadline = started + self.config.startup_timeout_s
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
            await self._wait_ready(http, actions, f"{self.action_url}/health", deadline)
            await self._wait_ready(http, rasa, f"{self.url}/status", deadline)
        self.startup_s = time.monotonic() - started
        log.info(
            format_event(
                "rasa_ready", url=self.url, seconds=round(self.startup_s, 1),
                model=plan.model.name, rasa_pid=rasa.proc.pid, actions_pid=actions.proc.pid,
            )
        )  # fmt: skip

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

    # ------------------------------------------------------------ supervision

    def _set_available(self, available: bool, problem: str | None = None) -> None:
        if available and not self._available:
            log.info(format_event("dialogue_available", url=self.url, restarts=self.restarts))
        elif not available and self._available:
            log.error(format_event("dialogue_down", url=self.url, problem=problem))
        self._available = available
        for client in self._clients:
            client.available = available

    async def _supervise(self) -> None:
        """Watch the dialogue; restart managed children that die or stop answering."""
        failures = 0
        async with self.client() as probe:
            while True:
                await asyncio.sleep(self.config.health_interval_s)
                problem = await self._problem(probe)
                failures = failures + 1 if problem else 0
                if problem is None:
                    self._set_available(True)
                elif problem.died or failures >= self.config.health_failures:
                    self._set_available(False, problem.why)
                    if self.managed:
                        await self._restart_until_ready(problem.why)
                        failures = 0

    async def _problem(self, probe: RasaClient) -> _Problem | None:
        """Why the dialogue cannot serve a call right now, or None."""
        for process in self._processes:
            code = process.proc.poll()
            if code is not None:
                return _Problem(f"the {process.name} (pid {process.proc.pid}) exited with {code}")
        why = await probe.problem()  # the same request, with the same auth, as every call's
        return _Problem(why, died=False) if why else None

    async def _restart_until_ready(self, problem: str) -> None:
        """Restart both children until they answer, waiting longer after each failure.

        The back-off carries over when the last restart was recent, so a Rasa
        that dies right after each start is not restarted in a tight loop.
        """
        recent = time.monotonic() - self._last_restart < self.config.restart_backoff_max_s
        delay = min(self._delay * 2, self.config.restart_backoff_max_s) if recent else None
        delay = delay or self.config.restart_backoff_s
        while True:
            self.restarts += 1
            log.warning(
                format_event("rasa_restart", attempt=self.restarts, after_s=delay, problem=problem)
            )
            await self._stop_processes()
            await asyncio.sleep(delay)
            try:
                await self._launch()
            except (DialogueError, RasaSetupError, OSError) as exc:
                problem = str(exc).splitlines()[0]
                delay = min(delay * 2, self.config.restart_backoff_max_s)
                continue
            self._delay, self._last_restart = delay, time.monotonic()
            self._set_available(True)
            return

    async def _stop_processes(self) -> None:
        processes, self._processes = self._processes, []
        await asyncio.gather(*(p.stop() for p in reversed(processes)))

    async def _stop(self) -> None:
        await self._stop_processes()
        if self._own_log_dir is not None:
            shutil.rmtree(self._own_log_dir, ignore_errors=True)
            self._own_log_dir = None


@dataclass(frozen=True)
class _Problem:
    why: str
    died: bool = True  # a dead child restarts at once; a slow answer only after a few


@dataclass(frozen=True)
class _LaunchPlan:
    """What a (re)start needs: the same ports and token, so clients keep working."""

    python: Path
    model: Path
    rasa_port: int
    action_port: int
    log_dir: Path


class DialogueHost:
    """The dialogue new calls get, with a way to swap in a retrained model.

    ``reload`` starts a second managed Rasa on the newest trained model and,
    once it answers, hands it to new calls; calls in progress keep the Rasa
    they started with (their conversation state lives there) and it stops
    when the last of them has ended.  No call is dropped or loses its context.
    """

    def __init__(self, config: DialogueConfig, **managed_options: Any) -> None:
        self.config = config
        self._options = managed_options
        self._rasa: ManagedRasa | None = None
        self.client: RasaClient | None = None
        self._retiring: set[asyncio.Task[None]] = set()

    @property
    def rasa(self) -> ManagedRasa:
        assert self._rasa is not None, "DialogueHost is not started"
        return self._rasa

    async def __aenter__(self) -> DialogueHost:
        self._rasa, self.client = await self._open(self._options.get("model"))
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in list(self._retiring):
            task.cancel()
        await asyncio.gather(*self._retiring, return_exceptions=True)
        await self._close(self._rasa, self.client)

    async def _open(self, model: Path | None) -> tuple[ManagedRasa, RasaClient]:
        rasa = ManagedRasa(self.config, **{**self._options, "model": model})
        await rasa.__aenter__()
        client = rasa.client()
        if not rasa.managed and not await client.health():
            await self._close(rasa, client)
            raise DialogueError(
                f"cannot reach the Rasa server configured at {rasa.url} (dialogue.rasa_url"
                " / VOICEBOT_RASA_URL), or it rejects the auth token"
            )
        return rasa, client

    @staticmethod
    async def _close(rasa: ManagedRasa | None, client: RasaClient | None) -> None:
        if client is not None:
            await client.close()
        if rasa is not None:
            await rasa.__aexit__(None, None, None)

    async def reload(self, in_use: Callable[[RasaClient], bool]) -> str:
        """Serve new calls from the newest trained model; ``in_use(client)`` says
        whether a call still talks to the old one.  Returns what was done."""
        if not self.rasa.managed:
            raise DialogueError("reload needs a managed Rasa (not dialogue.rasa_url)")
        project = self._options.get("project_dir", RASA_PROJECT_DIR)
        model = find_model(project).resolve()  # RasaSetupError: not trained
        if self.rasa._launch_plan is not None and self.rasa._launch_plan.model == model:
            return f"model {model.name} is already loaded"
        old = (self._rasa, self.client)
        self._rasa, self.client = await self._open(model)
        task = asyncio.create_task(self._retire(*old, in_use), name="rasa-retire")
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)
        log.info(format_event("dialogue_reloaded", model=model.name, url=self.rasa.url))
        return f"model {model.name} loaded"

    async def _retire(
        self, rasa: ManagedRasa | None, client: RasaClient | None, in_use: Callable[..., bool]
    ) -> None:
        while client is not None and in_use(client):
            await asyncio.sleep(1.0)
        await self._close(rasa, client)
        log.info(format_event("dialogue_retired", url=rasa.url if rasa else None))


@asynccontextmanager
async def open_dialogue(
    config: DialogueConfig, **managed_options: Any
) -> AsyncIterator[RasaClient]:
    """A ready RasaClient: our own Rasa (started and stopped here) or config.rasa_url.

    ``managed_options`` go to ManagedRasa (project_dir, model, bank_db, log_dir).
    """
    async with DialogueHost(config, **managed_options) as host:
        assert host.client is not None
        yield host.client


__all__ = [
    "DialogueHost",
    "ManagedRasa",
    "RasaSetupError",
    "RasaStartError",
    "free_port",
    "open_dialogue",
]
