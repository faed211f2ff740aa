"""Whole calls from recorded fixtures through the real STT, Rasa server and TTS."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from tests.conftest import utterance
from voicebot.audio.wavfile import read_audio
from voicebot.session.services import Services
from voicebot.simulation import simulate_call
from voicebot.telephony.fixture import parse_turn

DEMO_CALLER = "+15550100"
pytestmark = pytest.mark.slow


def turns(*specs: object) -> list:
    return [parse_turn(str(s)) for s in specs]


async def test_disclosure_is_the_first_thing_said_and_heard(services: Services, tmp_path) -> None:
    record = await simulate_call(
        services, turns(utterance("opening_hours")), DEMO_CALLER, out_dir=tmp_path
    )
    first = record.turns[0]
    assert first.caller_text is None
    assert first.bot_text == services.config.session.disclosure
    assert record.disclosure == {"text": first.bot_text, "at": first.at}
    # What the caller hears first is the disclosure: transcribe the bot's first audio.
    heard = await services.transcriber.transcribe(read_audio(tmp_path / "bot-00.wav"))
    words = heard.text.lower()
    # Whisper reads espeak's voice poorly (30–48 % WER on the phone), so check the key words only.
    assert "automated" in words and "assistant" in words, heard.text
    assert "person" in words or "agent" in words, heard.text


async def test_opening_hours_call_is_answered(services: Services) -> None:
    record = await simulate_call(services, turns(utterance("opening_hours")), None)
    caller = record.caller_turns()
    assert [t.intent for t in caller] == ["opening_hours"]
    assert caller[0].confidence and caller[0].confidence > 0.5
    assert re.search(r"\b(open|hours|monday|saturday)\b", caller[0].bot_text, re.I)
    assert record.outcome == "served"
    assert caller[0].timings["stt_s"] > 0 and caller[0].timings["dialogue_s"] > 0


async def test_balance_after_spoken_pin(services: Services) -> None:
    record = await simulate_call(
        services,
        turns(utterance("check_balance"), utterance("provide_pin")),
        DEMO_CALLER,
    )
    caller = record.caller_turns()
    assert [t.intent for t in caller] == ["check_balance", "provide_pin"]
    assert record.verified == {"caller_id_matched": True, "pin_verified": True}
    assert "balance" in caller[-1].bot_text.lower()
    assert re.search(r"\d", caller[-1].bot_text), caller[-1].bot_text
    assert "4321" not in json.dumps(record.to_dict())
    assert caller[1].redacted


async def test_balance_after_keyed_pin(services: Services) -> None:
    record = await simulate_call(
        services, turns(utterance("check_balance"), "dtmf:4321"), DEMO_CALLER
    )
    caller = record.caller_turns()
    assert caller[1].caller_text == "[keypad: ****]"
    assert caller[1].intent == "provide_pin"
    assert record.verified["pin_verified"] is True
    assert "balance" in caller[-1].bot_text.lower()
    assert "4321" not in json.dumps(record.to_dict())


async def test_wrong_pin_is_refused(services: Services) -> None:
    record = await simulate_call(
        services, turns(utterance("check_balance"), "dtmf:1111"), DEMO_CALLER
    )
    assert record.verified["pin_verified"] is not True
    assert "balance is" not in record.turns[-1].bot_text.lower()


@pytest.mark.parametrize(
    "intent",
    [
        "request_human",
        "complaint",
        "fraud_dispute",
        "bereavement",
        "financial_hardship",
        "legal_threat",
        "out_of_scope",
    ],
)
async def test_requests_beyond_the_bot_are_recognised(services: Services, intent: str) -> None:
    record = await simulate_call(services, turns(utterance(intent)), DEMO_CALLER)
    turn = record.caller_turns()[0]
    assert turn.intent == intent, turn
    assert turn.bot_text  # the bot says something kind, never silence


async def test_every_turn_has_timestamps_text_intent_and_reply(services: Services) -> None:
    record = await simulate_call(
        services, turns(utterance("greet"), utterance("opening_hours"), utterance("goodbye")), None
    )
    caller = record.caller_turns()
    assert [t.intent for t in caller] == ["greet", "opening_hours", "goodbye"]
    offsets = [t.offset_s for t in record.turns]
    assert offsets == sorted(offsets)
    for t in caller:
        assert t.at and t.caller_text and t.bot_text and t.confidence is not None
    assert record.end_reason == "bot ended the call"


async def test_keypad_zero_during_the_disclosure_reaches_the_dialogue(services: Services) -> None:
    record = await simulate_call(services, turns("dtmf:0"), DEMO_CALLER)
    assert record.caller_turns()[0].intent == "request_human"


async def test_rasa_down_gives_an_apology_not_a_crash(services: Services) -> None:
    from dataclasses import replace

    from voicebot.dialogue.rasa_client import RasaClient

    dead = RasaClient("http://127.0.0.1:9", "token", timeout_s=2.0)
    try:
        broken = replace(services, dialogue=dead, store=None)
        record = await simulate_call(broken, turns(utterance("opening_hours")), None)
    finally:
        await dead.close()
    turn = record.caller_turns()[0]
    assert turn.error and "sorry" in turn.bot_text.lower()
    assert turn.caller_text  # the transcript is kept
    assert record.errors


async def test_records_are_saved_to_the_store(services: Services) -> None:
    record = await simulate_call(services, turns(utterance("opening_hours")), DEMO_CALLER)
    assert services.store is not None
    saved = services.store.get(record.call_id)
    assert saved is not None and saved["turns"][1]["intent"] == "opening_hours"


def test_bot_audio_is_telephone_band(tmp_path) -> None:
    pcm = read_audio(utterance("opening_hours"))
    assert pcm.dtype == np.int16 and len(pcm) > 8000
