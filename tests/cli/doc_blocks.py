"""Fenced blocks of a Markdown document, with the marker comment above each.

The README and docs/CUSTOMISING.md mark their code blocks with an HTML comment
(``<!-- readme-test: run -->``, ``<!-- customising-test: create data/x.yml -->``)
so the tests can run them as written.
"""

from __future__ import annotations

import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Block:
    lang: str
    marker: str | None  # the marker's words, e.g. "run" or 'insert domain.yml after "intents:"'
    text: str  # the block's lines, indentation kept
    line: int

    @property
    def action(self) -> str | None:
        return self.marker.split()[0] if self.marker else None

    def commands(self) -> list[list[str]]:
        joined = self.text.replace("\\\n", " ")
        return [shlex.split(line, comments=True) for line in joined.splitlines() if line.strip()]


def doc_blocks(path: Path, tag: str) -> list[Block]:
    """Every fenced block with a language; ``marker`` from a ``<!-- {tag}: … -->`` above it."""
    marker = re.compile(rf"<!-- {re.escape(tag)}: (.*?)\s*-->")
    blocks, lines = [], path.read_text().splitlines()
    i = 0
    while i < len(lines):
        fence = lines[i].strip()
        if fence.startswith("```") and len(fence) > 3:
            indent = len(lines[i]) - len(lines[i].lstrip())
            end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == "```")
            before = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
            found = marker.search(before)
            body = "\n".join(line[indent:] for line in lines[i + 1 : end])
            blocks.append(Block(fence[3:], found.group(1) if found else None, body, i + 1))
            i = end
        i += 1
    return blocks


def substitute(argv: list[str], tmp: Path, values: dict[str, str] | None = None) -> list[str]:
    """A documented command as this test runs it: the venv's programs are this
    interpreter, ``/tmp/…`` is the test's folder, placeholders take ``values``."""
    out: list[str] = []
    for token in argv:
        if token == ".venv/bin/voicebot":
            out += [sys.executable, "-m", "voicebot"]
        elif token == ".venv/bin/python":
            out.append(sys.executable)
        elif token.startswith("/tmp/"):
            out.append(str(tmp / token.removeprefix("/tmp/")))
        elif values and token in values:
            out.append(values[token])
        else:
            out.append(token)
    return out


CUSTOMISING = Path(__file__).resolve().parents[2] / "docs" / "CUSTOMISING.md"


def customising_steps() -> list[Block]:
    """docs/CUSTOMISING.md's marked walk-through steps, in order."""
    return [b for b in doc_blocks(CUSTOMISING, "customising-test") if b.marker]


def _target(words: str, project: Path, tmp: Path) -> Path:
    name = shlex.split(words)[1]
    return tmp / name.removeprefix("/tmp/") if name.startswith("/tmp/") else project / name


def apply(block: Block, project: Path, tmp: Path) -> None:
    """One documented edit, done the way a person would do it."""
    path = _target(block.marker or "", project, tmp)
    text = block.text.rstrip("\n") + "\n"
    if block.action == "create":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    elif block.action == "append":
        path.write_text(path.read_text().rstrip("\n") + "\n" + text)
    elif block.action == "insert":
        anchor = re.search(r'after "(.*)"', block.marker or "")
        assert anchor, block.marker
        lines = path.read_text().splitlines(keepends=True)
        at = next(i for i, line in enumerate(lines) if line.rstrip("\n") == anchor.group(1))
        path.write_text("".join(lines[: at + 1]) + text + "".join(lines[at + 1 :]))
