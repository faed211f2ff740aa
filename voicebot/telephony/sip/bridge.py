"""Bridging, the transfer fallback: voicebot calls the agent and relays audio.

When the caller's side refuses or fails a REFER, :func:`bridge_to` places an
INVITE to the agent (:class:`OutboundCall`, carrying ``X-Voicebot-Call``) and
once it is answered a :class:`Bridge` joins the two legs:

* each leg's media clock already delivers one decoded 20 ms frame per tick
  (jitter-buffered, loss-concealed); the bridge writes it into the other
  leg's playout buffer, which that leg's clock encodes and sends — so codecs
  may differ (PCMU one side, PCMA the other) and both sides keep the steady
  RTP cadence carriers expect;
* the two clocks tick at the same rate but different phases; a bound on
  what may queue between them (``max_delay_ms``) keeps a stall from turning
  into permanent delay;
* either side hanging up (BYE, RTP timeout, shutdown) BYEs the other.

The session has ended by then; the caller's
:class:`~voicebot.telephony.sip.call.SipCall` stays up because it skips its
usual BYE while :attr:`~voicebot.telephony.sip.call.SipCall.bridged`.  The
bridge only needs what every :class:`CallLeg` has, so it knows nothing of
the caller's side and imports nothing above the legs.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import numpy as np
from sipmessage import Response

from voicebot.core.frames import SAMPLE_RATE
from voicebot.telephony.rtp.session import PlayoutBuffer
from voicebot.telephony.sip.leg import CallLeg
from voicebot.telephony.sip.outbound import DialFailed, OutboundCall
from voicebot.telephony.sip.refer import TargetUri, TransferOutcome, result_of

DEFAULT_MAX_DELAY_MS = 120


async def bridge_to(
    call: CallLeg, target: TargetUri, *, caller_id: str | None = None
) -> TransferOutcome:
    """Call ``target`` (as ``caller_id``) and, once answered, bridge it to ``call``.

    Returns "answered" with the bridge up, "declined" (486/600/603),
    "timeout" (408/480/487) or "failed".  Cancellation CANCELs the INVITE.
    """
    outcome = TransferOutcome("failed", "bridge")
    try:
        leg = await OutboundCall.create(call.ua, target, caller_id=caller_id)
    except DialFailed as exc:
        outcome.reason = str(exc)
        return outcome
    outcome.steps.append("INVITE")
    final = await _dial_unless_caller_leaves(call, leg)
    if final is None:
        outcome.reason = "caller hung up while the agent's phone rang"
        return outcome
    if leg.ringing_at is not None:
        outcome.steps.append("180")
    outcome.steps.append(str(final.code))
    outcome.code = final.code
    outcome.reason = f"INVITE {final.code} {final.phrase}".strip()
    outcome.result = result_of(final.code)
    if outcome.result == "answered":
        if leg.ended or call.ended:
            outcome.result, outcome.reason = "failed", "a leg ended as the agent answered"
            await leg.hangup("caller gone")
        else:
            Bridge(call, leg, max_delay_ms=call.ua.config.bridge_max_delay_ms).start()
    return outcome


async def _dial_unless_caller_leaves(call: CallLeg, leg: OutboundCall) -> Response | None:
    """The INVITE's final response, or None (after a CANCEL) if the caller hung up."""
    dial = asyncio.ensure_future(leg.dial())
    try:
        final = await call.unless_ended(asyncio.shield(dial))
    except asyncio.CancelledError:
        dial.cancel()  # OutboundCall.dial sends the CANCEL
        with contextlib.suppress(asyncio.CancelledError):
            await dial
        raise
    if final is None:
        dial.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await dial
    return final


class Bridge:
    """Relays audio between a caller's leg and an agent's until one hangs up."""

    def __init__(
        self, caller: CallLeg, agent: OutboundCall, *, max_delay_ms: int = DEFAULT_MAX_DELAY_MS
    ) -> None:
        self.caller = caller
        self.agent = agent
        self.to_caller = PlayoutBuffer()  # the agent's voice, sent on the caller's leg
        self.to_agent = agent.output  # the caller's voice, sent on the agent's leg
        self.max_samples = max(1, max_delay_ms * SAMPLE_RATE // 1000)
        self.relayed = {"to_agent": 0, "to_caller": 0}
        self.dropped_samples = 0
        self.ended = asyncio.Event()
        self.end_reason: str | None = None
        self._listeners: list[Callable[[Bridge], None]] = []
        self._started = 0.0

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._started = loop.time()
        self.caller.bridge = self
        self.agent.bridge = self
        self.caller.send_media_from(self.to_caller)
        self.caller.on_end(self._leg_ended)
        self.agent.on_end(self._leg_ended)
        self.caller.log.event("sip_bridge_up", agent_leg=self.agent.call_id)

    def on_end(self, listener: Callable[[Bridge], None]) -> None:
        """Call ``listener(bridge)`` when the bridge ends (the agent is free again)."""
        if self.ended.is_set():
            listener(self)
        else:
            self._listeners.append(listener)

    def relay(self, leg: CallLeg, pcm: np.ndarray) -> None:
        """One 20 ms frame received on ``leg``: queue it on the other leg."""
        if self.ended.is_set():
            return
        to_agent = leg is self.caller
        buffer = self.to_agent if to_agent else self.to_caller
        buffer.write(pcm)
        self.dropped_samples += buffer.trim(self.max_samples)
        self.relayed["to_agent" if to_agent else "to_caller"] += 1

    def _leg_ended(self, leg: CallLeg) -> None:
        if self.ended.is_set():
            return
        self.end_reason = leg.hangup_reason
        other = self.agent if leg is self.caller else self.caller
        if not other.ended:
            other.ua.spawn(other.hangup(f"{leg.peer_role} hung up"))
        self.ended.set()
        self.caller.log.event(
            "sip_bridge_down",
            reason=leg.hangup_reason,
            duration_s=round(asyncio.get_running_loop().time() - self._started, 2),
            frames_to_agent=self.relayed["to_agent"],
            frames_to_caller=self.relayed["to_caller"],
            dropped_ms=self.dropped_samples * 1000 // SAMPLE_RATE,
        )
        for listener in self._listeners:
            listener(self)
