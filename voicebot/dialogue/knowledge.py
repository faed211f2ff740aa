"""Turn the bank's knowledge base (``rasa_project/knowledge.yml``) into Rasa
training data: one intent ``kb_<topic>`` per topic, its example questions,
and a rule that answers it with ``action_answer_from_kb``.

Generated at training time, so a bank adds or edits a topic in one YAML file
and retrains; nothing else to edit.  The action server reads the answers
from the same file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

KB_PREFIX = "kb_"
ANSWER_ACTION = "action_answer_from_kb"
_TOPIC_KEYS = frozenset({"label", "answer", "examples"})


class KnowledgeError(ValueError):
    """knowledge.yml is malformed; the message names the topic."""


def load_topics(path: Path) -> dict[str, dict[str, Any]]:
    """The topics, checked: each has a non-empty answer; no unknown keys."""
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise KnowledgeError(f"cannot read {path}: {exc}") from exc
    topics = data.get("topics") if isinstance(data, dict) else None
    if not isinstance(topics, dict):
        raise KnowledgeError(f"{path}: expected a top-level 'topics:' mapping")
    for name, topic in topics.items():
        if not isinstance(topic, dict) or not str(topic.get("answer") or "").strip():
            raise KnowledgeError(f"{path}: topic {name!r} needs an 'answer'")
        unknown = set(topic) - _TOPIC_KEYS
        if unknown:
            raise KnowledgeError(f"{path}: topic {name!r} has unknown keys {sorted(unknown)}")
    return topics


def training_files(topics: dict[str, dict[str, Any]]) -> tuple[dict, dict]:
    """(domain fragment, NLU + rules data) for ``rasa train``."""
    intents = [f"{KB_PREFIX}{name}" for name in topics]
    domain = {"version": "3.1", "intents": intents}
    nlu = [
        {"intent": intent, "examples": "".join(f"- {e}\n" for e in topic.get("examples") or [])}
        for intent, topic in zip(intents, topics.values(), strict=True)
        if topic.get("examples")
    ]
    rules: list[dict[str, Any]] = []
    for intent in intents:
        rules.append(
            {"rule": f"answer {intent}", "steps": [{"intent": intent}, {"action": ANSWER_ACTION}]}
        )
        rules.append(
            {
                "rule": f"answer {intent} while asking for the PIN",
                "condition": [{"active_loop": "pin_form"}],
                "steps": [
                    {"intent": intent},
                    {"action": "action_deactivate_loop"},
                    {"active_loop": None},
                    {"action": ANSWER_ACTION},
                ],
            }
        )
    return domain, {"version": "3.1", "nlu": nlu, "rules": rules}


def write_training_files(knowledge: Path, out_dir: Path) -> tuple[Path, Path]:
    """Write ``domain/`` (the fragment) and ``knowledge_data.yml`` into out_dir."""
    domain, data = training_files(load_topics(knowledge))
    domain_dir = out_dir / "domain"
    domain_dir.mkdir(parents=True, exist_ok=True)
    (domain_dir / "knowledge.yml").write_text(yaml.safe_dump(domain, sort_keys=False))
    data_file = out_dir / "knowledge_data.yml"
    data_file.write_text(yaml.safe_dump(data, sort_keys=False))
    return domain_dir, data_file
