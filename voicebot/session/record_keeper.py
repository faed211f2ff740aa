"""Saving the call record as the call goes, so a crash or hang-up loses nothing."""

from __future__ import annotations

from typing import Protocol

from voicebot.core.logs import CallLogger
from voicebot.core.record import CallRecord


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
