"""One carrier media stream as a :class:`~voicebot.telephony.channel.CallChannel`.

Input: μ-law payloads of whatever size the carrier sends are re-cut into the
20 ms 8 kHz int16 frames the session expects.  Output: the bot's audio goes
out as ``media`` messages paced on a monotonic clock, so the carrier never
holds more than ``lead_s`` of it — a ``clear`` (barge-in) then silences the
bot within that lead, instead of after the whole queued reply.  A ``mark``
follows each write; ``drained()`` resolves when the carrier echoes the last
one, i.e. when the caller has actually heard the reply.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import numpy as np

from voicebot.audio.g711 import ulaw_decode, ulaw_encode
from voicebot.audio.gain import GainStage
from voicebot.core.frames import (
    FRAME_SAMPLES,
    SAMPLE_RATE,
    AudioFrame,
    DtmfFrame,
    HangupFrame,
    InputFrame,
)
from voicebot.core.logs import CallLogger
from voicebot.telephony.channel import inbox_frames
from voicebot.telephony.media_stream.serializer import Start, TwilioSerializer

log = logging.getLogger("voicebot.telephony.media_stream")

ULAW_SILENCE = 0xFF  # μ-law code for 0
# How much audio the carrier may hold ahead of real time: enough to ride out
# network jitter, short enough that barge-in (clear) cuts the bot off quickly.
DEFAULT_LEAD_S = 0.2
# If the carrier never echoes our marks (a one-way <Start><Stream>, a carrier
# without marks), drained() gives up this long after the audio should have played.
MARK_GRACE_S = 2.0

SendText = Callable[[str], Awaitable[None]]


class UlawFrameAssembler:
    """Re-cuts μ-law payloads of any size into 20 ms int16 frames.

    Twilio sends 160-byte (20 ms) payloads, but nothing in the protocol
    promises it, and other carriers batch; the session wants exact frames.
    """

    def __init__(self) -> None:
        self._pending = bytearray()

    def push(self, ulaw: bytes) -> list[np.ndarray]:
        self._pending += ulaw
        whole = len(self._pending) - len(self._pending) % FRAME_SAMPLES
        if not whole:
            return []
        pcm = ulaw_decode(bytes(self._pending[:whole]))
        del self._pending[:whole]
        return list(pcm.reshape(-1, FRAME_SAMPLES))

    def flush(self) -> list[np.ndarray]:
        """The last partial frame, padded with silence (the call is ending)."""
        if not self._pending:
            return []
        pad = FRAME_SAMPLES - len(self._pending)
        return self.push(bytes([ULAW_SILENCE]) * pad)


@dataclass(frozen=True, slots=True)
class _MarkItem:
    name: str


class MediaStreamOutput:
    """The bot's audio towards the carrier: paced ``media``, ``mark`` and ``clear``.

    ``write``/``clear`` are synchronous (the MediaOutput contract); a single
    sender task, :meth:`run`, owns the socket so messages never interleave.
    """

    def __init__(
        self,
        send: SendText,
        serializer: TwilioSerializer,
        *,
        lead_s: float = DEFAULT_LEAD_S,
        clock: Callable[[], float] = time.monotonic,
        logger: CallLogger | None = None,
    ) -> None:
        self._send = send
        self._serializer = serializer
        self._lead_s = lead_s
        self._clock = clock
        self._log = logger
        self._queue: deque[bytes | _MarkItem] = deque()
        self._unechoed: set[str] = set()
        self._names = (f"voicebot-{n}" for n in itertools.count(1))
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._sending = asyncio.Event()
        self._sending.set()
        self._clear_pending = False
        self._closed = False
        self._play_until = 0.0  # when the carrier will have played all we sent
        self._gain = GainStage()  # applied as messages go out (the carrier's lead plays as sent)
        self.messages_sent = 0

    # --------------------------------------------------------- MediaOutput API

    def write(self, pcm: np.ndarray) -> None:
        """Queue audio (8 kHz int16) in 20 ms messages, then a mark."""
        if self._closed or len(pcm) == 0:
            return
        ulaw = ulaw_encode(np.asarray(pcm, dtype=np.int16))
        if not self._queue:
            self._sending.clear()
        self._queue.extend(ulaw[i : i + FRAME_SAMPLES] for i in range(0, len(ulaw), FRAME_SAMPLES))
        name = next(self._names)
        self._queue.append(_MarkItem(name))
        self._unechoed.add(name)
        self._idle.clear()
        self._wake.set()

    def clear(self) -> None:
        """Barge-in: drop our queue and tell the carrier to drop its buffer."""
        self._queue.clear()
        self._unechoed.clear()
        self._idle.set()
        self._sending.set()
        if not self._closed:
            self._clear_pending = True
            self._wake.set()

    def set_gain(self, db: float) -> None:
        """Ducking: messages not yet sent go out at ``db``; the carrier's lead is as sent."""
        self._gain.set_db(db)

    async def playing(self) -> None:
        """Resolve once the first media message of what was written has been sent."""
        await self._sending.wait()

    async def drained(self) -> None:
        """Wait until the caller has heard everything written (mark echoed)."""
        while not self._idle.is_set():
            if self._queue or self._clear_pending:
                timeout = self._lead_s + 0.1
            else:
                timeout = self._play_until + MARK_GRACE_S - self._clock()
                if timeout <= 0:
                    self._give_up_on_marks()
                    return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), timeout)

    # ----------------------------------------------------- carrier-facing side

    @property
    def queued_s(self) -> float:
        """Audio waiting locally (not yet sent to the carrier)."""
        return sum(len(i) for i in self._queue if isinstance(i, bytes)) / SAMPLE_RATE

    def on_mark(self, name: str) -> None:
        """The carrier played everything up to mark ``name``."""
        self._unechoed.discard(name)
        self._check_idle()

    def close(self) -> None:
        """The socket is gone: nothing more will play, so nobody may wait on it."""
        self._closed = True
        self._queue.clear()
        self._unechoed.clear()
        self._idle.set()
        self._sending.set()
        self._wake.set()

    async def run(self) -> None:
        """Sender loop: one message at a time, never more than ``lead_s`` ahead."""
        try:
            while not self._closed:
                await self._step()
        except (ConnectionError, RuntimeError) as exc:  # socket closed under us
            if self._log:
                self._log.event("media_send_failed", logging.DEBUG, error=repr(exc))
            self.close()

    # ---------------------------------------------------------------- internals

    async def _step(self) -> None:
        if self._clear_pending:
            self._clear_pending = False
            self._play_until = self._clock()
            await self._send_text(self._serializer.clear())
            return
        if not self._queue:
            await self._sleep(None)
            return
        ahead = self._play_until - self._clock()
        if ahead > self._lead_s:
            await self._sleep(ahead - self._lead_s)
            return
        item = self._queue.popleft()
        if isinstance(item, _MarkItem):
            await self._send_text(self._serializer.mark(item.name))
            self._check_idle()
        else:
            await self._send_text(self._serializer.media(self._shaped(item)))
            self._sending.set()
            self._play_until = max(self._play_until, self._clock()) + len(item) / SAMPLE_RATE

    def _shaped(self, ulaw: bytes) -> bytes:
        """The message at the current gain (re-encoded only while ducked or ramping)."""
        if self._gain.unity:
            return ulaw
        return ulaw_encode(self._gain.apply(ulaw_decode(ulaw)))

    async def _sleep(self, seconds: float | None) -> None:
        """Sleep, but wake at once for new audio, a clear, or a close."""
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    async def _send_text(self, text: str) -> None:
        await self._send(text)
        self.messages_sent += 1

    def _check_idle(self) -> None:
        if not self._unechoed and not self._queue:
            self._idle.set()

    def _give_up_on_marks(self) -> None:
        if self._log:
            self._log.event(
                "marks_not_echoed",
                logging.WARNING,
                count=len(self._unechoed),
                hint="one-way <Start><Stream>? use <Connect><Stream> for a bidirectional stream",
            )
        self._unechoed.clear()
        self._idle.set()


