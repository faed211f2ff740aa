"""No bot text mentions a colleague, a person or a transfer unless a transfer follows.

A caller told "a colleague can help" who then stays with the bot has been
promised something the line did not do.  This walks every text the assistant
can speak — every response and knowledge-base answer in rasa_project/, every
sentence in the custom actions, every scripted prompt in voicebot/ — and
allows a mention only where it is honest:

* an offer or an instruction (a question, or "press 0"): the caller decides;
* a text spoken only on a transfer path (the handover texts, and the
  locked-out reply, after which the transfer policy always hands over).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path

import pytest
import yaml

from voicebot.config import PROJECT_ROOT
from voicebot.session.handoff import HandoffTexts as HandoverTexts
from voicebot.transfer import TransferConfig, TransferPolicy, TurnObservation

RASA = PROJECT_ROOT / "rasa_project"
MENTION = re.compile(
    r"\b(colleagues?|person|people|agents?|human|advis[eo]rs?|someone|somebody|staff|"
    r"representative|operator|transfer(?:red|ring)? you|put you through|connect you)\b",
    re.IGNORECASE,
)
SENTENCE = re.compile(r"[^.?!]*[.?!]")
HANDOVER_TEXTS = {getattr(HandoverTexts(), f.name) for f in fields(HandoverTexts)}


def _offers(sentence: str) -> bool:
    """A question, or an instruction for reaching a person: the caller chooses."""
    s = sentence.strip().lower()
    return s.endswith("?") or "press 0" in s or "press zero" in s


def promises(text: str) -> list[str]:
    """Sentences of ``text`` that mention a person without offering one."""
    return [
        s.strip()
        for s in SENTENCE.findall(" ".join(text.split()))
        if MENTION.search(s) and not _offers(s)
    ]


def _domain_texts() -> Iterator[tuple[str, str]]:
    domain = yaml.safe_load((RASA / "domain.yml").read_text())
    for name, variants in domain["responses"].items():
        for v in variants:
            yield f"domain.yml {name}", v["text"]
    topics = yaml.safe_load((RASA / "knowledge.yml").read_text())["topics"]
    for name, topic in topics.items():
        yield f"knowledge.yml {name}", topic["answer"]


def _docstrings(tree: ast.AST) -> set[int]:
    kinds = (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    return {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, kinds)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }


def _sentences_in(path: Path) -> Iterator[tuple[str, str]]:
    """String constants that read like something spoken (a capital, a space,
    a full stop or question mark), minus docstrings."""
    tree = ast.parse(path.read_text())
    docs = _docstrings(tree)
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docs
            and re.fullmatch(r"[A-Z][^\n]* [^\n]*[.?]\s*", node.value)
        ):
            yield f"{path.relative_to(PROJECT_ROOT)}:{node.lineno}", node.value


def _code_texts() -> Iterator[tuple[str, str]]:
    for path in sorted((RASA / "actions").glob("*.py")):
        yield from _sentences_in(path)
    for path in sorted((PROJECT_ROOT / "voicebot").rglob("*.py")):
        yield from _sentences_in(path)


def _locked_out_always_transfers() -> bool:
    """The locked-out reply comes with pin_locked: the policy must hand over."""
    turn = TurnObservation(1, 1.0, "1 2 3 4", "provide_pin", dialogue_gave_up="identity_failed")
    return TransferPolicy(TransferConfig()).observe(turn) is not None


def test_the_walk_finds_the_texts_it_must_judge() -> None:
    where = dict(_domain_texts())
    assert len(where) > 40 and any("knowledge.yml" in k for k in where)
    code = dict(_code_texts())
    assert any("call_session" in k or "session" in k for k in code)
    assert promises("A colleague will help you with this.") == [
        "A colleague will help you with this."
    ]
    assert promises("Would you like to speak to someone? Say yes, or press 0.") == []


@pytest.mark.parametrize(("where", "text"), list(_domain_texts()))
def test_rasa_responses_promise_no_person(where: str, text: str) -> None:
    assert promises(text) == [], f"{where} promises a person without a transfer"


def _constant(path: Path, name: str) -> str:
    """A module-level string constant, read without importing (rasa_sdk lives
    in the Rasa venv, not this one)."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == name for t in node.targets
        ):
            return str(ast.literal_eval(node.value))
    raise AssertionError(f"{name} not found in {path}")


def test_scripted_prompts_promise_no_person_unless_a_transfer_follows() -> None:
    locked_out = _constant(RASA / "actions" / "actions.py", "LOCKED_OUT")
    on_transfer_path = HANDOVER_TEXTS | ({locked_out} if _locked_out_always_transfers() else set())
    bad = [
        f"{where}: {sentence}"
        for where, text in _code_texts()
        if text not in on_transfer_path
        for sentence in promises(text)
    ]
    assert bad == []
