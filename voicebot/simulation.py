"""Fixture calls: ``voicebot simulate`` (one call) and ``voicebot eval`` (scenarios)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from voicebot.core.record import CallRecord
from voicebot.judgement import Judged, judgement
from voicebot.scenario_schema import validate_scenarios
from voicebot.session.call_session import CallSession
from voicebot.session.outcome import containment, meets
from voicebot.session.services import Services
from voicebot.telephony.fixture import FixtureChannel, FixtureError, FixtureTurn, parse_turn


async def simulate_call(
    services: Services,
    turns: list[FixtureTurn],
    caller_id: str | None = None,
    out_dir: Path | None = None,
    patience_s: float | None = None,
) -> CallRecord:
    """Run one scripted call through the real session; optionally save the bot's audio."""
    channel = FixtureChannel(turns, caller_id=caller_id, patience_s=patience_s)
    session = CallSession(channel, services)
    channel.attach(session.wait_idle)
    record = await session.run()
    if out_dir is not None:
        channel.output.save(out_dir)
    return record


@dataclass
class Scenario:
    id: str
    turns: list[FixtureTurn]
    expect: dict[str, Any]
    caller: str | None = None
    # Optional labels for the report: the group of calls (e.g. "anger") and
    # the voice that spoke the turns.
    kind: str = ""
    voice: str | None = None


@dataclass
class ScenarioResult:
    scenario: Scenario
    record: CallRecord
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.scenario.id,
            "kind": self.scenario.kind,
            "voice": self.scenario.voice,
            "expect": self.scenario.expect,
            "passed": self.passed,
            "failures": self.failures,
            "record": self.record.to_dict(),
        }

    def judged(self) -> Judged:
        """This call for the judgement report."""
        expect, record = self.scenario.expect, self.record
        transfer = record.transfer or {}
        turns = record.caller_turns()
        disclosed = bool(record.turns) and record.turns[0].caller_text is None
        return Judged(
            id=self.scenario.id,
            kind=self.scenario.kind or "unlabelled",
            expected_outcome=str(expect.get("outcome", record.outcome)),
            expected_reason=expect.get("reason"),
            outcome=record.outcome,
            reason=transfer.get("reason"),
            heard=tuple(t.caller_text or "" for t in turns),
            intents=tuple(t.intent for t in turns),
            signals=tuple(s["name"] for s in transfer.get("signals", [])),
            disclosed_first=disclosed and record.disclosure is not None,
            voice=self.scenario.voice,
        )


def load_scenarios(path: Path) -> list[Scenario]:
    """Parse a scenarios YAML; WAV paths are relative to the file."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise FixtureError(f"cannot read scenarios {path}: {exc}") from exc
    validate_scenarios(data, path)
    scenarios = []
    for entry in data["scenarios"]:
        sid = entry["id"]
        turns = [_scenario_turn(t, path, sid) for t in entry["turns"]]
        scenarios.append(
            Scenario(
                sid,
                turns,
                dict(entry.get("expect") or {}),
                entry.get("caller"),
                kind=str(entry.get("kind") or ""),
                voice=entry.get("voice"),
            )
        )
    return scenarios


def _scenario_turn(spec: str, path: Path, sid: str) -> FixtureTurn:
    try:
        return parse_turn(spec, path.parent)
    except FixtureError as exc:
        raise FixtureError(f"{path}: scenario {sid!r}: {exc}") from exc


def check_expectations(record: CallRecord, expect: dict[str, Any]) -> list[str]:
    """Differences between a call record and a scenario's ``expect`` block."""
    failures = []
    if "outcome" in expect and not meets(record.outcome, expect["outcome"]):
        failures.append(f"outcome {record.outcome!r} != expected {expect['outcome']!r}")
    if "reason" in expect:
        got = (record.transfer or {}).get("reason")
        if got != expect["reason"]:
            failures.append(f"transfer reason {got!r} != expected {expect['reason']!r}")
    if "intents" in expect:
        got_intents = [t.intent for t in record.caller_turns()]
        want = list(expect["intents"])
        if record.transfer is not None:
            # A transfer ends the script early: judge the turns the caller got to say.
            want = want[: len(got_intents)]
        if got_intents[: len(want)] != want:
            failures.append(f"intents {got_intents} != expected {want}")
    return failures


async def run_scenarios(
    services: Services,
    scenarios: list[Scenario],
    on_result: Callable[[ScenarioResult], None] | None = None,
) -> list[ScenarioResult]:
    """Run each scenario as a call; ``on_result`` hears of each one as it finishes."""
    results = []
    for scenario in scenarios:
        record = await simulate_call(services, scenario.turns, scenario.caller)
        results.append(
            ScenarioResult(scenario, record, check_expectations(record, scenario.expect))
        )
        if on_result is not None:
            on_result(results[-1])
    return results


def totals(results: list[ScenarioResult]) -> dict[str, Any]:
    caller_turns = [
        (t.intent, want)
        for r in results
        for t, want in zip(
            r.record.caller_turns(), r.scenario.expect.get("intents", []), strict=False
        )
    ]
    return {
        "scenarios": len(results),
        "passed": sum(r.passed for r in results),
        "failed": sum(not r.passed for r in results),
        "intent_accuracy": (
            round(sum(a == b for a, b in caller_turns) / len(caller_turns), 4)
            if caller_turns
            else None
        ),
        "transferred": sum(r.record.outcome == "transferred" for r in results),
        # Containment counts only calls the bot served (not silent or failed ones).
        "containment": containment([r.record.outcome for r in results]),
        "outcomes": dict(Counter(r.record.outcome for r in results)),
    }


def judge(results: list[ScenarioResult]) -> dict[str, Any]:
    """Outcome and reason figures over the scenarios that state an outcome."""
    return judgement([r.judged() for r in results if "outcome" in r.scenario.expect])


class SimulatedAgentDialer:
    """A stand-in agent for fixture calls: picks up at once.

    Fixture calls have no phone line to transfer, so ``simulate`` and ``eval``
    stop at the point where a real agent would answer; the record still shows
    the decision, the package and the ring.
    """

    async def ring(self, agent: Any, package: Any) -> str:
        return "answered"


SIMULATED_AGENT = ("simulated-agent", "sip:agent@simulated.invalid")


def add_simulated_agent(services: Services) -> None:
    """Sign in the simulated agent (once) so fixture transfers are answered."""
    if services.queue is not None and SIMULATED_AGENT[0] not in services.queue.agents:
        services.queue.add_agent(*SIMULATED_AGENT)
