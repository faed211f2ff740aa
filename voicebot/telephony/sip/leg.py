"""What every call leg does inside its dialog, whichever side created it.

A caller's call (:class:`~voicebot.telephony.sip.call.SipCall`, we are the
UAS) and the agent leg of a bridged transfer
(:class:`~voicebot.telephony.sip.outbound.OutboundCall`, we are the UAC)
share everything after the dialog exists: RTP, re-INVITE (hold/resume), INFO
DTMF, OPTIONS, BYE both ways, RTP timeout, and the end-of-call log line.
Only how the dialog starts and where received audio goes differ.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Awaitable, Callable
from enum import Enum
from typing import Any, Protocol, TypeVar

import numpy as np
from sipmessage import Request, Response

from voicebot.core.aio import first_of
from voicebot.core.logs import CallLogger
from voicebot.telephony.rtp.session import MediaSession, PlayoutBuffer, codec_by_name
from voicebot.telephony.sip.agent import UserAgent
from voicebot.telephony.sip.dialog import Dialog
from voicebot.telephony.sip.message import ALLOWED_METHODS, make_response
from voicebot.telephony.sip.sdp import (
    MediaPlan,
    NegotiationError,
    SdpError,
    SessionDescription,
    accept_answer,
    make_offer,
    negotiate,
    new_origin,
)
from voicebot.telephony.sip.transaction import (
    ServerTransaction,
    TransactionTimeout,
    TwoXxRetransmitter,
)

T = TypeVar("T")
SDP = "application/sdp"
DTMF_CONTENT_TYPES = ("application/dtmf-relay", "application/dtmf")


class CallState(Enum):
    RINGING = "ringing"
    ANSWERED = "answered"
    CONFIRMED = "confirmed"
    ENDED = "ended"


class Reject(Exception):
    """A request we must refuse with ``code`` (and a Warning saying why)."""

    def __init__(self, code: int, warning: str = "") -> None:
        super().__init__(code, warning)
        self.code, self.warning = code, warning


class Relay(Protocol):
    """A transfer bridge as its legs see it (``bridge.py`` sits above the legs)."""

    ended: asyncio.Event

    def relay(self, leg: CallLeg, pcm: np.ndarray) -> None:
        """One 20 ms frame received on ``leg``, for the other leg."""
        ...

    def on_end(self, listener: Callable[[Any], None]) -> None: ...


class CallLeg:
    """One dialog with its RTP session; subclasses say how it starts."""

    transport = "sip"
    peer_role = "caller"  # who a received BYE came from, for the hang-up reason

    def __init__(self, ua: UserAgent, dialog: Dialog, call_id: str) -> None:
        self.call_id = call_id
        self.dialog = dialog
        self.output = PlayoutBuffer()
        self.state = CallState.RINGING
        self.hangup_reason: str | None = None
        self.plan: MediaPlan | None = None
        self.log = CallLogger(call_id, ua.logger)
        # Set while this leg is half of a transfer bridge: audio and the
        # hang-up go to the bridge instead of the session.
        self.bridge: Relay | None = None
        self.ua = ua
        self._origin = new_origin(ua.advertised_host(dialog.peer[0]))
        self._local_sdp: SessionDescription | None = None
        self._offer_pending = False  # our SDP offer (delayed offer) awaits the ACK's answer
        self._retransmitters: dict[int, TwoXxRetransmitter] = {}
        self._confirmed = asyncio.Event()
        self.ended_event = asyncio.Event()
        self._bye_task: asyncio.Task[None] | None = None
        self._started = asyncio.get_running_loop().time()
        self._end_callbacks: list[Callable[[CallLeg], None]] = []
        self._duration_timer: asyncio.TimerHandle | None = None
        config = ua.config
        self.media = MediaSession(
            self.output,
            on_audio=self._on_audio,
            on_dtmf=self._on_dtmf,
            on_timeout=self._on_media_timeout,
            jitter_ms=config.jitter_ms,
            max_jitter_ms=config.max_jitter_ms,
            timeout_s=config.rtp_timeout_s,
            symmetric=config.symmetric_rtp,
        )

    # ------------------------------------------------------------- public

    async def hangup(self, reason: str = "bot hung up") -> None:
        """End the call from our side: BYE (or whatever ends it before the answer)."""
        if self._bye_task is None:
            self._bye_task = asyncio.ensure_future(self._hang_up(reason))
        await asyncio.shield(self._bye_task)

    @property
    def ended(self) -> bool:
        return self.state is CallState.ENDED

    def abandon_unconfirmed(self) -> None:
        """Shutdown: a 200 never ACKed is not waited for (§15's wait for the
        ACK is for live callers; an unACKed dialog may be a flood)."""
        if self.state is CallState.ANSWERED:
            self.state = CallState.CONFIRMED
            self._confirmed.set()

    def limit_duration(self) -> None:
        """Hang up after ``max_call_s`` (a stuck call must not hold a slot forever)."""
        limit = self.ua.config.max_call_s
        if limit > 0 and self._duration_timer is None:
            self._duration_timer = asyncio.get_running_loop().call_later(
                limit, lambda: self.ua.spawn(self.hangup("maximum call duration"))
            )

    def on_end(self, callback: Callable[[CallLeg], None]) -> None:
        """Run ``callback(leg)`` once the leg ends (at once if it already has)."""
        if self.ended:
            callback(self)
        else:
            self._end_callbacks.append(callback)

    async def unless_ended(self, awaitable: Awaitable[T]) -> T | None:
        """``await awaitable``, or None as soon as this leg ends.

        Cancelling the caller cancels ``awaitable`` too (shield it to keep it)."""
        task = asyncio.ensure_future(awaitable)
        await first_of(task, self.ended_event.wait())
        return None if task.cancelled() else task.result()

    def send_media_from(self, source: PlayoutBuffer) -> None:
        """Send ``source`` instead of :attr:`output` from now on (a bridge).

        The old output is closed so a writer still holding it (the session's
        hold music) finds its writes ignored and ``drained()`` resolved,
        rather than queueing audio no one will ever send.
        """
        previous = self.media.output
        self.media.output = source
        if previous is not source:
            previous.close()

    # ---------------------------------------------------------------- media

    def _apply_plan(self, plan: MediaPlan) -> None:
        previous, self.plan = self.plan, plan
        self.media.configure(
            codec_by_name(plan.codec, plan.payload_type),
            plan.dtmf_payload_type,
            (plan.remote_host, plan.remote_port),
            send=plan.sends,
            recv=plan.receives,
            sources={self.dialog.peer[0]},
        )
        self.media.start()
        if previous and plan.on_hold != previous.on_hold:
            self.log.event("sip_hold" if plan.on_hold else "sip_resume", direction=plan.direction)

    def _send_ok(
        self, request: Request, tx: ServerTransaction, *, record_route: bool = False
    ) -> None:
        """A 2xx with our SDP, resent until its ACK (§13.3.1.4)."""
        assert self._local_sdp is not None
        response = make_response(
            request,
            200,
            to_tag=self.dialog.local_tag,
            headers=self.ua.dialog_headers(self.dialog.peer[0]),
            body=self._local_sdp.serialize(),
            content_type=SDP,
            record_route=record_route,
        )
        tx.respond(response)
        cseq = request.cseq.sequence
        retransmitter = TwoXxRetransmitter(
            bytes(response),
            tx.destination,
            self.ua.send,
            self.ua.timers,
            lambda: self._no_ack(cseq),
        )
        self._retransmitters[cseq] = retransmitter
        retransmitter.start()

    def on_ack(self, ack: Request) -> None:
        """An ACK for one of our 2xx responses (the dialog table matched it to us)."""
        retransmitter = self._retransmitters.pop(ack.cseq.sequence, None)
        if retransmitter:
            retransmitter.acked()
        if self._offer_pending:
            self._take_answer(ack)

    def _take_answer(self, ack: Request) -> None:
        """Delayed offer: our offer went in the 200, the answer comes in the ACK."""
        self._offer_pending = False
        try:
            self._apply_plan(accept_answer(parse_sdp(ack.body), self.ua.codecs))
        except Reject as exc:
            self.ua.spawn(self.hangup(f"unusable SDP answer in ACK: {exc.warning}"))
        except NegotiationError as exc:
            self.ua.spawn(self.hangup(f"unusable SDP answer in ACK: {exc}"))

    # ------------------------------------------------------ in-dialog requests

    def on_request(self, request: Request, tx: ServerTransaction) -> None:
        """An in-dialog request (the dialog table has already matched our tags)."""
        if request.cseq.sequence < self.dialog.remote_cseq:
            tx.respond(
                make_response(request, 500, "CSeq Out of Order", to_tag=self.dialog.local_tag)
            )
            return
        self.dialog.remote_cseq = request.cseq.sequence
        handler = {
            "BYE": self._on_bye,
            "INVITE": self._on_reinvite,
            "INFO": self._on_info,
            "NOTIFY": self._on_notify,
        }.get(request.method, self._on_other)
        handler(request, tx)

    def _on_bye(self, request: Request, tx: ServerTransaction) -> None:
        tx.respond(make_response(request, 200, to_tag=self.dialog.local_tag))
        self._bye_while_ringing()
        self.log.event("sip_bye_received")
        self._end(f"{self.peer_role} hung up")

    def _bye_while_ringing(self) -> None:
        """A BYE before our final response (only a UAS can see that)."""

    def _on_reinvite(self, request: Request, tx: ServerTransaction) -> None:
        if self.state is not CallState.CONFIRMED or self._retransmitters:
            headers = [("Retry-After", str(secrets.randbelow(10) + 1))]
            tx.respond(make_response(request, 500, to_tag=self.dialog.local_tag, headers=headers))
            return
        self.dialog.refresh_target(request)
        self._origin.version += 1
        try:
            self._renegotiate(request)
        except Reject as exc:
            self._origin.version -= 1
            warning = [("Warning", f'399 voicebot "{exc.warning}"')]
            tx.respond(
                make_response(request, exc.code, to_tag=self.dialog.local_tag, headers=warning)
            )
            return
        self._send_ok(request, tx)

    def _renegotiate(self, request: Request) -> None:
        host = self.ua.advertised_host(self.dialog.peer[0])
        if not request.body:
            self._local_sdp = make_offer(host, self.media.port, self._origin, self.ua.codecs)
            self._offer_pending = True
            return
        try:
            plan, answer = negotiate(
                parse_sdp(request.body), host, self.media.port, self._origin, self.ua.codecs
            )
        except NegotiationError as exc:
            raise Reject(488, str(exc)) from exc
        self._local_sdp = answer
        self._apply_plan(plan)

    def _on_info(self, request: Request, tx: ServerTransaction) -> None:
        """SIP INFO DTMF (application/dtmf-relay), which some PBXes send instead of RFC 4733."""
        kind = (request.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if kind not in DTMF_CONTENT_TYPES:
            headers = [("Accept", ", ".join(DTMF_CONTENT_TYPES))]
            tx.respond(make_response(request, 415, to_tag=self.dialog.local_tag, headers=headers))
            return
        tx.respond(make_response(request, 200, to_tag=self.dialog.local_tag))
        digit = info_digit(request.body.decode("utf-8", "replace"))
        if digit:
            self._on_dtmf(digit)

    def _on_notify(self, request: Request, tx: ServerTransaction) -> None:
        """No subscription lives in this leg (RFC 6665 §4.1.3: 481)."""
        tx.respond(make_response(request, 481, to_tag=self.dialog.local_tag))

    def _on_other(self, request: Request, tx: ServerTransaction) -> None:
        if request.method == "OPTIONS":
            tx.respond(
                make_response(
                    request,
                    200,
                    to_tag=self.dialog.local_tag,
                    headers=self.ua.capability_headers(),
                )
            )
        else:
            headers = [("Allow", ", ".join(ALLOWED_METHODS))]
            tx.respond(make_response(request, 405, to_tag=self.dialog.local_tag, headers=headers))

    def _no_ack(self, cseq: int) -> None:
        self._retransmitters.pop(cseq, None)
        self.log.event("sip_no_ack", cseq=cseq)
        if self.state is CallState.ANSWERED:
            self.state = CallState.CONFIRMED  # §13.3.1.4: confirmed, then ended by BYE
        self.ua.spawn(self.hangup("no ACK for 200 OK"))

    # ------------------------------------------------------------- hang-up

    async def _hang_up(self, reason: str) -> None:
        if self.state is CallState.RINGING:
            self._end_early(reason)
            return
        if self.state is CallState.ANSWERED:  # §15: no BYE before the ACK (or its timeout)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._confirmed.wait(), self.ua.timers.timeout)
        if self.ended:
            return
        self._end(reason)
        await self._send_bye()

    def _end_early(self, reason: str) -> None:
        """End a leg that has no dialog yet (a final error / CANCEL)."""
        self._end(reason)

    async def _send_bye(self) -> None:
        request = self.dialog.request(
            "BYE", self.ua.via_address(self.dialog.peer[0]), user_agent=self.ua.config.user_agent
        )
        destination = await self.dialog.destination()
        tx = self.ua.send_request(request, destination)
        self.log.event("sip_bye_sent", to=f"{destination[0]}:{destination[1]}")
        try:
            response: Response = await asyncio.wait_for(
                asyncio.shield(tx.result), self.ua.config.hangup_wait_s
            )
            self.log.event("sip_bye_answered", code=response.code)
        except (TimeoutError, TransactionTimeout):
            self.log.event("sip_bye_unanswered")

    def _end(self, reason: str) -> None:
        if self.ended:
            return
        self.state = CallState.ENDED
        self.hangup_reason = reason
        if self._duration_timer is not None:
            self._duration_timer.cancel()
        for retransmitter in self._retransmitters.values():
            retransmitter.acked()
        self._retransmitters.clear()
        self.media.stop()
        self._confirmed.set()
        self.ended_event.set()
        self._ended_hook(reason)
        self._log_end(reason)
        self.ua.forget(self)
        callbacks, self._end_callbacks = self._end_callbacks, []
        for callback in callbacks:
            callback(self)

    def _ended_hook(self, reason: str) -> None:
        """Subclass hook, run as the leg ends (the caller's leg tells its session)."""

    def _log_end(self, reason: str) -> None:
        stats, jitter = self.media.stats, self.media.jitter.stats
        self.log.event(
            "call_ended",
            reason=reason,
            duration_s=round(asyncio.get_running_loop().time() - self._started, 2),
            rtp_sent=stats.sent,
            rtp_received=stats.received,
            rtp_late=jitter.late,
            concealed_frames=jitter.concealed,
            underruns=jitter.underruns,
            jitter_resyncs=jitter.resyncs,  # playout jumps: audio dropped to bound latency
            dtmf=stats.dtmf,
            max_clock_lag_ms=round(stats.max_lag_ms, 2),
            skipped_ticks=stats.skipped_ticks,
        )

    # --------------------------------------------------------- media events

    def _on_audio(self, pcm: np.ndarray) -> None:
        if self.bridge is not None:
            self.bridge.relay(self, pcm)

    def _on_dtmf(self, digit: str) -> None:
        """Digits are the session's business; a plain leg ignores them."""

    def _on_media_timeout(self) -> None:
        self.log.event("rtp_timeout", after_s=self.ua.config.rtp_timeout_s)
        self.ua.spawn(self.hangup("media timeout"))


def parse_sdp(body: bytes) -> SessionDescription:
    try:
        return SessionDescription.parse(body)
    except SdpError as exc:
        raise Reject(488, f"bad SDP: {exc}") from exc


def info_digit(body: str) -> str | None:
    """'Signal=5' (dtmf-relay) or a bare '5' (application/dtmf)."""
    for line in body.splitlines():
        key, sep, value = line.partition("=")
        text = value if sep and key.strip().lower() == "signal" else (key if not sep else "")
        text = text.strip().upper()
        if len(text) == 1 and text in "0123456789*#ABCD":
            return text
    return None
