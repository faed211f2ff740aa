"""The call session driven by scripted fakes on compressed time (LiveKit-style).

The endpointer is the real one; only the VAD model, STT, Rasa and TTS are
replaced, so turn taking, barge-in, DTMF collection, redaction and silence
handling are tested without loading a model.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import numpy as np
import pytest
from session_fakes import FakeVad, speech

from voicebot.audio.vad import shared_vad
from voicebot.audio.wavfile import read_audio
from voicebot.config import PROJECT_ROOT, Config
from voicebot.core.frames import (
    AudioFrame,
    DtmfFrame,
    HangupFrame,
    InputFrame,
    silence,
    split_frames,
)
from voicebot.dialogue.rasa_client import DialogueError, DialogueReply
from voicebot.session.call_session import CallSession
from voicebot.session.services import Services
from voicebot.speech.stt import Transcript


class FakeTranscriber:
    def __init__(self, texts: list[str]) -> None:
        self.texts = list(texts)

    async def transcribe(self, pcm: np.ndarray) -> Transcript:
        text = self.texts.pop(0) if self.texts else ""
        return Transcript(text, -0.3, 0.0 if text else 0.9, len(pcm) / 8000, 0.0, 8.0)


class FakeSynthesizer:
    async def synthesize_sentences(self, text: str) -> AsyncIterator[np.ndarray]:
        yield np.full(800, 1, dtype=np.int16)


@dataclass
class FakeDialogue:
    answer: Callable[[str], DialogueReply | Exception]
    messages: list[str] = field(default_factory=list)
    available: bool = True  # False: known to be down (ManagedRasa's supervisor)

    async def send(self, sender_id: str, text: str, metadata: dict) -> DialogueReply:
        self.messages.append(text)
        result = self.answer(text)
        if isinstance(result, Exception):
            raise result
        return result


def reply(text: str, intent: str = "greet", **kw: object) -> DialogueReply:
    fields: dict = dict(
        texts=[text],
        intent=intent,
        confidence=0.9,
        intent_ranking=[],
        entities=[],
        slots={},
        expects_pin=False,
        end_call=False,
        caller_id_matched=None,
        pin_verified=None,
    )
    fields.update(kw)
    return DialogueReply(**fields)


class Output:
    """Records the bot's audio; play-out can be held open to test barge-in."""

    def __init__(self) -> None:
        self.writes = 0
        self.clears = 0
        self.levels: list[str] = []  # "clear" and "gain <dB>", in order
        self.hold = asyncio.Event()
        self.hold.set()

    def write(self, pcm: np.ndarray) -> None:
        self.writes += 1

    def clear(self) -> None:
        self.clears += 1
        self.levels.append("clear")
        self.hold.set()

    def set_gain(self, db: float) -> None:
        self.levels.append(f"gain {db:g}")

    async def drained(self) -> None:
        await self.hold.wait()

    async def playing(self) -> None:
        """Play-out starts at once."""


class ScriptedChannel:
    """A caller whose script is a list of steps: frames, or 'wait for the bot'."""

    transport = "test"

    def __init__(self, steps: list, caller_id: str = "+15550100") -> None:
        self.call_id = "test-call"
        self.caller_id = caller_id
        self.output = Output()
        self.steps = steps
        self.session: CallSession | None = None
        self.hung_up = False

    async def frames(self) -> AsyncIterator[InputFrame]:
        for step in self.steps:
            if step == "idle":
                assert self.session is not None
                await self.session.wait_idle()
            elif callable(step):
                await step(self)
            else:
                for frame in step:
                    yield frame
                    await asyncio.sleep(0)
        yield HangupFrame()

    async def hangup(self) -> None:
        self.hung_up = True


def audio(pcm: np.ndarray) -> list[InputFrame]:
    return [AudioFrame(f) for f in split_frames(pcm)]


def say(seconds: float = 0.8, pause: float = 1.3) -> list[InputFrame]:
    return audio(np.concatenate([speech(seconds), silence(pause)]))


def keys(digits: str) -> list[InputFrame]:
    return [DtmfFrame(d) for d in digits]


