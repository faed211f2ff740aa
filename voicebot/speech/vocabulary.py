"""The domain prompt for Whisper, derived from the Rasa NLU training examples.

A short list of the bank's words ("balance, transactions, overdraft, …") as
Whisper's previous-text prompt roughly halves telephone-band errors on those
words.  It is computed from ``rasa_project/data/nlu.yml`` rather
than kept as a second hand-written list, so adding training phrases to Rasa
teaches the recogniser the same words.

Only *generic* English function words are filtered out (``_STOPWORDS``); which
content words and phrases make the cut is decided by how often the examples use
them.  The result is bounded to ~45 words (~90 tokens): measured on the
telephone-band fixtures, 45 words gave the lowest error; longer lists cost
decode time, made Whisper copy the list style ("yes, yes,") and echo it.
"""

from __future__ import annotations

import itertools
import logging
import math
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

import yaml

log = logging.getLogger(__name__)

NLU_FILE = Path("data") / "nlu.yml"
MAX_WORDS = 45
MIN_PHRASE_COUNT = 3  # a two-word phrase must recur to be worth prompt space
MIN_WORD_COUNT = 2
OUT_OF_SCOPE = "out_of_scope"

_ENTITY = re.compile(r"\[([^\]]+)\](?:\([^)]*\)|\{[^}]*\})")
_WORD = re.compile(r"[A-Za-z][A-Za-z']*")

# Generic English: function words, pronouns, auxiliaries, fillers and all-purpose
# verbs.  Nothing bank-specific belongs here (that is what the NLU data says).
_STOPWORD_TEXT = """
    a about above after again against all also am an and any are aren't as at be because been
    before being below between both but by can can't cannot could couldn't did didn't do does
    doesn't doing don't down during each else ever few for from further get gets getting got
    gonna had hadn't has hasn't have haven't having he he'd he'll he's her here here's hers
    herself him himself his how how's i i'd i'll i'm i've if in into is isn't it it'd it'll
    it's its itself just let let's like may me might mine more most much must mustn't my myself
    need needs no nor not now of off oh ok okay on once one only or other ought our ours
    ourselves out over own please really right same say said see shall shan't she she'd she'll
    she's should shouldn't so some still such sure tell than that that's the their theirs them
    themselves then there there's these they they'd they'll they're they've thing things think
    this those through to too um uh under until up us very want wanna was wasn't we we'd we'll
    we're we've well were weren't what what's when when's where where's which while who who's
    whom why why's will with won't would wouldn't yeah yes you you'd you'll you're you've your
    yours yourself yourselves hi hello hey bye goodbye thanks thank know go going make
"""
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())


def domain_prompt(project_dir: Path) -> str:
    """Comma-separated domain words/phrases from the project's NLU examples ("" if none)."""
    path = Path(project_dir) / NLU_FILE
    try:
        examples = list(_examples(yaml.safe_load(path.read_text(encoding="utf-8"))))
    except FileNotFoundError:
        log.warning("event=domain_prompt_missing path=%s: Whisper runs without a prompt", path)
        return ""
    except (OSError, yaml.YAMLError) as exc:
        log.warning("event=domain_prompt_unreadable path=%s error=%s", path, exc)
        return ""
    terms = rank_terms(examples)
    if not terms:
        log.warning("event=domain_prompt_empty path=%s", path)
        return ""
    return format_prompt(terms)


def format_prompt(terms: list[str]) -> str:
    """Format as one capitalised sentence ("Card, password, PIN."), not a comma list.

    Whisper copies the prompt's style: a lower-case list ending in a comma made
    it answer "yes, yes," and "agent, agent," for one-word turns.
    """
    text = ", ".join(terms)
    return text[:1].upper() + text[1:] + "."


def _examples(data: object) -> Iterator[tuple[str, str]]:
    """(intent, text) for every NLU example in Rasa's YAML format.

    ``out_of_scope`` examples are by definition not the bank's words, and regexes
    are patterns, not anything a caller says.
    """
    items = data.get("nlu", []) if isinstance(data, dict) else []
    for item in items or []:
        if not isinstance(item, dict) or "regex" in item:
            continue
        label = str(item.get("intent") or item.get("synonym") or item.get("lookup") or "")
        block = item.get("examples", "")
        if label == OUT_OF_SCOPE or not isinstance(block, str):
            continue
        for line in block.splitlines():
            text = line.strip()
            if text.startswith("- "):
                yield label, _ENTITY.sub(r"\1", text[2:])


def rank_terms(examples: Iterable[tuple[str, str]], max_words: int = MAX_WORDS) -> list[str]:
    """Recurring content phrases and words, best first, within ``max_words``.

    Score = examples using the term / sqrt(intents using it): "password" (13
    examples, one intent) beats "help" (10 examples spread over six intents), so
    the words that tell intents apart get the prompt space.
    """
    counts: Counter[str] = Counter()
    intents: dict[str, set[str]] = {}
    spelling = _Spelling()
    for intent, text in examples:
        tokens = _WORD.findall(text)
        spelling.observe(tokens)
        for term in _terms(tokens):
            counts[term] += 1
            intents.setdefault(term, set()).add(intent)
    scored = [
        (n / math.sqrt(len(intents[t])), t)
        for t, n in counts.items()
        if n >= (MIN_PHRASE_COUNT if " " in t else MIN_WORD_COUNT)
    ]
    scored.sort(key=lambda item: (-item[0], item[1]))
    return _fill(scored, spelling, max_words)


def _terms(tokens: list[str]) -> set[str]:
    """Distinct content words and adjacent content-word pairs of one example."""
    content = [_content(t) for t in tokens]
    words = {w for w in content if w}
    pairs = {f"{a} {b}" for a, b in itertools.pairwise(content) if a and b}
    return words | pairs


def _content(token: str) -> str | None:
    """Lower-cased content word, or None for function words and single letters."""
    word = token.lower().strip("'")
    if len(word) < 2 or word in _STOPWORDS or (word.endswith("'s") and word[:-2] in _STOPWORDS):
        return None
    return word


def _fill(candidates: list[tuple[float, str]], spelling: _Spelling, max_words: int) -> list[str]:
    """Take terms in rank order until the word budget is spent.

    A chosen phrase absorbs its words chosen earlier ("online", "banking" →
    "online banking") and takes the best rank among them, so no word is paid for
    twice and a strong word does not sink to the end of the list.
    """
    chosen: list[str] = []
    used = 0
    for _score, term in candidates:
        parts = term.split()
        if len(parts) == 1 and any(term in c.split() for c in chosen):
            continue
        absorbed = [i for i, c in enumerate(chosen) if " " not in c and c in parts]
        cost = len(parts) - len(absorbed)
        if used + cost > max_words:
            continue
        if absorbed:
            chosen[absorbed[0]] = term
            chosen = [c for i, c in enumerate(chosen) if i not in absorbed[1:]]
        else:
            chosen.append(term)
        used += cost
    return [" ".join(spelling.best(p) for p in term.split()) for term in chosen]


class _Spelling:
    """Remember how the examples write a word ("PIN", "Visa"), ignoring sentence starts."""

    def __init__(self) -> None:
        self._forms: dict[str, Counter[str]] = {}

    def observe(self, tokens: list[str]) -> None:
        for i, token in enumerate(tokens):
            if i == 0 and not token.isupper():
                continue  # "Balance please" says nothing about how balance is spelled
            self._forms.setdefault(token.lower(), Counter())[token] += 1

    def best(self, word: str) -> str:
        forms = self._forms.get(word)
        return forms.most_common(1)[0][0] if forms else word
