"""Carrying out a transfer: the handoff package, the agents' queue, ringing.

Sits above the session and the transports: it uses the pure transfer
decision's vocabulary and the call record, never the other way round.  The
session reaches the queue only through its narrow port
(:class:`voicebot.session.handoff.HandoffPort`), which ``TransferQueue``
implements::

    outcome = await queue.hand_off(record, on_ringing, on_waiting)  # OfferOutcome
    if outcome.status == "no_agent":
        queue.request_callback(record.call_id, confirmed_number)

``queue.offer(package, on_step=...)`` is the full-detail form the desk and tests use.
"""

from voicebot.core.redaction import mask_card_numbers
from voicebot.handoff.agents import Agent, choose_agent
from voicebot.handoff.config import AgentConfig, HandoffConfig, parse_agent_option
from voicebot.handoff.package import HandoffPackage
from voicebot.handoff.queue import (
    Abandoned,
    AgentChanged,
    Answered,
    HandoffChanged,
    NoAgent,
    OfferResult,
    OfferStep,
    QueueEvent,
    RingEnded,
    Ringing,
    TransferQueue,
    Waiting,
)
from voicebot.handoff.rings import (
    DeskDialer,
    Dialer,
    NoSuchRing,
    NotYourRing,
    Ring,
    RingBoard,
    RingResult,
)
from voicebot.handoff.store import CallbackRequest, HandoffStore

__all__ = [
    "Abandoned",
    "Agent",
    "AgentChanged",
    "AgentConfig",
    "Answered",
    "CallbackRequest",
    "DeskDialer",
    "Dialer",
    "HandoffChanged",
    "HandoffConfig",
    "HandoffPackage",
    "HandoffStore",
    "NoAgent",
    "NoSuchRing",
    "NotYourRing",
    "OfferResult",
    "OfferStep",
    "QueueEvent",
    "Ring",
    "RingBoard",
    "RingEnded",
    "RingResult",
    "Ringing",
    "TransferQueue",
    "Waiting",
    "choose_agent",
    "mask_card_numbers",
    "parse_agent_option",
]
