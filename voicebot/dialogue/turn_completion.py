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
the rest.  ``scripts/bench_turns.py`` measures what it costs on every fixture
(held turns, false ends).

Prepositions: a question or request may end on a *stranded* preposition —
"What can you help me with?", "Who should I talk to?", "Is there a person I can
speak to?" — which is finished English; one that still wants its object ("Can you
help me with …", "Who do I talk to about …", "I want to send money to …") is not.
A preposition is stranded when something earlier in the sentence is its object:
a wh-word, a noun that a relative clause hangs on ("a person I can speak to"), or
"someone/something to …".  Numbers read in groups ("my card number is 4929 …")
are finished only when all their digits are there.
"""

from __future__ import annotations

import re

from voicebot.speech.numbers import normalize_digits

PIN_DIGITS = 4

# Words a finished request does not end on: articles, possessives, prepositions,
# conjunctions and fillers ("I'd like to check my …", "because um").
DANGLING_WORDS = frozenset({
    "a", "an", "the", "my", "your", "our", "his", "her", "their", "its", "some", "any",
    "than", "as",
    "and", "but", "or", "so", "because", "if", "when", "while", "then", "also", "plus",
    "i", "i'm", "i'd", "i'll", "it's", "there's", "what's",
    "um", "uh", "er", "erm", "hmm", "like", "well", "just",
})  # fmt: skip
PREPOSITIONS = frozenset({
    "to", "of", "for", "in", "on", "at", "with", "from", "about", "by", "into", "onto",
    "over", "under", "after", "through",
})  # fmt: skip
# What a stranded preposition can belong to: a fronted wh-word ("What is this fee for?")…
WH_WORDS = frozenset({"what", "what's", "who", "who's", "whom", "which", "where", "whose"})
# … or an indefinite with an infinitive ("someone to talk to").
INDEFINITES = frozenset({
    "someone", "somebody", "something", "anyone", "anybody", "anything", "nobody", "nothing",
    "somewhere", "anywhere",
})  # fmt: skip
# A relative clause starts with its subject right after the noun it describes ("a person
# I can speak to"); after these words a pronoun is no such subject ("Can I speak to").
NOT_A_NOUN = frozenset({
    "please", "thank", "thanks", "and", "but", "or", "so", "because", "if", "when", "then",
})  # fmt: skip
# "to" after these is an infinitive still to come ("What do I need to …"), not a preposition.
INFINITIVE_HEADS = frozenset({
    "need", "needed", "want", "wanted", "like", "love", "have", "has", "had", "going", "got",
    "able", "trying", "try", "supposed", "used", "ought", "how", "where", "when", "plan",
})  # fmt: skip
# "in"/"on"/"over" as a verb's particle end a request: "I can't log in.", "Hold on."
PARTICLE_VERBS = frozenset({
    "log", "logged", "logging", "sign", "signed", "signing", "check", "checked", "come",
    "hold", "turn", "turned", "carry", "get", "got", "go", "going", "stop", "drop", "let",
    "fill", "hand", "hang", "move", "switch", "switched", "put", "hanging", "pass",
})  # fmt: skip
OBJECT_PRONOUNS = frozenset({"me", "it", "him", "her", "them", "us", "this", "that"})
# Numbers read in groups: finished once this many digits are in.
NUMBER_DIGITS = {"card number": 15, "account number": 8, "last four": 4, "pin": 4}
# Auxiliaries end a sentence only after their subject: "Yes, I do." and "What can
# you do?" are finished, "My card was" is not.
AUXILIARIES = frozenset({
    "is", "was", "are", "were", "am", "be", "been", "being", "have", "has", "had",
    "do", "does", "did", "can", "could", "would", "will", "should", "shall", "may", "might", "must",
})  # fmt: skip
SUBJECTS = frozenset({"i", "you", "we", "they", "he", "she", "it", "that", "there"})
PRONOUN_SUBJECTS = frozenset({"i", "you", "we", "they", "he", "she"})
# Verbs that want an object: "to <verb>" at the end is a request still coming
# ("I need to reset … my password").
OBJECT_VERBS = frozenset({
    "check", "reset", "change", "cancel", "block", "freeze", "unlock", "report", "order",
    "replace", "transfer", "send", "pay", "open", "close", "update", "dispute", "know",
    "get", "see", "make", "find", "activate", "access", "confirm", "verify",
})  # fmt: skip
# Verbs of wanting take an object: "I need." and "I want" stop short of what the caller
# needs ("I need | to reset my password"), unless the object came first: "That's all I
# need.", "What do you want?".
WANTING_VERBS = frozenset({"need", "needed", "want", "wanted", "wanna"})
FRONTED_OBJECTS = WH_WORDS | INDEFINITES | frozenset({"all", "everything", "that's", "it's"})
# Words between the subject and the verb: "I really need", "I do need".
VERB_MODIFIERS = frozenset({"really", "just", "still", "also", "only", "actually", "do", "did"})
# Whole answers on their own, even when Whisper leaves off the full stop.
STANDALONE_WORDS = frozenset({
    "hello", "hi", "hey", "yes", "yeah", "yep", "no", "nope", "ok", "okay", "sure",
    "thanks", "thank", "you", "bye", "goodbye", "agent", "operator", "representative",
    "human", "person", "please", "correct", "right",
})  # fmt: skip
_WORD = re.compile(r"[\w']+")
_DIGIT = re.compile(r"\d")
_SENTENCE_END = re.compile(r"[.?!]\s+")


# Whisper finishes a word cut off at a pause with "you": "What are your …" comes back as
# "What are you?", "Can I speak to … a person" as "Can I speak to you?".  Such an ending
# waits the full end silence ("How are you?" is not one of them).
_COMPLETED_BY_WHISPER = re.compile(r"(?<!\bhow )\b(?:are|to) you\W*$", re.IGNORECASE)
# Words Whisper left without a full stop that do not dangle may still be finished ("Yeah,
# go ahead"): they end the turn after this much silence rather than the full end silence.
UNPUNCTUATED_WAIT_S = 0.6
# One or two words ("No.", "Yeah", "Hi there.") often open a longer turn ("No, that's not
# what I said"): they end it only after this much silence.  On the fixtures, at an STT time
# of 0.15 s, it kept 7 of 19 turns whole that ended on such a phrase and added nothing to
# the median turn end (0.33 s after the words), 0.04 s to the 95th percentile.
SHORT_PHRASE_WAIT_S = 0.4
SHORT_PHRASE_WORDS = 2


def end_of_turn_wait(text: str, *, expects_pin: bool = False) -> float | None:
    """Seconds of silence after these words at which they end the turn; None: they do not.

    0 for a finished request; ``SHORT_PHRASE_WAIT_S`` for a finished phrase of one or two
    words; ``UNPUNCTUATED_WAIT_S`` for words that do not dangle but that Whisper did not
    close with a full stop; None for unfinished words and for an
    ending Whisper may have made up (then the endpointer's own end silence decides).
    """
    if reads_complete(text, expects_pin=expects_pin):
        if _COMPLETED_BY_WHISPER.search(text.strip()):
            return None
        short = len(_WORD.findall(text)) <= SHORT_PHRASE_WORDS and not _DIGIT.search(text)
        return SHORT_PHRASE_WAIT_S if short else 0.0
    words = [w.lower() for w in _WORD.findall(text)]
    if not words or text.rstrip()[-1:] in ".?!…" or _DIGIT.search(normalize_digits(text)):
        return None
    return None if _dangles(words) else UNPUNCTUATED_WAIT_S


def reads_complete(text: str, *, expects_pin: bool = False) -> bool:
    """True when ``text`` looks like the caller has finished what they wanted to say.

    While a PIN is expected, a partial number ("four three …") is unfinished
    and a full one is finished whatever the punctuation.
    """
    text = text.strip()
    words = [w.lower() for w in _WORD.findall(text)]
    if not words:
        return False
    digits = len(_DIGIT.findall(normalize_digits(text)))
    if digits:
        wanted = _digits_wanted(text.lower(), words, expects_pin)
        if wanted:
            return digits >= wanted
    if text.endswith(("...", "…")):
        return False
    if all(w in STANDALONE_WORDS for w in words):
        return True
    sentence = [w.lower() for w in _WORD.findall(_SENTENCE_END.split(text)[-1])] or words
    return text[-1] in ".?!" and not _dangles(sentence)


def _digits_wanted(text: str, words: list[str], expects_pin: bool) -> int:
    """How many digits finish the number being read (0: no number is being read).

    A PIN prompt, a named number ("card number", "last four") or digits alone.
    """
    if expects_pin:
        return PIN_DIGITS
    named = [n for phrase, n in NUMBER_DIGITS.items() if phrase in text]
    if named:
        return max(named)
    # Digits alone, or words ending on a short number ("My pen is 43" — Whisper's "pin"):
    # a number is being read.
    return PIN_DIGITS if not any(w.isalpha() for w in words) or words[-1].isdigit() else 0


def _dangles(words: list[str]) -> bool:
    """The last word of the sentence leaves it open."""
    last = words[-1]
    before = words[-2] if len(words) > 1 else ""
    if last in PREPOSITIONS:
        return not _stranded(words)
    if last in DANGLING_WORDS:
        return True
    if last in AUXILIARIES:
        return before not in SUBJECTS and before != "to"  # "what do I need to do?"
    if last in WANTING_VERBS:
        return _wants_its_object(words)
    return before == "to" and last in OBJECT_VERBS


def _wants_its_object(words: list[str]) -> bool:
    """ "I (really) need" ends before its object, unless the object was fronted."""
    head = words[:-1]
    while head and head[-1] in VERB_MODIFIERS:
        head = head[:-1]
    if not head or head[-1] not in PRONOUN_SUBJECTS:
        return False
    return not any(w in FRONTED_OBJECTS for w in head)


def _stranded(words: list[str]) -> bool:
    """The final preposition's object came earlier: "Who should I talk to?"."""
    before = words[-2] if len(words) > 1 else ""
    if before in PREPOSITIONS or before in DANGLING_WORDS:
        return False  # "talk to about", "speak to the"
    if words[-1] == "to" and before in INFINITIVE_HEADS:
        return False  # "I need to"
    if before in PARTICLE_VERBS or (
        before in OBJECT_PRONOUNS and len(words) > 2 and words[-3] in PARTICLE_VERBS
    ):
        return True  # "I can't log in", "turn it on"
    head = words[:-1]
    if any(w in WH_WORDS or w in INDEFINITES for w in head):
        return True
    return any(
        w in PRONOUN_SUBJECTS and i > 0 and _can_be_noun(head[i - 1]) for i, w in enumerate(head)
    )


def _can_be_noun(word: str) -> bool:
    """Could ``word`` be the noun a relative clause describes ("the card I paid with")?"""
    return not (
        word in AUXILIARIES or word in DANGLING_WORDS or word in PREPOSITIONS
        or word in NOT_A_NOUN
    )  # fmt: skip
