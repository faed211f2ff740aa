"""The contract between a transport and a call session.

A transport turns one phone call into a :class:`CallChannel`: an async stream
of typed input frames, a place to write the bot's audio, and a way to hang up.
Every transport (SIP, media stream, local audio, fixtures) implements it, so
the session code a fixture test runs is the code a phone call runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Protocol, runtime_checkable

import numpy as np

from voicebot.core.frames import HangupFrame, InputFrame


@runtime_checkable
class MediaOutput(Protocol):
    """Where the bot's 8 kHz int16 audio goes.

    ``write`` queues audio for play-out and returns at once; the transport
    paces it (20 ms RTP packets, WebSocket media messages, a sound card).
    ``clear`` drops everything queued — barge-in.  ``drained`` resolves once
    all queued audio has been played to the caller (immediately for
    transports with no real-time clock, such as fixtures).  ``playing``
    resolves once the first audio written to an idle output has gone out on
    the wire: the "first packet" stage of a reply's latency.
    ``set_gain`` changes the level of audio not yet played, from the next
    frame out (``voicebot.audio.gain``): barge-in ducks the bot's voice the
    moment the caller's may have begun, and restores it (0 dB) if it was not.
    ``clear`` leaves the gain as it is.
    """

    def write(self, pcm: np.ndarray) -> None: ...

    def clear(self) -> None: ...

    def set_gain(self, db: float) -> None: ...

    async def drained(self) -> None: ...

    async def playing(self) -> None: ...


@runtime_checkable
class CallChannel(Protocol):
    """One call as the session sees it."""

    call_id: str
    caller_id: str | None
    transport: str  # "sip", "media-stream", "local", "fixture"
    output: MediaOutput

    def frames(self) -> AsyncIterator[InputFrame]:
        """Caller audio (20 ms frames), DTMF digits, and finally a hang-up."""
        ...

    async def hangup(self) -> None:
        """End the call from the bot's side (SIP BYE, socket close…)."""
        ...


async def inbox_frames(inbox: asyncio.Queue[InputFrame | None]) -> AsyncIterator[InputFrame]:
    """Frames a transport's I/O side queued, up to a hang-up or a ``None`` sentinel.

    Transports fed by callbacks (a sound card, a WebSocket) push into a queue;
    this is their ``frames()``.
    """
    while (frame := await inbox.get()) is not None:
        yield frame
        if isinstance(frame, HangupFrame):
            return
