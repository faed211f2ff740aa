"""Pure transfer decision: a call's turns in, a decision out, no I/O.

The session builds a :class:`TurnObservation` after every caller turn and
passes it to its call's :class:`TransferPolicy`; a returned
:class:`TransferDecision` means "hand this call to a person now", with the
reason and the signals that explain it.  The handoff (queue, agents, REFER)
lives elsewhere and imports this package, never the other way round.
"""

from voicebot.transfer.config import REASONS, Reason, TransferConfig
from voicebot.transfer.observation import TurnObservation
from voicebot.transfer.policy import (
    CATEGORY_LABELS,
    TimelinePoint,
    TransferDecision,
    TransferPolicy,
    TransferState,
    category_of,
)
from voicebot.transfer.signals import Signal, compute_signals
from voicebot.transfer.summary import VerifiedFacts, summary

__all__ = [
    "CATEGORY_LABELS",
    "REASONS",
    "Reason",
    "Signal",
    "TimelinePoint",
    "TransferConfig",
    "TransferDecision",
    "TransferPolicy",
    "TransferState",
    "TurnObservation",
    "VerifiedFacts",
    "category_of",
    "compute_signals",
    "summary",
]
