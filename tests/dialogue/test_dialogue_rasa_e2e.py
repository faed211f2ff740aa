"""End-to-end: real Rasa + real actions server + the demo bank (no mocks).

Each test is one phone call with its own conversation id.  Tests that change
the bank use different customers, so the order of tests does not matter.
"""

from __future__ import annotations

import sqlite3
import statistics
import time
import uuid
from pathlib import Path

import aiohttp
import pytest
import yaml

from voicebot.dialogue.dtmf import dtmf_message
from voicebot.dialogue.rasa_client import REDACTED, DialogueReply, RasaClient
from voicebot.dialogue.rasa_server import ManagedRasa

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]

ALEX = "+15550100"  # PIN 4321, one debit card, balance 1,234.56
PRIYA = "+15550101"  # PIN 1357, two cards, checking + savings
SAM = "+15550102"  # PIN 2468, card already blocked, overdrawn
MARIA = "+15550103"  # PIN 8080, no card
UNKNOWN = "+15550199"

DATA = Path(__file__).parent / "data"


class Call:
    """One simulated phone call: the same sender id and caller ID every turn."""

    def __init__(self, client: RasaClient, caller_id: str | None = ALEX) -> None:
        self.client = client
        self.id = f"test-{uuid.uuid4().hex[:12]}"
        self.metadata = {"caller_id": caller_id} if caller_id else {}

    async def say(self, text: str) -> DialogueReply:
        return await self.client.send(self.id, text, self.metadata)

    async def verify(self, request: str, pin: str) -> DialogueReply:
        asked = await self.say(request)
        assert asked.expects_pin, asked
        return await self.say(f"my pin is {pin}")


def bank(db: Path, sql: str, *args: object) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql, args).fetchall()


# ---------------------------------------------------------------- routine flows


async def test_opening_hours_need_no_identification(rasa_client: RasaClient) -> None:
    reply = await Call(rasa_client).say("What time are you open on Saturday?")
    assert reply.intent == "opening_hours"
    assert "Monday to Friday" in reply.text and "Saturday" in reply.text
    assert not reply.expects_pin and not reply.end_call


async def test_caller_id_is_matched_on_the_first_turn(rasa_client: RasaClient) -> None:
    reply = await Call(rasa_client).say("Hello")
    assert reply.intent == "greet"
    assert reply.caller_id_matched is True
    assert reply.slots["session_started_metadata"] == {"caller_id": ALEX}
    assert reply.pin_verified is None


async def test_balance_after_spoken_pin(rasa_client: RasaClient) -> None:
    call = Call(rasa_client)
    asked = await call.say("What's my balance?")
    assert asked.intent == "check_balance"
    assert asked.expects_pin and asked.slots["requested_slot"] == "pin"
    assert "PIN" in asked.text

    reply = await call.say("my pin is 4321")
    assert reply.intent == "provide_pin"  # this turn's intent, not the form's trigger
    assert reply.pin_verified is True and not reply.expects_pin
    assert "$1,234.56" in reply.text
    # The PIN is not kept in a slot and never reaches voicebot.
    assert reply.slots["pin"] is None
    assert [e["value"] for e in reply.entities if e["entity"] == "pin"] == [REDACTED]
    assert "4321" not in repr(reply)


async def test_verified_caller_is_not_asked_again(rasa_client: RasaClient) -> None:
    call = Call(rasa_client)
    await call.verify("check my balance", "4321")
    reply = await call.say("And what are my recent transactions?")
    assert reply.intent == "recent_transactions" and not reply.expects_pin
    assert "Green Grocer" in reply.text and "$42.17" in reply.text


async def test_keyed_pin(rasa_client: RasaClient) -> None:
    call = Call(rasa_client, PRIYA)
    assert (await call.say("balance please")).expects_pin
    reply = await call.say(dtmf_message("1357", expects_pin=True))
    assert reply.intent == "provide_pin" and reply.confidence == 1.0
    assert reply.pin_verified is True
    assert "$15,020" in reply.text and "savings" in reply.text


async def test_wrong_pin_retries_then_succeeds(rasa_client: RasaClient) -> None:
    call = Call(rasa_client)
    await call.say("how much money do I have")
    wrong = await call.say("1111")
    assert "doesn't match" in wrong.text
    assert wrong.expects_pin and wrong.pin_verified is False
    right = await call.say("4321")
    assert right.pin_verified is True
    assert "$1,234.56" in right.text


async def test_three_wrong_pins_stop_the_attempts(rasa_client: RasaClient) -> None:
    call = Call(rasa_client)
    await call.say("what's my balance")
    await call.say("1111")
    await call.say("2222")
    locked = await call.say("3333")
    assert "colleague" in locked.text
    assert not locked.expects_pin and locked.pin_verified is False
    again = await call.say("what's my balance")
    assert not again.expects_pin and "colleague" in again.text
    assert "$" not in again.text


