"""Transfers end to end from recorded fixtures: real STT, Rasa, TTS, policy and queue."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace

import pytest

from tests.conftest import FIXTURES, utterance
from voicebot.handoff import HandoffConfig, TransferQueue
from voicebot.session.services import Services
from voicebot.simulation import check_expectations, load_scenarios, simulate_call
from voicebot.telephony.fixture import parse_turn

pytestmark = pytest.mark.slow
SCENARIOS = {s.id: s for s in load_scenarios(FIXTURES / "scenarios.yaml")}
ROUTINE = [
    "opening_hours",
    "balance_spoken_pin",
    "balance_dtmf_pin",
    "lost_card_confirmed",
    "password_reset",
    "recent_transactions",
    "what_can_you_do_then_goodbye",
    "unknown_caller_balance",
]
TRANSFERS = [
    ("explicit_agent_spoken", "explicit"),
    ("explicit_agent_dtmf_0", "explicit"),
    ("frustration_escalating", "frustration"),
    ("fraud_dispute", "complexity"),
    ("bereavement", "complexity"),
    ("wrong_pin_three_times", "complexity"),
]


@pytest.mark.parametrize("scenario_id", ROUTINE)
async def test_routine_calls_are_not_transferred(services: Services, scenario_id: str) -> None:
    scenario = SCENARIOS[scenario_id]
    record = await simulate_call(services, scenario.turns, scenario.caller)
    assert record.outcome == "served", record.to_dict()
    assert record.transfer is None
    assert check_expectations(record, scenario.expect) == []


@pytest.mark.parametrize(("scenario_id", "reason"), TRANSFERS)
async def test_each_transfer_reason_end_to_end(
    services: Services, scenario_id: str, reason: str
) -> None:
    scenario = SCENARIOS[scenario_id]
    record = await simulate_call(services, scenario.turns, scenario.caller)
    assert record.outcome == "transferred"
    transfer = record.transfer
    assert transfer is not None and transfer["reason"] == reason
    assert transfer["signals"] and transfer["summary"]
    assert transfer["handoff"]["status"] == "answered"
    assert transfer["timeline"], "the frustration timeline goes to the agent"
    # The caller heard the announcement, and the package was stored before ringing.
    assert "colleague" in record.turns[-1].bot_text.lower()
    assert services.store is not None
    package = services.store.get_handoff(record.call_id)  # type: ignore[attr-defined]
    assert package is not None
    assert "4321" not in json.dumps(package)


async def test_no_agent_free_leads_to_a_callback_offer(services: Services, tmp_path) -> None:
    assert services.store is not None
    nobody = TransferQueue(services.store, HandoffConfig(max_wait_s=1.0))  # type: ignore[arg-type]
    lonely = replace(services, queue=nobody)
    turns = [parse_turn(str(utterance("request_human"))), parse_turn(str(utterance("affirm")))]
    record = await simulate_call(lonely, turns, "+15550100")
    assert record.transfer is not None and record.transfer["reason"] == "explicit"
    assert record.outcome == "callback"
    assert record.transfer["handoff"]["callback"]["number"] == "+15550100"
    callbacks = services.store.list_callbacks()  # type: ignore[attr-defined]
    assert any(c["call_id"] == record.call_id for c in callbacks)


async def test_caller_hanging_up_on_hold_keeps_a_complete_record(services: Services) -> None:
    """The agent's phone rings forever; the caller gives up."""
    assert services.store is not None

    class NeverAnswers:
        async def ring(self, agent: object, package: object) -> str:
            await asyncio.Event().wait()
            return "timeout"

    queue = TransferQueue(
        services.store,
        HandoffConfig(ring_timeout_s=30, max_wait_s=60),  # type: ignore[arg-type]
        dialer=NeverAnswers(),
    )
    queue.add_agent("bob", "sip:bob@127.0.0.1")
    held = replace(services, queue=queue)
    record = await asyncio.wait_for(
        simulate_call(
            held, [parse_turn(str(utterance("request_human")))], "+15550100", patience_s=3.0
        ),
        30,
    )
    assert record.outcome == "abandoned"
    assert record.transfer is not None and record.transfer["handoff"]["status"] == "abandoned"
    saved = services.store.get(record.call_id)
    assert saved is not None and saved["outcome"] == "abandoned"
    assert saved["turns"][1]["intent"] == "request_human"
    assert services.store.get_handoff(record.call_id) is not None  # type: ignore[attr-defined]


async def test_rasa_killed_mid_call_transfers_the_caller(services: Services, rasa_bank_db) -> None:
    """A real Rasa answers turn one, is killed by PID, and the caller still reaches a person."""
    from voicebot.config import DialogueConfig
    from voicebot.dialogue.rasa_server import ManagedRasa
    from voicebot.dialogue.training import find_model

    async with ManagedRasa(DialogueConfig(), model=find_model(), bank_db=rasa_bank_db) as rasa:
        client = rasa.client()
        sent = 0

        class KillAfterFirstTurn:
            async def send(self, sender_id: str, text: str, metadata: dict):
                nonlocal sent
                sent += 1
                if sent == 2:
                    for process in rasa._processes:
                        process.proc.kill()
                        process.proc.wait()
                return await client.send(sender_id, text, metadata)

            async def forget(self, sender_id: str) -> None:
                return None

        dying = replace(services, dialogue=KillAfterFirstTurn())
        turns = [parse_turn(str(utterance("opening_hours", i))) for i in range(3)]
        record = await simulate_call(dying, turns, "+15550100")
        await client.close()
    caller = record.caller_turns()
    assert caller[0].intent == "opening_hours" and not caller[0].error
    assert caller[1].error and "sorry" in caller[1].bot_text.lower()
    assert record.transfer is not None and record.transfer["trigger"] == "dialogue_failure"
    assert record.outcome == "transferred"
    assert all(t.caller_text for t in caller[:2])  # nothing the caller said is lost
