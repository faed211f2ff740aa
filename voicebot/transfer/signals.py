"""Signals: one number per turn for each reason a caller might need a person.

Each signal is a pure function of the current turn, the earlier turns and the
configuration, returning a :class:`Signal` whose ``value`` (0..1) says how
strongly it fired and whose ``evidence`` says why, in words an agent or an
auditor can check against the transcript.  Value 0 means "did not fire".

Rasa's intent is one input among several: the policy never re-classifies
text into intents, it only reads the intent, its confidence and ranking as
strings and numbers.
"""

from __future__ import annotations

import difflib
import re
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from voicebot.transfer import lexicon
from voicebot.transfer.config import TransferConfig
from voicebot.transfer.observation import TurnObservation, count_words

EXPLICIT_REQUEST = "explicit_request"
NEGATIVE_SENTIMENT = "negative_sentiment"
ABUSIVE_LANGUAGE = "abusive_language"
FRUSTRATION_WORDS = "frustration_words"
REPETITION = "repetition"
MISUNDERSTANDING = "misunderstanding"
LOUDER_VOICE = "louder_voice"
FASTER_SPEECH = "faster_speech"
COMPLEXITY = "complexity"
NO_PROGRESS = "no_progress"
DIALOGUE_FAILURE = "dialogue_failure"

History = Sequence[TurnObservation]


@dataclass(frozen=True)
class Signal:
    """One reason to consider a transfer, with the evidence behind it."""

    name: str
    value: float
    evidence: str = ""

    def __post_init__(self) -> None:
        if not 0.0 <= self.value <= 1.0:
            raise ValueError(f"signal {self.name} value {self.value} outside 0..1")

    @property
    def fired(self) -> bool:
        return self.value > 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "value": round(self.value, 3), "evidence": self.evidence}


def _clamp(value: float) -> float:
    return max(0.0, min(1.0, value))


def _ramp(x: float, start: float, full: float) -> float:
    """0 up to ``start``, rising linearly to 1 at ``full``."""
    return _clamp((x - start) / (full - start))


# --- explicit request ------------------------------------------------------------

_NEGATIONS = frozenset({"not", "don't", "dont", "no", "never", "without", "doesn't", "didn't"})


def explicit_request(turn: TurnObservation, history: History, cfg: TransferConfig) -> Signal:
    """The caller asked for a person: Rasa's intent, key 0, their own words,
    or a "yes" to the bot's offer.  Any one of them is enough."""
    if turn.dtmf is not None and turn.dtmf.strip() == cfg.explicit_dtmf:
        return Signal(EXPLICIT_REQUEST, 1.0, f"pressed {cfg.explicit_dtmf} on the keypad")
    if turn.intent in cfg.explicit_intents:
        return Signal(EXPLICIT_REQUEST, 1.0, f"intent {turn.intent}{_conf(turn)}")
    phrase = asked_for_person(turn.caller_text, cfg)
    if phrase:
        return Signal(EXPLICIT_REQUEST, 1.0, f'said "{phrase}"')
    heard = sounds_like_request(turn.caller_text, cfg)
    if heard:
        return Signal(EXPLICIT_REQUEST, 1.0, f'said "{heard[0]}" (heard as "{heard[1]}")')
    if turn.intent in cfg.affirm_intents and history and _offered_person(history[-1], cfg):
        return Signal(EXPLICIT_REQUEST, 1.0, "said yes when offered a person")
    return Signal(EXPLICIT_REQUEST, 0.0)


def asked_for_person(text: str, cfg: TransferConfig) -> str | None:
    """The request phrase the caller used, unless negated in its clause
    ("I don't need an agent") or part of a compound ("estate agent")."""
    for clause in lexicon.clauses(text):
        joined = " ".join(clause)
        for exclusion in cfg.explicit_exclusions:
            joined = joined.replace(exclusion, " ")
        tokens = joined.split()
        for phrase in cfg.explicit_phrases:
            position = _find(tokens, phrase.split())
            if position is not None and not _NEGATIONS.intersection(tokens[:position]):
                return phrase
    return None