async def test_unknown_caller_cannot_make_account_requests(rasa_client: RasaClient) -> None:
    call = Call(rasa_client, UNKNOWN)
    reply = await call.say("I want to check my balance")
    assert reply.caller_id_matched is False and not reply.expects_pin
    assert "can't find an account" in reply.text
    hours = await call.say("when are you open")
    assert "Monday to Friday" in hours.text


async def test_no_caller_id_is_explained(rasa_client: RasaClient) -> None:
    reply = await Call(rasa_client, caller_id=None).say("what's my balance")
    assert not reply.expects_pin and "can't see the number" in reply.text


async def test_lost_card_confirmed_is_blocked(rasa_client: RasaClient, rasa_bank_db: Path) -> None:
    call = Call(rasa_client, ALEX)
    asked = await call.verify("I lost my card", "4321")
    assert "4417" in asked.text and asked.text.endswith("?")
    assert bank(rasa_bank_db, "SELECT status FROM cards WHERE last4 = '4417'") == [("active",)]
    done = await call.say("yes please")
    assert "now blocked" in done.text
    rows = bank(rasa_bank_db, "SELECT status, blocked_at FROM cards WHERE last4 = '4417'")
    assert rows[0][0] == "blocked" and rows[0][1]


async def test_lost_card_denied_is_not_blocked(rasa_client: RasaClient, rasa_bank_db: Path) -> None:
    call = Call(rasa_client, PRIYA)
    asked = await call.verify("my card was stolen", "1357")
    assert "Shall I block them" in asked.text
    reply = await call.say("no, don't block it")
    assert reply.intent == "deny" and "haven't blocked" in reply.text
    statuses = bank(rasa_bank_db, "SELECT status FROM cards WHERE customer_id = 2")
    assert statuses == [("active",), ("active",)]


async def test_yes_much_later_does_not_block_a_card(
    rasa_client: RasaClient, rasa_bank_db: Path
) -> None:
    call = Call(rasa_client, PRIYA)
    await call.verify("I lost my card", "1357")
    await call.say("what are your opening hours")
    reply = await call.say("yes")
    assert "blocked" not in reply.text
    assert bank(rasa_bank_db, "SELECT DISTINCT status FROM cards WHERE customer_id = 2") == [
        ("active",)
    ]


async def test_already_blocked_card(rasa_client: RasaClient) -> None:
    reply = await Call(rasa_client, SAM).verify("I've lost my card", "2468")
    assert "already blocked" in reply.text


async def test_password_reset_records_an_sms(rasa_client: RasaClient, rasa_bank_db: Path) -> None:
    count = "SELECT COUNT(*) FROM sms_outbox WHERE customer_id = 4"
    before = bank(rasa_bank_db, count)[0][0] if rasa_bank_db.exists() else 0
    reply = await Call(rasa_client, MARIA).verify("I forgot my online banking password", "8080")
    assert "text message" in reply.text and "ending in 0103" in reply.text
    rows = bank(rasa_bank_db, "SELECT phone, kind, body FROM sms_outbox WHERE customer_id = 4")
    assert len(rows) == before + 1
    phone, kind, body = rows[-1]
    assert (phone, kind) == (MARIA, "password_reset") and "https://" in body


async def test_pins_are_stored_hashed(rasa_bank_db: Path, rasa_client: RasaClient) -> None:
    await Call(rasa_client).say("hello")  # makes sure the database exists
    columns = [r[1] for r in bank(rasa_bank_db, "PRAGMA table_info(customers)")]
    assert "pin" not in columns and {"pin_salt", "pin_hash"} <= set(columns)
    for pin in ("4321", "1357", "2468", "8080"):
        hits = bank(rasa_bank_db, "SELECT COUNT(*) FROM customers WHERE pin_hash = ?", pin)
        assert hits == [(0,)]


# ---------------------------------------------------------------- conversation mechanics


async def test_goodbye_ends_the_call(rasa_client: RasaClient) -> None:
    reply = await Call(rasa_client).say("That's all, goodbye.")
    assert reply.intent == "goodbye" and reply.end_call
    assert "Goodbye" in reply.text


async def test_no_to_anything_else_ends_the_call(rasa_client: RasaClient) -> None:
    call = Call(rasa_client)
    await call.say("what are your opening hours")
    reply = await call.say("no thanks")
    assert reply.end_call and "Goodbye" in reply.text


async def test_ask_repeat_repeats_the_last_reply(rasa_client: RasaClient) -> None:
    call = Call(rasa_client)
    first = await call.say("what can you do")
    again = await call.say("sorry, can you repeat that?")
    assert again.intent == "ask_repeat"
    assert again.texts == first.texts


