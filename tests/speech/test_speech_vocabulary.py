"""The domain prompt comes from the Rasa NLU data, bounded, and never breaks start-up."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from voicebot.config import PROJECT_ROOT
from voicebot.speech.vocabulary import MAX_WORDS, domain_prompt

NLU = """
version: "3.1"
nlu:
  - regex: pin
    examples: |
      - \\d{4}
  - intent: check_balance
    examples: |
      - What's my account balance?
      - Check my account balance please.
      - account balance
      - How much is in my savings?
  - intent: lost_card
    examples: |
      - I lost my debit card.
      - My debit card was stolen.
      - Block my debit card.
      - My PIN is [4321](pin) and my card is gone.
  - intent: out_of_scope
    examples: |
      - Order me a pizza.
      - Order a pizza for me.
"""


def write_project(root: Path, text: str) -> Path:
    (root / "data").mkdir(parents=True)
    (root / "data" / "nlu.yml").write_text(text)
    return root


def test_prompt_holds_recurring_domain_words(tmp_path: Path) -> None:
    prompt = domain_prompt(write_project(tmp_path, NLU))
    terms = prompt.rstrip(".").lower().split(", ")
    assert "account balance" in terms
    assert "debit card" in terms
    assert prompt[0].isupper() and prompt.endswith(".")


def test_prompt_skips_function_words_regexes_entities_and_out_of_scope(tmp_path: Path) -> None:
    words = domain_prompt(write_project(tmp_path, NLU)).lower().replace(",", " ").split()
    assert not {"my", "is", "the", "what's"} & set(words)
    assert "pizza" not in words and "order" not in words
    assert "4321" not in words and "(pin)" not in words


def test_real_project_prompt_is_bounded_and_about_banking() -> None:
    prompt = domain_prompt(PROJECT_ROOT / "rasa_project")
    words = prompt.replace(",", " ").split()
    assert 10 <= len(words) <= MAX_WORDS
    terms = set(prompt.lower().replace(",", " ").replace(".", " ").split())
    assert {"balance", "card", "password"} <= terms


def test_missing_nlu_file_gives_empty_prompt_and_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="voicebot.speech.vocabulary"):
        assert domain_prompt(tmp_path) == ""
    assert "domain_prompt_missing" in caplog.text


def test_broken_nlu_file_gives_empty_prompt(tmp_path: Path) -> None:
    assert domain_prompt(write_project(tmp_path, "nlu: [unclosed")) == ""
    assert domain_prompt(write_project(tmp_path / "b", "version: '3.1'\n")) == ""
