"""PinGuard: when a PIN is expected, and what of a turn may be written down."""

from __future__ import annotations

from voicebot.dialogue.rasa_client import DialogueReply
from voicebot.session.pin import PinGuard


def test_spoken_numbers_become_digits_only_when_a_pin_is_likely() -> None:
    guard = PinGuard()
    assert guard.heard("I lost four cards") == "I lost four cards"
    assert guard.heard("my pin is four three two one") == "my pin is 4321"
    guard.expects_pin = True
    assert guard.heard("four three two one") == "4321"


def test_a_keyed_pin_shows_only_its_length_stray_keys_show_as_keyed() -> None:
    guard = PinGuard()
    shown, message = guard.keyed("0")
    assert shown == "0" and message
    guard.expects_pin = True
    shown, message = guard.keyed("4321")
    assert shown == "****"
    assert "4321" in message  # Rasa gets the digits; the record only the stars


def test_redaction_follows_the_context_or_rasas_reading() -> None:
    guard = PinGuard()
    plain = DialogueReply(texts=["Hi"], intent="greet")
    pin = DialogueReply(texts=["Thanks"], intent="provide_pin")
    entity = DialogueReply(texts=["Ok"], intent="inform", entities=[{"entity": "pin"}])
    assert not guard.must_redact(plain, pin_context=False)
    assert guard.must_redact(plain, pin_context=True)
    assert guard.must_redact(pin, pin_context=False)
    assert guard.must_redact(entity, pin_context=False)
    assert guard.must_redact(None, pin_context=True)
    assert not guard.must_redact(None, pin_context=False)


def test_caller_text_masks_speech_and_labels_keys() -> None:
    assert PinGuard.caller_text("it is 4321", "speech", None, redact=True) == "it is [PIN]"
    assert PinGuard.caller_text("it is 4321", "speech", None, redact=False) == "it is 4321"
    assert PinGuard.caller_text("/provide_pin", "dtmf", "****", redact=True) == "[keypad: ****]"


def test_apply_takes_expects_pin_and_only_known_verification_results() -> None:
    guard = PinGuard()
    verified: dict[str, bool | None] = {"caller_id_matched": True, "pin_verified": None}
    guard.apply(DialogueReply(texts=[], expects_pin=True, pin_verified=False), verified)
    assert guard.expects_pin
    assert verified == {"caller_id_matched": True, "pin_verified": False}
    guard.apply(DialogueReply(texts=[]), verified)
    assert not guard.expects_pin
    assert verified == {"caller_id_matched": True, "pin_verified": False}