def sounds_like_request(text: str, cfg: TransferConfig) -> tuple[str, str] | None:
    """(request word, what was heard) when one to three consecutive words
    sound like a request word (Metaphone) next to a request verb, or make up
    nearly the whole turn: recogniser slips like "represent a tive".  Only
    long words may be heard split ("a joint" is not "agent")."""
    for clause in lexicon.clauses(text):
        if _NEGATIONS.intersection(clause):
            continue
        short = len(clause) <= 3
        if not short and not set(clause) & set(cfg.fuzzy_context_words):
            continue
        for size in (3, 2, 1):
            for i in range(len(clause) - size + 1):
                heard = " ".join(clause[i : i + size])
                word = lexicon.sounds_like(heard, cfg.fuzzy_request_words, cfg.fuzzy_min_code_len)
                if word and (size == 1 or len(word) >= cfg.fuzzy_min_code_len):
                    return word, heard
    return None


def _find(tokens: list[str], phrase: list[str]) -> int | None:
    for i in range(len(tokens) - len(phrase) + 1):
        if tokens[i : i + len(phrase)] == phrase:
            return i
    return None


def _offered_person(previous: TurnObservation, cfg: TransferConfig) -> bool:
    said = lexicon.normalise(previous.bot_text)
    return any(lexicon.contains_phrase(said, offer) for offer in cfg.offer_phrases)


def _conf(turn: TurnObservation) -> str:
    return "" if turn.confidence is None else f" ({turn.confidence:.2f})"


# --- sentiment and abuse ---------------------------------------------------------


def negative_sentiment(turn: TurnObservation, history: History, cfg: TransferConfig) -> Signal:
    """How negative the caller sounds (VADER compound below neutral), with
    topic words like "lost" or "fraud" neutralised (see config)."""
    mood = lexicon.sentiment(turn.caller_text, cfg.sentiment_neutral_words)
    if mood.compound > -cfg.sentiment_neutral_band:
        return Signal(NEGATIVE_SENTIMENT, 0.0)
    words = ", ".join(dict.fromkeys(mood.negative_words))
    detail = f" ({words})" if words else ""
    return Signal(
        NEGATIVE_SENTIMENT, _clamp(-mood.compound), f"VADER compound {mood.compound:+.2f}{detail}"
    )


def frustration_words(turn: TurnObservation, history: History, cfg: TransferConfig) -> Signal:
    """The caller's own words about the bot, the call or their mood
    ("useless", "waste of my time", "I'm furious"); the strongest counts."""
    said = lexicon.normalise(turn.caller_text)
    found = [
        (strength, phrase)
        for phrase, strength in cfg.frustration_phrases.items()
        if lexicon.contains_phrase(said, phrase)
    ]
    if not found:
        return Signal(FRUSTRATION_WORDS, 0.0)
    strongest = max(strength for strength, _ in found)
    phrases = ", ".join(f'"{p}"' for _, p in sorted(found, key=lambda f: -f[0]))
    return Signal(FRUSTRATION_WORDS, _clamp(strongest), f"said {phrases}")


# "you" and names for the bot itself; not "system" or "machine", which callers
# use for the bank's systems and cash machines ("the machine rejected my card").
_TARGETS = frozenset({"you", "you're", "youre", "u", "ya", "bot", "robot", "chatbot"})
_INSULT_WINDOW = 3


def abusive_language(turn: TurnObservation, history: History, cfg: TransferConfig) -> Signal:
    """Insults aimed at the bot count fully; undirected swearing counts
    ``profanity_value``: "what the hell" is exasperation, "you useless
    machine" is a caller at the end of their patience."""
    profane = lexicon.profane_words(turn.caller_text, cfg.profanity_allowed)
    insult = _insult(turn.caller_text, set(profane), cfg)
    if insult:
        return Signal(ABUSIVE_LANGUAGE, 1.0, f'insult: "{insult}"')
    if profane:
        return Signal(ABUSIVE_LANGUAGE, cfg.profanity_value, "profanity: " + ", ".join(profane))
    return Signal(ABUSIVE_LANGUAGE, 0.0)


