"""Custom actions for the bank line: identification, account requests, yes/no.

Identification: the caller ID arrives as message metadata (``caller_id``) on
every message and as ``session_started_metadata`` at session start.  A known
number sets ``caller_id_matched``; account requests then need the 4-digit PIN,
asked for by ``pin_form`` and checked against a salted hash.  The PIN slot is
cleared as soon as it is checked, whatever the outcome.  Three wrong PINs end
the attempts for the call; ``pin_guard`` keeps counting across calls.

The request the caller made (``pending_request``) is carried out as soon as
they are verified; once verified they are not asked again during the call.

Runs in the Rasa venv (Python 3.10).
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import yaml
from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import (
    ActionExecuted,
    EventType,
    FollowupAction,
    SessionStarted,
    SlotSet,
)
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from . import bank, knowledge, pin_guard, spoken

logger = logging.getLogger(__name__)


def _pin_required() -> tuple[str, ...]:
    """Requests that need the PIN first: ``pin_required`` in the project's intents.yml."""
    data = yaml.safe_load((Path(__file__).resolve().parent.parent / "intents.yml").read_text())
    return tuple(
        name for name, props in data["intents"].items() if (props or {}).get("pin_required")
    )


ACCOUNT_REQUESTS = _pin_required()
MAX_PIN_ATTEMPTS = 3
ANYTHING_ELSE = "Is there anything else I can help with?"

NO_CALLER_ID = (
    "I'm sorry, I can't see the number you're calling from, so I can't help with "
    "account questions on this call. I can still tell you our opening hours."
)
UNKNOWN_CALLER = (
    "I'm sorry, I can't find an account linked to the number you're calling from, so I "
    "can't help with account questions on this call. I can still tell you our opening hours."
)
LOCKED_OUT = (
    "I'm sorry, I wasn't able to verify your PIN, so for your security I can't go any "
    "further with account questions on this call. A colleague will need to help you with that."
)


# ---------------------------------------------------------------- helpers


def caller_id(tracker: Tracker) -> str | None:
    """The caller ID voicebot sent with this message, or with the session start."""
    metadata = tracker.latest_message.get("metadata") or {}
    if metadata.get("caller_id"):
        return str(metadata["caller_id"])
    started = tracker.get_slot("session_started_metadata") or {}
    value = started.get("caller_id") if isinstance(started, dict) else None
    return str(value) if value else None


def current_customer(tracker: Tracker) -> bank.Customer | None:
    return bank.customer_by_phone(caller_id(tracker))


def previous_bot_turn(tracker: Tracker) -> list[dict[str, Any]]:
    """Events of the bot's turn just before the caller's latest message."""
    turn: list[dict[str, Any]] = []
    users_seen = 0
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            users_seen += 1
            if users_seen == 2:
                break
            continue
        if users_seen == 1:
            turn.append(event)
    turn.reverse()
    return turn


def previous_bot_texts(tracker: Tracker) -> list[str]:
    turn = previous_bot_turn(tracker)
    return [e["text"] for e in turn if e.get("event") == "bot" and e.get("text")]


def pending_question(tracker: Tracker) -> str | None:
    """The yes/no question the bot asked in its previous turn, if any.

    A question asked earlier no longer counts: a "yes" three turns later must
    not block a card.
    """
    value = None
    for event in previous_bot_turn(tracker):
        if event.get("event") == "slot" and event.get("name") == "awaiting_confirmation":
            value = event.get("value")
    return value


def asked_anything_else(tracker: Tracker) -> bool:
    return any("anything else" in text.lower() for text in previous_bot_texts(tracker))


# ---------------------------------------------------------------- fulfilment


def _balance(customer: bank.Customer) -> str:
    accounts = bank.accounts(customer.id)
    if not accounts:
        return "I can't find an account with a balance for you."
    parts = []
    for account in accounts:
        amount = spoken.money(account.balance_cents)
        if account.balance_cents < 0:
            parts.append(f"your {account.kind} account is overdrawn by {amount}")
        else:
            parts.append(f"your {account.kind} account balance is {amount}")
    sentence = spoken.join_words(parts)
    return f"{sentence[0].upper()}{sentence[1:]}."


