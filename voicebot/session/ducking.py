"""Barge-in's first reflex: the bot gives way the moment the caller may be talking.

Stopping the bot waits until the caller's voice is confirmed (~0.2 s of it), so
that a cough or line noise never cuts a reply off.  Ducking does not wait: on
``SpeechStarted`` the reply drops by ``barge_in_duck_db`` from the next frame
out; on ``SpeechFaded`` or ``NoiseDiscarded`` (not speech after all) it comes
back to full level; on ``SpeechConfirmed`` the session stops it.  It runs
straight from turn taking's callback, not behind the conversation's inbox: a
reflex must not queue behind whatever the session is handling.
"""

from __future__ import annotations

from voicebot.audio.endpointing import EndpointEvent, NoiseDiscarded, SpeechFaded, SpeechStarted
from voicebot.core.logs import CallLogger
from voicebot.session.speaker import Speaker


class BargeInDucking:
    """Ducks the current reply on a voice onset, restores it if the onset fades."""

    def __init__(self, speaker: Speaker, duck_db: float, log: CallLogger) -> None:
        self._speaker = speaker
        self._duck_db = duck_db
        self._log = log

    def on_endpoint_event(self, event: EndpointEvent) -> None:
        if isinstance(event, SpeechStarted):
            if self._speaker.duck(self._duck_db):
                self._log.event("bot_ducked", at=round(event.at, 2), db=-self._duck_db)
        elif isinstance(event, SpeechFaded | NoiseDiscarded) and self._speaker.restore():
            self._log.event("bot_restored", at=round(event.at, 2))