def _insult(text: str, profane: set[str], cfg: TransferConfig) -> str | None:
    """A derogatory word right before, or within three words after, "you" or
    a word for the bot, in the same clause ("you're useless", "stupid
    machine", "screw you").  Derogatory = on the swear list or rated at or
    below ``insult_valence`` by VADER."""

    def derogatory(word: str) -> bool:
        if word in profane:
            return True
        return lexicon.valence(word, cfg.sentiment_neutral_words) <= cfg.insult_valence

    for clause in lexicon.clauses(text):
        for i, word in enumerate(clause):
            if word not in _TARGETS and word != "your":
                continue
            after = clause[i + 1 : i + 1 + (1 if word == "your" else _INSULT_WINDOW)]
            before = clause[max(0, i - 1) : i]
            for other in (*before, *after):
                if derogatory(other):
                    return " ".join(clause[max(0, i - 1) : i + 1 + _INSULT_WINDOW])
            heard = _misheard_insult(clause[i + 1 :], cfg)
            thanks = i > 0 and clause[i - 1] in ("thank", "thanks")
            if word in _TARGETS and heard and not thanks:
                return f"{' '.join(clause[i:])} (heard as {heard})"
    return None


# Words allowed between "you" and a misheard insult ("you absolute moron").
_INSULT_FILLERS = frozenset({"are", "re", "a", "an", "such", "absolute", "complete", "total"})


def _misheard_insult(rest: Sequence[str], cfg: TransferConfig) -> str | None:
    """The insult that the rest of a clause (after "you") sounds like, when
    those one to three words are all that is left of the clause."""
    words = list(rest)
    while words and words[0] in _INSULT_FILLERS:
        words.pop(0)
    if not 1 <= len(words) <= 3:
        return None
    return lexicon.sounds_like(" ".join(words), cfg.fuzzy_insult_words, cfg.fuzzy_min_code_len)


# --- repetition --------------------------------------------------------------------

# Words that carry no request content: pronouns, politeness, request verbs,
# fillers.  Dropping them keeps "I want to check my balance" and "I said my
# balance!" comparable as {balance} vs {balance}.
# fmt: off
_FUNCTION_WORDS = frozenset((
    "a", "an", "the", "i", "i'm", "im", "me", "my", "mine", "you", "your", "it", "it's",
    "its", "is", "are", "was", "be", "been", "am", "do", "does", "did", "to", "of", "for",
    "on", "in", "at", "and", "or", "but", "so", "just", "please", "can", "could", "would",
    "will", "want", "wanna", "like", "need", "check", "tell", "give", "get", "know", "what",
    "what's", "whats", "how", "um", "uh", "er", "erm", "oh", "ok", "okay", "well", "said",
    "say", "saying", "again", "already", "told", "yes", "no", "hi", "hello", "that",
    "this", "there", "about", "some", "any", "with", "have", "has", "i've", "ive", "i'd",
    "id", "thanks", "thank",
))
_REPETITION_CLAIMS = ("i said", "i just said", "i already said", "i told you",
                      "i already told you", "like i said", "as i said", "i keep saying")
# fmt: on


def content_words(text: str) -> list[str]:
    """The words of an utterance that say what the caller wants."""
    return [w for w in lexicon.words(text) if w not in _FUNCTION_WORDS]


def similarity(a: Sequence[str], b: Sequence[str]) -> float:
    """difflib's ratio over content-word sequences.

    Why difflib rather than set Jaccard: a caller repeating themself says the
    same words in much the same order, and the ratio (2·matches / total)
    still gives partial credit when STT garbles one of them ("check my
    balance" vs "check my balanced" → 0.5 rather than Jaccard's 0.33),
    while counting duplicated words honestly.  Words rather than characters,
    so "my card" and "my cart" do not look alike.
    """
    if not a or not b:
        return 0.0
    return difflib.SequenceMatcher(None, list(a), list(b), autojunk=False).ratio()


