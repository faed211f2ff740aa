"""Type and range checks for the configuration dataclasses, from their own annotations.

A setting of the wrong type must stop voicebot at start-up with one line that
names the key, not start "ready" and fail inside every call (a string where
seconds were expected broke each call after the disclosure).  The dataclasses
stay the schema: their type hints say what a field holds, and
``Annotated[float, Range(...)]`` says which values make sense.  Durations
(fields ending ``_s`` or ``_ms``) can never be negative, annotated or not.

Plain dataclasses plus this small walker rather than pydantic: the
configuration is already a tree of mutable dataclasses that the TOML file is
merged into field by field, and the check needs to name ``section.key`` and
nothing more.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union, get_args, get_origin, get_type_hints


class SettingError(ValueError):
    """One setting is unknown, of the wrong type or out of range (the message names it)."""


@dataclass(frozen=True)
class Range:
    """Bounds of a numeric setting: ``Annotated[float, Range(gt=0)]``."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None

    def problem(self, value: float) -> str | None:
        """Why ``value`` is out of range, or None."""
        checks = (
            (self.ge, lambda b: value >= b, ">="),
            (self.gt, lambda b: value > b, ">"),
            (self.le, lambda b: value <= b, "<="),
            (self.lt, lambda b: value < b, "<"),
        )
        for bound, ok, sign in checks:
            if bound is not None and not ok(bound):
                return f"must be {sign} {bound:g}"
        return None


Seconds = Annotated[float, Range(gt=0)]  # a wait or a limit: zero would mean "never"
Port = Annotated[int, Range(ge=0, le=65535)]  # 0 = let the OS pick
Count = Annotated[int, Range(ge=1)]

_DURATION_SUFFIXES = ("_s", "_ms")
_NOT_NEGATIVE = Range(ge=0)


def suggest(key: str, known: Iterable[str], prefix: str = "") -> str:
    """`` (did you mean X?)`` for the closest known name, or empty."""
    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    return f" (did you mean {prefix}{close[0]}?)" if close else ""


def unknown_key(key: str, known: Iterable[str], where: str) -> SettingError:
    return SettingError(f"unknown setting {where}{key}{suggest(key, known, where)}")


def check_dataclass(obj: Any, where: str = "") -> None:
    """Check (and normalise: ints in float fields become floats) every field of ``obj``."""
    hints = get_type_hints(type(obj), include_extras=True)
    for f in dataclasses.fields(obj):
        if f.name.startswith("_") or f.metadata.get("derived"):
            continue
        key = f"{where}{f.name}"
        value = _check(getattr(obj, f.name), hints[f.name], key)
        if f.name.endswith(_DURATION_SUFFIXES):
            _in_range(value, _NOT_NEGATIVE, key)
        setattr(obj, f.name, value)


def _check(value: Any, hint: Any, key: str) -> Any:
    origin = get_origin(hint)
    if origin is Annotated:
        base, *meta = get_args(hint)
        value = _check(value, base, key)
        for bound in (m for m in meta if isinstance(m, Range)):
            _in_range(value, bound, key)
        return value
    if origin in (Union, types.UnionType):
        return _check_union(value, get_args(hint), key)
    if origin is Literal:
        if value not in get_args(hint):
            raise SettingError(f"{key} must be one of {list(get_args(hint))}, got {value!r}")
        return value
    if dataclasses.is_dataclass(hint):
        return _check_table(value, hint, key)
    if origin is not None and isinstance(origin, type):
        return _check_container(value, origin, get_args(hint), key)
    return _check_scalar(value, hint, key)


def _check_union(value: Any, options: tuple[Any, ...], key: str) -> Any:
    if value is None and type(None) in options:
        return None
    problems = []
    for option in (o for o in options if o is not type(None)):
        try:
            return _check(value, option, key)
        except SettingError as exc:
            problems.append(str(exc))
    raise SettingError(problems[0] if len(problems) == 1 else f"{key}: {'; or '.join(problems)}")


_SCALARS: dict[type, str] = {bool: "true or false", int: "a whole number", float: "a number"}


def _check_scalar(value: Any, hint: Any, key: str) -> Any:
    if hint is Any or not isinstance(hint, type):
        return value
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise SettingError(f"{key} must be a finite number, got {value!r}")
        return float(value)
    if hint is int and isinstance(value, bool):
        raise SettingError(f"{key} must be a whole number, got {value!r}")
    if not isinstance(value, hint):
        kind = _SCALARS.get(hint, "text" if hint is str else hint.__name__)
        raise SettingError(f"{key} must be {kind}, got {value!r}")
    return value


def _check_container(value: Any, origin: type, args: tuple[Any, ...], key: str) -> Any:
    if issubclass(origin, Mapping):
        if not isinstance(value, Mapping):
            raise SettingError(f"{key} must be a table, got {value!r}")
        item = args[1] if len(args) == 2 else Any
        return {k: _check(v, item, f"{key}.{k}") for k, v in value.items()}
    if issubclass(origin, Sequence):
        if isinstance(value, str | bytes) or not isinstance(value, Sequence):
            raise SettingError(f"{key} must be a list, got {value!r}")
        item = args[0] if args else Any
        checked = [_check(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(checked) if isinstance(value, tuple) else checked
    return value


def _check_table(value: Any, cls: type, key: str) -> Any:
    """A nested dataclass, or a TOML table that will become one (keys and types only)."""
    if dataclasses.is_dataclass(value):
        check_dataclass(value, f"{key}.")
        return value
    if not isinstance(value, Mapping):
        raise SettingError(f"{key} must be a table, got {value!r}")
    hints = get_type_hints(cls, include_extras=True)
    required = [
        f.name
        for f in dataclasses.fields(cls)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    for name, item in value.items():
        if name not in hints:
            raise unknown_key(name, hints, f"{key}.")
        _check(item, hints[name], f"{key}.{name}")
    if missing := [name for name in required if name not in value]:
        raise SettingError(f"{key} needs {', '.join(missing)}")
    return value


def _in_range(value: Any, bound: Range, key: str) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return
    if (problem := bound.problem(value)) is not None:
        raise SettingError(f"{key} {problem}, got {value!r}")
