"""SIP user agent: answers calls over UDP and hands each one over as a CallChannel.

``SipServer(SipConfig(...), on_call)`` is the whole public surface.  Inside,
layers import only downward (docs/SIP.md draws them): ``transport`` (the
socket) → ``transaction_layer`` (RFC 3261 §17) → ``dialog_table`` → the call
legs (``leg``, ``outbound``, ``bridge``, ``call``, which reach the user agent
only through the ``agent.UserAgent`` port) → ``server`` (the user agent core).
"""

from voicebot.telephony.sip.agent import UserAgent
from voicebot.telephony.sip.bridge import Bridge
from voicebot.telephony.sip.call import CallState, SipCall
from voicebot.telephony.sip.config import PeerAllowlist, SipConfig
from voicebot.telephony.sip.outbound import OutboundCall
from voicebot.telephony.sip.refer import TransferOutcome
from voicebot.telephony.sip.server import CallHandler, SipServer

__all__ = [
    "Bridge",
    "CallHandler",
    "CallState",
    "OutboundCall",
    "PeerAllowlist",
    "SipCall",
    "SipConfig",
    "SipServer",
    "TransferOutcome",
    "UserAgent",
]
