"""Does a transcript read as a finished request?  (Semantic end of turn.)

Silence alone is a poor end-of-turn signal: callers pause mid-sentence
("My card was … stolen"), and waiting long enough to be safe makes every reply
feel slow.  The words say more.  When the early transcript taken at a short
pause reads as finished, the turn can end at once; when it does not, the
endpointer waits its full ``end_silence_s``.

Why a rule and not a model: LiveKit's turn detector is a small language model,
which we cannot ship from PyPI here and could not afford on two cores beside
Whisper.  Whisper itself gives the strongest cue for free — it ends a finished
sentence with ``.``/``?``/``!`` and leaves a fragment bare ("My card was") —
and a dangling function word ("…to the", "…and") or a short PIN catch most of
the rest.  The bench measures what it costs (false end-of-turn rate).
"""

from __future__ import annotations

import re

from voicebot.speech.numbers import normalize_digits

PIN_DIGITS = 4

# Words a finished request does not end on: articles, possessives, prepositions,
# conjunctions, auxiliaries and fillers ("I'd like to check my …", "because um").
DANGLING_WORDS = frozenset({
    "a", "an", "the", "my", "your", "our", "his", "her", "their", "its",
    "this", "that", "these", "those", "some", "any",
    "to", "of", "for", "in", "on", "at", "with", "from", "about", "by",
    "into", "onto", "over", "under", "than", "as",
    "and", "but", "or", "so", "because", "if", "when", "while", "then", "also", "plus",
    "is", "was", "are", "were", "am", "be", "been", "being", "have", "has", "had",
    "do", "does", "did", "can", "could", "would", "will", "should", "shall", "may", "might", "must",
    "i", "i'm", "i'd", "i'll", "it's", "there's", "what's",
    "um", "uh", "er", "erm", "hmm", "like", "well", "just",
})  # fmt: skip
_WORD = re.compile(r"[\w']+")
_DIGIT = re.compile(r"\d")


def reads_complete(text: str, *, expects_pin: bool = False) -> bool:
    """True when ``text`` looks like the caller has finished what they wanted to say.

    While a PIN is expected, a partial number ("four three …") is unfinished
    and a full one is finished whatever the punctuation.
    """
    text = text.strip()
    words = [w.lower() for w in _WORD.findall(text)]
    if not words:
        return False
    if expects_pin:
        digits = len(_DIGIT.findall(normalize_digits(text)))
        if digits:
            return digits >= PIN_DIGITS
    if text.endswith(("...", "…")) or text[-1] not in ".?!":
        return False
    return words[-1] not in DANGLING_WORDS
