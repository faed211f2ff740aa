"""One call's line to Rasa: send the caller's words, read a yes/no, forget.

Rasa keys its conversation by the call ID and wants the caller ID as
metadata on every message; wrapping that here keeps the session free of
Rasa's calling conventions.
"""

from __future__ import annotations

import contextlib
import re
from typing import Protocol

from voicebot.dialogue.rasa_client import DialogueError, DialogueReply

_YES = re.compile(r"^\W*(yes|yeah|yep|sure|please|ok(ay)?|correct|that'?s right)\b", re.I)


class Dialogue(Protocol):
    async def send(
        self, sender: str, text: str, metadata: dict[str, str | None]
    ) -> DialogueReply: ...


def plain_yes(text: str) -> bool:
    """A yes anybody would recognise, for when Rasa cannot be asked."""
    return bool(_YES.match(text))


class DialogueLink:
    def __init__(self, dialogue: Dialogue, call_id: str, caller_id: str | None) -> None:
        self.dialogue = dialogue
        self.call_id = call_id
        self.caller_id = caller_id

    @property
    def available(self) -> bool:
        """False while the dialogue is known to be down (ManagedRasa's supervisor)."""
        return bool(getattr(self.dialogue, "available", True))

    async def send(self, text: str) -> DialogueReply:
        """One caller turn to Rasa (raises :class:`DialogueError`)."""
        return await self.dialogue.send(self.call_id, text, {"caller_id": self.caller_id})

    async def yes_no(self, text: str) -> tuple[str | None, float | None, str | None]:
        """Rasa's reading of an answer: ``(intent, confidence, error)``.

        When Rasa is down (maybe why the caller is being handed over) a plain
        yes must still count, so it is read as ``affirm``.
        """
        if not self.available:
            return ("affirm" if plain_yes(text) else None), None, "dialogue unavailable"
        try:
            reply = await self.send(text)
        except DialogueError as exc:
            return ("affirm" if plain_yes(text) else None), None, f"dialogue failed: {exc}"
        return reply.intent, reply.confidence, None

    async def forget(self) -> None:
        """Drop Rasa's copy of the conversation: it holds raw text (maybe a PIN)."""
        forget = getattr(self.dialogue, "forget", None)
        if forget is not None:
            with contextlib.suppress(Exception):
                await forget(self.call_id)
