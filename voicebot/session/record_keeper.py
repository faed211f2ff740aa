"""Writing the call record as the call goes, so a crash or hang-up loses nothing."""

from __future__ import annotations

import asyncio
import contextlib
from concurrent.futures import Future
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
        """On the store's writer thread when it has one (``save_later``): a slow
        disk must never stall the loop that clocks every call's audio."""
        if self.store is None:
            return
        try:
            later = getattr(self.store, "save_later", None)
            if later is None:
                self.store.save(self.record)
            else:
                later(self.record).add_done_callback(self._saved)
        except Exception as exc:
            self.log.error("record_save_failed", error=repr(exc))

    def _saved(self, future: Future[None]) -> None:
        if (exc := future.exception()) is not None:
            self.log.error("record_save_failed", error=repr(exc))

    async def flush(self) -> None:
        """The record is on disk before the session reports the call over."""
        flush = getattr(self.store, "flush", None)
        if flush is not None:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(flush)

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