async def run_call(
    steps: list,
    texts: list[str],
    answer: Callable[[str], DialogueReply | Exception],
    config: Config | None = None,
    *,
    available: bool = True,
    vad: object | None = None,
) -> tuple[CallSession, ScriptedChannel, FakeDialogue]:
    config = config or Config()
    dialogue = FakeDialogue(answer, available=available)
    services = Services(
        config=config,
        transcriber=FakeTranscriber(texts),
        synthesizer=FakeSynthesizer(),
        dialogue=dialogue,
        vad=vad or FakeVad(),  # type: ignore[arg-type]
    )
    channel = ScriptedChannel(steps)
    session = CallSession(channel, services)
    channel.session = session
    await asyncio.wait_for(session.run(), timeout=10)
    return session, channel, dialogue


async def test_disclosure_comes_first_then_the_turn_loop() -> None:
    session, _channel, dialogue = await run_call(
        ["idle", say(), "idle"],
        ["what are your hours"],
        lambda text: reply("We open at nine.", "opening_hours"),
    )
    record = session.record
    assert record.turns[0].bot_text == Config().session.disclosure
    assert record.turns[0].caller_text is None
    assert record.disclosure is not None and record.disclosure["text"] == record.turns[0].bot_text
    turn = record.turns[1]
    assert (turn.caller_text, turn.intent, turn.bot_text) == (
        "what are your hours",
        "opening_hours",
        "We open at nine.",
    )
    assert dialogue.messages == ["what are your hours"]
    assert turn.timings["stt_s"] >= 0 and "dialogue_s" in turn.timings
    # reply_s spans the sequential stages from the end of the turn to the first packet
    stages = sum(turn.timings[k] for k in ("dialogue_s", "tts_first_audio_s", "first_packet_s"))
    assert turn.timings["reply_s"] >= stages - 0.001
    assert turn.audio["voiced_s"] > 0.5
    assert record.outcome == "served" and record.ended_at


async def test_speech_does_not_cut_the_disclosure_and_is_answered_after_it() -> None:
    async def hold_playout(ch: ScriptedChannel) -> None:
        ch.output.hold.clear()

    async def release(ch: ScriptedChannel) -> None:
        assert ch.session is not None and ch.session.speaker.speaking  # still disclosing
        ch.output.hold.set()

    session, _, dialogue = await run_call(
        [hold_playout, say(), release, "idle"], ["hello"], lambda text: reply("Hi!")
    )
    assert not session.record.turns[0].bot_interrupted
    assert dialogue.messages == ["hello"]


async def test_key_0_cuts_the_disclosure_and_asks_for_a_person() -> None:
    async def hold_playout(ch: ScriptedChannel) -> None:
        ch.output.hold.clear()

    session, _, dialogue = await run_call(
        [hold_playout, keys("0"), "idle"], [], lambda text: reply("One moment.", "request_human")
    )
    assert session.record.turns[0].bot_interrupted
    assert dialogue.messages[0] == "/request_human"
    assert session.record.transfer is not None
    assert session.record.transfer["reason"] == "explicit"


async def test_spoken_pin_is_normalised_for_rasa_and_masked_in_the_record() -> None:
    def answer(text: str) -> DialogueReply:
        if text.startswith("what"):
            return reply(
                "Please say your PIN.", "check_balance", expects_pin=True, caller_id_matched=True
            )
        return reply("Your balance is 10 dollars.", "provide_pin", pin_verified=True)

    session, _, dialogue = await run_call(
        ["idle", say(), "idle", say(), "idle"], ["what's my balance", "four three two one"], answer
    )
    assert dialogue.messages[1] == "4321"
    pin_turn = session.record.turns[2]
    assert pin_turn.redacted and "4321" not in pin_turn.caller_text
    assert "four" not in pin_turn.caller_text
    assert session.record.verified == {"caller_id_matched": True, "pin_verified": True}


async def test_keyed_pin_is_collected_and_sent_as_an_intent() -> None:
    def answer(text: str) -> DialogueReply:
        if text.startswith("/provide_pin"):
            return reply("Your balance is 10 dollars.", "provide_pin", pin_verified=True)
        return reply("Please key your PIN.", "check_balance", expects_pin=True)

    session, _, dialogue = await run_call(
        ["idle", say(), "idle", keys("4321"), "idle"], ["balance"], answer
    )
    assert dialogue.messages[1] == '/provide_pin{"pin":"4321"}'
    assert session.record.turns[2].caller_text == "[keypad: ****]"


