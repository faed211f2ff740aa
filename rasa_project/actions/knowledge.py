"""The bank's informational answers, read from ``rasa_project/knowledge.yml``.

One YAML file a bank edits without code: each topic's ``answer`` is spoken
for the intent ``kb_<topic>`` (the training step turns the topics into
intents and rules, see voicebot.dialogue.knowledge).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml

KNOWLEDGE_FILE = Path(__file__).resolve().parent.parent / "knowledge.yml"
PREFIX = "kb_"


@lru_cache(maxsize=1)
def answers(path: Path = KNOWLEDGE_FILE) -> dict[str, str]:
    """Intent name -> spoken answer."""
    topics = (yaml.safe_load(path.read_text()) or {}).get("topics") or {}
    return {f"{PREFIX}{name}": " ".join(str(t["answer"]).split()) for name, t in topics.items()}


def answer_for(intent: str | None) -> str | None:
    return answers().get(intent or "")
