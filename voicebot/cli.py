"""``voicebot`` command line: simulate, eval, demo, serve, talk, calls."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from voicebot.config import PROJECT_ROOT, Config, ConfigError, load_config
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
        scenarios = [s for s in scenarios if s.id in set(args.only)]
    async with open_services(config, dialer=SimulatedAgentDialer()) as services:
        if not args.no_agent:
            add_simulated_agent(services)
        progress = _EvalProgress(len(scenarios))
        results = await run_scenarios(services, scenarios, progress)
        progress.done()
    summary = totals(results)
    report = judge(results)
    if args.json:
        body = {"scenarios": [r.to_dict() for r in results], "totals": summary, "judgement": report}
        print(json.dumps(body, indent=2))
    else:
        for r in results:
            mark = "PASS" if r.passed else "FAIL"
            print(f"{mark} {r.scenario.id}: {r.record.outcome}  {'; '.join(r.failures)}")
        print(json.dumps(summary))
        print("\n".join(format_report(report)))
    return 0 if summary["failed"] == 0 else 1


class _EvalProgress:
    """One line per finished scenario on stderr; on a terminal, one line
    rewritten in place (stdout stays clean for --json)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.tty = sys.stderr.isatty()

    def __call__(self, n: int, result: Any) -> None:
        mark = "pass" if result.passed else "FAIL"
        line = f"[{n}/{self.total}] {mark} {result.scenario.id}: {result.record.outcome}"
        if self.tty:
            print(f"\r\033[K{line}", end="", file=sys.stderr, flush=True)
        else:
            print(line, file=sys.stderr, flush=True)

    def done(self) -> None:
        if self.tty:
            print(file=sys.stderr)


async def cmd_demo(args: argparse.Namespace, config: Config) -> int:
    """Start the assistant on embedded defaults and play demo calls from the fixtures."""
    from voicebot.runtime import open_services
    from voicebot.simulation import load_scenarios, simulate_call

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
    from voicebot.handoff import parse_agent_option
    from voicebot.runtime import open_services
    from voicebot.server import Listen, serve

    if args.sip_listen:
        sip = Listen.parse(args.sip_listen)
        config.sip.listen_host, config.sip.listen_port = sip.host, sip.port
    if args.http_listen:
        http = Listen.parse(args.http_listen)
        config.http.listen_host, config.http.listen_port = http.host, http.port
    agents = [parse_agent_option(spec) for spec in args.agent]
    async with open_services(config) as services:
        assert services.queue is not None
        for name, uri in agents:
            agent = services.queue.add_agent(name, uri)
            print(f"agent {name} ({uri}) signed in; desk token: {agent.token}", flush=True)
        await serve(services, config, lambda line: print(line, flush=True))
    return 0


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
    from voicebot.storage.call_store import SqliteCallStore

    store = SqliteCallStore(args.database or config.storage.database)
    if args.calls_command == "export":
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="voicebot", description=__doc__)
    parser.add_argument("--config", help="TOML configuration file (default: embedded defaults)")
    parser.add_argument("--log-level", default="WARNING", help="DEBUG, INFO, WARNING (default)")
    sub = parser.add_subparsers(dest="command", required=True)

    sim = sub.add_parser("simulate", help="run one call from WAV turns and dtmf:DIGITS")
    sim.add_argument("--caller", help="caller ID, e.g. +15550100")
    sim.add_argument("--json", action="store_true", help="print the call record as JSON")
    sim.add_argument("--out", type=Path, help="write the bot's audio (WAV) here")
    sim.add_argument("turns", nargs="+", metavar="TURN", help="WAV file or dtmf:DIGITS")
    sim.add_argument(
        "--no-agent",
        action="store_true",
        help="no simulated agent: transfers end in the callback offer",
    )

    ev = sub.add_parser("eval", help="run scripted scenario calls and report")
    ev.add_argument("scenarios", help="scenarios YAML")
    ev.add_argument("--json", action="store_true")
    ev.add_argument("--only", nargs="*", help="scenario ids to run")
    ev.add_argument("--no-agent", action="store_true", help="no simulated agent")

    demo = sub.add_parser("demo", help="play demo calls from the fixtures and print transcripts")
    demo.add_argument("--out", default="var/demo", help="where to write the bot's audio")

    srv = sub.add_parser("serve", help="answer SIP calls and carrier media streams")
    srv.add_argument(
        "--sip-listen", metavar="HOST:PORT", help="SIP UDP listener (default 127.0.0.1:5060)"
    )
    srv.add_argument(
        "--http-listen", metavar="HOST:PORT", help="HTTP listener (default 127.0.0.1:8080)"
    )
    srv.add_argument(
        "--agent",
        action="append",
        default=[],
        metavar="NAME=SIP_URI",
        help="an agent signed in and available from the start (repeatable)",
    )

    talk = sub.add_parser("talk", help="a call from this computer's microphone and speaker")
    talk.add_argument("--caller", default=None, help="caller ID to present, e.g. +15550100")
    talk.add_argument(
        "--half-duplex",
        action="store_true",
        help="mute the microphone while the bot speaks (no headset)",
    )

    calls = sub.add_parser("calls", help="stored call records")
    calls.add_argument("--database", help="call store (default from config)")
    calls_sub = calls.add_subparsers(dest="calls_command", required=True)
    export = calls_sub.add_parser("export", help="write one call record as JSON")
    export.add_argument("call_id")
    export.add_argument("-o", "--output", help="file (default stdout)")
    listing = calls_sub.add_parser("list", help="recent calls")
    listing.add_argument("--limit", type=int, default=20)
    listing.add_argument("--search", help="text in caller ID, call ID or transcript")
    return parser


COMMANDS: dict[str, Callable[..., Coroutine[Any, Any, int] | int]] = {
    "simulate": cmd_simulate,
    "eval": cmd_eval,
    "demo": cmd_demo,
    "calls": cmd_calls,
    "serve": cmd_serve,
    "talk": cmd_talk,
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
    }
    return any(cls.__name__ in names for cls in type(exc).__mro__)


if __name__ == "__main__":
    sys.exit(main())
