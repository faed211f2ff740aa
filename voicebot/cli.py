"""``voicebot`` command line: simulate, eval, demo, serve, talk, calls."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import sys
from collections.abc import Callable, Coroutine
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from voicebot.cli_args import (
    OneLineParser,
    agent_arg,
    check_can_listen,
    check_out_dir,
    listen_arg,
    log_level_arg,
    stdout_closed,
)
from voicebot.config import (
    PROJECT_ROOT,
    Config,
    ConfigError,
    default_database,
    load_config,
    serve_pid_file,
)
from voicebot.core.logs import setup_logging
from voicebot.core.record import CallRecord

FIXTURES = PROJECT_ROOT / "audio_fixtures"
DEMO_SCENARIOS = ("opening_hours", "balance_spoken_pin")


class UserError(Exception):
    """A problem the user can fix; printed without a traceback."""


def print_record(record: CallRecord, out: Any = sys.stdout) -> None:
    """The call as a human reads it: who said what, with intents."""
    who = record.caller_id or "unknown caller"
    print(f"Call {record.call_id} from {who} via {record.transport}", file=out)
    for turn in record.turns:
        if turn.caller_text is not None:
            intent = f"  ({turn.intent} {turn.confidence})" if turn.intent else ""
            print(f"  [{turn.offset_s:6.1f}s] CALLER: {turn.caller_text}{intent}", file=out)
        if turn.bot_text:
            cut = " [interrupted]" if turn.bot_interrupted else ""
            print(f"  [{turn.offset_s:6.1f}s] BOT:    {turn.bot_text}{cut}", file=out)
    verified = ", ".join(f"{k}={v}" for k, v in record.verified.items())
    print(f"  outcome: {record.outcome} ({record.end_reason}); verified: {verified}", file=out)
    if record.transfer:
        print(f"  transfer: {json.dumps(record.transfer)}", file=out)


# ---------------------------------------------------------------- commands


async def cmd_simulate(args: argparse.Namespace, config: Config) -> int:
    from voicebot.runtime import open_services
    from voicebot.simulation import SimulatedAgentDialer, add_simulated_agent, simulate_call
    from voicebot.telephony.fixture import parse_turn

    turns = [parse_turn(t) for t in args.turns]  # fail fast, before loading anything
    if args.out is not None and (problem := check_out_dir(args.out)):
        raise UserError(problem)
    async with open_services(config, dialer=SimulatedAgentDialer()) as services:
        if not args.no_agent:
            add_simulated_agent(services)
        record = await simulate_call(services, turns, args.caller, args.out)
    if args.json:
        print(json.dumps(record.to_dict(), indent=2))
    else:
        print_record(record)
    return 0


async def cmd_eval(args: argparse.Namespace, config: Config) -> int:
    from voicebot.judgement import format_report
    from voicebot.runtime import open_services
    from voicebot.simulation import (
        SimulatedAgentDialer,
        add_simulated_agent,
        judge,
        load_scenarios,
        run_scenarios,
        totals,
    )

    scenarios = load_scenarios(Path(args.scenarios))
    if args.only:
        known = {s.id for s in scenarios}
        if unknown := [sid for sid in args.only if sid not in known]:
            raise UserError(
                f"--only: no scenario {', '.join(map(repr, unknown))} in {args.scenarios}"
            )
        scenarios = [s for s in scenarios if s.id in set(args.only)]
    async with open_services(config, dialer=SimulatedAgentDialer()) as services:
        if not args.no_agent:
            add_simulated_agent(services)
        progress = EvalProgress(len(scenarios), sys.stderr if args.json else sys.stdout)
        results = await run_scenarios(services, scenarios, on_result=progress.show)
    summary = totals(results)
    report = judge(results)
    if args.json:
        body = {"scenarios": [r.to_dict() for r in results], "totals": summary, "judgement": report}
        print(json.dumps(body, indent=2))
    else:
        print(json.dumps(summary))
        print("\n".join(format_report(report)))
    return 0 if summary["failed"] == 0 else 1


class EvalProgress:
    """One line per finished scenario as it finishes (eval takes minutes); with
    ``--json`` the lines go to stderr, redrawn in place on a terminal."""

    def __init__(self, total: int, out: Any) -> None:
        self.total, self.done, self.out = total, 0, out
        self.in_place = out is sys.stderr and out.isatty()

    def show(self, result: Any) -> None:
        self.done += 1
        mark = "PASS" if result.passed else "FAIL"
        line = f"{mark} {result.scenario.id}: {result.record.outcome}  {'; '.join(result.failures)}"
        if self.in_place:
            end = "\n" if self.done == self.total else ""
            print(f"\r\033[K[{self.done}/{self.total}] {line[:100]}", end=end, file=self.out)
        else:
            print(f"[{self.done}/{self.total}] {line}" if self.out is sys.stderr else line,
                  file=self.out)  # fmt: skip
        self.out.flush()


async def cmd_demo(args: argparse.Namespace, config: Config) -> int:
    """Start the assistant on embedded defaults and play demo calls from the fixtures."""
    from voicebot.runtime import open_services
    from voicebot.simulation import load_scenarios, simulate_call

    if args.voices:
        from voicebot.speech.voice_samples import write_voice_samples

        print("The same replies in each voice, as a caller hears them (8 kHz μ-law):")
        print("\n".join(await write_voice_samples(config.tts, Path(args.out) / "voices")))
        return 0
    scenarios = [s for s in load_scenarios(FIXTURES / "scenarios.yaml") if s.id in DEMO_SCENARIOS]
    if not scenarios:
        raise UserError(f"no demo scenarios {DEMO_SCENARIOS} in {FIXTURES / 'scenarios.yaml'}")
    async with open_services(config) as services:
        for scenario in scenarios:
            out = Path(args.out) / scenario.id
            record = await simulate_call(services, scenario.turns, scenario.caller, out)
            print_record(record)
            print(f"  bot audio: {out}/\n")
    return 0


async def cmd_serve(args: argparse.Namespace, config: Config) -> int:
    """Answer SIP calls and carrier media streams until SIGTERM."""
    from voicebot.runtime import open_services
    from voicebot.server import serve

    if args.sip_listen:
        config.sip.listen_host, config.sip.listen_port = args.sip_listen.host, args.sip_listen.port
    if args.http_listen:
        config.http.listen_host = args.http_listen.host
        config.http.listen_port = args.http_listen.port
    check_listeners(config)
    if args.store:
        config.storage.url = args.store
    async with open_services(config) as services:
        assert services.queue is not None
        tokens = {name: services.queue.add_agent(name, uri).token for name, uri in args.agent}
        announce_tokens(tokens, config, print_them=args.print_tokens)
        await serve(services, config, lambda line: print(line, flush=True))
    return 0


def cmd_train(args: argparse.Namespace, config: Config) -> int:
    """Train the Rasa model when the project changed (the managed Rasa loads the newest)."""
    from voicebot.dialogue.training import train

    path = train(force=args.force, project_dir=config.dialogue.project_path())
    print(path)
    return 0


def cmd_reload(args: argparse.Namespace, config: Config) -> int:
    """Train if the project changed, then tell a running ``voicebot serve`` (SIGHUP)."""
    from voicebot.dialogue.training import train

    pid = args.pid or _serving_pid()
    print(train(project_dir=config.dialogue.project_path()))
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        raise UserError(f"no voicebot serve with pid {pid} (stale {serve_pid_file()}?)") from None
    print(f"voicebot serve (pid {pid}) loads the newest model for new calls")
    return 0


def _serving_pid() -> int:
    path = serve_pid_file()
    try:
        pid = int(path.read_text().split()[0])
        running = b"voicebot" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError, IndexError):
        running = False
    if not running:
        raise UserError(f"no running voicebot serve found ({path}); give --pid")
    return pid


def check_listeners(config: Config) -> None:
    """A port in use or an address this machine lacks: say so before the models load."""
    from voicebot.cli_args import Listen

    wanted = (
        ("SIP", Listen(config.sip.listen_host, config.sip.listen_port), socket.SOCK_DGRAM),
        ("HTTP", Listen(config.http.listen_host, config.http.listen_port), socket.SOCK_STREAM),
    )
    for what, address, kind in wanted:
        if problem := check_can_listen(what, address, kind):
            raise UserError(problem)


def announce_tokens(tokens: dict[str, str], config: Config, *, print_them: bool) -> None:
    """Desk tokens go to a 0600 file beside the database; stdout only on request."""
    from voicebot.agent_desk.tokens import write_token_file

    if not tokens:
        return
    path = write_token_file(config.storage.path().parent / "desk-tokens", tokens)
    for name, token in tokens.items():
        shown = token if print_them else f"in {path}"
        print(f"agent {name} signed in; desk token: {shown}", flush=True)


async def cmd_talk(args: argparse.Namespace, config: Config) -> int:
    """A call from this computer's microphone and speaker; type digits + Enter for keys."""
    from voicebot.runtime import open_services
    from voicebot.session.call_session import CallSession
    from voicebot.telephony.local_audio import find_devices, open_local_channel

    find_devices()  # no sound card or PortAudio: a clear error before models load
    channel = open_local_channel(caller_id=args.caller, half_duplex=args.half_duplex)
    async with open_services(config) as services, channel as ch:
        print("Talking to voicebot. Type digits + Enter for keypad, q + Enter to hang up.")
        keys = asyncio.create_task(_forward_keys(ch))
        record = await CallSession(ch, services).run()
        keys.cancel()
    print_record(record)
    return 0