def _transactions(customer: bank.Customer) -> str:
    items = bank.recent_transactions(customer.id, limit=3)
    if not items:
        return "There are no recent transactions on your account."
    lines = []
    for item in items:
        when = spoken.day(item.posted_on)
        amount = spoken.money(item.amount_cents)
        if item.amount_cents < 0:
            lines.append(f"{when}, {amount} to {item.description}.")
        else:
            lines.append(f"{when}, {amount} paid in from {item.description}.")
    lines = [line[0].upper() + line[1:] for line in lines]
    count = "transaction" if len(items) == 1 else f"{len(items)} transactions"
    return f"Here are your last {count}. " + " ".join(lines)


def _cards_blocked(cards: list[bank.Card], when: str) -> str:
    """Your card(s) ending in … is/are <when> blocked, …, then the anything-else question."""
    numbers = spoken.join_words([spoken.digits(c.last4) for c in cards])
    one = len(cards) == 1
    return (
        f"Your {'card' if one else 'cards'} ending in {numbers} "
        f"{'is' if one else 'are'} {when} blocked, so nobody can use "
        f"{'it' if one else 'them'}. " + ANYTHING_ELSE
    )


def _lost_card(customer: bank.Customer) -> tuple[str, list[EventType]]:
    """Ask before blocking: blocking is irreversible for the caller."""
    cards = bank.cards(customer.id)
    active = [c for c in cards if c.status == "active"]
    if not active:
        if cards:
            return _cards_blocked(cards, "already"), []
        return "I can't find a card on your account. " + ANYTHING_ELSE, []
    described = spoken.join_words(
        [f"your {c.kind} card ending in {spoken.digits(c.last4)}" for c in active]
    )
    subject, obj = ("it", "it") if len(active) == 1 else ("they", "them")
    text = (
        f"I can block {described} right away. Once blocked, {subject} can't be used "
        f"again. Shall I block {obj} now?"
    )
    ids = ",".join(str(c.id) for c in active)
    return text, [SlotSet("awaiting_confirmation", f"block_card:{ids}")]


def _password_reset(customer: bank.Customer) -> str:
    bank.queue_password_reset_sms(customer)
    return (
        "I've sent a text message with a link to reset your online banking password to "
        f"your phone number ending in {spoken.digits(customer.phone[-4:])}. "
        "The link works for 30 minutes. " + ANYTHING_ELSE
    )


def fulfil(
    request: str | None, customer: bank.Customer, dispatcher: CollectingDispatcher
) -> list[EventType]:
    """Carry out a verified caller's request."""
    events: list[EventType] = [SlotSet("pending_request", None)]
    if request == "check_balance":
        dispatcher.utter_message(text=_balance(customer) + " " + ANYTHING_ELSE)
    elif request == "recent_transactions":
        dispatcher.utter_message(text=_transactions(customer) + " " + ANYTHING_ELSE)
    elif request == "lost_card":
        text, extra = _lost_card(customer)
        dispatcher.utter_message(text=text)
        events += extra
    elif request == "reset_password":
        dispatcher.utter_message(text=_password_reset(customer))
    elif request:  # a PIN-protected answer added in data only: its utter_<intent> response
        dispatcher.utter_message(response=f"utter_{request}")
    else:
        dispatcher.utter_message(text="Thank you, you're verified. How can I help?")
    return events


# ---------------------------------------------------------------- actions


class BankAction(Action, ABC):
    """One of this bot's actions: ``action_name`` names it, ``act`` does it.

    Abstract, so rasa_sdk's executor registers only the concrete subclasses.
    """

    action_name = ""

    def name(self) -> str:
        return self.action_name

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        return self.act(dispatcher, tracker)

    @abstractmethod
    def act(self, dispatcher: CollectingDispatcher, tracker: Tracker) -> list[EventType]:
        """The action's events (none of them needs the domain)."""


class ActionSessionStart(BankAction):
    """Start the session and match the caller ID once, before the first reply."""

    action_name = "action_session_start"

    def act(self, dispatcher: CollectingDispatcher, tracker: Tracker) -> list[EventType]:
        metadata = tracker.get_slot("session_started_metadata") or {}
        number = metadata.get("caller_id") if isinstance(metadata, dict) else None
        matched = bank.customer_by_phone(number) is not None
        return [
            SessionStarted(),
            SlotSet("session_started_metadata", metadata or None),
            SlotSet("caller_id_matched", matched),
            ActionExecuted("action_listen"),
        ]