def repetition(turn: TurnObservation, history: History, cfg: TransferConfig) -> Signal:
    """The caller says again what they said in a recent turn the bot did not
    resolve, or tells us they are repeating themself."""
    if turn.is_keypad or turn.intent in cfg.repetition_exempt_intents:
        return Signal(REPETITION, 0.0)
    mine = content_words(turn.caller_text)
    best, match = 0.0, None
    for earlier in list(history)[-cfg.repetition_lookback_turns :]:
        if earlier.made_progress or earlier.is_keypad:
            continue
        score = similarity(mine, content_words(earlier.caller_text))
        if score > best:
            best, match = score, earlier
    if match is not None and best >= cfg.repetition_similarity:
        return Signal(
            REPETITION,
            best,
            f'repeated turn {match.index} ("{match.caller_text.strip()}"), similarity {best:.2f}',
        )
    again = _asked_again(turn, history, cfg)
    if again is not None:
        return Signal(
            REPETITION, 1.0, f"asked again for {turn.intent} (turn {again.index}) after a miss"
        )
    claim = _repetition_claim(turn.caller_text)
    if claim:
        return Signal(REPETITION, cfg.repetition_claim_value, f'said "{claim}"')
    return Signal(REPETITION, 0.0)


def _asked_again(
    turn: TurnObservation, history: History, cfg: TransferConfig
) -> TurnObservation | None:
    """The earlier turn with the same request when a misunderstanding or a
    correction came in between: the caller repeats a request the bot got
    wrong, however differently they word it the second time."""
    if turn.intent not in cfg.request_intents:
        return None
    recent = list(history)[-cfg.repetition_lookback_turns :]
    for i in range(len(recent) - 1, -1, -1):
        if recent[i].intent == turn.intent:
            between = recent[i + 1 :]
            return recent[i] if any(misunderstood(t, cfg) for t in between) else None
    return None


def _repetition_claim(text: str) -> str | None:
    said = lexicon.normalise(text)
    return next((c for c in _REPETITION_CLAIMS if lexicon.contains_phrase(said, c)), None)


# --- misunderstanding streak ------------------------------------------------------


def misunderstood(turn: TurnObservation, cfg: TransferConfig) -> str | None:
    """Why the bot did not understand this turn, or None if it did."""
    if turn.made_progress or turn.dialogue_failed:
        return None
    if turn.intent in cfg.fallback_intents:
        return turn.intent
    if turn.intent in cfg.correction_intents:
        return turn.intent
    if turn.confidence is not None and turn.confidence < cfg.low_confidence:
        return f"low confidence {turn.intent} {turn.confidence:.2f}"
    return None


def misunderstanding(turn: TurnObservation, history: History, cfg: TransferConfig) -> Signal:
    """Consecutive turns the bot got wrong, ending with this one: fallbacks,
    low confidence, or the caller correcting it.  One miss happens on every
    phone line; a run of them is what makes callers give up."""
    streak: list[str] = []
    for t in [turn, *reversed(history)]:
        why = misunderstood(t, cfg)
        if why is None:
            break
        streak.append(f"turn {t.index} {why}")
    if not streak:
        return Signal(MISUNDERSTANDING, 0.0)
    value = _clamp(len(streak) / cfg.misunderstanding_full_streak)
    return Signal(
        MISUNDERSTANDING, value, f"{len(streak)} in a row: " + ", ".join(reversed(streak))
    )


# --- tone against the caller's own baseline ----------------------------------------


def _loudness(turn: TurnObservation, cfg: TransferConfig) -> float | None:
    voiced = turn.voiced_s
    if turn.rms_dbfs is None or voiced is None or voiced < cfg.loudness_min_voiced_s:
        return None
    return turn.rms_dbfs


