"""How a call ended, in words that do not flatter the bot.

``contained`` used to cover every call that was not transferred: silent
callers, calls Rasa could not answer, a crash after the disclosure, keypad
calls that did nothing.  Containment is now counted from ``served`` only.
"""

from __future__ import annotations

from collections.abc import Collection

from voicebot.core.record import CallRecord
from voicebot.transfer.summary import KB_PREFIX

SERVED = "served"  # the bot answered at least one request (a progress intent)
ABANDONED = "abandoned"  # the caller left (or stayed silent) before being served
FAILED = "failed"  # voicebot could not go on: Rasa/STT down, a crash
TRANSFERRED = "transferred"  # an agent took the call
CALLBACK = "callback"  # nobody was free; the caller accepted a call back
NO_AGENT = "no_agent"  # nobody was free and no callback was taken

OUTCOMES = (SERVED, ABANDONED, FAILED, TRANSFERRED, CALLBACK, NO_AGENT)

# What a scenario may expect besides an outcome: "contained" = the call stayed
# with the bot (served, or a wrong-number caller who left), i.e. no person's time.
CONTAINED = "contained"
KEPT = (SERVED, ABANDONED)
EXPECTABLE = (*OUTCOMES, CONTAINED)

# End reasons that mean voicebot, not the caller, ended the call.
FAILURE_REASONS = ("repeated technical failures", "session failed")


def final_outcome(record: CallRecord, reason: str, progress: Collection[str]) -> str:
    """The outcome of a call that ends now; a handover already set its own."""
    if record.outcome in OUTCOMES:
        return record.outcome
    if reason.startswith(FAILURE_REASONS):
        return FAILED
    if any(is_progress(turn.intent, progress) and not turn.error for turn in record.caller_turns()):
        return SERVED
    return ABANDONED


def is_progress(intent: str | None, progress: Collection[str]) -> bool:
    """A served skill, or an answer from the knowledge base (kb_<topic>)."""
    return bool(intent) and (intent in progress or str(intent).startswith(KB_PREFIX))


def meets(outcome: str, expected: str) -> bool:
    """Whether a call's outcome is what a scenario expected ("contained" = kept)."""
    return outcome in KEPT if expected == CONTAINED else outcome == expected


def containment(outcomes: Collection[str]) -> float | None:
    """Share of calls the bot served itself (None without calls)."""
    return round(sum(o == SERVED for o in outcomes) / len(outcomes), 4) if outcomes else None
