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
# conjunctions and fillers ("I'd like to check my …", "because um").
DANGLING_WORDS = frozenset({
    "a", "an", "the", "my", "your", "our", "his", "her", "their", "its",
    "this", "that", "these", "those", "some", "any",
    "to", "of", "for", "in", "on", "at", "with", "from", "about", "by",
    "into", "onto", "over", "under", "than", "as",
    "and", "but", "or", "so", "because", "if", "when", "while", "then", "also", "plus",
    "i", "i'm", "i'd", "i'll", "it's", "there's", "what's",
    "um", "uh", "er", "erm", "hmm", "like", "well", "just",
})  # fmt: skip
# Auxiliaries end a sentence only after their subject: "Yes, I do." and "What can
# you do?" are finished, "My card was" is not.
AUXILIARIES = frozenset({
    "is", "was", "are", "were", "am", "be", "been", "being", "have", "has", "had",
    "do", "does", "did", "can", "could", "would", "will", "should", "shall", "may", "might", "must",
})  # fmt: skip
SUBJECTS = frozenset({"i", "you", "we", "they", "he", "she", "it", "that", "there"})
# Verbs that want an object: "to <verb>" at the end is a request still coming
# ("I need to reset … my password").
OBJECT_VERBS = frozenset({
    "check", "reset", "change", "cancel", "block", "freeze", "unlock", "report", "order",
    "replace", "transfer", "send", "pay", "open", "close", "update", "dispute", "know",
    "get", "see", "make", "find", "activate", "access", "confirm", "verify",
})  # fmt: skip
# Whole answers on their own, even when Whisper leaves off the full stop.
STANDALONE_WORDS = frozenset({
    "hello", "hi", "hey", "yes", "yeah", "yep", "no", "nope", "ok", "okay", "sure",
    "thanks", "thank", "you", "bye", "goodbye", "agent", "operator", "representative",
    "human", "person", "please", "correct", "right",
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
    if text.endswith(("...", "…")):
        return False
    if all(w in STANDALONE_WORDS for w in words):
        return True
    return text[-1] in ".?!" and not _dangles(words)


def _dangles(words: list[str]) -> bool:
    """The last word leaves the sentence open."""
    last = words[-1]
    before = words[-2] if len(words) > 1 else ""
    if last in DANGLING_WORDS:
        return True
    if last in AUXILIARIES:
        return before not in SUBJECTS
    return before == "to" and last in OBJECT_VERBS
