"""Bad arguments: one line on stderr, exit 2, before any model loads."""

from __future__ import annotations

import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.conftest import voicebot_process
from voicebot.cli_args import Listen
from voicebot.core.record import CallRecord
from voicebot.storage.call_store import SqliteCallStore


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["serve", "--sip-listen", "nonsense"], ["--sip-listen", "HOST:PORT", "'nonsense'"]),
        (["serve", "--sip-listen", "127.0.0.1:99999"], ["--sip-listen", "99999", "65535"]),
        (["serve", "--http-listen", "127.0.0.1:http"], ["--http-listen", "HOST:PORT"]),
        (["serve", "--sip-listen", "::1:5090"], ["brackets", "[::1]:5090"]),
        (["serve", "--sip-listen", "[::1:5090"], ["brackets"]),
        (["serve", "--agent", "alice"], ["--agent", "NAME=sip:", "'alice'"]),
        (["serve", "--agent", "alice=tel:123"], ["--agent", "'alice=tel:123'"]),
        (["--log-level", "chatty", "calls", "list"], ["--log-level", "chatty", "DEBUG"]),
        (["calls", "list", "--log-level", "loud"], ["--log-level", "loud"]),
        (["simulate", "dtmf:ABCD"], ["dtmf:ABCD", "0-9", "ABCD"]),
        (["simulate", "dtmf:12x"], ["dtmf:12x"]),
        (["simulate"], ["TURN"]),
        (["eval", "x.yaml", "--only"], ["--only"]),
        (["frobnicate"], ["frobnicate"]),
    ],
)
def test_bad_argument_is_one_line(cli, argv: list[str], words: list[str]) -> None:
    result = cli(*argv)
    assert result.code == 2
    line = result.error_line
    assert line.startswith("voicebot")
    for word in words:
        assert word in line


def test_the_real_command_answers_bad_arguments_in_one_line() -> None:
    for argv in (["serve", "--sip-listen", "nonsense"], ["serve", "--agent", "alice"]):
        result = voicebot_process(*argv)
        assert result.returncode == 2
        assert len(result.stderr.splitlines()) == 1, result.stderr


@pytest.mark.parametrize(
    ("text", "host", "port"),
    [
        ("127.0.0.1:5090", "127.0.0.1", 5090),
        (":5090", "127.0.0.1", 5090),
        ("[::1]:5090", "::1", 5090),
        ("0.0.0.0:0", "0.0.0.0", 0),
        ("localhost:8080", "localhost", 8080),
    ],
)
def test_listen_addresses(text: str, host: str, port: int) -> None:
    assert Listen.parse(text) == Listen(host, port)


def test_sip_port_in_use_names_the_port(cli) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", 0))
        port = busy.getsockname()[1]
        result = cli("serve", "--sip-listen", f"127.0.0.1:{port}", "--http-listen", "127.0.0.1:0")
    assert result.code == 2
    line = result.error_line
    assert f"udp 127.0.0.1:{port}" in line and "in use" in line


def test_http_port_in_use_names_the_port(cli) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = cli("serve", "--sip-listen", "127.0.0.1:0", "--http-listen", f"127.0.0.1:{port}")
    assert result.code == 2
    assert f"tcp 127.0.0.1:{port}" in result.error_line


def test_ipv6_listener_in_brackets_reaches_the_port_check(cli) -> None:
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as busy:
        busy.bind(("::1", 0))
        port = busy.getsockname()[1]
        result = cli("serve", "--sip-listen", f"[::1]:{port}", "--http-listen", "127.0.0.1:0")
    assert result.code == 2
    assert f"udp [::1]:{port}" in result.error_line


def test_address_this_machine_lacks(cli) -> None:
    result = cli("serve", "--sip-listen", "192.0.2.1:5060", "--http-listen", "127.0.0.1:0")
    assert result.code == 2
    assert "192.0.2.1:5060" in result.error_line


def test_free_ports_get_as_far_as_loading_models(cli) -> None:
    """The checks do not refuse good arguments: the next step is loading the models."""
    with pytest.raises(AssertionError, match="open_services was called"):
        cli("serve", "--sip-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
            "--agent", "alice=sip:alice@127.0.0.1:5070")  # fmt: skip


def test_simulate_out_unwritable_is_checked_before_the_call(cli, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = cli("simulate", "--out", str(blocker / "audio"), "dtmf:1")
    assert result.code == 2
    assert "--out" in result.error_line and str(blocker) in result.error_line


def test_reload_without_a_running_serve(cli, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    result = cli("reload")
    assert result.code == 2 and "no running voicebot serve" in result.error_line


def test_version(cli) -> None:
    result = cli("--version")
    assert result.code == 0 and result.out.startswith("voicebot ")


def test_log_level_is_case_insensitive(cli, tmp_path: Path) -> None:
    result = cli("--log-level", "debug", "calls", "--database", str(tmp_path / "x"), "list")
    assert "log-level" not in result.err  # accepted; the missing store is the error
    assert result.code == 2 and "no call store" in result.error_line


# ------------------------------------------------------------------ the call store


def _store_with_one_call(path: Path) -> str:
    store = SqliteCallStore(path)
    record = CallRecord(call_id="call-1", caller_id="+15550100", transport="fixture")
    record.finish("served", "caller hung up")
    store.save(record)
    store.close()
    return record.call_id


def test_config_after_the_subcommand(cli, tmp_path: Path) -> None:
    db = tmp_path / "calls.sqlite3"
    _store_with_one_call(db)
    config = tmp_path / "voicebot.toml"
    config.write_text(f'[storage]\ndatabase = "{db}"\n')
    for argv in (
        ["--config", str(config), "calls", "list"],
        ["calls", "--config", str(config), "list"],
        ["calls", "list", "--config", str(config)],
    ):
        result = cli(*argv)
        assert result.code == 0, result.err
        assert "call-1" in result.out


def test_reading_never_creates_a_store(cli, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("VOICEBOT_CONFIG", raising=False)
    for argv in (["calls", "list"], ["calls", "export", "call-1"]):
        result = cli(*argv)
        assert result.code == 2
        assert str(tmp_path / "state" / "voicebot" / "calls.sqlite3") in result.error_line
    assert not (tmp_path / "state").exists()


def test_calls_database_that_is_not_a_database(cli, tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("hello\n" * 100)
    result = cli("calls", "--database", str(notes), "list")
    assert result.code == 2 and "not a voicebot call store" in result.error_line
    other = tmp_path / "other.sqlite3"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.close()
    result = cli("calls", "--database", str(other), "list")
    assert result.code == 2 and "not a voicebot call store" in result.error_line


def test_calls_list_into_a_closed_pipe(tmp_path: Path) -> None:
    db = tmp_path / "calls.sqlite3"
    store = SqliteCallStore(db)
    for n in range(3000):
        store.save(CallRecord(call_id=f"call-{n:05d}", caller_id="+1555", transport="fixture"))
    store.close()
    command = [sys.executable, "-m", "voicebot", "calls", "--database", str(db), "list",
               "--limit", "3000"]  # fmt: skip
    lister = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert lister.stdout is not None
    lister.stdout.readline()  # `| head -1`
    lister.stdout.close()
    _, err = lister.communicate(timeout=60)
    assert b"Traceback" not in err and b"BrokenPipe" not in err, err.decode()
    assert lister.returncode == 141
