"""Spoken digits → digits, for PIN entry ("four three two one" → "4321").

Whisper writes numbers inconsistently: "4321", "4 3 2 1", "4-3-2-1", "four
three two one" or, when a caller groups them, "forty three twenty one".  The
dialogue only needs the digit string.

Conservative on purpose: a number word is converted only inside a *run* of at
least two number tokens, so "one moment", "I need two cards" or "that's for
me" stay as they are.  "oh" counts as 0 only inside a run that already has two
other digit tokens ("four oh two one"), never in "oh, I lost my card".  Homophones
such as "for", "to" and "won" are never read as digits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_UNITS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4,
    "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
}  # fmt: skip
_TEENS = {
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14,
    "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
}  # fmt: skip
_TENS = {
    "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50,
    "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90,
}  # fmt: skip
_OH = {"oh", "o"}
_REPEATERS = {"double": 2, "triple": 3}

_TOKEN = re.compile(r"[A-Za-z]+|\d+")
# What may separate two tokens of one run: spaces and the punctuation Whisper puts
# between spoken digits ("4, 3, 2, 1", "4-3-2-1", "4. 3. 2. 1").
_JOINER = re.compile(r"\s*[,.\-]?\s*")


@dataclass(frozen=True, slots=True)
class _Token:
    text: str
    start: int
    end: int

    @property
    def word(self) -> str:
        return self.text.lower()


def normalize_digits(text: str) -> str:
    """Replace every run of ≥ 2 spoken or written digit tokens with the joined digits."""
    tokens = [_Token(m.group(), m.start(), m.end()) for m in _TOKEN.finditer(text)]
    out: list[str] = []
    cursor = 0
    i = 0
    while i < len(tokens):
        first, last = _trim_edges(text, tokens, i, _run_end(text, tokens, i))
        digits = _run_digits(tokens[first:last]) if last - first >= 2 else None
        if digits is None:
            i = max(i + 1, last)
            continue
        out.append(text[cursor : tokens[first].start])
        out.append(digits)
        cursor = tokens[last - 1].end
        i = last
    out.append(text[cursor:])
    return "".join(out)


def _is_number_token(token: _Token) -> bool:
    w = token.word
    return w.isdigit() or w in _UNITS or w in _TEENS or w in _TENS or w in _OH or w in _REPEATERS


def _joined(text: str, left: _Token, right: _Token) -> bool:
    """May these neighbours belong to one digit run?  Not "1.5" or "1,500" (a number)."""
    gap = text[left.end : right.start]
    if not _JOINER.fullmatch(gap):
        return False
    return not (gap in (".", ",") and left.word.isdigit() and right.word.isdigit())


def _run_end(text: str, tokens: list[_Token], start: int) -> int:
    """Index after the last token of the number run starting at ``start`` (start if none)."""
    end = start
    while end < len(tokens) and _is_number_token(tokens[end]):
        if end > start and not _joined(text, tokens[end - 1], tokens[end]):
            break
        end += 1
    return end


def _trim_edges(text: str, tokens: list[_Token], first: int, last: int) -> tuple[int, int]:
    """Drop "oh"/"double" at the run's edges unless tightly bound to a digit.

    "oh four three two" keeps its zero; "Oh, four three two" and "two three, oh"
    treat the "oh" as an interjection.  The letter "o" counts only between digits.
    """
    while first < last and tokens[first].word in _OH:
        if first + 1 < last and _tight_oh(text, tokens[first], tokens[first + 1], tokens[first]):
            break
        first += 1
    while last - first > 1 and (
        tokens[last - 1].word in _REPEATERS
        or (
            tokens[last - 1].word in _OH
            and not _tight_oh(text, tokens[last - 2], tokens[last - 1], tokens[last - 1])
        )
    ):
        last -= 1
    return first, last


def _tight_oh(text: str, left: _Token, right: _Token, oh: _Token) -> bool:
    """An edge "oh" is a zero only when joined to its digit by plain spaces."""
    return oh.word == "oh" and text[left.end : right.start].isspace()


def _run_digits(run: list[_Token]) -> str | None:
    """The digit string for a run, or None when it is not clearly a digit sequence."""
    real = [t for t in run if t.word not in _OH and t.word not in _REPEATERS]
    if len(real) < 2:
        return None  # "one moment", "oh one", "double one": not a digit sequence
    pieces: list[str] = []
    i = 0
    while i < len(run):
        piece, i = _next_piece(run, i)
        if piece is None:
            return None
        pieces.append(piece)
    return "".join(pieces)


def _next_piece(run: list[_Token], i: int) -> tuple[str | None, int]:
    """Digits for the token at ``i`` (plus any token it absorbs) and the next index."""
    w = run[i].word
    if w.isdigit():
        return w, i + 1
    if w in _OH:
        return "0", i + 1
    if w in _UNITS:
        return str(_UNITS[w]), i + 1
    if w in _TEENS:
        return str(_TEENS[w]), i + 1
    if w in _TENS:
        nxt = run[i + 1].word if i + 1 < len(run) else ""
        if nxt in _UNITS and nxt != "zero":
            return str(_TENS[w] + _UNITS[nxt]), i + 2  # "forty three" → 43
        return str(_TENS[w]), i + 1
    if w in _REPEATERS and i + 1 < len(run):
        piece, after = _next_piece(run, i + 1)
        if piece is not None and len(piece) == 1:
            return piece * _REPEATERS[w], after  # "double four" → 44
    return None, i + 1
