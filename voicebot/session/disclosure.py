"""The disclosure: the first thing every caller hears, said to the end.

Callers must hear that they are talking to an automated assistant, so talking
over it does not cut it (what they said is answered afterwards); only key 0
(a person, now), a hang-up or a server shutdown cut it short.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from voicebot.audio.endpointing import SpeechConfirmed
from voicebot.core.frames import DtmfFrame, HangupFrame
from voicebot.session.events import Inbox, SessionEvent, ShutdownRequested
from voicebot.session.keypad import KeypadEntry
from voicebot.session.record_keeper import RecordKeeper
from voicebot.session.speaker import Speaker


async def disclose(
    text: str,
    speaker: Speaker,
    inbox: Inbox,
    keypad: KeypadEntry,
    keeper: RecordKeeper,
    handle_now: Callable[[SessionEvent], Awaitable[bool]],
) -> None:
    """Say ``text``; ``handle_now`` handles a cutting event and says whether the call ended."""
    record = keeper.record
    turn = record.add_turn(None, "none", bot_text=text)
    record.disclosure = {"text": text, "at": turn.at}
    keeper.save()
    keeper.log.event("disclosure_started")
    handle = speaker.say(text, interruptible=False)
    deferred: list[SessionEvent] = []
    while not handle.done:
        event = await inbox.get_unless(handle.wait())
        if event is None:
            break
        if isinstance(event, DtmfFrame) and event.digit == "0" and not keypad.pending:
            handle.interrupt()
            turn.bot_interrupted = True
        if isinstance(event, ShutdownRequested):
            handle.interrupt()
        if isinstance(event, HangupFrame | DtmfFrame | ShutdownRequested):
            if await handle_now(event):
                return
        elif not isinstance(event, SpeechConfirmed):
            deferred.append(event)  # caller talked over it: answer afterwards
    turn.timings["tts_first_audio_s"] = handle.first_audio_s or 0.0
    keeper.save()
    for event in deferred:
        inbox.requeue(event)
