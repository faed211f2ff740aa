"""A throwaway PostgreSQL server in a temporary folder (tests, ``scripts/cluster``).

``initdb`` into a fresh directory, ``pg_ctl start`` listening on a Unix socket
in that directory and on one TCP address, ``pg_ctl stop`` at the end.  The
server refuses to run as root, so when we are root it runs as the ``postgres``
system user (``runuser``); the folder is handed to that user.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

DATABASE = "voicebot"


class PostgresMissing(RuntimeError):
    """No PostgreSQL server binaries on this machine."""


def server_bindir() -> Path:
    """The folder with ``initdb`` and ``pg_ctl`` (Debian keeps them off PATH)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True)
    if found:
        return Path(found[0]).parent
    if pg_ctl := shutil.which("pg_ctl"):
        return Path(pg_ctl).resolve().parent
    raise PostgresMissing(
        "PostgreSQL server not found: install the Debian package 'postgresql' "
        "(scripts/setup --dev does)"
    )


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclass
class LocalPostgres:
    """One private PostgreSQL cluster; use as a context manager."""

    host: str = "127.0.0.1"
    port: int = 0
    root: Path | None = None
    _owned_root: bool = field(default=False, init=False)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@{self.host}:{self.port}/{DATABASE}"

    @property
    def datadir(self) -> Path:
        assert self.root is not None
        return self.root / "data"

    def start(self) -> LocalPostgres:
        bindir = server_bindir()
        if self.root is None:
            self.root = Path(tempfile.mkdtemp(prefix="voicebot-pg-"))
            self._owned_root = True
        self.port = self.port or free_port(self.host)
        self._hand_over(self.root)
        self._run(
            [
                bindir / "initdb",
                "-D",
                self.datadir,
                "-U",
                "postgres",
                "-A",
                "trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ]
        )
        options = (
            f"-c listen_addresses={self.host} -p {self.port} "
            f"-c unix_socket_directories={self.root} -c fsync=off "
            "-c max_connections=200 -c shared_buffers=32MB"
        )
        self._run(
            [
                bindir / "pg_ctl",
                "-D",
                self.datadir,
                "-o",
                options,
                "-l",
                self.root / "server.log",
                "-w",
                "-t",
                "60",
                "start",
            ]
        )
        self._run(
            [bindir / "createdb", "-h", self.host, "-p", str(self.port), "-U", "postgres", DATABASE]
        )
        return self

    def stop(self) -> None:
        if self.root is None or not self.datadir.exists():
            return
        bindir = server_bindir()
        subprocess.run(
            self._as_owner(
                [bindir / "pg_ctl", "-D", self.datadir, "-m", "immediate", "-w", "stop"]
            ),
            capture_output=True,
            check=False,
        )
        if self._owned_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> LocalPostgres:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # ----------------------------------------------------------------- helpers

    @staticmethod
    def _as_owner(argv: list[object]) -> list[str]:
        args = [str(a) for a in argv]
        return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args

    def _run(self, argv: list[object]) -> None:
        done = subprocess.run(self._as_owner(argv), capture_output=True, text=True)
        if done.returncode != 0:
            log = self.root / "server.log" if self.root else None
            tail = log.read_text()[-2000:] if log and log.exists() else ""
            raise RuntimeError(
                f"{Path(str(argv[0])).name} failed: {done.stderr.strip()[-2000:]}\n{tail}"
            )

    @staticmethod
    def _hand_over(root: Path) -> None:
        """As root, the server runs as ``postgres``: give it the folder."""
        if os.geteuid() != 0:
            return
        user = pwd.getpwnam("postgres")
        os.chown(root, user.pw_uid, user.pw_gid)
        os.chmod(root, 0o700)