class ActionAccountRequest(BankAction):
    """An account request: fulfil now, explain why not, or ask for the PIN first."""

    action_name = "action_account_request"

    def act(self, dispatcher: CollectingDispatcher, tracker: Tracker) -> list[EventType]:
        intent = tracker.get_intent_of_latest_message()
        request = intent if intent in ACCOUNT_REQUESTS else tracker.get_slot("pending_request")
        number = caller_id(tracker)
        customer = bank.customer_by_phone(number)
        if customer is None:
            dispatcher.utter_message(text=UNKNOWN_CALLER if number else NO_CALLER_ID)
            return [SlotSet("caller_id_matched", False), SlotSet("pending_request", None)]
        events: list[EventType] = [SlotSet("caller_id_matched", True)]
        if tracker.get_slot("pin_locked"):
            dispatcher.utter_message(text=LOCKED_OUT)
            return [*events, SlotSet("pending_request", None)]
        if tracker.get_slot("pin_verified"):
            return events + fulfil(request, customer, dispatcher)
        return [*events, SlotSet("pending_request", request), FollowupAction("pin_form")]


class ActionCompleteAccountRequest(BankAction):
    """After pin_form: do what the caller asked, or say why we can't."""

    action_name = "action_complete_account_request"

    def act(self, dispatcher: CollectingDispatcher, tracker: Tracker) -> list[EventType]:
        customer = current_customer(tracker)
        if tracker.get_slot("pin_locked") or customer is None:
            text = LOCKED_OUT if customer else UNKNOWN_CALLER
        elif not tracker.get_slot("pin_verified"):
            text = "Okay. " + ANYTHING_ELSE
        else:
            return fulfil(tracker.get_slot("pending_request"), customer, dispatcher)
        dispatcher.utter_message(text=text)
        return [SlotSet("pending_request", None), SlotSet("pin", None)]


class ActionAskPin(BankAction):
    """The PIN prompt (pin_form calls action_ask_<slot>)."""

    action_name = "action_ask_pin"

    def act(self, dispatcher: CollectingDispatcher, tracker: Tracker) -> list[EventType]:
        if tracker.get_slot("pin_failures"):
            text = "Please say or key in your four digit PIN again."
        else:
            text = "For your security, please say or key in your four digit PIN."
        dispatcher.utter_message(text=text)
        return []