def _rate(turn: TurnObservation, cfg: TransferConfig) -> float | None:
    voiced = turn.voiced_s
    if voiced is None or voiced < cfg.rate_min_voiced_s:
        return None
    if count_words(turn.caller_text) < cfg.rate_min_words:
        return None
    return turn.words_per_s


def _baseline(
    history: History, measure: Callable[[TurnObservation], float | None], n: int
) -> float | None:
    """Median of the caller's first ``n`` measurable turns: their own normal
    voice, since a loud line or a fast talker is not a frustrated caller."""
    values = [v for t in history if (v := measure(t)) is not None][:n]
    return statistics.median(values) if len(values) >= n else None


def louder_voice(turn: TurnObservation, history: History, cfg: TransferConfig) -> Signal:
    """Level of this turn above the caller's opening turns, in dB."""
    level = _loudness(turn, cfg)
    base = _baseline(history, lambda t: _loudness(t, cfg), cfg.baseline_turns)
    if level is None or base is None:
        return Signal(LOUDER_VOICE, 0.0)
    delta = level - base
    if delta < cfg.louder_db:
        return Signal(LOUDER_VOICE, 0.0)
    return Signal(
        LOUDER_VOICE,
        _clamp(delta / cfg.louder_full_db),
        f"{delta:+.1f} dB over baseline {base:.1f} dBFS",
    )


def faster_speech(turn: TurnObservation, history: History, cfg: TransferConfig) -> Signal:
    """Words per voiced second against the caller's opening turns."""
    rate = _rate(turn, cfg)
    base = _baseline(history, lambda t: _rate(t, cfg), cfg.baseline_turns)
    if rate is None or not base:
        return Signal(FASTER_SPEECH, 0.0)
    ratio = rate / base
    if ratio < cfg.faster_ratio:
        return Signal(FASTER_SPEECH, 0.0)
    return Signal(
        FASTER_SPEECH,
        _ramp(ratio, 1.0, cfg.faster_full_ratio),
        f"{rate:.1f} words/s vs baseline {base:.1f} (×{ratio:.2f})",
    )


# --- complexity ------------------------------------------------------------------


@dataclass(frozen=True)
class _Part:
    category: str
    strength: float
    evidence: str


def complexity(turn: TurnObservation, history: History, cfg: TransferConfig) -> Signal:
    """How far the call is beyond the bot: sensitive categories from Rasa's
    intent, several requests at once, out-of-scope questions.  Occurrences
    add up over the call by category weight; the strongest category is the
    value, so two out-of-scope questions count as much as one fraud report."""
    totals: dict[str, float] = {}
    notes: dict[str, list[str]] = {}
    for t in [*history, turn]:
        for part in complexity_parts(t, cfg):
            weight = float(cfg.complexity_weights.get(part.category, 1.0))
            totals[part.category] = totals.get(part.category, 0.0) + weight * part.strength
            notes.setdefault(part.category, []).append(f"turn {t.index} {part.evidence}")
    if not totals:
        return Signal(COMPLEXITY, 0.0)
    category = max(totals, key=lambda c: totals[c])
    return Signal(
        COMPLEXITY, _clamp(totals[category]), f"{category}: " + "; ".join(notes[category])
    )


def complexity_parts(turn: TurnObservation, cfg: TransferConfig) -> list[_Part]:
    """This turn's own contributions to complexity, before weighting."""
    parts: list[_Part] = []
    category = intent_category(turn, cfg)
    if category:
        conf = turn.confidence
        strength = 1.0 if conf is None else _clamp(conf / cfg.complexity_min_confidence)
        parts.append(_Part(category, strength, f"intent {turn.intent}{_conf(turn)}"))
    if turn.dialogue_gave_up:
        parts.append(_Part(turn.dialogue_gave_up, 1.0, "the dialogue cannot go on"))
    for phrase_category, phrases in cfg.complexity_phrases.items():
        phrase = _phrase_of(
            turn.caller_text, phrases, cfg.complexity_phrase_not_after.get(phrase_category, ())
        )
        if phrase and phrase_category != category:
            parts.append(_Part(phrase_category, 1.0, f'said "{phrase}"'))
    own = own_problem(turn, cfg)
    if own:
        parts.append(_Part(cfg.own_problem_category, 1.0, f'own problem: said "{own}"'))
    multi = multi_part(turn, cfg)
    if multi:
        parts.append(multi)
    return parts


