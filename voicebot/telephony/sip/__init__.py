"""SIP user agent: answers calls over UDP and hands each one over as a CallChannel.

``SipServer(SipConfig(...), on_call)`` is the whole public surface; see
``server.py`` for the lifecycle and ``call.py`` for what a call does.
"""

from voicebot.telephony.sip.call import CallState, SipCall
from voicebot.telephony.sip.config import PeerAllowlist, SipConfig
from voicebot.telephony.sip.server import CallHandler, SipServer

__all__ = ["CallHandler", "CallState", "PeerAllowlist", "SipCall", "SipConfig", "SipServer"]
