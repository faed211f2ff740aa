"""The events a call session reacts to, and the inbox that queues them.

Transports and the endpointer post events from the reader task; the
conversation task takes them one at a time.  The inbox also knows when the
bot is *idle* (everything answered, listening), which scripted callers wait
for between turns.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass

from voicebot.audio.endpointing import SpeechConfirmed, UtteranceEnded
from voicebot.core.aio import first_of
from voicebot.core.frames import DtmfFrame, HangupFrame


@dataclass(frozen=True, slots=True)
class DigitsTimedOut:
    """No further key was pressed within the inter-digit time."""


@dataclass(frozen=True, slots=True)
class ShutdownRequested:
    """The server is stopping: say goodbye and hang up cleanly."""

    message: str


@dataclass(frozen=True, slots=True)
class SilenceTimedOut:
    """The caller has said nothing for ``silence_prompt_s`` while the bot listened."""


SessionEvent = (
    UtteranceEnded
    | SpeechConfirmed
    | DtmfFrame
    | HangupFrame
    | DigitsTimedOut
    | SilenceTimedOut
    | ShutdownRequested
)


class Inbox:
    """One call's event queue plus its idle flag."""

    def __init__(self) -> None:
        self._events: asyncio.Queue[SessionEvent] = asyncio.Queue()
        self.idle = asyncio.Event()

    def post(self, event: SessionEvent) -> None:
        """Queue an event; the bot is busy until it has been handled."""
        self.idle.clear()
        self._events.put_nowait(event)

    def requeue(self, event: SessionEvent) -> None:
        """Put back an event held over (e.g. speech during the disclosure)."""
        self._events.put_nowait(event)

    def empty(self) -> bool:
        return self._events.empty()

    async def get(self) -> SessionEvent:
        return await self._events.get()

    async def get_unless(self, finished: Awaitable[object]) -> SessionEvent | None:
        """Next event, or ``None`` when ``finished`` completes first."""
        getter = asyncio.ensure_future(self._events.get())
        done = await first_of(getter, finished)
        return getter.result() if getter in done else None
