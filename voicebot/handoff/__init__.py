"""Moving a call to a person: the handoff package, the agent queue, ringing.

Sits above the session, beside the transports (DESIGN §1): it imports the
pure transfer decision's vocabulary, never the other way round.  Usage from
the session::

    package = HandoffPackage.from_record(record, record.transfer)
    result = await queue.offer(package, on_step=...)   # Answered | NoAgent | Abandoned
    if isinstance(result, NoAgent):
        queue.request_callback(record.call_id, confirmed_number)
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