async def test_repeat_keeps_a_yes_no_question_open(
    rasa_client: RasaClient, rasa_bank_db: Path
) -> None:
    call = Call(rasa_client, PRIYA)
    asked = await call.verify("freeze my card", "1357")
    again = await call.say("pardon?")
    assert again.texts == asked.texts
    reply = await call.say("no")
    assert "haven't blocked" in reply.text


async def test_correction_apologises(rasa_client: RasaClient) -> None:
    reply = await Call(rasa_client).say("No, that's not what I said.")
    assert reply.intent == "correction" and "Sorry" in reply.text


async def test_question_while_asking_for_pin_then_original_request(
    rasa_client: RasaClient,
) -> None:
    call = Call(rasa_client)
    await call.say("what's my balance")
    hours = await call.say("actually, what are your opening hours?")
    assert "Monday to Friday" in hours.text and "PIN" in hours.text
    assert hours.expects_pin
    reply = await call.say("4 3 2 1")
    assert reply.pin_verified is True and "$1,234" in reply.text


async def test_asking_for_a_person_while_asking_for_pin_stops_asking(
    rasa_client: RasaClient,
) -> None:
    call = Call(rasa_client)
    await call.say("what's my balance")
    reply = await call.say("I want to speak to a real person")
    assert reply.intent == "request_human" and not reply.expects_pin
    assert reply.active_loop is None


@pytest.mark.parametrize(
    ("said", "expected"),
    [
        ("yes", "Okay."),
        ("hello?", "still here"),
        ("thank you", "welcome"),
        # Gibberish may read as a weak "yes" or as nothing: either way the PIN is asked again.
        ("blah flurb", "PIN"),
        ("432", "didn't catch"),
        (dtmf_message("12", expects_pin=True), "four digits"),
    ],
)
async def test_pin_asked_again_after_a_non_answer(
    rasa_client: RasaClient, said: str, expected: str
) -> None:
    call = Call(rasa_client)
    await call.say("what's my balance")
    reply = await call.say(said)
    assert expected in reply.text and reply.text.endswith("four digit PIN.")
    assert reply.expects_pin and not reply.pin_verified
    assert not reply.slots["pin_failures"]  # not counted as a wrong PIN
    assert (await call.say("4321")).pin_verified is True


@pytest.mark.parametrize(
    ("said", "expected", "end_call"),
    [
        ("no, I don't want to", "no problem", False),
        ("that's not what I asked for", "Sorry about that", False),
        ("goodbye", "Goodbye", True),
        ("my husband passed away", "sorry for your loss", False),
    ],
)
async def test_pin_request_abandoned(
    rasa_client: RasaClient, said: str, expected: str, end_call: bool
) -> None:
    call = Call(rasa_client)
    await call.say("I need my recent transactions")
    reply = await call.say(said)
    assert expected in reply.text
    assert not reply.expects_pin and reply.active_loop is None
    assert reply.end_call is end_call


async def test_two_misunderstandings_in_a_row_offer_a_person(rasa_client: RasaClient) -> None:
    call = Call(rasa_client)
    first = await call.say("blorp zizzle quonk")
    second = await call.say("blorp zizzle quonk")
    assert first.intent == second.intent == "nlu_fallback"
    assert "press 0" in first.text and "would you like to speak to someone" in second.text.lower()


@pytest.mark.parametrize(
    "first, second",
    [
        ("Wobble wabble, the jiggery thing on a plate.", "Toaster pastry on a bicycle."),
        ("Mumble mumble garden gnome.", "Flibbering the snorkel with a teapot."),
    ],
)
async def test_gibberish_is_not_a_wrong_number(
    rasa_client: RasaClient, first: str, second: str
) -> None:
    """Words the bank's line never hears are not understood (then a person is
    offered), not read as another business's call or a banking request."""
    call = Call(rasa_client)
    one, two = await call.say(first), await call.say(second)
    assert one.intent == two.intent == "nlu_fallback", (one, two)
    assert "would you like to speak to someone" in two.text.lower()


async def test_wrong_number_ends_politely_on_no(rasa_client: RasaClient) -> None:
    call = Call(rasa_client)
    wrong = await call.say("Is this the hairdresser? I'd like to book a haircut.")
    assert wrong.intent == "out_of_scope" and "customer line" in wrong.text
    bye = await call.say("No.")
    assert bye.end_call and "Goodbye" in bye.text


async def test_pin_offered_before_asked_is_not_used(rasa_client: RasaClient) -> None:
    reply = await Call(rasa_client).say("my pin is 4321")
    assert reply.intent == "provide_pin" and reply.pin_verified is None
    assert reply.slots["pin"] is None


# ---------------------------------------------------------------- recognised, not completed