def intent_category(turn: TurnObservation, cfg: TransferConfig) -> str | None:
    """The complexity category of Rasa's intent, when the caller's words name
    its topic (``complexity_topic_words``): a classifier always picks some
    intent, so "book a taxi" can come out as an unservable banking request."""
    category = cfg.complexity_intents.get(turn.intent or "")
    topic = cfg.complexity_topic_words.get(category or "")
    if category and topic and lexicon.first_named(turn.caller_text, topic) is None:
        return None
    return category


def own_problem(turn: TurnObservation, cfg: TransferConfig) -> str | None:
    """The phrase by which the caller reports a problem with their own
    transaction, card or account, when Rasa took it for a question the bot
    answers (or could not read it): "my top-up failed" needs a person even
    when it sounds like "how do top-ups work?"."""
    intent = turn.intent or ""
    answerable = intent.startswith(tuple(cfg.own_problem_intent_prefixes))
    if not answerable and intent not in cfg.own_problem_intents:
        return None
    said = lexicon.normalise(turn.caller_text)
    if not any(lexicon.contains_phrase(said, w) for w in cfg.own_problem_owner_words):
        return None
    return _first_phrase(said, cfg.own_problem_phrases)


def _phrase_of(text: str, phrases: Sequence[str], not_after: Sequence[str]) -> str | None:
    """The first phrase said in a clause where none of ``not_after`` comes in
    the three words before it: "my mum died" is a bereavement, "I nearly died
    when I saw the fee" (or "I must have died", a slip for "dialled") is not."""
    for clause in lexicon.clauses(text):
        joined = " ".join(clause)
        for phrase in phrases:
            at = _find(clause, phrase.split()) if lexicon.contains_phrase(joined, phrase) else None
            if at is not None and not set(clause[max(0, at - 3) : at]) & set(not_after):
                return phrase
    return None


def _first_phrase(normalised: str, phrases: Sequence[str]) -> str | None:
    return next((p for p in phrases if lexicon.contains_phrase(normalised, p)), None)


def multi_part(turn: TurnObservation, cfg: TransferConfig) -> _Part | None:
    """Several requests in one utterance.

    Two sources, because either alone misleads: a classifier spreads
    probability over *similar* intents when one request is merely ambiguous,
    and keywords joined by "and" can be one request ("my balance and my
    statement" is arguably one).  Both agreeing counts fully; the wording
    alone counts half; the ranking alone a quarter.
    """
    ranked = _ranked_requests(turn, cfg)
    worded = _worded_requests(turn.caller_text, cfg)
    asked = asked_beside_one_answer(turn, cfg)
    strength = 0.0
    if (len(ranked) >= 2 and len(worded) >= 2) or len(asked) >= 2:
        strength = 1.0
    elif len(worded) >= 2:
        strength = 0.5
    elif len(ranked) >= 2:
        strength = 0.25
    if strength == 0.0:
        return None
    evidence = []
    if len(ranked) >= 2:
        evidence.append("ranking " + ", ".join(f"{n} {p:.2f}" for n, p in ranked))
    if len(worded) >= 2:
        evidence.append("wording " + " + ".join(worded))
    if len(asked) >= 2:
        evidence.append(f"{turn.intent} answers one of " + " + ".join(f'"{a}"' for a in asked))
    return _Part("multi_part", strength, "; ".join(evidence))


