"""What a call leg needs from the user agent that owns it: the :class:`UserAgent` port.

Legs (the caller's :class:`~voicebot.telephony.sip.call.SipCall`, the agent
leg of a bridge) send requests and responses, start tasks, bind RTP ports and
say where we are reached — all through this protocol, never through the
concrete :class:`~voicebot.telephony.sip.server.SipServer`.  So the legs sit
below the user agent and import nothing above them, and a test can run a leg
against a small fake.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from sipmessage import Request, Response

from voicebot.core.net import Addr
from voicebot.telephony.channel import CallChannel
from voicebot.telephony.rtp.session import MediaSession
from voicebot.telephony.sip.config import SipConfig
from voicebot.telephony.sip.dialog_table import DialogUser
from voicebot.telephony.sip.transaction import (
    InviteClientTransaction,
    NonInviteClientTransaction,
    Timers,
)


class ConfirmedCall(CallChannel, Protocol):
    """A caller's call, once ACKed: what the application's handler gets."""

    async def handler_returned(self) -> None:
        """The handler is done with the call (hang up, unless someone else owns it now)."""
        ...


class UserAgent(Protocol):
    """The user agent core as its call legs see it."""

    config: SipConfig
    logger: logging.Logger
    timers: Timers
    codecs: tuple[str, ...]  # upper-case names, in our order of preference

    # --------------------------------------------------- how peers reach us

    def advertised_host(self, peer_ip: str) -> str:
        """Our address in Contact, Via and SDP, as seen from ``peer_ip``."""
        ...

    def via_address(self, peer_ip: str) -> Addr: ...

    def contact(self, peer_ip: str) -> str:
        """Our Contact header value towards ``peer_ip``."""
        ...

    def dialog_headers(self, peer_ip: str) -> list[tuple[str, str]]:
        """Headers of a dialog-creating response (Contact and capabilities)."""
        ...

    def capability_headers(self) -> list[tuple[str, str]]:
        """Allow, Accept and Server: what an OPTIONS answer says about us."""
        ...

    # -------------------------------------------------------------- sending

    def send(self, data: bytes, addr: Addr) -> None:
        """One datagram, outside any transaction (a 2xx resend, an ACK)."""
        ...

    def send_request(self, request: Request, destination: Addr) -> NonInviteClientTransaction:
        """A non-INVITE request (BYE, REFER, CANCEL), retransmitted until answered."""
        ...

    def send_invite(
        self, request: Request, destination: Addr, on_response: Callable[[Response], None]
    ) -> InviteClientTransaction: ...

    # ---------------------------------------------------------- resources

    async def bind_rtp(self, media: MediaSession) -> int:
        """Bind ``media`` to a free RTP port of ours; raises NoFreePortError."""
        ...

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run ``coro`` as a task the user agent keeps a reference to."""
        ...

    # ------------------------------------------------------- leg lifecycle

    def add_leg(self, leg: DialogUser) -> None:
        """Track a leg we placed, so shutdown hangs it up like any call."""
        ...

    def register_dialog(self, leg: DialogUser) -> None:
        """The leg's dialog exists (2xx received): in-dialog requests now reach it."""
        ...

    def forget(self, leg: DialogUser) -> None:
        """The leg ended: it no longer matches in-dialog requests."""
        ...

    def start_handler(self, call: ConfirmedCall) -> None:
        """The caller's call is confirmed: run the application's handler on it."""
        ...
