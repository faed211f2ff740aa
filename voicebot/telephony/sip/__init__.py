"""SIP user agent: answers calls over UDP and hands each one over as a CallChannel.

``SipServer(SipConfig(...), on_call)`` is the whole public surface; see
``server.py`` for the lifecycle and ``call.py`` for what a call does, including
``SipCall.transfer`` (REFER, with ``bridge.py`` as the fallback).
"""

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
]
