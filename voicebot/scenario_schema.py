"""The schema of a ``voicebot eval`` scenarios file, checked before any call runs.

A test tool that passes a typo is worse than none: an unknown ``expect`` key
would check nothing, ``turn:`` for ``turns:`` would run a call with no turns,
and ``intents: opening_hours`` would be compared letter by letter.  Every
problem is reported as one line naming the file and the scenario.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from voicebot.core.config_check import suggest
from voicebot.session.outcome import EXPECTABLE
from voicebot.transfer.config import REASONS

TOP_LEVEL_KEYS = ("scenarios",)
SCENARIO_KEYS = ("id", "caller", "turns", "expect", "kind", "voice")
EXPECT_KEYS = ("outcome", "reason", "intents")


class ScenarioSchemaError(ValueError):
    """A scenarios file that does not match the schema (the message names the scenario)."""


def validate_scenarios(data: Any, path: Path) -> None:
    """Raise ScenarioSchemaError on the first problem in a parsed scenarios file."""
    if not isinstance(data, Mapping):
        raise ScenarioSchemaError(f"{path}: expected a mapping with a 'scenarios:' list")
    _known_keys(data, TOP_LEVEL_KEYS, f"{path}:")
    entries = data.get("scenarios")
    if not isinstance(entries, list) or not entries:
        raise ScenarioSchemaError(f"{path}: expected a non-empty top-level 'scenarios:' list")
    seen: set[str] = set()
    for number, entry in enumerate(entries, start=1):
        where = f"{path}: scenario {number}"
        if not isinstance(entry, Mapping):
            raise ScenarioSchemaError(
                f"{where} must be a mapping (id, turns, expect), got {entry!r}"
            )
        sid = entry.get("id")
        if not isinstance(sid, str) or not sid.strip():
            raise ScenarioSchemaError(f"{where} needs an 'id' (text)")
        where = f"{path}: scenario {sid!r}"
        if sid in seen:
            raise ScenarioSchemaError(f"{where} appears twice: ids must be unique")
        seen.add(sid)
        _check_scenario(entry, where)


def _check_scenario(entry: Mapping[str, Any], where: str) -> None:
    _known_keys(entry, SCENARIO_KEYS, where)
    caller = entry.get("caller")
    if caller is not None and not isinstance(caller, str):
        raise ScenarioSchemaError(f"{where}: caller must be text in quotes, got {caller!r}")
    turns = entry.get("turns")
    if not _list_of_text(turns) or not turns:
        raise ScenarioSchemaError(
            f"{where}: turns must be a non-empty list of WAV paths, dtmf:DIGITS or hangup, "
            f"got {turns!r}"
        )
    expect = entry.get("expect")
    if not isinstance(expect, Mapping) or not expect:
        raise ScenarioSchemaError(
            f"{where}: expect must be a mapping with {', '.join(EXPECT_KEYS)}, got {expect!r}"
        )
    _check_expect(expect, f"{where}: expect")


def _check_expect(expect: Mapping[str, Any], where: str) -> None:
    _known_keys(expect, EXPECT_KEYS, where)
    for key, allowed in (("outcome", EXPECTABLE), ("reason", REASONS)):
        if key in expect and expect[key] not in allowed:
            raise ScenarioSchemaError(
                f"{where}.{key} must be one of {', '.join(allowed)}, got {expect[key]!r}"
            )
    intents = expect.get("intents")
    if intents is not None and not _list_of_text(intents):
        raise ScenarioSchemaError(
            f"{where}.intents must be a list of intent names (e.g. [greet]), got {intents!r}"
        )


def _known_keys(mapping: Mapping[str, Any], known: tuple[str, ...], where: str) -> None:
    for key in mapping:
        if key not in known:
            hint = suggest(str(key), known) or f" (expected {', '.join(known)})"
            raise ScenarioSchemaError(f"{where}: unknown key {key!r}{hint}")


def _list_of_text(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)