# Custom parameters that may carry the caller's number, in order of preference.
# 10 s of 20 ms frames waiting for the session: beyond that, audio is dropped.
MAX_INBOX_FRAMES = 500
CALLER_ID_PARAMETERS = ("caller", "caller_id", "callerId", "From", "from")


def caller_id_from(start: Start, keys: tuple[str, ...] = CALLER_ID_PARAMETERS) -> str | None:
    """The caller's number, as the TwiML put it in ``<Parameter>``s.

    The stream itself never carries the caller ID: TwiML must pass it, e.g.
    ``<Parameter name="caller" value="{{From}}"/>``.
    """
    for key in keys:
        value = start.custom_parameters.get(key, "").strip()
        if value:
            return value
    return None


class MediaStreamChannel:
    """A call arriving over a carrier WebSocket, as the session sees it."""

    transport = "media-stream"

    def __init__(
        self,
        start: Start,
        output: MediaStreamOutput,
        close: Callable[[], Awaitable[object]],
        *,
        caller_id: str | None = None,
        call_id: str | None = None,
    ) -> None:
        self.call_sid = start.call_sid  # the carrier's name for the call (its REST API)
        self.call_id = call_id or start.call_sid
        self.caller_id = caller_id
        self.stream_sid = start.stream_sid
        self.custom_parameters = dict(start.custom_parameters)
        self.output = output
        self.hung_up_by_bot = False
        self.ended_reason: str | None = None
        self._close = close
        self._assembler = UlawFrameAssembler()
        # None ends frames() without a HangupFrame: the bot hung up, not the caller.
        self._inbox: asyncio.Queue[InputFrame | None] = asyncio.Queue()
        self._hangup_held = False
        self._held_hangup: str | None = None
        self.dropped_frames = 0

    # ------------------------------------------------------ fed by the endpoint

    def feed_audio(self, ulaw: bytes) -> None:
        for pcm in self._assembler.push(ulaw):
            if self._inbox.qsize() >= MAX_INBOX_FRAMES:
                self.dropped_frames += 1  # a stalled consumer must not grow memory
                continue
            self._inbox.put_nowait(AudioFrame(pcm))

    def feed_dtmf(self, digit: str) -> None:
        self._inbox.put_nowait(DtmfFrame(digit))

    def end(self, reason: str) -> None:
        """The stream ended (``stop`` or socket closed): last audio, then hang-up."""
        if self.ended_reason is not None:
            return
        self.ended_reason = reason
        for pcm in self._assembler.flush():
            self._inbox.put_nowait(AudioFrame(pcm))
        if self._hangup_held:
            self._held_hangup = reason
        else:
            self._inbox.put_nowait(HangupFrame(reason))
        self.output.close()

    # ----------------------------------------------- transfer (webhook.py)

    def hold_hangup(self) -> None:
        """A transfer webhook is out: the carrier's redirect may end the stream
        before the webhook answers, so keep a stream end to ourselves for now."""
        self._hangup_held = True

    def release_hangup(self, transferred: bool) -> None:
        """The webhook answered: deliver a held stream end (as "transferred" if
        the carrier took the call, else as the caller leaving)."""
        self._hangup_held = False
        if self._held_hangup is not None:
            reason = "transferred" if transferred else self._held_hangup
            self._held_hangup = None
            self._inbox.put_nowait(HangupFrame(reason))

    # ------------------------------------------------------------ CallChannel

    def frames(self) -> AsyncIterator[InputFrame]:
        return inbox_frames(self._inbox)

    async def hangup(self) -> None:
        """Close the socket: Twilio then moves on past ``<Connect>`` (ending the
        call if the TwiML has nothing after it)."""
        if self.ended_reason is None:
            self.hung_up_by_bot = True
            self.ended_reason = "bot hung up"
            self._inbox.put_nowait(None)
        self.output.close()
        await self._close()
