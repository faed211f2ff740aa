"""Thresholds and weights of the transfer decision.

Every number that decides whether a caller reaches a person lives here, so an
operator can tune the policy from the TOML file (``[transfer]``) without
touching code, and a test can change one knob and watch the outcome change.
The field comments give the reasoning behind each default.

Plain, mutable dataclass on purpose: ``voicebot.config`` merges TOML values
into it field by field.  TOML arrays arrive as lists, so the code only ever
iterates or tests membership on the sequence fields.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

Reason = Literal["explicit", "frustration", "complexity"]
REASONS: tuple[Reason, ...] = ("explicit", "frustration", "complexity")

# Words that describe *why the caller phoned* rather than how they feel about
# the call.  VADER scores them negative ("lost" -1.3, "fraud" -2.8, "died"
# -2.6, the answer "no" -1.2), so "I lost my card" or "No thanks" would read as
# an unhappy caller.  Removing them from the lexicon keeps the sentiment
# signal about the caller's mood; the topics themselves are judged by the
# complexity signal.
# fmt: off
DEFAULT_NEUTRAL_WORDS: tuple[str, ...] = (
    "no", "lost", "lose", "losing", "stolen", "steal", "stole", "theft", "fraud",
    "fraudulent", "scam", "scammed", "dispute", "disputed", "charged", "debt", "debts",
    "died", "death", "dead", "dying", "killed", "kill", "killing", "kills", "passed",
    "funeral", "grief", "widow",
    "hardship", "struggle", "struggling", "problem", "problems", "issue", "emergency",
    "worried", "worry", "block", "blocked", "cancel", "cancelled", "stuck", "bother",
    "complaint", "complain", "overdrawn", "declined", "missing", "sorry", "unemployed",
    "sick", "ill", "cancer", "illness", "hospital", "bankrupt", "bankruptcy", "lawsuit",
    "risk", "error", "rejected", "refused", "bounced", "penalty", "overdraft",
)
# fmt: on

# better-profanity's list mixes swear words with everyday words.  These are
# removed because a bank's callers say them without meaning offence: medical
# and bereavement words ("my father had a stroke", "killed in an accident"),
# drinks and places ("rum", "pot"), identity words that are never an insult
# ("gay", "lesbians"), and exclamations too mild to count ("oh my god").
# fmt: off
DEFAULT_PROFANITY_ALLOWED: tuple[str, ...] = (
    "god", "omg", "kill", "murder", "stroke", "drunk", "fat", "pot", "hemp", "rum",
    "vodka", "pawn", "organ", "ovary", "ovum", "uterus", "womb", "seaman", "seamen",
    "revue", "sandbar", "strip", "naked", "nude", "virgin", "len", "paddy", "valium",
    "sniper", "napalm", "heroin", "hiv", "herpes", "slave", "pee", "urine", "menses",
    "menstruate", "menstruation", "tampon", "wad", "willy", "willies", "xx", "lmao",
    "lmfao", "erect", "sexual", "sex", "breasts", "gay", "gays", "lesbians", "queer",
    "transsexual", "opiate", "opium", "meth", "reefer", "weed", "ganja", "stoned",
    "hooch", "hookah", "maxi", "foobar", "undies", "unwed", "penile", "rectal",
    "testes", "testis", "nipple", "nipples", "pms", "racy", "steamy", "prude", "toots",
    "tinkle", "potty", "poop", "fart", "homey", "hump", "lust", "loin", "loins",
    "pcp", "peyote", "junkie", "junky", "leper", "schizo", "extacy", "extasy", "uzi",
    "viagra", "wang", "woody", "nad", "nads", "herp", "herpy", "gringo", "seduce",
    "enlargement", "erotic", "ugly", "trashy", "sleazy", "weirdo", "tramp",
)
# fmt: on

DEFAULT_COMPLEXITY_INTENTS: dict[str, str] = {
    "complaint": "complaint",
    "fraud_dispute": "fraud_dispute",
    "bereavement": "bereavement",
    "financial_hardship": "financial_hardship",
    "legal_threat": "legal_threat",
    # A banking need the bot has no skill or answer for (an account action,
    # an investigation): the caller should reach a person at once.
    "service_request": "banking_request",
}

# Weight of one occurrence; a category transfers when its weights over the
# call add up to ``complexity_threshold``.  Sensitive categories go at once;
# one out-of-scope question is often small talk ("what's the weather?"), so
# it takes two; a multi-part request whose evidence agrees (ranking and
# wording) goes at once, weaker evidence needs to recur.
DEFAULT_COMPLEXITY_WEIGHTS: dict[str, float] = {
    "complaint": 1.0,
    "fraud_dispute": 1.0,
    "bereavement": 1.0,
    "financial_hardship": 1.0,
    "legal_threat": 1.0,
    "banking_request": 1.0,
    "multi_part": 1.0,
}

# Words that put a call in a complexity category whatever intent Rasa read:
# a caller threatening court or a regulator needs a person even when the
# sentence also names a routine topic ("sort my balance out or I'll sue").
# Nouns only with a determiner ("my lawyer", "to court"): a lone "lawyer" is
# as likely a recogniser's slip ("that's lower" heard as "that's lawyer").
# fmt: off
DEFAULT_COMPLEXITY_PHRASES: dict[str, tuple[str, ...]] = {
    "legal_threat": (
        "to court", "in court", "the courts", "small claims", "sue", "suing", "sued",
        "my lawyer", "a lawyer", "my lawyers", "my solicitor", "a solicitor", "my solicitors",
        "my attorney", "an attorney", "legal action", "lawsuit", "ombudsman", "regulator",
        "financial conduct authority", "trading standards", "report you", "reporting you",
    ),
    # A death in the family is a bereavement however the sentence is heard or
    # read ("my mum died and I'm the executor" garbled into words the NLU
    # does not know): the caller needs a person, never "say that again".
    "bereavement": (
        "died", "passed away", "passed on", "funeral", "bereavement", "bereaved",
        "deceased", "executor", "executors", "probate", "death certificate",
    ),
}
# fmt: on

# Words a category's *topic* is named by.  A category read from Rasa's intent
# alone counts only when the caller said one of them: a classifier always
# picks some intent, and a wrong number ("can I book a taxi") or a garbled
# line ("10m you tell me, be in") came out as an unservable banking request or
# a legal threat with nothing of either in the words.  Stems: a word matches
# itself and its inflections ("transfer" -> "transfers", "transferred").  The
# banking words are a bank's everyday nouns and verbs (with "phone": a lost
# phone is a lost key to the account); of BANKING77's train queries that need
# a person, 99 % name one (the rest: shop returns, "what is the reason for that").
# fmt: off
DEFAULT_TOPIC_WORDS: dict[str, tuple[str, ...]] = {
    "banking_request": (
        "account", "bank", "card", "money", "cash", "atm", "pay", "paid", "payment", "transfer",
        "transaction", "fee", "charge", "refund", "loan", "mortgage", "remortgage", "overdraft",
        "overdrawn", "saving", "interest", "isa", "credit", "debit", "cheque", "chequebook",
        "checkbook", "deposit", "withdraw", "withdrawal", "withdrew", "balance", "statement",
        "pin", "top up", "top ups", "topup", "exchange", "currency", "currencies", "rate",
        "fund", "app", "online", "password", "passcode", "pass code", "identity", "id",
        "verify", "verification", "shares", "pension", "insurance", "invest", "investment",
        "beneficiary", "payee", "salary", "standing order", "dollar", "pound", "euro", "branch",
        "contactless", "visa", "mastercard", "wallet", "purchase", "bought", "spend", "spent",
        "phone", "customer", "amount", "limit", "crypto", "abroad", "international", "iban",
        "swift", "sort code", "identification", "topping up", "declined", "receipt",
        "revert", "log in", "login", "log on", "$", "£", "€",
    ),
    "legal_threat": (
        "court", "sue", "suing", "sued", "lawyer", "solicitor", "attorney", "legal",
        "illegal", "law", "lawsuit", "ombudsman", "regulator", "police", "tribunal",
        "claim", "report", "authority", "standards",
    ),
}
# fmt: on

# Words that open a second request after "and" ("... and what would it cost",
# "... and move our accounts"): question words, auxiliaries and the verbs of
# account actions.  A turn read as one knowledge-base answer that asks two
# such things cannot be served by that answer.
# fmt: off
DEFAULT_REQUEST_OPENERS: tuple[str, ...] = (
    "what", "what's", "how", "which", "when", "where", "why", "who", "can", "could",
    "will", "would", "do", "does", "is", "are", "should", "open", "close", "move",
    "change", "update", "send", "transfer", "cancel", "add", "remove", "order", "block",
    "set", "switch", "apply", "increase", "reduce", "tell", "give", "arrange", "make",
)
# fmt: on

# A problem with the caller's OWN transaction, card or account that is not
# resolved ("my top-up failed", "I was charged twice", "my transfer is
# missing") needs a person even when it is worded like a how-to question the
# knowledge base could answer.  A generic question ("how long do transfers
# take?") has no such wording and keeps its answer.  Chosen on BANKING77's
# train part: each phrase marks a request a bank must act on far more often
# than an informational one there.  "Pending", "still waiting" and "not gone
# through yet" are absent on purpose: the corpus' pending-payment questions
# are informational (the answer explains pending), so they must not transfer;
# nor "haven't received" (a new card on its way), "not working" (a PIN, a
# wallet: the answer helps) or a fee that was charged (fees are answered).
# fmt: off
DEFAULT_OWN_PROBLEM_PHRASES: tuple[str, ...] = (
    "declined", "rejected", "refused", "denied", "failed", "fails", "failing", "error",
    "reverted", "refund", "refunded", "charged twice", "twice", "double charged",
    "charged double", "duplicate", "duplicated", "missing", "not showing", "isn't showing",
    "not show up", "hasn't shown", "not been credited", "never arrived", "hasn't arrived",
    "didn't arrive", "doesn't work", "won't work", "didn't work", "isn't working",
    "stopped working", "can't use", "cannot use", "can not use", "couldn't use", "unable to",
    "swallowed", "ate my card", "kept my card", "didn't go through", "did not go through",
    "wouldn't go through", "won't go through", "wrong amount", "wrong rate",
    "wrong exchange rate", "cancel my transfer", "cancel a transfer", "cancel the transfer",
    "close my account", "terminate my account", "delete my account", "didn't", "did not",
    "isn't", "wasn't", "not allowed", "not able", "can't seem", "couldn't", "terminate",
    "discontinue", "revert", "is wrong",
)
# Words that make it the caller's own thing rather than a general question.
DEFAULT_OWNER_WORDS: tuple[str, ...] = (
    "my", "mine", "i", "i've", "i'm", "i'd", "me", "we", "our", "us",
)
# fmt: on

# Topic words for spotting two requests in one utterance ("check my balance
# and also reset my password").  They only corroborate: a multi-part request
# transfers alone only when Rasa's ranking agrees (see signals.complexity).
# fmt: off
DEFAULT_REQUEST_KEYWORDS: dict[str, tuple[str, ...]] = {
    "check_balance": ("balance", "how much money", "how much is in"),
    "recent_transactions": ("transactions", "statement", "payments", "spending", "purchases"),
    "lost_card": ("lost", "stolen", "missing card", "block my card", "freeze my card"),
    "reset_password": ("password", "log in", "login", "locked out", "sign in"),
    "opening_hours": ("opening hours", "open", "close", "closing", "hours"),
    "fraud_dispute": ("fraud", "fraudulent", "dispute", "don't recognise", "don't recognize",
                      "unauthorised", "unauthorized", "scam"),
    "complaint": ("complaint", "complain"),
    "financial_hardship": ("can't pay", "cannot pay", "hardship", "behind on"),
}
# fmt: on

# What callers say about the bot, the call or their own mood: "useless",
# "waste of my time", "I'm furious".  A strong phrase counts 1, a milder one
# ("you're not listening", "frustrated") 0.6.  Everyday disappointment ("a
# bit annoying", "that's a shame", "not great") is deliberately absent: it
# must not send a served caller to a person.
# fmt: off
DEFAULT_FRUSTRATION_PHRASES: dict[str, float] = {
    **dict.fromkeys((
        "furious", "livid", "fuming", "outraged", "disgusted", "disgusting", "waste of time",
        "waste of my time", "wasting my time", "useless", "hopeless", "pathetic", "ridiculous",
        "a joke", "sick and tired", "fed up", "sick of", "had enough", "unacceptable",
        "incompetent", "rubbish", "so angry", "really angry", "i'm angry", "i am angry",
        "hate this", "never works", "stupid", "idiotic", "absolute joke", "shambles",
    ), 1.0),
    **dict.fromkeys((
        "not what i asked", "not what i said", "not what i meant", "that's wrong",
        "you don't understand", "you're not listening", "not listening", "annoyed",
        "frustrated", "frustrating", "angry", "upset", "still can't", "for god's sake",
        "for goodness sake", "are you kidding", "you never", "nobody fixes", "got nowhere",
        "can't help me",
    ), 0.6),
}
# fmt: on

DEFAULT_FRUSTRATION_WEIGHTS: dict[str, float] = {
    # Directed abuse is the strongest single cue, but a typical lone insult
    # with nothing else wrong stays just under the threshold (it may be banter
    # or a mis-transcription); with any second cue, or extreme wording that
    # VADER scores near -1, the call goes.  Undirected
    # swearing ("what the hell") counts ``profanity_value`` of it.
    "abusive_language": 0.55,
    # The caller's own words about the bot or their mood ("useless", "waste
    # of my time", "I'm furious"): one strong phrase with a negative tone
    # crosses the threshold.
    "frustration_words": 0.6,
    # Lexicon sentiment is noisy on short transcribed speech; it adds up over
    # turns rather than deciding alone.
    "negative_sentiment": 0.35,
    # Each turn the bot misunderstands in a row; three in a row count fully.
    "misunderstanding": 0.45,
    "repetition": 0.35,
    # Loudness and speaking rate depend on line and person; they support the
    # verbal signals (shouting and rushing after two misunderstandings goes
    # over) but take two sustained turns to transfer by themselves.
    "louder_voice": 0.3,
    "faster_speech": 0.2,
    "no_progress": 0.25,
}


@dataclass
class TransferConfig:
    """When a call goes to a person.  Defaults favour containment of routine
    calls while reaching a human within about three bad turns."""

    # --- explicit request -------------------------------------------------
    explicit_intents: Sequence[str] = ("request_human",)
    explicit_dtmf: str = "0"
    # fmt: off
    explicit_phrases: Sequence[str] = (
        "agent", "operator", "representative", "real person", "human", "humans",
        "live person", "actual person", "to a person", "with a person", "speak to someone",
        "talk to someone", "someone real", "somebody real", "real human", "human being",
        "adviser", "advisor", "advisers", "advisors", "manager", "supervisor",
        "customer service", "customer services", "member of staff", "staff member",
        "speak to somebody", "talk to somebody", "speak with someone", "speak with somebody",
        "someone at the bank", "somebody at the bank", "who works at the bank",
        "anyone i can talk to", "anyone there i can talk to", "anybody i can talk to",
        "transfer me", "put me through", "connect me",
    )
    # Request words matched by sound as well, for recogniser slips
    # ("represent a tive", "opera tor"); only next to a request verb, or as
    # (nearly) the whole turn, so a word that merely sounds alike does not count.
    fuzzy_request_words: Sequence[str] = (
        "representative", "operator", "agent", "human", "person", "adviser",
    )
    fuzzy_context_words: Sequence[str] = (
        "speak", "talk", "connect", "transfer", "put", "get", "want", "need", "have",
        "give", "let", "through", "like",
    )
    # Metaphone codes at least this long may differ by one symbol; shorter ones
    # ("agent" AJNT) must match exactly.
    fuzzy_min_code_len: int = 6
    # Compounds that contain a request word but ask for no one here.
    explicit_exclusions: Sequence[str] = (
        "estate agent", "travel agent", "letting agent", "insurance agent", "booking agent",
        "human resources", "human error", "human rights", "operator error",
    )
    # Bot phrasings that offer a person; a "yes" right after one is a request.
    offer_phrases: Sequence[str] = (
        "would you like to speak", "would you like to talk", "would you like me to transfer",
        "would you like me to connect", "shall i transfer", "should i transfer",
        "shall i connect", "do you want to speak", "do you want me to transfer",
    )
    # fmt: on
    affirm_intents: Sequence[str] = ("affirm",)

    # --- sentiment and abuse ----------------------------------------------
    frustration_phrases: Mapping[str, float] = field(
        default_factory=lambda: dict(DEFAULT_FRUSTRATION_PHRASES)
    )
    # The emotional signals (abuse, VADER tone, the caller's words about the
    # bot): when their combined weight on one turn reaches this, the reason is
    # frustration even if a complexity topic fired too — the agent must know
    # the caller is angry.  A lone directed insult (0.55) clears it.
    emotional_signals: Sequence[str] = (
        "abusive_language",
        "negative_sentiment",
        "frustration_words",
    )
    emotional_threshold: float = 0.5
    sentiment_neutral_words: Sequence[str] = DEFAULT_NEUTRAL_WORDS
    # VADER's own convention: compound above -0.05 is neutral.
    sentiment_neutral_band: float = 0.05
    profanity_allowed: Sequence[str] = DEFAULT_PROFANITY_ALLOWED
    # Undirected swearing vs an insult aimed at the bot (which is 1.0).
    profanity_value: float = 0.6
    # A word aimed at "you"/the bot is an insult when VADER rates it this low
    # or lower: "useless" -1.8, "stupid" -2.4, "idiot" -2.3; "bother" is -1.4.
    insult_valence: float = -1.5
    # Insults matched by sound when they end the caller's clause right after
    # "you" ("you more on" is a recogniser's "you moron"); a short list, so a
    # routine request that merely sounds alike cannot count.
    fuzzy_insult_words: Sequence[str] = (
        "moron", "idiot", "imbecile", "cretin", "stupid", "useless", "pathetic", "clown",
    )  # fmt: skip

    # --- repetition ------------------------------------------------------------
    # Share of matching content words (difflib ratio) to call it "the same".
    repetition_similarity: float = 0.75
    repetition_lookback_turns: int = 6
    # Formulaic answers legitimately repeat ("yes", "no", a PIN).
    # fmt: off
    repetition_exempt_intents: Sequence[str] = (
        "affirm", "deny", "provide_pin", "greet", "goodbye", "thank_you",
    )
    # fmt: on
    # Saying "I said ..." / "I already told you" is repetition by the caller's
    # own account, even when the transcript of the first try differs.
    repetition_claim_value: float = 0.5

    # --- misunderstanding streak ------------------------------------------
    fallback_intents: Sequence[str] = ("nlu_fallback",)
    correction_intents: Sequence[str] = ("correction",)
    low_confidence: float = 0.5
    misunderstanding_full_streak: int = 3

    # --- tone against the caller's own baseline ----------------------------
    baseline_turns: int = 2
    # +6 dB is twice the amplitude: clearly raised, not line noise; 12 dB is
    # shouting compared to the same caller's opening turns.
    louder_db: float = 6.0
    louder_full_db: float = 12.0
    loudness_min_voiced_s: float = 0.3
    # 25 % faster than their own opening pace; 50 % counts fully.
    faster_ratio: float = 1.25
    faster_full_ratio: float = 1.5
    # A rate from under a second of speech or fewer than 3 words is noise.
    rate_min_voiced_s: float = 1.0
    rate_min_words: int = 3

    # --- complexity ------------------------------------------------------------
    complexity_intents: Mapping[str, str] = field(
        default_factory=lambda: dict(DEFAULT_COMPLEXITY_INTENTS)
    )
    complexity_weights: Mapping[str, float] = field(
        default_factory=lambda: dict(DEFAULT_COMPLEXITY_WEIGHTS)
    )
    # Below this Rasa confidence a category counts in proportion.  0.4: with
    # ~80 intents the classifier spreads probability thinly, and on BANKING77
    # train queries held out of the NLU data, 0.6 caught 128/181 callers who
    # needed a person, 0.4 caught 149/181 for 2 more needless transfers in 270.
    complexity_min_confidence: float = 0.4
    complexity_threshold: float = 1.0
    # Phrases that are a complexity category by themselves (category -> phrases).
    complexity_phrases: Mapping[str, Sequence[str]] = field(
        default_factory=lambda: dict(DEFAULT_COMPLEXITY_PHRASES)
    )
    # A phrase of these categories does not count with one of these words in
    # the three before it: a bereavement is someone else's death.
    complexity_phrase_not_after: Mapping[str, Sequence[str]] = field(
        default_factory=lambda: {"bereavement": ("i", "i've", "i'd", "i'm", "i'll")}
    )
    # A category from Rasa's intent alone needs one of its topic words in the
    # turn (category -> word stems; categories not listed need none).
    complexity_topic_words: Mapping[str, Sequence[str]] = field(
        default_factory=lambda: dict(DEFAULT_TOPIC_WORDS)
    )
    # A caller's own unresolved problem (see DEFAULT_OWN_PROBLEM_PHRASES) goes to
    # a person as this category when Rasa read it as a question the bot answers
    # (an intent starting with one of ``own_problem_intent_prefixes``), or as one
    # of ``own_problem_intents`` (another line, a request it cannot serve).  Not
    # for a turn it did not understand (``nlu_fallback``): guessing a problem from
    # a garbled line sent routine callers to people, while asking again (and
    # offering a person after two misses) costs one turn.  Never for a skill or
    # a conversational intent.
    own_problem_phrases: Sequence[str] = DEFAULT_OWN_PROBLEM_PHRASES
    own_problem_owner_words: Sequence[str] = DEFAULT_OWNER_WORDS
    own_problem_category: str = "banking_request"
    own_problem_intent_prefixes: Sequence[str] = ("kb_",)
    own_problem_intents: Sequence[str] = ("out_of_scope", "service_request")
    # Intents that are requests (for spotting several in one utterance).
    # fmt: off
    request_intents: Sequence[str] = (
        "check_balance", "recent_transactions", "lost_card", "reset_password", "opening_hours",
        "complaint", "fraud_dispute", "financial_hardship",
    )
    # fmt: on
    # A second request intent needs this much probability in Rasa's ranking.
    multi_intent_min_prob: float = 0.25
    # Intents answered by one spoken answer (the knowledge base): such a turn
    # that asks a second thing ("and what would it cost", "and move ...",
    # after ``request_openers``) is a multi-part request.  Each part needs
    # ``request_min_words`` content words, so "... and what?" is not a request.
    one_answer_intent_prefixes: Sequence[str] = ("kb_",)
    request_openers: Sequence[str] = DEFAULT_REQUEST_OPENERS
    request_min_words: int = 2
    request_keywords: Mapping[str, Sequence[str]] = field(
        default_factory=lambda: dict(DEFAULT_REQUEST_KEYWORDS)
    )
    # fmt: off
    conjunctions: Sequence[str] = (
        "and also", "and then", "as well as", "and another thing", "also", "plus",
        "and i also", "and i need", "and i want", "and i'd like", "and can you",
        "and could you", "and my", "and what",
    )
    # fmt: on

    # --- long call without progress ----------------------------------------
    # A routine call makes progress within ~4 turns (greeting, request, PIN,
    # answer); 10 turns or 3 minutes with nothing done is a call the bot is
    # not going to finish.
    no_progress_grace_turns: int = 4
    no_progress_turns: int = 10
    no_progress_grace_s: float = 60.0
    no_progress_s: float = 180.0
    no_progress_reason: Reason = "complexity"

    # --- dialogue failure ---------------------------------------------------
    # The session apologises and asks again once; a second failure in a row
    # means Rasa/STT is down, and the caller goes to a person, not the void.
    dialogue_failure_turns: int = 2
    dialogue_failure_reason: Reason = "complexity"

    # --- frustration trend ----------------------------------------------------
    frustration_weights: Mapping[str, float] = field(
        default_factory=lambda: dict(DEFAULT_FRUSTRATION_WEIGHTS)
    )
    # Share of the score kept from one turn to the next: a calm turn takes
    # 40 % off, so one bad moment fades within a few turns while three bad
    # turns in a row build up.
    frustration_decay: float = 0.6
    # Extra factor when the bot just got something done for the caller.
    progress_relief: float = 0.5
    frustration_threshold: float = 0.65

    def validate(self) -> None:
        """Reject settings that would make the policy silently never (or
        always) transfer."""
        for name in ("frustration_threshold", "complexity_threshold"):
            value = getattr(self, name)
            if not 0.0 < value <= 1.0:
                raise ValueError(f"transfer.{name} must be in (0, 1], got {value}")
        for name in (
            "emotional_threshold",
            "frustration_decay",
            "progress_relief",
            "low_confidence",
            "complexity_min_confidence",
            "multi_intent_min_prob",
            "profanity_value",
            "repetition_similarity",
            "repetition_claim_value",
        ):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"transfer.{name} must be in [0, 1], got {value}")
        for signal, weight in self.frustration_weights.items():
            if not 0.0 <= weight <= 1.0:
                raise ValueError(f"transfer.frustration_weights.{signal} must be in [0, 1]")
        self._validate_ranges()

    def _validate_ranges(self) -> None:
        pairs = (
            ("louder_db", "louder_full_db"),
            ("faster_ratio", "faster_full_ratio"),
            ("no_progress_grace_turns", "no_progress_turns"),
            ("no_progress_grace_s", "no_progress_s"),
        )
        for low, high in pairs:
            if getattr(self, low) >= getattr(self, high):
                raise ValueError(f"transfer.{low} must be below transfer.{high}")
        for name in ("baseline_turns", "misunderstanding_full_streak", "dialogue_failure_turns"):
            if getattr(self, name) < 1:
                raise ValueError(f"transfer.{name} must be at least 1")
        for name in ("no_progress_reason", "dialogue_failure_reason"):
            if getattr(self, name) not in REASONS:
                raise ValueError(f"transfer.{name} must be one of {REASONS}")
