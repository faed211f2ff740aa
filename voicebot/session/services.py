"""The shared, per-process services every call session borrows.

Loading a Whisper model or starting Rasa takes seconds; a call must not.  One
``Services`` is built at start-up and handed to each session.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from voicebot.audio.vad import SileroVad
    from voicebot.config import Config
    from voicebot.dialogue.rasa_client import RasaClient
    from voicebot.dialogue.rasa_server import DialogueHost
    from voicebot.session.handoff import HandoffPort
    from voicebot.speech.stt import Transcriber
    from voicebot.speech.tts import Synthesizer
    from voicebot.storage.call_store import CallStore


@dataclass
class Services:
    config: Config
    transcriber: Transcriber
    synthesizer: Synthesizer
    dialogue: RasaClient
    vad: SileroVad
    store: CallStore | None = None
    # The agents' queue (voicebot.handoff.TransferQueue in production).
    # None: no agents, transfers end in a callback offer.
    queue: HandoffPort | None = None
    # Swaps in a retrained model for new calls (None: fixed, e.g. in unit tests).
    dialogue_host: DialogueHost | None = None
