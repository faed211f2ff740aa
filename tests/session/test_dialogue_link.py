"""DialogueLink: one call's line to Rasa."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from voicebot.dialogue.rasa_client import DialogueError, DialogueReply
from voicebot.session.dialogue_link import DialogueLink, plain_yes


@dataclass
class Rasa:
    reply: DialogueReply | Exception
    sent: list[tuple[str, str, dict]] = field(default_factory=list)
    forgotten: list[str] = field(default_factory=list)

    async def send(self, sender: str, text: str, metadata: dict) -> DialogueReply:
        self.sent.append((sender, text, metadata))
        if isinstance(self.reply, Exception):
            raise self.reply
        return self.reply

    async def forget(self, sender: str) -> None:
        self.forgotten.append(sender)


async def test_send_keys_the_conversation_by_call_and_passes_the_caller_id() -> None:
    rasa = Rasa(DialogueReply(texts=["Hi"], intent="greet"))
    link = DialogueLink(rasa, "call-1", "+15550100")
    assert (await link.send("hello")).intent == "greet"
    assert rasa.sent == [("call-1", "hello", {"caller_id": "+15550100"})]


async def test_send_lets_a_dialogue_error_through() -> None:
    link = DialogueLink(Rasa(DialogueError("down")), "call-1", None)
    with pytest.raises(DialogueError):
        await link.send("hello")


async def test_yes_no_uses_rasa_and_falls_back_to_a_plain_yes_when_rasa_is_down() -> None:
    up = DialogueLink(Rasa(DialogueReply(texts=[], intent="deny", confidence=0.8)), "c", None)
    assert await up.yes_no("yes") == ("deny", 0.8, None)  # Rasa's reading wins
    down = DialogueLink(Rasa(DialogueError("refused")), "c", None)
    intent, confidence, error = await down.yes_no("Yes please")
    assert (intent, confidence) == ("affirm", None)
    assert error == "dialogue failed: refused"
    assert (await down.yes_no("no thanks"))[0] is None


def test_plain_yes() -> None:
    assert plain_yes("Yeah, that's fine") and plain_yes("okay") and plain_yes("That's right")
    assert not plain_yes("no") and not plain_yes("yesterday")


async def test_forget_drops_rasas_copy_and_tolerates_a_client_without_it() -> None:
    rasa = Rasa(DialogueReply(texts=[]))
    await DialogueLink(rasa, "call-9", None).forget()
    assert rasa.forgotten == ["call-9"]

    class NoForget:
        async def send(self, *a: object) -> DialogueReply:
            return DialogueReply(texts=[])

    await DialogueLink(NoForget(), "call-9", None).forget()  # no error
