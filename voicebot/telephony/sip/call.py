"""One SIP call from INVITE to BYE, as a :class:`~voicebot.telephony.channel.CallChannel`.

Life of a call: RINGING (100/180 sent) → ANSWERED (200 OK sent, resent until
the ACK) → CONFIRMED (ACK received: the user agent starts the handler) → ENDED
(BYE either way, CANCEL, rejection, no ACK, or RTP timeout).  Media starts
with the 200 OK, so the caller hears continuous RTP from the first moment.

:meth:`SipCall.transfer` hands the caller to a person: a blind REFER first
(RFC 3515, following the NOTIFYs), and when the caller's side refuses or
fails it, a bridge — voicebot calls the agent itself and relays the audio
(``bridge.py``).  A bridged call outlives the session's handler: it stays
up until one side hangs up.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections import deque
from collections.abc import AsyncIterator, Callable

import numpy as np
from sipmessage import Address, Request, Response

from voicebot.core.frames import AudioFrame, DtmfFrame, HangupFrame, InputFrame
from voicebot.core.net import Addr
from voicebot.telephony.rtp.session import NoFreePortError
from voicebot.telephony.sip.agent import UserAgent
from voicebot.telephony.sip.bridge import bridge_to
from voicebot.telephony.sip.dialog import Dialog
from voicebot.telephony.sip.leg import SDP, CallLeg, CallState, Reject, parse_sdp
from voicebot.telephony.sip.message import ALLOWED_METHODS, make_response, new_tag
from voicebot.telephony.sip.refer import (
    CALL_HEADER,
    ReferProgress,
    TargetUri,
    TransferOutcome,
    TransferTargetError,
    event_id,
)
from voicebot.telephony.sip.sdp import NegotiationError, make_offer, negotiate
from voicebot.telephony.sip.transaction import (
    InviteServerTransaction,
    ServerTransaction,
    TransactionTimeout,
)

__all__ = ["SDP", "CallState", "FrameQueue", "SipCall", "caller_id_of"]

# Keep at most this much unread caller audio (a handler that never reads
# frames must not grow memory for the whole call); DTMF and hang-up are kept.
MAX_QUEUED_AUDIO_FRAMES = 500
# Unread keypad digits kept; beyond this a burst (a sprayed RFC 4733 stream,
# an INFO flood) is dropped rather than queued without bound.
MAX_QUEUED_DTMF = 32
TRANSFER_MODES = ("refer", "bridge")


class FrameQueue:
    """Input frames for the session; bounded for audio, lossless for events."""

    def __init__(
        self, max_audio: int = MAX_QUEUED_AUDIO_FRAMES, max_dtmf: int = MAX_QUEUED_DTMF
    ) -> None:
        self._items: deque[InputFrame] = deque()
        self._audio = 0
        self._dtmf = 0
        self._max_audio, self._max_dtmf = max_audio, max_dtmf
        self.dropped_dtmf = 0
        self._ready = asyncio.Event()
        self._closed = False

    def put(self, frame: InputFrame) -> None:
        if self._closed:
            return
        if isinstance(frame, DtmfFrame):
            if self._dtmf >= self._max_dtmf:
                self.dropped_dtmf += 1
                return
            self._dtmf += 1
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
        elif isinstance(frame, DtmfFrame):
            self._dtmf -= 1
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


class SipCall(CallLeg):
    """A CallChannel over SIP/RTP.  Created by the user agent per INVITE."""

    def __init__(
        self, ua: UserAgent, invite: Request, tx: InviteServerTransaction, peer: Addr
    ) -> None:
        dialog = Dialog.from_invite(invite, new_tag(), peer)
        super().__init__(ua, dialog, f"sip-{secrets.token_hex(8)}")
        self.sip_call_id = invite.call_id
        self.caller_id = caller_id_of(invite)
        self.transferred = False  # a REFER succeeded: the caller talks to an agent now
        self._invite, self._invite_tx = invite, tx
        tx.to_tag = self.dialog.local_tag
        self._frames = FrameQueue()
        self._refers: dict[int, ReferProgress] = {}
        self._transferring = False
        self._refer_abandoned = False  # a ring was cancelled while REFERred

    # ------------------------------------------------------- CallChannel API

    async def frames(self) -> AsyncIterator[InputFrame]:  # type: ignore[override]
        """Caller audio every 20 ms, DTMF digits, and finally a HangupFrame."""
        while True:
            frame = await self._frames.get()
            yield frame
            if isinstance(frame, HangupFrame):
                return

    @property
    def bridged(self) -> bool:
        """A transfer bridge owns this call now (the session is done with it)."""
        return self.bridge is not None and not self.ended

    def after_handoff(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` when the agent is done with this call: when a
        bridge ends, or at once when there is none (a REFERred call left us).
        The session uses it to free the agent in the queue at the right time."""
        bridge = self.bridge
        if bridge is not None and not bridge.ended.is_set():
            bridge.on_end(lambda _: callback())
        else:
            callback()

    async def handler_returned(self) -> None:
        """The session's handler is done: BYE the caller — unless a bridge now
        relays them to an agent, in which case the bridge ends the call."""
        if self.ended or self.bridged:
            return
        await self.hangup("transferred" if self.transferred else "bot hung up")

    # ----------------------------------------------------------- answering

    async def answer(self) -> None:
        """INVITE → 180 Ringing → (ring_s) → 200 OK with SDP, or a final error."""
        try:
            await self._prepare_media()
            if self.ended:
                return
            self._respond(180)
            if self.ua.config.ring_s > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._confirmed.wait(), self.ua.config.ring_s)
            if not self.ended:
                self._send_ok(self._invite, self._invite_tx, record_route=True)
                self.state = CallState.ANSWERED
                self.log.event(
                    "sip_answered", codec=self.plan and self.plan.codec, rtp_port=self.media.port
                )
        except Reject as exc:
            self.reject(exc.code, exc.warning)
        except Exception as exc:
            self.log.error("sip_answer_failed", error=repr(exc))
            self.reject(500, "internal error")

    async def _prepare_media(self) -> None:
        host = self.ua.advertised_host(self.dialog.peer[0])
        try:
            port = await self.ua.bind_rtp(self.media)
        except NoFreePortError as exc:
            raise Reject(503, "no free RTP port") from exc
        if not self._invite.body:
            self._local_sdp = make_offer(host, port, self._origin, self.ua.codecs)
            self._offer_pending = True
            return
        offer = parse_sdp(self._invite.body)
        try:
            plan, self._local_sdp = negotiate(offer, host, port, self._origin, self.ua.codecs)
        except NegotiationError as exc:
            raise Reject(488, str(exc)) from exc
        self._apply_plan(plan)

    def _respond(
        self, code: int, warning: str = "", headers: list[tuple[str, str]] | None = None
    ) -> None:
        """A response to the initial INVITE."""
        extra = list(headers or [])
        if warning:
            extra.append(("Warning", f'399 voicebot "{warning}"'))
        if code != 100:
            extra += self.ua.dialog_headers(self.dialog.peer[0]) if code < 300 else []
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

    def _end_early(self, reason: str) -> None:
        self.reject(480, reason)

    def _bye_while_ringing(self) -> None:
        if self.state is CallState.RINGING:
            self._respond(487)

    # -------------------------------------------------------------- dialog

    def on_ack(self, ack: Request) -> None:
        super().on_ack(ack)
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
            self.limit_duration()
            self.ua.start_handler(self)

    def _on_notify(self, request: Request, tx: ServerTransaction) -> None:
        """RFC 3515 §2.4.4: the caller's phone reports how the REFERred call goes."""
        try:
            ident = event_id(request)
        except ValueError:
            tx.respond(make_response(request, 489, "Bad Event", to_tag=self.dialog.local_tag))
            return
        progress = self._refer_for(ident)
        if progress is None:
            tx.respond(make_response(request, 481, to_tag=self.dialog.local_tag))
            return
        code = progress.on_notify(request)
        tx.respond(make_response(request, code, to_tag=self.dialog.local_tag))
        status = progress.statuses[-1] if progress.statuses and code == 200 else None
        self.log.event(
            "sip_notify",
            sipfrag=status and status[0],
            subscription=(request.headers.get("Subscription-State") or "").split(";")[0] or None,
        )

    def _refer_for(self, ident: str | None) -> ReferProgress | None:
        if ident is not None and ident.isdigit() and int(ident) in self._refers:
            return self._refers[int(ident)]
        return self._refers[max(self._refers)] if self._refers else None

    def _ended_hook(self, reason: str) -> None:
        self._frames.put(HangupFrame(reason))

    # ------------------------------------------------------------- transfer

    async def transfer(
        self, target_uri: str, call_ref: str, *, mode: str | None = None
    ) -> TransferOutcome:
        """Hand the caller to ``target_uri``; the agent's INVITE carries
        ``X-Voicebot-Call: call_ref`` so the desk can match it.

        ``mode`` "refer" (the default from SipConfig.transfer_mode) tries a
        blind REFER first and bridges when the caller's side refuses or fails
        it; "bridge" always bridges.  Cancelling this coroutine (ring timeout,
        desk decline, caller gone) CANCELs a bridged INVITE; a REFERred call
        cannot be withdrawn — the caller's phone is already dialling — so
        after that, later transfers of this call bridge instead of REFERring.
        """
        loop = asyncio.get_running_loop()
        started = loop.time()
        mode = mode or self.ua.config.transfer_mode
        outcome = self._cannot_transfer(target_uri, mode)
        if outcome is not None:
            return outcome
        target = TargetUri.parse(target_uri).with_header(CALL_HEADER, call_ref)
        self._transferring = True
        try:
            outcome = await self._transfer(target, mode)
        finally:
            self._transferring = False
        outcome.elapsed_s = loop.time() - started
        self.log.event("sip_transfer_result", **_log_fields(outcome))
        return outcome

    def _cannot_transfer(self, target_uri: str, mode: str) -> TransferOutcome | None:
        reason = ""
        if mode not in TRANSFER_MODES:
            reason = f"unknown transfer mode {mode!r}"
        elif self.state is not CallState.CONFIRMED:
            reason = f"call is {self.state.value}"
        elif self._transferring or self.bridged:
            reason = "a transfer is already in progress"
        else:
            try:
                TargetUri.parse(target_uri)
            except TransferTargetError as exc:
                reason = str(exc)
        return TransferOutcome("failed", "none", reason=reason) if reason else None

    async def _transfer(self, target: TargetUri, mode: str) -> TransferOutcome:
        refer: TransferOutcome | None = None
        if mode == "refer" and self._refer_abandoned:
            # The caller's phone may still be ringing an earlier agent we can no
            # longer stop; a second REFER would have it dial two people at once.
            self.log.event("sip_refer_skipped", reason="an earlier REFER is still out")
        elif mode == "refer":
            refer = await self._refer(target)
            if refer.result != "failed" or self.ended:
                return refer
            self.log.event("sip_transfer_fallback", reason=refer.reason)
        outcome = await bridge_to(self, target, caller_id=self.caller_id)
        if refer is not None:
            outcome.refer_code = refer.refer_code
            outcome.steps[:0] = refer.steps
        return outcome

    async def _refer(self, target: TargetUri) -> TransferOutcome:
        """Send REFER and follow its NOTIFYs.  "failed" means: try bridging."""
        outcome = TransferOutcome("failed", "refer")
        request = self._refer_request(target)
        progress = ReferProgress(request.cseq.sequence)
        self._refers[progress.cseq] = progress
        tx = self.ua.send_request(request, await self.dialog.destination())
        self.log.event("sip_refer_sent", target=str(target.uri))
        outcome.steps.append("REFER")
        try:
            response = await self.unless_ended(asyncio.shield(tx.result))
            if response is None:
                outcome.reason = "caller hung up"
                return outcome
            return await self._refer_answered(response, progress, outcome)
        except TransactionTimeout:
            outcome.reason = "REFER unanswered"
            return outcome
        except asyncio.CancelledError:
            self._abandon_refer(progress)
            raise

    def _abandon_refer(self, progress: ReferProgress) -> None:
        """The ring was cancelled mid-REFER.  The caller's phone owns that
        INVITE now — there is no way to CANCEL it from here — so say so."""
        if progress.final is None:
            self._refer_abandoned = True
            last = progress.provisional
            self.log.event("sip_refer_abandoned", last_sipfrag=last and last[0])

    def _refer_request(self, target: TargetUri) -> Request:
        host_port = self.ua.via_address(self.dialog.peer[0])
        contact = self.ua.contact(self.dialog.peer[0])
        return self.dialog.request(
            "REFER",
            host_port,
            headers=[
                ("Refer-To", f"<{target}>"),
                ("Referred-By", contact),
                ("Contact", contact),
                ("Allow", ", ".join(ALLOWED_METHODS)),
            ],
            user_agent=self.ua.config.user_agent,
        )

    async def _refer_answered(
        self, response: Response, progress: ReferProgress, outcome: TransferOutcome
    ) -> TransferOutcome:
        outcome.refer_code = response.code
        outcome.steps.append(f"REFER {response.code}")
        if not 200 <= response.code < 300:
            outcome.code = response.code
            outcome.reason = f"REFER refused: {response.code} {response.phrase}".strip()
            return outcome
        await self._follow_notifies(progress, outcome)
        if outcome.result == "answered":
            self.transferred = True
        return outcome

    async def _follow_notifies(self, progress: ReferProgress, outcome: TransferOutcome) -> None:
        seen = 0
        first_deadline = self.ua.timers.timeout  # §2.4.4: NOTIFY comes at once
        while not progress.done:
            wait = None if progress.first_notify_at is not None else first_deadline
            try:
                await self.unless_ended(asyncio.wait_for(progress.changed(), wait))
            except TimeoutError:
                outcome.reason = "no NOTIFY after REFER was accepted"
                return
            seen = _note_statuses(progress, seen, outcome)
            if self.ended and not progress.done:
                outcome.reason = "caller hung up during the transfer"
                return
        _note_statuses(progress, seen, outcome)
        self._settle(progress, outcome)

    def _settle(self, progress: ReferProgress, outcome: TransferOutcome) -> None:
        if progress.final is None:
            outcome.reason = "refer subscription ended without a final status"
            return
        code, phrase = progress.final
        outcome.code = code
        outcome.reason = f"sipfrag {code} {phrase}".strip()
        if 200 <= code < 300:
            outcome.result = "answered"
        elif code in (486, 600, 603):
            outcome.result = "declined"

    # --------------------------------------------------------- media events

    def _on_audio(self, pcm: np.ndarray) -> None:
        if self.bridge is not None:
            self.bridge.relay(self, pcm)
        elif self.state is CallState.CONFIRMED:
            self._frames.put(AudioFrame(pcm))

    def _on_dtmf(self, digit: str) -> None:
        if self.state is CallState.CONFIRMED and self.bridge is None:
            self.log.event("dtmf")  # never the digit: it may be part of a PIN
            self._frames.put(DtmfFrame(digit))


def _note_statuses(progress: ReferProgress, seen: int, outcome: TransferOutcome) -> int:
    for code, _ in progress.statuses[seen:]:
        outcome.steps.append(f"NOTIFY {code}")
    return len(progress.statuses)


def _log_fields(outcome: TransferOutcome) -> dict[str, object]:
    return {
        "result": outcome.result,
        "method": outcome.method,
        "code": outcome.code,
        "refer_code": outcome.refer_code,
        "reason": outcome.reason or None,
        "elapsed_s": round(outcome.elapsed_s, 3),
    }