async def _forward_keys(channel: Any) -> None:
    """Terminal lines become keypad presses (the terminal is our phone's keypad)."""
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line or line.strip().lower() == "q":
            channel.end()
            return
        channel.press(line.strip())


def cmd_calls(args: argparse.Namespace, config: Config) -> int:
    from voicebot.storage import is_postgres_url, open_store
    from voicebot.storage.call_store import check_existing_store

    url = args.database or config.storage.url
    if is_postgres_url(url):
        store = open_store(url)  # the shared store of a cluster
    else:
        store = open_store(check_existing_store(args.database or config.storage.path()))
    if args.calls_command == "delete":
        try:
            counts = store.delete_caller(args.caller)
        except ValueError as exc:
            raise UserError(str(exc)) from exc
        print(f"deleted for {args.caller}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    elif args.calls_command == "purge":
        days = args.days if args.days is not None else config.storage.retention_days
        if days is None:
            raise UserError("no retention period: pass --days N or set storage.retention_days")
        counts = store.purge_older_than(days)
        print(f"older than {days:g} days: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    elif args.calls_command == "export":
        record = store.get(args.call_id)
        if record is None:
            raise UserError(f"no call {args.call_id!r} in {store.path}")
        text = json.dumps(record, indent=2)
        if args.output:
            Path(args.output).write_text(text + "\n")
        else:
            print(text)
    else:
        for rec in store.list_calls(limit=args.limit, query=args.search):
            print(f"{rec['started_at']}  {rec['call_id']}  {rec['caller_id']}  {rec['outcome']}")
    return 0


# ---------------------------------------------------------------- parser


def _version() -> str:
    try:
        return version("voicebot")
    except PackageNotFoundError:
        return "unknown"


def _common_options(defaults: bool) -> argparse.ArgumentParser:
    """--config and --log-level, accepted before and after the subcommand.

    The subcommand's copy has no defaults (SUPPRESS), so it only overrides
    what the user actually typed after the subcommand.
    """
    common = argparse.ArgumentParser(add_help=False)
    keep = {} if defaults else {"default": argparse.SUPPRESS}
    common.add_argument(
        "--config",
        help="TOML configuration file (default: $VOICEBOT_CONFIG, else embedded defaults)",
        **({"default": None} | keep),
    )
    common.add_argument(
        "--log-level",
        type=log_level_arg,
        metavar="LEVEL",
        help="DEBUG, INFO (default: one key=value line per call event on stderr), WARNING, ERROR",
        **({"default": "INFO"} | keep),
    )
    return common


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="voicebot", description=__doc__, parents=[_common_options(defaults=True)]
    )
    parser.add_argument("--version", action="version", version=f"voicebot {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = [_common_options(defaults=False)]

    sim = sub.add_parser(
        "simulate", parents=common, help="run one call from WAV turns and dtmf:DIGITS"
    )
    sim.add_argument("--caller", help="caller ID, e.g. +15550100")
    sim.add_argument("--json", action="store_true", help="print the call record as JSON")
    sim.add_argument("--out", type=Path, help="write the bot's audio (WAV) here")
    sim.add_argument(
        "turns",
        nargs="+",
        metavar="TURN",
        help="WAV file, dtmf:DIGITS (0-9 * #) or hangup; after the last turn the caller "
        "stays on the line, silent, until the bot ends the call",
    )
    sim.add_argument(
        "--no-agent",
        action="store_true",
        help="no simulated agent: transfers end in the callback offer",
    )

    ev = sub.add_parser("eval", parents=common, help="run scripted scenario calls and report")
    ev.add_argument("scenarios", help="scenarios YAML")
    ev.add_argument("--json", action="store_true")
    ev.add_argument("--only", nargs="+", metavar="ID", help="scenario ids to run")
    ev.add_argument("--no-agent", action="store_true", help="no simulated agent")

    demo = sub.add_parser(
        "demo", parents=common, help="play demo calls from the fixtures and print transcripts"
    )
    demo.add_argument("--out", default="var/demo", help="where to write the bot's audio")
    demo.add_argument(
        "--voices", action="store_true", help="write sample replies in every TTS voice (no call)"
    )

    store_help = (
        f"call store (default: [storage] database, else {default_database()}, "
        "i.e. $XDG_STATE_HOME/voicebot/calls.sqlite3)"
    )
    srv = sub.add_parser(
        "serve",
        parents=common,
        help="answer SIP calls and carrier media streams",
        description="Answer SIP calls and carrier media streams; GET /health on the HTTP "
        "listener reports status and calls in progress. Calls are stored in the "
        f"call store ([storage] database, default {default_database()}).",
    )
    srv.add_argument(
        "--sip-listen",
        type=listen_arg,
        metavar="HOST:PORT",
        help="SIP UDP listener (default 127.0.0.1:5060; IPv6 as [::1]:5060)",
    )
    srv.add_argument(
        "--http-listen",
        type=listen_arg,
        metavar="HOST:PORT",
        help="HTTP listener: media streams, agent desk, /health (default 127.0.0.1:8080)",
    )
    srv.add_argument(
        "--store",
        metavar="URL_OR_FILE",
        help="postgresql://… (a cluster's shared store) or a SQLite file "
        "(default from config: var/voicebot.sqlite3)",
    )
    srv.add_argument(
        "--agent",
        action="append",
        default=[],
        type=agent_arg,
        metavar="NAME=SIP_URI",
        help="an agent signed in and available from the start (repeatable)",
    )
    srv.add_argument(
        "--print-tokens",
        action="store_true",
        help="print the agents' desk tokens (default: only to a 0600 file beside the database)",
    )

    talk = sub.add_parser(
        "talk", parents=common, help="a call from this computer's microphone and speaker"
    )
    talk.add_argument("--caller", default=None, help="caller ID to present, e.g. +15550100")
    talk.add_argument(
        "--half-duplex",
        action="store_true",
        help="mute the microphone while the bot speaks (no headset)",
    )

    training = sub.add_parser(
        "train",
        parents=common,
        help="train the Rasa model if the project changed ([dialogue] project_dir)",
    )
    training.add_argument("--force", action="store_true", help="train even if it is current")

    reload = sub.add_parser(
        "reload",
        parents=common,
        help="train if needed, then make a running serve load the new model (no call dropped)",
    )
    reload.add_argument("--pid", type=int, help=f"serve's PID (default: from {serve_pid_file()})")

    calls = sub.add_parser(
        "calls", parents=common, help="stored call records: list, export, delete a caller, purge"
    )
    calls.add_argument("--database", help=store_help + "; or a postgresql:// URL")
    calls_sub = calls.add_subparsers(dest="calls_command", required=True, metavar="COMMAND")
    export = calls_sub.add_parser("export", parents=common, help="write one call record as JSON")
    export.add_argument("call_id")
    export.add_argument("-o", "--output", help="file (default stdout)")
    listing = calls_sub.add_parser("list", parents=common, help="recent calls")
    listing.add_argument("--limit", type=int, default=20)
    listing.add_argument("--search", help="text in caller ID, call ID or transcript")
    delete = calls_sub.add_parser(
        "delete",
        parents=common,
        help="delete everything stored about one caller (data-subject request)",
    )
    delete.add_argument("--caller", required=True, metavar="NUMBER", help="e.g. +15550100")
    purge = calls_sub.add_parser(
        "purge", parents=common, help="delete calls older than the retention period"
    )
    purge.add_argument("--days", type=float, help="default: storage.retention_days")
    return parser


COMMANDS: dict[str, Callable[..., Coroutine[Any, Any, int] | int]] = {
    "simulate": cmd_simulate,
    "eval": cmd_eval,
    "demo": cmd_demo,
    "calls": cmd_calls,
    "serve": cmd_serve,
    "talk": cmd_talk,
    "train": cmd_train,
    "reload": cmd_reload,
}


def _interrupt_on_sigterm() -> None:
    """SIGTERM behaves like Ctrl-C, so managed Rasa processes are stopped, not orphaned."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _interrupt_on_sigterm()
    setup_logging(args.log_level)
    try:
        config = load_config(args.config)
        result = COMMANDS[args.command](args, config)
        if asyncio.iscoroutine(result):
            result = asyncio.run(result)
        return int(result)
    except (UserError, ConfigError) as exc:
        print(f"voicebot: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return stdout_closed()
    except Exception as exc:
        # Known failure kinds carry their own how-to-fix message.
        if type(exc).__name__.endswith(("Error",)) and _is_user_facing(exc):
            print(f"voicebot: {exc}", file=sys.stderr)
            return 2
        raise


def _is_user_facing(exc: Exception) -> bool:
    """Errors whose message tells the user what to do (missing model, bad audio…)."""
    names = {
        "FixtureError",
        "AudioFileError",
        "ModelMissingError",
        "TtsError",
        "DialogueError",
        "RasaStartError",
        "VadError",
        "LocalAudioError",
        "ListenError",
        "StoreMissingError",
        "TrainingError",
        "RasaSetupError",
        "ScenarioSchemaError",
        "StoreUnavailableError",
    }
    return any(cls.__name__ in names for cls in type(exc).__mro__)


if __name__ == "__main__":
    sys.exit(main())
