"""The detours a real call takes: silence, speech nobody could read, stray keys,
and a turn that failed because STT or Rasa did.

The session's script is the happy path (hear → Rasa → answer or transfer);
each detour here says something helpful so the caller is never left in dead
air, and, when the call cannot go on, returns the reason it ends.  The session
alone ends the call, so a detour only *says* why.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from voicebot.config import SessionConfig
from voicebot.core.frames import Utterance
from voicebot.core.logs import CallLogger
from voicebot.core.record import CallRecord, Turn
from voicebot.session.replies import Replies
from voicebot.session.turn_taking import unreadable
from voicebot.speech.stt import Transcript

# Three failed turns in a row (Rasa or STT) mean the line is broken for this
# caller: apologising a fourth time only wastes their time.
MAX_FAILED_TURNS = 3
TECHNICAL_GOODBYE = (
    "I'm sorry, I'm having technical problems. Please call back a little later. Goodbye."
)
STRAY_KEYS = "Sorry, those keys don't do anything here. To reach a person, press 0."

# Hands a failed turn to the transfer policy: (turn, keyed digits, gave_up) → transferred?
TransferCheck = Callable[[Turn, str | None, str | None], Awaitable[bool]]


class Detours:
    """Counts silences and failures for one call and answers each one."""

    def __init__(
        self,
        config: SessionConfig,
        record: CallRecord,
        replies: Replies,
        log: CallLogger,
        transfer_check: TransferCheck,
    ) -> None:
        self.config = config
        self.record = record
        self.replies = replies
        self.log = log
        self.transfer_check = transfer_check
        self.silences = 0
        self.failed_turns = 0

    async def silence(self) -> str | None:
        """The caller said nothing for a while: ask once, then say goodbye."""
        self.silences += 1
        if self.silences == 1:
            self.record.add_turn(None, "none", bot_text=self.config.silence_prompt)
            self.replies.prompt(self.config.silence_prompt)
            return None
        self.record.add_turn(None, "none", bot_text=self.config.silence_goodbye)
        await self.replies.say_and_wait(self.config.silence_goodbye)
        return "caller silent"

    def not_heard(self, utterance: Utterance, transcript: Transcript) -> None:
        """Real speech that STT could not read: ask again; a cough or breath gets nothing."""
        self.log.event("empty_transcript", **unreadable(utterance, transcript))
        if utterance.stats.get("voiced_s", 0.0) >= self.config.not_heard_min_voiced_s:
            prompt = self.config.not_heard_prompt
            self.record.add_turn("[not understood]", "speech", bot_text=prompt)
            self.replies.prompt(prompt)

    def stray_keys(self, digits: str) -> None:
        """Keys pressed when no entry was asked for: say so, and how to reach a person."""
        self.log.event("dtmf_unexpected", digits=len(digits))
        self.record.add_turn(f"[keypad: {digits}]", "dtmf", bot_text=STRAY_KEYS)
        self.replies.prompt(STRAY_KEYS)

    async def shutdown(self, message: str) -> str:
        """The server is going down (SIGTERM): cut the bot short and say goodbye."""
        self.replies.speaker.interrupt()
        self.record.add_turn(None, "none", bot_text=message)
        await self.replies.say_and_wait(message)
        return "server shutting down"

    def note_error(self, event: str, message: str) -> None:
        """A component failed: one log line, and the record keeps it for the agent."""
        self.log.error(event, error=message)
        self.record.errors.append(message)

    def turn_succeeded(self) -> None:
        """Failures only count while they come in a row."""
        self.failed_turns = 0

    async def failed_turn(
        self,
        caller_text: str | None,
        input_kind: str,
        error: str,
        *,
        audio: dict[str, float] | None = None,
        shown: str | None = None,
        gave_up: str | None = None,
    ) -> str | None:
        """STT or Rasa failed: apologise, or let the transfer policy hand the caller
        over (at once when ``gave_up`` says the dialogue cannot go on).  Returns the
        reason the call ends, or None while it goes on (or went to a person)."""
        self.failed_turns += 1
        apology = self.config.rasa_error_apology
        turn = self.record.add_turn(
            caller_text, input_kind, bot_text=apology, error=error, audio=audio or {}
        )
        if await self.transfer_check(turn, shown, gave_up):
            return None
        if self.failed_turns >= MAX_FAILED_TURNS:
            turn.bot_text = TECHNICAL_GOODBYE
            await self.replies.say_and_wait(TECHNICAL_GOODBYE)
            return "repeated technical failures"
        self.replies.prompt(apology)
        return None