class ValidatePinForm(FormValidationAction):
    """Check the PIN against the salted hash; never keep it in a slot."""

    def name(self) -> str:
        return "validate_pin_form"

    async def required_slots(
        self,
        domain_slots: list[str],
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> list[str]:
        # Verified or out of attempts: nothing left to ask, the form ends.
        if tracker.get_slot("pin_verified") or tracker.get_slot("pin_locked"):
            return []
        return domain_slots

    def validate_pin(
        self,
        slot_value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> dict[str, Any]:
        pin = "".join(ch for ch in str(slot_value or "") if ch.isdigit())
        customer = current_customer(tracker)
        if customer is None:
            return {"pin": None, "pin_locked": True}
        if len(pin) != 4:
            # Not a failed attempt: we simply didn't get four digits.
            dispatcher.utter_message(text="A PIN has four digits.")
            return {"pin": None}
        verdict = pin_guard.check(customer.id, pin)  # counts failures across calls
        if verdict is pin_guard.Verdict.RIGHT:
            return {"pin": None, "pin_verified": True}
        if verdict is pin_guard.Verdict.LOCKED:
            return {"pin": None, "pin_verified": False, "pin_locked": True}
        failures = int(tracker.get_slot("pin_failures") or 0) + 1
        logger.info("wrong PIN for customer %s (attempt %d)", customer.id, failures)
        if failures >= MAX_PIN_ATTEMPTS:
            return {
                "pin": None,
                "pin_failures": failures,
                "pin_verified": False,
                "pin_locked": True,
            }
        dispatcher.utter_message(text="Sorry, that PIN doesn't match our records.")
        return {"pin": None, "pin_failures": failures, "pin_verified": False}


class YesNoAction(BankAction):
    """A yes or a no: it answers the bot's last question, if it asked one."""

    def act(self, dispatcher: CollectingDispatcher, tracker: Tracker) -> list[EventType]:
        question = pending_question(tracker) or ""
        return [SlotSet("awaiting_confirmation", None), *self.answer(question, dispatcher, tracker)]

    @abstractmethod
    def answer(
        self, question: str, dispatcher: CollectingDispatcher, tracker: Tracker
    ) -> list[EventType]:
        """Events beyond closing the question."""


class ActionHandleAffirm(YesNoAction):
    """A yes: the answer to the bot's last question, if it asked one."""

    action_name = "action_handle_affirm"

    def answer(
        self, question: str, dispatcher: CollectingDispatcher, tracker: Tracker
    ) -> list[EventType]:
        if question.startswith("block_card:"):
            customer = current_customer(tracker)
            if customer is None or not tracker.get_slot("pin_verified"):
                dispatcher.utter_message(text=UNKNOWN_CALLER)
                return []
            blocked = [
                card
                for card in bank.cards(customer.id)
                if str(card.id) in question.split(":", 1)[1].split(",")
                and bank.block_card(customer.id, card.id)
            ]
            if blocked:
                dispatcher.utter_message(text="Done. " + _cards_blocked(blocked, "now"))
            else:
                dispatcher.utter_message(text="That card is already blocked. " + ANYTHING_ELSE)
        elif asked_anything_else(tracker):
            dispatcher.utter_message(text="Sure. What else can I help you with?")
        else:
            dispatcher.utter_message(text="Okay. What can I help you with?")
        return []


class ActionHandleDeny(YesNoAction):
    """A no: the answer to the bot's last question; no to "anything else?" ends the call."""

    action_name = "action_handle_deny"

    def answer(
        self, question: str, dispatcher: CollectingDispatcher, tracker: Tracker
    ) -> list[EventType]:
        if question.startswith("block_card:"):
            dispatcher.utter_message(text="Okay, I haven't blocked your card. " + ANYTHING_ELSE)
        elif tracker.get_slot("pending_request"):
            # Said no while we were asking for the PIN.
            dispatcher.utter_message(text="Okay, no problem. " + ANYTHING_ELSE)
            return [SlotSet("pending_request", None)]
        elif asked_anything_else(tracker):
            dispatcher.utter_message(text="Okay. Thank you for calling. Goodbye.")
            return [SlotSet("end_call", True)]
        else:
            dispatcher.utter_message(text="Okay. What can I help you with?")
        return []


class ActionRepeat(BankAction):
    """Say again what the bot said last, and keep its yes/no question open."""

    action_name = "action_repeat"

    def act(self, dispatcher: CollectingDispatcher, tracker: Tracker) -> list[EventType]:
        texts = previous_bot_texts(tracker)
        if not texts:
            dispatcher.utter_message(
                text="I can help with balances, recent transactions, lost cards, password "
                "resets and opening hours. What would you like to do?"
            )
            return []
        for text in texts:
            dispatcher.utter_message(text=text)
        question = pending_question(tracker)
        return [SlotSet("awaiting_confirmation", question)] if question else []


class ActionAnswerFromKnowledge(BankAction):
    """Speak the knowledge-base answer for the caller's topic (kb_<topic>)."""

    action_name = "action_answer_from_kb"

    def act(self, dispatcher: CollectingDispatcher, tracker: Tracker) -> list[EventType]:
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        text = knowledge.answer_for(intent)
        if text is None:
            logger.warning("no knowledge-base answer for %s", intent)
            text = NOT_UNDERSTOOD
        dispatcher.utter_message(text=text + " " + ANYTHING_ELSE)
        return []


NOT_UNDERSTOOD = (
    "Sorry, I didn't quite understand. Could you say that another way? You can also "
    "press 0 at any time to speak to someone."
)
NOT_UNDERSTOOD_AGAIN = (
    "Sorry, I still didn't understand. Would you like to speak to someone? Say yes, or press 0."
)


def fallbacks_in_a_row(tracker: Tracker) -> int:
    """Caller turns the NLU could not read, ending with the latest one."""
    count = 0
    for event in reversed(tracker.events):
        if event.get("event") != "user":
            continue
        if ((event.get("parse_data") or {}).get("intent") or {}).get("name") != "nlu_fallback":
            break
        count += 1
    return count


class ActionNotUnderstood(BankAction):
    """First miss: ask again, with the keypad hint.  Two in a row: offer a
    person (a "yes" to that offer is an explicit request)."""

    action_name = "action_not_understood"

    def act(self, dispatcher: CollectingDispatcher, tracker: Tracker) -> list[EventType]:
        again = fallbacks_in_a_row(tracker) >= 2
        dispatcher.utter_message(text=NOT_UNDERSTOOD_AGAIN if again else NOT_UNDERSTOOD)
        return []