async def test_unexpected_keys_get_a_clear_answer_without_reaching_rasa() -> None:
    session, _, dialogue = await run_call(
        ["idle", keys("7"), audio(silence(3.0)), "idle"],
        [],
        lambda text: reply("unused"),
    )
    assert dialogue.messages == []
    assert "press 0" in session.record.turns[-1].bot_text


@pytest.mark.parametrize("duck_db", [15.0, 0.0])
async def test_caller_speech_interrupts_a_reply_barge_in(duck_db: float) -> None:
    async def hold_playout(ch: ScriptedChannel) -> None:
        await ch.session.wait_idle()  # type: ignore[union-attr]
        ch.output.hold.clear()

    async def until_speaking(ch: ScriptedChannel) -> None:
        while not ch.session.speaker.speaking:  # type: ignore[union-attr]
            await asyncio.sleep(0)

    config = Config()
    config.endpointing.barge_in_duck_db = duck_db  # 0: no ducking, the level is left alone
    session, channel, _ = await run_call(
        [hold_playout, say(), until_speaking, say(), "idle"],
        ["tell me everything", "stop, agent"],
        lambda text: reply("A very long answer " * 20, "what_can_you_do"),
        config,
    )
    assert channel.output.clears >= 1
    assert session.record.turns[1].bot_interrupted
    assert session.record.turns[2].caller_text == "stop, agent"
    ducked = ["gain -15", "clear", "gain 0"] if duck_db else ["clear"]
    assert channel.output.levels[:3] == ducked


async def test_a_cough_does_not_interrupt() -> None:
    async def hold_playout(ch: ScriptedChannel) -> None:
        await ch.session.wait_idle()  # type: ignore[union-attr]
        ch.output.hold.clear()

    async def release(ch: ScriptedChannel) -> None:
        ch.output.hold.set()

    cough = audio(np.concatenate([speech(0.1), silence(1.0)]))
    session, channel, _ = await run_call(
        [hold_playout, say(), cough, release, "idle"], ["hello"], lambda t: reply("Hi there.")
    )
    assert channel.output.clears == 0
    assert not session.record.turns[1].bot_interrupted


def recorded(fixture: str) -> np.ndarray:
    return read_audio(PROJECT_ROOT / "audio_fixtures" / "utterances" / f"{fixture}.wav")


async def talk_over_a_reply(interrupter: str) -> tuple[CallSession, ScriptedChannel]:
    """A recorded fixture said over a long reply still playing (the real Silero VAD)."""

    async def hold_playout(ch: ScriptedChannel) -> None:
        await ch.session.wait_idle()  # type: ignore[union-attr]
        ch.output.hold.clear()

    async def release(ch: ScriptedChannel) -> None:
        ch.output.hold.set()

    opening = audio(np.concatenate([recorded("greet_hello"), silence(1.2)]))
    over = audio(np.concatenate([recorded(interrupter), silence(1.2)]))
    session, channel, _ = await run_call(
        [hold_playout, opening, over, release, "idle"],
        ["Hello.", "What's my balance?"],
        lambda text: reply("A very long answer " * 20, "what_can_you_do"),
        vad=shared_vad(),
    )
    return session, channel


@pytest.mark.parametrize(
    ("interrupter", "stops_the_reply"),
    [
        ("balance_whats_my", True),
        ("hours_opening", True),
        ("noisy_agent", True),
        ("nonspeech_cough", False),
        ("nonspeech_cough_loud", False),
        ("nonspeech_line_noise_loud", False),
    ],
)
async def test_recorded_speech_stops_a_reply_and_coughs_and_hiss_do_not(
    interrupter: str, stops_the_reply: bool
) -> None:
    """The real Silero VAD on recorded fixtures, over a reply that is still playing."""
    session, channel = await talk_over_a_reply(interrupter)
    assert session.record.turns[1].bot_interrupted is stops_the_reply
    assert (channel.output.clears >= 1) is stops_the_reply


@pytest.mark.parametrize(
    ("interrupter", "levels"),
    [
        # a voice onset ducks the reply at once, confirmation stops it, and the next
        # thing played starts at full level
        ("balance_whats_my", ["gain -15", "clear", "gain 0"]),
        ("noisy_agent", ["gain -15", "clear", "gain 0"]),
        # Silero never rises on these: the reply plays on untouched
        ("nonspeech_cough", []),
        ("nonspeech_cough_loud", []),
        ("nonspeech_line_noise_loud", []),
    ],
)
async def test_recorded_onsets_duck_the_reply_before_it_stops(
    interrupter: str, levels: list[str]
) -> None:
    """The real Silero VAD on recorded fixtures: what the caller's onset does to the level."""
    _, channel = await talk_over_a_reply(interrupter)
    assert channel.output.levels == levels


