"""One SIP call from INVITE to BYE, as a :class:`~voicebot.telephony.channel.CallChannel`.

Life of a call: RINGING (100/180 sent) → ANSWERED (200 OK sent, resent until
the ACK) → CONFIRMED (ACK received: the server starts the handler) → ENDED
(BYE either way, CANCEL, rejection, no ACK, or RTP timeout).  Media starts
with the 200 OK, so the caller hears continuous RTP from the first moment.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections import deque
from collections.abc import AsyncIterator, Coroutine
from enum import Enum
from typing import TYPE_CHECKING, Any

import numpy as np
from sipmessage import Address, Request, Response

from voicebot.frames import AudioFrame, DtmfFrame, HangupFrame, InputFrame
from voicebot.logs import CallLogger
from voicebot.telephony.rtp.session import (
    MediaSession,
    NoFreePortError,
    PlayoutBuffer,
    codec_by_name,
)
from voicebot.telephony.sip.dialog import Dialog
from voicebot.telephony.sip.message import ALLOWED_METHODS, make_response, new_tag
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
    InviteServerTransaction,
    ServerTransaction,
    TransactionTimeout,
    TwoXxRetransmitter,
)

if TYPE_CHECKING:
    from voicebot.telephony.sip.server import SipServer

SDP = "application/sdp"
# Keep at most this much unread caller audio (a handler that never reads
# frames must not grow memory for the whole call); DTMF and hang-up are kept.
MAX_QUEUED_AUDIO_FRAMES = 500
DTMF_CONTENT_TYPES = ("application/dtmf-relay", "application/dtmf")


class CallState(Enum):
    RINGING = "ringing"
    ANSWERED = "answered"
    CONFIRMED = "confirmed"
    ENDED = "ended"


class _Reject(Exception):
    def __init__(self, code: int, warning: str = "") -> None:
        super().__init__(code, warning)
        self.code, self.warning = code, warning


class FrameQueue:
    """Input frames for the session; bounded for audio, lossless for events."""

    def __init__(self, max_audio: int = MAX_QUEUED_AUDIO_FRAMES) -> None:
        self._items: deque[InputFrame] = deque()
        self._audio = 0
        self._max_audio = max_audio
        self._ready = asyncio.Event()
        self._closed = False

    def put(self, frame: InputFrame) -> None:
        if self._closed:
            return
        self._items.append(frame)
        if isinstance(frame, AudioFrame):
            self._audio += 1
            if self._audio > self._max_audio:
                self._drop_oldest_audio()
        self._closed = isinstance(frame, HangupFrame)
        self._ready.set()

    def _drop_oldest_audio(self) -> None:
        for i, item in enumerate(self._items):
            if isinstance(item, AudioFrame):
                del self._items[i]
                self._audio -= 1
                return

    async def get(self) -> InputFrame:
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        frame = self._items.popleft()
        if isinstance(frame, AudioFrame):
            self._audio -= 1
        return frame


def caller_id_of(invite: Request) -> str | None:
    """P-Asserted-Identity (a trunk's verified number) else the From user part."""
    for name in ("P-Asserted-Identity", "From"):
        value = invite.headers.get(name)
        if not value:
            continue
        try:
            user = Address.parse_many(value)[0].uri.user
        except (ValueError, IndexError):
            continue
        if user:
            return user
    return None


class SipCall:
    """A CallChannel over SIP/RTP.  Created by :class:`SipServer` per INVITE."""

    transport = "sip"

    def __init__(
        self, ua: SipServer, invite: Request, tx: InviteServerTransaction, peer: tuple[str, int]
    ) -> None:
        self.call_id = f"sip-{secrets.token_hex(8)}"
        self.sip_call_id = invite.call_id
        self.caller_id = caller_id_of(invite)
        self.output = PlayoutBuffer()
        self.state = CallState.RINGING
        self.hangup_reason: str | None = None
        self.plan: MediaPlan | None = None
        self.log = CallLogger(self.call_id, ua.logger)
        self.dialog = Dialog.from_invite(invite, new_tag(), peer)
        self._ua = ua
        self._invite, self._invite_tx = invite, tx
        tx.to_tag = self.dialog.local_tag
        self._frames = FrameQueue()
        self._origin = new_origin(ua.advertised_host(peer[0]))
        self._local_sdp: SessionDescription | None = None
        self._offer_pending = False  # our SDP offer (delayed offer) awaits the ACK's answer
        self._retransmitters: dict[int, TwoXxRetransmitter] = {}
        self._confirmed = asyncio.Event()
        self._bye_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._started = asyncio.get_running_loop().time()
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

    # ------------------------------------------------------- CallChannel API

    async def frames(self) -> AsyncIterator[InputFrame]:  # type: ignore[override]
        """Caller audio every 20 ms, DTMF digits, and finally a HangupFrame."""
        while True:
            frame = await self._frames.get()
            yield frame
            if isinstance(frame, HangupFrame):
                return

    async def hangup(self, reason: str = "bot hung up") -> None:
        """End the call from our side: BYE (or a final error while still ringing)."""
        if self._bye_task is None:
            self._bye_task = asyncio.ensure_future(self._hang_up(reason))
        await asyncio.shield(self._bye_task)

    @property
    def ended(self) -> bool:
        return self.state is CallState.ENDED

    # ----------------------------------------------------------- answering

    async def answer(self) -> None:
        """INVITE → 180 Ringing → (ring_s) → 200 OK with SDP, or a final error."""
        try:
            await self._prepare_media()
            if self.ended:
                return
            self._respond(180)
            if self._ua.config.ring_s > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._confirmed.wait(), self._ua.config.ring_s)
            if not self.ended:
                self._send_ok(self._invite, self._invite_tx, record_route=True)
                self.state = CallState.ANSWERED
                self.log.event(
                    "sip_answered", codec=self.plan and self.plan.codec, rtp_port=self.media.port
                )
        except _Reject as exc:
            self.reject(exc.code, exc.warning)
        except Exception as exc:
            self.log.error("sip_answer_failed", error=repr(exc))
            self.reject(500, "internal error")

    async def _prepare_media(self) -> None:
        host = self._ua.advertised_host(self.dialog.peer[0])
        try:
            port = await self.media.bind(self._ua.rtp_host, self._ua.allocator)
        except NoFreePortError as exc:
            raise _Reject(503, "no free RTP port") from exc
        if not self._invite.body:
            self._local_sdp = make_offer(host, port, self._origin, self._ua.codecs)
            self._offer_pending = True
            return
        offer = _parse_sdp(self._invite.body)
        try:
            plan, self._local_sdp = negotiate(offer, host, port, self._origin, self._ua.codecs)
        except NegotiationError as exc:
            raise _Reject(488, str(exc)) from exc
        self._apply_plan(plan)

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
        assert self._local_sdp is not None
        response = make_response(
            request,
            200,
            to_tag=self.dialog.local_tag,
            headers=self._ua.dialog_headers(self.dialog.peer[0]),
            body=self._local_sdp.serialize(),
            content_type=SDP,
            record_route=record_route,
        )
        tx.respond(response)
        cseq = request.cseq.sequence
        retransmitter = TwoXxRetransmitter(
            bytes(response),
            tx.destination,
            self._ua.send,
            self._ua.timers,
            lambda: self._no_ack(cseq),
        )
        self._retransmitters[cseq] = retransmitter
        retransmitter.start()

    def _respond(
        self, code: int, warning: str = "", headers: list[tuple[str, str]] | None = None
    ) -> None:
        """A response to the initial INVITE."""
        extra = list(headers or [])
        if warning:
            extra.append(("Warning", f'399 voicebot "{warning}"'))
        if code != 100:
            extra += self._ua.dialog_headers(self.dialog.peer[0]) if code < 300 else []
        response = make_response(
            self._invite, code, to_tag=self.dialog.local_tag, headers=extra, record_route=code < 300
        )
        self._invite_tx.respond(response)

    def reject(self, code: int, warning: str = "") -> None:
        """Answer the INVITE with a final error and forget the call."""
        if self.state is not CallState.RINGING:
            return
        self._respond(code, warning)
        self.log.event("sip_rejected", code=code, warning=warning or None)
        self._end(f"rejected {code}")

    def cancel(self) -> bool:
        """CANCEL before the 200: 487 for the INVITE.  False when too late."""
        if self.state is not CallState.RINGING:
            return False
        self._respond(487)
        self.log.event("sip_cancelled")
        self._end("caller cancelled")
        return True

    # -------------------------------------------------------------- dialog

    def on_ack(self, ack: Request) -> None:
        retransmitter = self._retransmitters.pop(ack.cseq.sequence, None)
        if retransmitter:
            retransmitter.acked()
        if self._offer_pending:
            self._take_answer(ack)
        if self.state is CallState.ANSWERED:
            self.state = CallState.CONFIRMED
            self._confirmed.set()
            self.log.event(
                "sip_confirmed",
                caller_id=self.caller_id,
                sip_call_id=self.sip_call_id,
                peer=f"{self.dialog.peer[0]}:{self.dialog.peer[1]}",
                codec=self.plan and self.plan.codec,
            )
            self._ua.start_handler(self)

    def _take_answer(self, ack: Request) -> None:
        """Delayed offer: our offer went in the 200, the answer comes in the ACK."""
        self._offer_pending = False
        try:
            self._apply_plan(accept_answer(_parse_sdp(ack.body), self._ua.codecs))
        except _Reject as exc:
            self._spawn(self.hangup(f"unusable SDP answer in ACK: {exc.warning}"))
        except NegotiationError as exc:
            self._spawn(self.hangup(f"unusable SDP answer in ACK: {exc}"))

    def on_request(self, request: Request, tx: ServerTransaction) -> None:
        """An in-dialog request (the server has already matched our tags)."""
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
        }.get(request.method, self._on_other)
        handler(request, tx)

    def _on_bye(self, request: Request, tx: ServerTransaction) -> None:
        tx.respond(make_response(request, 200, to_tag=self.dialog.local_tag))
        if self.state is CallState.RINGING:
            self._respond(487)
        self.log.event("sip_bye_received")
        self._end("caller hung up")

    def _on_reinvite(self, request: Request, tx: ServerTransaction) -> None:
        if self.state is not CallState.CONFIRMED or self._retransmitters:
            headers = [("Retry-After", str(secrets.randbelow(10) + 1))]
            tx.respond(make_response(request, 500, to_tag=self.dialog.local_tag, headers=headers))
            return
        self.dialog.refresh_target(request)
        self._origin.version += 1
        try:
            self._renegotiate(request)
        except _Reject as exc:
            self._origin.version -= 1
            warning = [("Warning", f'399 voicebot "{exc.warning}"')]
            tx.respond(
                make_response(request, exc.code, to_tag=self.dialog.local_tag, headers=warning)
            )
            return
        self._send_ok(request, tx)

    def _renegotiate(self, request: Request) -> None:
        host = self._ua.advertised_host(self.dialog.peer[0])
        if not request.body:
            self._local_sdp = make_offer(host, self.media.port, self._origin, self._ua.codecs)
            self._offer_pending = True
            return
        try:
            plan, answer = negotiate(
                _parse_sdp(request.body), host, self.media.port, self._origin, self._ua.codecs
            )
        except NegotiationError as exc:
            raise _Reject(488, str(exc)) from exc
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
        digit = _info_digit(request.body.decode("utf-8", "replace"))
        if digit:
            self._on_dtmf(digit)

    def _on_other(self, request: Request, tx: ServerTransaction) -> None:
        if request.method == "OPTIONS":
            tx.respond(
                make_response(
                    request,
                    200,
                    to_tag=self.dialog.local_tag,
                    headers=self._ua.capability_headers(),
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
        self._spawn(self.hangup("no ACK for 200 OK"))

    # ------------------------------------------------------------- hang-up

    async def _hang_up(self, reason: str) -> None:
        if self.state is CallState.RINGING:
            self.reject(480, reason)
            return
        if self.state is CallState.ANSWERED:  # §15: no BYE before the ACK (or its timeout)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._confirmed.wait(), self._ua.timers.timeout)
        if self.ended:
            return
        self._end(reason)
        await self._send_bye()

    async def _send_bye(self) -> None:
        request = self.dialog.request(
            "BYE", self._ua.via_address(self.dialog.peer[0]), user_agent=self._ua.config.user_agent
        )
        destination = await self.dialog.destination()
        tx = self._ua.send_request(request, destination)
        self.log.event("sip_bye_sent", to=f"{destination[0]}:{destination[1]}")
        try:
            response: Response = await asyncio.wait_for(
                asyncio.shield(tx.result), self._ua.config.hangup_wait_s
            )
            self.log.event("sip_bye_answered", code=response.code)
        except (TimeoutError, TransactionTimeout):
            self.log.event("sip_bye_unanswered")

    def _end(self, reason: str) -> None:
        if self.ended:
            return
        self.state = CallState.ENDED
        self.hangup_reason = reason
        for retransmitter in self._retransmitters.values():
            retransmitter.acked()
        self._retransmitters.clear()
        self.media.stop()
        self._frames.put(HangupFrame(reason))
        self._confirmed.set()
        self._log_end(reason)
        self._ua.forget(self)

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
            dtmf=stats.dtmf,
            max_clock_lag_ms=round(stats.max_lag_ms, 2),
        )

    # --------------------------------------------------------- media events

    def _on_audio(self, pcm: np.ndarray) -> None:
        if self.state is CallState.CONFIRMED:
            self._frames.put(AudioFrame(pcm))

    def _on_dtmf(self, digit: str) -> None:
        if self.state is CallState.CONFIRMED:
            self.log.event("dtmf")  # never the digit: it may be part of a PIN
            self._frames.put(DtmfFrame(digit))

    def _on_media_timeout(self) -> None:
        self.log.event("rtp_timeout", after_s=self._ua.config.rtp_timeout_s)
        self._spawn(self.hangup("media timeout"))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _parse_sdp(body: bytes) -> SessionDescription:
    try:
        return SessionDescription.parse(body)
    except SdpError as exc:
        raise _Reject(488, f"bad SDP: {exc}") from exc


def _info_digit(body: str) -> str | None:
    """'Signal=5' (dtmf-relay) or a bare '5' (application/dtmf)."""
    for line in body.splitlines():
        key, sep, value = line.partition("=")
        text = value if sep and key.strip().lower() == "signal" else (key if not sep else "")
        text = text.strip().upper()
        if len(text) == 1 and text in "0123456789*#ABCD":
            return text
    return None
