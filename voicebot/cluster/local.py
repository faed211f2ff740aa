"""A whole cluster on one machine: PostgreSQL, one Rasa, N voicebots, Kamailio.

Used by ``scripts/cluster`` (a trial with a softphone) and by the cluster
tests.  Each instance is a real ``voicebot serve`` process on its own
loopback address (127.0.0.2, .3, …) sharing the PostgreSQL store; Kamailio
listens on ``proxy_host:5060`` and dispatches calls to them with the shipped
``deploy/kamailio/kamailio.cfg``.  Loopback addresses other than 127.0.0.1
need a private network namespace (``unshare -n``): the script and the tests
run inside one.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from voicebot.cluster.localpg import LocalPostgres
from voicebot.config import PROJECT_ROOT

KAMAILIO_CFG = PROJECT_ROOT / "deploy" / "kamailio" / "kamailio.cfg"
SIP_PORT = 5060
HTTP_PORT = 8080


class ClusterError(RuntimeError):
    """A part of the local cluster did not start."""


@dataclass
class Instance:
    """One ``voicebot serve`` process of the cluster."""

    name: str
    host: str
    workdir: Path
    proc: subprocess.Popen[bytes] | None = None
    startup_s: float = 0.0

    @property
    def sip(self) -> str:
        return f"{self.host}:{SIP_PORT}"

    @property
    def http(self) -> str:
        return f"http://{self.host}:{HTTP_PORT}"

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.name}.log"

    @property
    def out_path(self) -> Path:
        return self.workdir / f"{self.name}.out"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def logs(self, tail: int = 4000) -> str:
        text = ""
        for path in (self.out_path, self.log_path):
            if path.exists():
                text += f"--- {path.name} ---\n{path.read_text(errors='replace')[-tail:]}\n"
        return text

    def signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, sig)

    def wait(self, timeout_s: float) -> int | None:
        if self.proc is None:
            return None
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            return None


@dataclass
class LocalCluster:
    """Start with :meth:`start` (blocking, a minute or so), end with :meth:`stop`."""

    workdir: Path
    size: int = 3
    proxy_host: str = "127.0.0.1"
    # Extra TOML for every instance (agents, drain limit, capacity…).
    extra_config: str = ""
    # The cluster's one shared Rasa (scripts/cluster and the tests start one);
    # empty: every instance starts and supervises its own.
    rasa_url: str = ""
    rasa_token: str = ""
    log_level: str = "INFO"
    drain_limit_s: float = 0.0
    postgres: LocalPostgres | None = None
    instances: list[Instance] = field(default_factory=list)
    kamailio: subprocess.Popen[bytes] | None = None

    @property
    def proxy(self) -> str:
        return f"{self.proxy_host}:{SIP_PORT}"

    @property
    def store_url(self) -> str:
        assert self.postgres is not None
        return self.postgres.url

    def start(self, timeout_s: float = 240.0) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.postgres = LocalPostgres(host=self.proxy_host).start()
        self.instances = [
            Instance(f"vb{n + 2}", f"127.0.0.{n + 2}", self.workdir) for n in range(self.size)
        ]
        for instance in self.instances:
            self.start_instance(instance)
        for instance in self.instances:
            self.wait_ready(instance, timeout_s)
        self.start_kamailio()

    def config_text(self, instance: Instance) -> str:
        dialogue = f'[dialogue]\nrasa_url = "{self.rasa_url}"\n' if self.rasa_url else ""
        return (
            f'[storage]\nurl = "{self.store_url}"\n'
            f'[cluster]\ninstance = "{instance.name}"\ndrain_limit_s = {self.drain_limit_s}\n'
            f"{dialogue}{self.extra_config}"
        )

    def start_instance(self, instance: Instance) -> None:
        config = self.workdir / f"{instance.name}.toml"
        config.write_text(self.config_text(instance))
        command = [
            sys.executable, "-m", "voicebot", "--config", str(config),
            "--log-level", self.log_level, "serve",
            "--sip-listen", instance.sip, "--http-listen", f"{instance.host}:{HTTP_PORT}",
        ]  # fmt: skip
        instance.startup_s = time.monotonic()
        env = dict(os.environ)
        if self.rasa_token:  # the token travels in the environment, never in argv or a file
            env["VOICEBOT_RASA_TOKEN"] = self.rasa_token
        instance.proc = subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=instance.out_path.open("wb"),
            stderr=instance.log_path.open("wb"),
        )

    def wait_ready(self, instance: Instance, timeout_s: float) -> None:
        deadline = instance.startup_s + timeout_s
        while "voicebot ready" not in _read(instance.out_path):
            if not instance.running:
                raise ClusterError(f"{instance.name} exited:\n{instance.logs()}")
            if time.monotonic() > deadline:
                raise ClusterError(
                    f"{instance.name} not ready in {timeout_s} s:\n{instance.logs()}"
                )
            time.sleep(0.1)
        instance.startup_s = time.monotonic() - instance.startup_s

    def start_kamailio(self) -> None:
        kamailio = shutil.which("kamailio") or "/usr/sbin/kamailio"
        if not Path(kamailio).exists():
            raise ClusterError("kamailio is not installed: apt-get install kamailio")
        targets = self.workdir / "dispatcher.list"
        targets.write_text(
            "".join(f"1 sip:{i.sip} 0 0 duid={i.name};maxload=32\n" for i in self.instances)
        )
        command = [
            kamailio, "-DD", "-E", "-f", str(KAMAILIO_CFG), "-Y", str(self.workdir),
            "-A", f"LISTEN=udp:{self.proxy}",
            "-A", f'DISPATCHER_LIST="{targets}"',
            "-A", f'CTL_SOCKET="unix:{self.workdir}/kamailio_ctl"',
        ]  # fmt: skip
        self.kamailio = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=(self.workdir / "kamailio.log").open("wb"),
            start_new_session=True,
        )
        time.sleep(0.5)
        if self.kamailio.poll() is not None:
            raise ClusterError("kamailio exited:\n" + _read(self.workdir / "kamailio.log")[-3000:])

    # Kamailio logs "call <Call-ID> from <ip> to <uri> at <epoch>" per INVITE sent
    # and "instance <uri> failed <Call-ID> (<code>) at <epoch>" per failover.

    def routed(self) -> list[tuple[str, str, float]]:
        """(Call-ID, instance address, time) of every INVITE Kamailio relayed."""
        found = re.findall(r"call (\S+) from \S+ to sip:([\d.]+):\d+ at ([\d.]+)", self._log())
        return [(call, host, float(at)) for call, host, at in found]

    def failovers(self) -> list[tuple[str, str, float]]:
        """(Call-ID, instance address, time) of every INVITE an instance failed."""
        found = re.findall(
            r"instance sip:([\d.]+):\d+ failed (\S+) \(\d+\) at ([\d.]+)", self._log()
        )
        return [(call, host, float(at)) for host, call, at in found]

    def _log(self) -> str:
        return _read(self.workdir / "kamailio.log")

    def stop(self) -> None:
        """SIGTERM every voicebot (then SIGKILL), Kamailio, PostgreSQL."""
        for instance in self.instances:
            instance.signal(signal.SIGTERM)
        for instance in self.instances:
            if instance.proc is not None and instance.wait(30) is None:
                instance.proc.kill()
                instance.proc.wait(10)
        if self.kamailio is not None and self.kamailio.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.kamailio.pid, signal.SIGTERM)
            try:
                self.kamailio.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.kamailio.pid, signal.SIGKILL)
                self.kamailio.wait(10)
        if self.postgres is not None:
            self.postgres.stop()

    def __enter__(self) -> LocalCluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""