def asked_beside_one_answer(turn: TurnObservation, cfg: TransferConfig) -> list[str]:
    """The requests in a turn Rasa read as one spoken answer (a knowledge-base
    topic), split where "and" opens another request ("how do I send money
    abroad, and what would it cost her?"): one answer cannot serve both."""
    if not (turn.intent or "").startswith(tuple(cfg.one_answer_intent_prefixes)):
        return []
    openers = "|".join(re.escape(o) for o in cfg.request_openers)
    said = lexicon.normalise(turn.caller_text)
    pieces = re.split(rf"\b(?:and|and also|and then|as well as|plus)\s+(?=(?:{openers})\b)", said)
    return [p.strip() for p in pieces if len(content_words(p)) >= cfg.request_min_words]


def _ranked_requests(turn: TurnObservation, cfg: TransferConfig) -> list[tuple[str, float]]:
    seen: dict[str, float] = {}
    for name, prob in turn.intent_ranking:
        if name in cfg.request_intents and prob >= cfg.multi_intent_min_prob:
            seen[name] = max(prob, seen.get(name, 0.0))
    return sorted(seen.items(), key=lambda kv: -kv[1])


def _worded_requests(text: str, cfg: TransferConfig) -> list[str]:
    """Distinct request topics found in different parts of the utterance,
    split at conjunctions ("and also", "as well as", ...)."""
    parts = _split_at_conjunctions(lexicon.normalise(text), cfg.conjunctions)
    if len(parts) < 2:
        return []
    topics: list[str] = []
    for part in parts:
        for topic, keywords in cfg.request_keywords.items():
            if topic not in topics and any(lexicon.contains_phrase(part, k) for k in keywords):
                topics.append(topic)
                break
    return topics


def _split_at_conjunctions(normalised: str, conjunctions: Sequence[str]) -> list[str]:
    parts = [normalised]
    for conj in sorted(conjunctions, key=len, reverse=True):
        pieces: list[str] = []
        for part in parts:
            pieces += [p.strip() for p in f" {part} ".split(f" {conj} ")]
        parts = pieces
    return [p for p in parts if p]


# --- long call, dialogue failure -------------------------------------------------


def no_progress(turn: TurnObservation, history: History, cfg: TransferConfig) -> Signal:
    """Turns and seconds since the bot last got something done (or since
    the call began): a long call going nowhere needs a person even when the
    caller stays polite."""
    since_turns, since_at = 0, 0.0
    for t in [*history, turn]:
        if t.made_progress:
            since_turns, since_at = 0, t.at_s
        else:
            since_turns += 1
    seconds = max(0.0, turn.at_s - since_at)
    value = max(
        _ramp(since_turns, cfg.no_progress_grace_turns, cfg.no_progress_turns),
        _ramp(seconds, cfg.no_progress_grace_s, cfg.no_progress_s),
    )
    if value == 0.0:
        return Signal(NO_PROGRESS, 0.0)
    return Signal(NO_PROGRESS, value, f"{since_turns} turns, {seconds:.0f} s without progress")


def dialogue_failure(turn: TurnObservation, history: History, cfg: TransferConfig) -> Signal:
    """Rasa or STT failed on consecutive turns: the caller goes to a person
    rather than being dropped by a broken bot."""
    count = 0
    for t in [turn, *reversed(history)]:
        if not t.dialogue_failed:
            break
        count += 1
    if count == 0:
        return Signal(DIALOGUE_FAILURE, 0.0)
    return Signal(
        DIALOGUE_FAILURE,
        _clamp(count / cfg.dialogue_failure_turns),
        f"dialogue/STT failed on {count} turn(s) in a row",
    )


SignalFn = Callable[[TurnObservation, History, TransferConfig], Signal]

SIGNALS: tuple[SignalFn, ...] = (
    explicit_request,
    negative_sentiment,
    abusive_language,
    frustration_words,
    repetition,
    misunderstanding,
    louder_voice,
    faster_speech,
    complexity,
    no_progress,
    dialogue_failure,
)


def compute_signals(turn: TurnObservation, history: History, cfg: TransferConfig) -> list[Signal]:
    """Every signal for ``turn`` given the earlier turns, in a fixed order."""
    return [fn(turn, history, cfg) for fn in SIGNALS]
