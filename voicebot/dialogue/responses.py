"""What the Rasa project can make the bot say, read from its files (no Rasa needed).

The voice pre-renders these at start-up so that a slow engine (Piper) answers
from its cache: every domain response and knowledge-base answer is fixed text,
and a response with slots (``"Your card ending in {last4} …"``) contributes its
opening words before the first slot, the phrase the synthesizer plays first
while it renders the rest (``tts.Synthesizer.synthesize_sentences``).
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from voicebot.dialogue.knowledge import KnowledgeError, load_topics

_SLOT = re.compile(r"\{\w+\}")
KNOWLEDGE_FILE = "knowledge.yml"


def response_templates(project_dir: Path) -> list[tuple[str, str]]:
    """(response name, text) for every text variant in ``domain*.yml`` and ``domain/``."""
    files = sorted(project_dir.glob("domain*.yml")) + sorted(project_dir.glob("domain/**/*.yml"))
    templates = []
    for path in files:
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError):
            continue  # the dialogue layer reports a broken domain; the voice just warms less
        responses = data.get("responses") if isinstance(data, dict) else None
        for name, variants in (responses or {}).items():
            for variant in variants or []:
                text = variant.get("text") if isinstance(variant, dict) else None
                if isinstance(text, str) and text.strip():
                    templates.append((str(name), " ".join(text.split())))
    return templates


def knowledge_answers(project_dir: Path) -> list[str]:
    """Every answer in ``knowledge.yml`` (none when the project has no knowledge base)."""
    path = project_dir / KNOWLEDGE_FILE
    if not path.is_file():
        return []
    try:
        topics = load_topics(path)
    except KnowledgeError:
        return []  # training reports it; the voice just warms less
    return [" ".join(str(t["answer"]).split()) for t in topics.values()]


def fixed_texts(project_dir: Path) -> list[str]:
    """Texts worth rendering before the first call: fixed replies and slot-free openings."""
    texts = []
    for _name, text in response_templates(project_dir):
        head = _SLOT.split(text, maxsplit=1)[0].strip()
        if head == text:
            texts.append(text)
        elif len(head.split()) >= 2:
            texts.append(head.rstrip(",;:"))
    texts += knowledge_answers(project_dir)
    return list(dict.fromkeys(texts))
