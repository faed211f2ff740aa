"""Writing the call record as the call goes, so a crash or hang-up loses nothing."""

from __future__ import annotations

from typing import Protocol

from voicebot.core.logs import CallLogger
from voicebot.core.record import CallRecord, Turn
from voicebot.dialogue.rasa_client import DialogueReply


class RecordStore(Protocol):
    def save(self, record: CallRecord) -> None: ...


class RecordKeeper:
    """Writes the record after every change; storage trouble never drops the caller."""

    def __init__(self, record: CallRecord, store: RecordStore | None, log: CallLogger) -> None:
        self.record = record
        self.store = store
        self.log = log

    def save(self) -> None:
        if self.store is None:
            return
        try:
            self.store.save(self.record)
        except Exception as exc:
            self.log.error("record_save_failed", error=repr(exc))

    def dialogue_turn(
        self,
        caller_text: str,
        input_kind: str,
        reply: DialogueReply,
        *,
        redacted: bool,
        timings: dict[str, float],
        audio: dict[str, float] | None,
    ) -> Turn:
        """Add a caller turn Rasa answered, and save it before the reply plays."""
        turn = self.record.add_turn(
            caller_text,
            input_kind,
            intent=reply.intent,
            confidence=None if reply.confidence is None else round(reply.confidence, 4),
            bot_text=" ".join(reply.texts),
            redacted=redacted,
            timings={k: round(v, 4) for k, v in timings.items()},
            audio=audio or {},
        )
        self.save()
        self.log.event(
            "turn",
            index=turn.index,
            input=input_kind,
            intent=reply.intent,
            confidence=turn.confidence,
            redacted=redacted,
        )
        return turn
