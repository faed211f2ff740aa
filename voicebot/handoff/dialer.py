"""The queue's Dialer for real calls: ring the agent through the caller's transport.

The transfer queue (``voicebot.handoff``) decides who rings and for how
long; :class:`ChannelDialer` makes it happen on whatever carries the call:

* a SIP call (anything with ``transfer()``: :class:`~voicebot.telephony.sip.SipCall`)
  → REFER to the agent's ``sip_uri``, bridging as the fallback;
* a media-stream call → the integrator's transfer webhook (``media_stream/webhook.py``);
* anything else (fixtures, local audio), an agent without a SIP URI, or a
  media stream with no webhook configured → the fallback dialer (the desk
  dialer: the agent answers by clicking Accept).

Wiring in ``voicebot serve`` (the server keeps ``sessions: {call_id: CallSession}``)::

    dialer = ChannelDialer(
        lambda call_id: (s.channel if (s := server.sessions.get(call_id)) else None),
        fallback=DeskDialer(queue.board),
        media_stream=TransferWebhook(config.media_stream_transfer),
    )
    queue.dialer = dialer

The queue cancels ``ring`` on its ring timeout, a desk decline, the caller
hanging up or the maximum wait; the SIP transfer CANCELs a bridged INVITE
then (a REFERred ring is out of our hands: see ``SipCall.transfer``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

from voicebot.core.logs import format_event
from voicebot.handoff.config import AgentConfig
from voicebot.handoff.package import HandoffPackage
from voicebot.handoff.rings import RING_RESULTS, Dialer, RingResult
from voicebot.telephony.channel import CallChannel
from voicebot.telephony.media_stream.webhook import TransferWebhook, ring_media_stream

log = logging.getLogger("voicebot.handoff.dialer")

Lookup = Callable[[str], CallChannel | None]
OutcomeListener = Callable[[str, str, dict[str, Any]], None]


class _Transferable(Protocol):
    async def transfer(self, target_uri: str, call_ref: str) -> Any: ...


class ChannelDialer:
    """Implements the queue's :class:`~voicebot.handoff.rings.Dialer` protocol."""

    def __init__(
        self,
        lookup: Lookup,
        fallback: Dialer | None = None,
        *,
        media_stream: TransferWebhook | None = None,
        on_outcome: OutcomeListener | None = None,
    ) -> None:
        self.lookup = lookup
        self.fallback = fallback
        self.media_stream = media_stream
        # on_outcome(call_id, agent_name, details): for the call record / desk.
        self.on_outcome = on_outcome

    async def ring(self, agent: AgentConfig, package: HandoffPackage) -> RingResult:
        channel = self.lookup(package.call_id)
        route = self._route(channel, agent)
        log.info(
            format_event("transfer_ring", call_id=package.call_id, agent=agent.name, route=route)
        )
        if route == "sip":
            return await self._ring_sip(channel, agent, package)  # type: ignore[arg-type]
        if route == "media-stream":
            assert self.media_stream is not None
            result = await ring_media_stream(self.media_stream, channel, agent, package)
            self._report(package.call_id, agent, {"result": result, "method": "webhook"})
            return result
        if route == "fallback":
            assert self.fallback is not None
            return await self.fallback.ring(agent, package)
        return "failed"

    def _route(self, channel: CallChannel | None, agent: AgentConfig) -> str:
        """Which way this ring goes: sip, media-stream, fallback, or none."""
        if channel is not None and agent.sip_uri:
            if callable(getattr(channel, "transfer", None)):
                return "sip"
            is_stream = getattr(channel, "transport", "") == "media-stream"
            if is_stream and self.media_stream is not None and self.media_stream.configured:
                return "media-stream"
        return "fallback" if self.fallback is not None else "none"

    async def _ring_sip(
        self, channel: _Transferable, agent: AgentConfig, package: HandoffPackage
    ) -> RingResult:
        outcome = await channel.transfer(agent.sip_uri, package.call_id)
        details = outcome.to_dict() if hasattr(outcome, "to_dict") else {"result": outcome}
        self._report(package.call_id, agent, details)
        return ring_result(details.get("result"))

    def _report(self, call_id: str, agent: AgentConfig, details: dict[str, Any]) -> None:
        if self.on_outcome is None:
            return
        try:
            self.on_outcome(call_id, agent.name, details)
        except Exception:  # a listener must never fail a transfer
            log.exception(format_event("transfer_outcome_listener_failed", call_id=call_id))


def ring_result(value: object) -> RingResult:
    """Map a transport's result word onto the queue's (unknown → "failed")."""
    return value if value in RING_RESULTS else "failed"  # type: ignore[return-value]
