"""Command-line argument types and checks that run before any model loads.

Loading Whisper, the voice and Rasa takes seconds; a typo in an argument must
not cost that wait and then a traceback.  Each check here fails with one line
that says what was wrong and what was expected (argparse adds exit status 2).
"""

from __future__ import annotations

import argparse
import errno
import ipaddress
import os
import socket
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from voicebot.handoff.config import parse_agent_option

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (``voicebot serve: …``), exit 2."""

    def error(self, message: str) -> NoReturn:
        hint = f" (see {self.prog} --help)"
        self.exit(2, f"{self.prog}: {message}{hint}\n")


@dataclass(frozen=True)
class Listen:
    """A listening address from ``HOST:PORT`` or ``[IPv6]:PORT``."""

    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> Listen:
        host, sep, port = text.rpartition(":")
        if not sep or not port.isdigit():
            raise ValueError(f"expected HOST:PORT (e.g. 127.0.0.1:5060), got {text!r}")
        if host.startswith("[") != host.endswith("]"):
            raise ValueError(f"unbalanced brackets in {text!r}: write [::1]:5060")
        host = host.strip("[]") or "127.0.0.1"
        if ":" in host:
            try:
                ipaddress.IPv6Address(host)
            except ValueError:
                raise ValueError(f"{host!r} is not an IPv6 address (in {text!r})") from None
            if not text.startswith("["):
                raise ValueError(f"write an IPv6 address in brackets: [{host}]:{port}")
        number = int(port)
        if not 0 <= number <= 65535:
            raise ValueError(f"port {number} is out of range 0-65535 (in {text!r})")
        return cls(host, number)

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def listen_arg(text: str) -> Listen:
    try:
        return Listen.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def agent_arg(text: str) -> tuple[str, str]:
    try:
        return parse_agent_option(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def log_level_arg(text: str) -> str:
    level = text.upper()
    if level not in LOG_LEVELS:
        raise argparse.ArgumentTypeError(
            f"invalid choice {text!r} (choose from {', '.join(LOG_LEVELS)})"
        )
    return level


def check_can_listen(what: str, address: Listen, kind: int) -> str | None:
    """Why ``address`` cannot be bound for ``kind`` (SOCK_DGRAM/SOCK_STREAM), or None.

    Binds and closes at once: the port may still be taken in between, but the
    common mistakes (port in use, an address this machine does not have, a name
    that does not resolve) are caught before the models load.
    """
    proto = "udp" if kind == socket.SOCK_DGRAM else "tcp"
    try:
        infos = socket.getaddrinfo(address.host, address.port, type=kind, flags=socket.AI_PASSIVE)
        family, _, _, _, sockaddr = infos[0]
        with socket.socket(family, kind) as sock:
            if kind == socket.SOCK_STREAM:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(sockaddr)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        if exc.errno == errno.EADDRINUSE:
            reason = "the port is already in use (another voicebot?)"
        return f"cannot listen for {what} on {proto} {address}: {reason}"
    return None


def check_out_dir(path: Path) -> str | None:
    """Why the bot's audio could not be written to ``path``, or None (it is created)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        return f"cannot write to --out {path}: {exc.strerror or exc}"
    return None


def stdout_closed() -> int:
    """The reader went away (``voicebot calls list | head``): stop quietly.

    Python would report the broken pipe again when it flushes stdout at exit,
    so stdout is pointed at /dev/null first.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 141  # 128 + SIGPIPE, what a C tool killed by the pipe reports
