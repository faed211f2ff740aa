"""Text helpers over two well-kept lexicons: VADER (sentiment) and
better-profanity (swear words).

Both libraries read their word lists from package data once; the analysers
are cached per configured word set, so after the first turn these are pure
in-memory look-ups.  Nothing here touches the network or the call.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import jellyfish
from better_profanity import Profanity
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_CLAUSE_BREAK = re.compile(r"[,.;:!?]+|\s+-\s+")
# An answer "no" opening a sentence ("No thanks.") is a reply, not a mood,
# but VADER reads "no X" as negating X and scores "No thanks" -0.34.
_ANSWER_NO = re.compile(r"(^|[.!?]\s*)(?:no|nope|nah)\b[,.!]?", re.IGNORECASE)
# Whisper sometimes writes swear words censored: "f***", "sh*t".
_CENSORED = re.compile(r"\b[a-z]+\*+[a-z*]*", re.IGNORECASE)


def words(text: str) -> list[str]:
    """Lower-case word tokens; apostrophes kept ("don't"), punctuation gone."""
    return _WORD.findall(text.lower().replace("’", "'"))


def normalise(text: str) -> str:
    """Text as a single-spaced string of lower-case words, for phrase search."""
    return " ".join(words(text))


def clauses(text: str) -> list[list[str]]:
    """Word lists split at punctuation: "No, agent!" is two clauses, so a
    negation in one does not reach a word in the next."""
    parts = (words(part) for part in _CLAUSE_BREAK.split(text))
    return [part for part in parts if part]


def contains_phrase(normalised: str, phrase: str) -> bool:
    """Whole-word phrase search in normalised text."""
    return re.search(rf"(?<![a-z0-9']){re.escape(phrase)}(?![a-z0-9'])", normalised) is not None


# Endings that keep a stem's meaning: "transfer" names "transfers",
# "transferred", "transferring"; "pay" names "payment".
_INFLECTIONS = ("", "s", "es", "ed", "d", "red", "ing", "ring", "ment", "ments", "al", "als")


def first_named(text: str, stems: Iterable[str]) -> str | None:
    """The first of ``stems`` the text names: a phrase word for word, a word
    or one of its inflections, a symbol ("$") anywhere."""
    tokens = words(text)
    said = " ".join(tokens)
    for stem in stems:
        if not stem.replace(" ", "").isalnum():
            if stem in text:
                return stem
        elif " " in stem:
            if contains_phrase(said, stem):
                return stem
        elif any(t.startswith(stem) and t[len(stem) :] in _INFLECTIONS for t in tokens):
            return stem
    return None


@dataclass(frozen=True)
class Sentiment:
    """VADER's compound score and the lexicon words that pulled it down."""

    compound: float
    negative_words: tuple[str, ...]


@lru_cache(maxsize=4)
def _analyzer(neutral: frozenset[str]) -> SentimentIntensityAnalyzer:
    analyzer = SentimentIntensityAnalyzer()
    for word in neutral:
        analyzer.lexicon.pop(word, None)
    return analyzer


def sentiment(text: str, neutral_words: Iterable[str]) -> Sentiment:
    """VADER compound (-1..1) with the configured topic words neutralised."""
    if not text.strip():
        return Sentiment(0.0, ())
    analyzer = _analyzer(frozenset(neutral_words))
    compound = float(analyzer.polarity_scores(_ANSWER_NO.sub(r"\1", text))["compound"])
    negative = tuple(w for w in words(text) if analyzer.lexicon.get(w, 0.0) < 0)
    return Sentiment(compound, negative)


def valence(word: str, neutral_words: Iterable[str]) -> float:
    """VADER's rating of one word (-4..4), 0 for unknown or neutralised."""
    return float(_analyzer(frozenset(neutral_words)).lexicon.get(word, 0.0))


@lru_cache(maxsize=4)
def _profanity(allowed: frozenset[str]) -> Profanity:
    profanity = Profanity()
    profanity.load_censor_words(whitelist_words=sorted(allowed))
    return profanity


def profane_words(text: str, allowed: Iterable[str]) -> list[str]:
    """Swear words in ``text`` (better-profanity's list minus ``allowed``),
    plus words an STT engine already censored with asterisks."""
    if not text.strip():
        return []
    found = [m.group(0).lower() for m in _CENSORED.finditer(text)]
    original = text.split()
    censored = _profanity(frozenset(allowed)).censor(text, "\x00").split()
    if len(censored) == len(original):
        found += [
            _strip(o)
            for o, c in zip(original, censored, strict=True)
            if "\x00" in c and "\x00" not in o
        ]
    return list(dict.fromkeys(w for w in found if w))


def is_profane(word: str, allowed: Iterable[str]) -> bool:
    """One token against the profanity list."""
    return bool(word) and bool(profane_words(word, allowed))


def _strip(token: str) -> str:
    return re.sub(r"^[^\w*]+|[^\w*]+$", "", token.lower())


@lru_cache(maxsize=256)
def _code(text: str) -> str:
    return jellyfish.metaphone(text.replace(" ", ""))


def sounds_like(heard: str, words: Iterable[str], min_code_len: int) -> str | None:
    """The word in ``words`` that ``heard`` sounds like (Metaphone codes equal,
    or one edit apart for codes of ``min_code_len`` or more, and spelt alike),
    else None.
    Words are compared without spaces: "represent a tive" is one sound."""
    mine = _code(heard)
    if len(mine) < 3:
        return None
    for word in words:
        theirs = _code(word)
        slack = 1 if len(theirs) >= min_code_len else 0
        spelt = jellyfish.jaro_winkler_similarity(heard.replace(" ", ""), word)
        if jellyfish.levenshtein_distance(mine, theirs) <= slack and spelt >= 0.75:
            return word
    return None