NOT_COMPLETED = [
    # No promise of a colleague in Rasa's replies: the transfer policy hands over.
    ("request_human", "Can I talk to a human please?", "Of course"),
    ("request_human", dtmf_message("0", expects_pin=False), "Of course"),
    ("complaint", "I want to make a complaint about your service.", "what happened"),
    ("fraud_dispute", "There's a payment on my account I didn't make.", "block it"),
    ("bereavement", "My husband passed away last week.", "sorry for your loss"),
    ("financial_hardship", "I can't afford my loan repayments anymore.", "difficult"),
    ("legal_threat", "I'm going to sue you, my lawyer will be in touch.", "sorry you feel"),
    ("service_request", "Can I apply for a mortgage?", "can't do that myself"),
    ("out_of_scope", "Can you recommend a good pizza place?", "the bank's customer line"),
    ("kb_card_delivery", "How long will my new card take to come?", "working days"),
    ("nlu_fallback", "blorp zizzle quonk", "press 0"),
]


@pytest.mark.parametrize(("intent", "phrase", "expected"), NOT_COMPLETED)
async def test_recognised_but_not_completed(
    rasa_client: RasaClient, intent: str, phrase: str, expected: str
) -> None:
    reply = await Call(rasa_client).say(phrase)
    assert reply.intent == intent
    assert expected in reply.text
    assert not reply.end_call and not reply.expects_pin


# ---------------------------------------------------------------- quality and operation


@pytest.mark.parametrize("name", ["nlu_heldout.yml", "nlu_heldout_2.yml"])
async def test_nlu_accuracy_on_held_out_phrases(managed_rasa: ManagedRasa, name: str) -> None:
    """Phrases not in the training data; the report quotes these numbers."""
    data = yaml.safe_load((DATA / name).read_text())
    misses = []
    total = 0
    async with aiohttp.ClientSession() as http:
        for intent, phrases in data.items():
            for phrase in phrases:
                total += 1
                async with http.post(
                    f"{managed_rasa.url}/model/parse",
                    headers={"Authorization": f"Bearer {managed_rasa.token}"},
                    json={"text": str(phrase)},
                ) as resp:
                    got = (await resp.json())["intent"]["name"]
                if got != intent:
                    misses.append(f"{phrase!r}: wanted {intent}, got {got}")
    accuracy = 1 - len(misses) / total
    print(f"\n{name}: NLU accuracy {accuracy:.1%} ({total - len(misses)}/{total})")
    print("\n".join(misses))
    assert accuracy >= 0.9, misses


async def test_webhook_latency(rasa_client: RasaClient) -> None:
    """Send + tracker round trip for a plain turn (no custom action)."""
    call = Call(rasa_client)
    await call.say("hello")
    times = []
    for _ in range(10):
        started = time.perf_counter()
        await call.say("what are your opening hours")
        times.append(time.perf_counter() - started)
    median = statistics.median(times)
    print(f"\nsend() median {median * 1000:.0f} ms, max {max(times) * 1000:.0f} ms")
    assert median < 0.5


def _listeners(port: int) -> list[str]:
    """Local addresses listening on ``port`` (from /proc/net/tcp{,6})."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, port_hex = fields[1].rsplit(":", 1)
            if fields[3] == "0A" and int(port_hex, 16) == port:  # 0A = LISTEN
                found.append(address)
    return found


async def test_servers_listen_on_loopback_only(managed_rasa: ManagedRasa) -> None:
    assert managed_rasa.action_url is not None
    for url in (managed_rasa.url, managed_rasa.action_url):
        port = int(url.rsplit(":", 1)[1])
        assert _listeners(port) == ["0100007F"], url  # 127.0.0.1, nothing on IPv6


async def test_api_requires_the_token(managed_rasa: ManagedRasa) -> None:
    async with aiohttp.ClientSession() as http, http.get(f"{managed_rasa.url}/status") as resp:
        assert resp.status == 401
    async with RasaClient(managed_rasa.url, "wrong-token") as wrong:
        assert not await wrong.health()
    async with managed_rasa.client() as client:
        assert await client.health()


async def test_forget_drops_the_conversation_after_the_call(
    rasa_client: RasaClient, managed_rasa: ManagedRasa
) -> None:
    call = Call(rasa_client)
    await call.verify("what's my balance", "4321")
    url = f"{managed_rasa.url}/conversations/{call.id}/tracker"
    params = {"include_events": "ALL"}
    headers = {"Authorization": f"Bearer {managed_rasa.token}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        async with http.get(url, params=params) as resp:
            assert "4321" in await resp.text()  # Rasa keeps the raw text...
        await rasa_client.forget(call.id)
        async with http.get(url, params=params) as resp:
            body = await resp.text()
    assert "4321" not in body and "balance" not in body  # ...until we make it forget
