"""Intent metadata: what voicebot knows about each intent beside Rasa's NLU.

It lives with the dialogue data (``rasa_project/intents.yml``), so turning the
bank into another business's line — a new intent that counts as progress, a
label the agent reads, a sensitive topic that goes to a person, a request that
needs the PIN — is a data edit and a retrain, never a Python edit.  Read once at
start-up and checked against the domain: a name that is not an intent, or a key
that is not a property, stops voicebot with one line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from voicebot.core.config_check import suggest

INTENTS_FILE = "intents.yml"
DOMAIN_FILE = "domain.yml"


class IntentCatalogError(ValueError):
    """intents.yml is unreadable or does not match the domain (the message says where)."""


@dataclass(frozen=True)
class IntentInfo:
    """One intent's properties (see the comments in intents.yml)."""

    label: str | None = None
    progress: bool = False
    request: bool = False
    keywords: tuple[str, ...] = ()
    complexity: str | None = None
    pin_required: bool = False


_TYPES: dict[str, tuple[type, ...]] = {
    "label": (str,),
    "progress": (bool,),
    "request": (bool,),
    "keywords": (list,),
    "complexity": (str,),
    "pin_required": (bool,),
}


@dataclass(frozen=True)
class IntentCatalog:
    """Every intent's metadata, with the views the session, policy and summary use."""

    intents: Mapping[str, IntentInfo] = field(default_factory=dict)

    @property
    def labels(self) -> dict[str, str]:
        return {n: i.label for n, i in self.intents.items() if i.label}

    @property
    def progress(self) -> frozenset[str]:
        return frozenset(n for n, i in self.intents.items() if i.progress)

    @property
    def requests(self) -> tuple[str, ...]:
        return tuple(n for n, i in self.intents.items() if i.request)

    @property
    def keywords(self) -> dict[str, tuple[str, ...]]:
        return {n: i.keywords for n, i in self.intents.items() if i.keywords}

    @property
    def complexity(self) -> dict[str, str]:
        return {n: i.complexity for n, i in self.intents.items() if i.complexity}

    @property
    def pin_required(self) -> frozenset[str]:
        return frozenset(n for n, i in self.intents.items() if i.pin_required)


def load_intents(project_dir: Path) -> IntentCatalog:
    """``<project>/intents.yml``, checked against ``<project>/domain.yml``."""
    path = project_dir / INTENTS_FILE
    data = _read_yaml(path)
    if not isinstance(data, Mapping) or not isinstance(data.get("intents"), Mapping):
        raise IntentCatalogError(f"{path}: expected a top-level 'intents:' mapping")
    known = domain_intents(project_dir)
    intents = {}
    for name, props in data["intents"].items():
        if name not in known:
            hint = suggest(str(name), known)
            raise IntentCatalogError(f"{path}: {name!r} is not an intent in {DOMAIN_FILE}{hint}")
        intents[str(name)] = _info(props or {}, f"{path}: {name}")
    return IntentCatalog(intents)


def domain_intents(project_dir: Path) -> list[str]:
    """The intent names the Rasa domain declares (plain names or ``{name: {...}}``)."""
    path = project_dir / DOMAIN_FILE
    data = _read_yaml(path)
    entries = data.get("intents") if isinstance(data, Mapping) else None
    if not isinstance(entries, list):
        raise IntentCatalogError(f"{path}: no 'intents:' list")
    return [next(iter(e)) if isinstance(e, Mapping) else str(e) for e in entries]


def _info(props: Any, where: str) -> IntentInfo:
    if not isinstance(props, Mapping):
        raise IntentCatalogError(f"{where}: expected a mapping of properties, got {props!r}")
    names = [f.name for f in fields(IntentInfo)]
    for key, value in props.items():
        if key not in names:
            raise IntentCatalogError(f"{where}: unknown property {key!r}{suggest(key, names)}")
        if not isinstance(value, _TYPES[key]):
            raise IntentCatalogError(f"{where}.{key}: wrong type {value!r}")
    keywords = props.get("keywords", [])
    if not all(isinstance(k, str) for k in keywords):
        raise IntentCatalogError(f"{where}.keywords: a list of words, got {keywords!r}")
    return IntentInfo(**{**props, "keywords": tuple(str(k).lower() for k in keywords)})


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise IntentCatalogError(f"cannot read {path}: {exc}") from exc