async def test_an_onset_that_fades_gives_the_reply_its_level_back() -> None:
    """A blip the VAD scores as voice ducks the reply; it fades unconfirmed: full level again."""

    async def hold_playout(ch: ScriptedChannel) -> None:
        await ch.session.wait_idle()  # type: ignore[union-attr]
        ch.output.hold.clear()

    async def check_restored(ch: ScriptedChannel) -> None:
        assert ch.output.levels == ["gain -15", "gain 0"]  # before the blip is discarded
        assert ch.session is not None and ch.session.speaker.speaking
        ch.output.hold.set()

    blip = audio(np.concatenate([speech(0.1), silence(0.2)]))
    session, channel, _ = await run_call(
        [hold_playout, say(), blip, check_restored, audio(silence(1.0)), "idle"],
        ["hello"],
        lambda t: reply("Hi there."),
    )
    assert channel.output.clears == 0
    assert not session.record.turns[1].bot_interrupted
    assert session.speaker.current is not None and session.speaker.current.ducks == 1


async def test_rasa_failure_gets_an_apology_then_a_transfer_not_a_drop() -> None:
    session, channel, _ = await run_call(
        ["idle", say(), "idle", say(), "idle", say(), "idle"],
        ["one", "two", "yes please"],
        lambda text: DialogueError("connection refused"),
    )
    turns = session.record.caller_turns()
    assert [t.caller_text for t in turns[:2]] == ["one", "two"]
    assert all(t.error for t in turns[:2])
    assert "sorry" in turns[0].bot_text.lower()
    transfer = session.record.transfer
    assert transfer is not None and transfer["trigger"] == "dialogue_failure"
    # No queue in this test: nobody can answer, so the caller is offered a callback
    # and a plain "yes" is understood even with Rasa down.
    assert transfer["handoff"]["status"] == "callback"
    assert session.record.outcome == "callback"
    assert channel.hung_up


async def test_silence_prompts_then_goodbye() -> None:
    config = Config()
    config.session.silence_prompt_s = 2.0
    session, channel, _ = await run_call(
        ["idle", audio(silence(2.5)), "idle", audio(silence(2.5))],
        [],
        lambda t: reply("x"),
        config,
    )
    texts = [t.bot_text for t in session.record.turns]
    assert config.session.silence_prompt in texts and config.session.silence_goodbye in texts
    assert channel.hung_up and session.record.end_reason == "caller silent"


async def test_goodbye_ends_the_call_from_the_bot_side() -> None:
    session, channel, _ = await run_call(
        ["idle", say(), "idle"], ["bye"], lambda t: reply("Goodbye!", "goodbye", end_call=True)
    )
    assert channel.hung_up
    assert session.record.end_reason == "bot ended the call"


@pytest.mark.parametrize("reason", ["server"])
async def test_shutdown_says_goodbye_and_hangs_up(reason: str) -> None:
    async def stop(ch: ScriptedChannel) -> None:
        await ch.session.wait_idle()  # type: ignore[union-attr]
        ch.session.request_shutdown("We are restarting. Goodbye.")  # type: ignore[union-attr]
        await asyncio.sleep(0.05)

    session, channel, _ = await run_call([stop], [], lambda t: reply("x"))
    assert session.record.turns[-1].bot_text == "We are restarting. Goodbye."
    assert channel.hung_up and session.record.end_reason == "server shutting down"


async def test_speech_stt_cannot_read_gets_a_polite_ask_again() -> None:
    session, _, dialogue = await run_call(
        ["idle", say(0.8), "idle", audio(np.concatenate([speech(0.2), silence(1.0)])), "idle"],
        ["", ""],
        lambda text: reply("unused"),
    )
    assert dialogue.messages == []
    asked = [t for t in session.record.turns if t.caller_text == "[not understood]"]
    assert len(asked) == 1  # the long unreadable turn, not the short blip
    assert asked[0].bot_text == Config().session.not_heard_prompt
