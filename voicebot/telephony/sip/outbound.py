"""The agent leg of a bridged transfer: an INVITE that voicebot sends itself.

Used when the caller's side cannot do the transfer (REFER refused or
failed): we call the agent as a UAC (RFC 3261 §13.2), with our own RTP port,
and :mod:`bridge` relays audio between this leg and the caller's.

Life of the leg: RINGING (INVITE sent; 180/183 seen) → CONFIRMED (2xx
received and ACKed) → ENDED.  Cancelling :meth:`OutboundCall.dial` sends a
CANCEL (§9.1: only once a provisional response came back) and the INVITE
ends with 487; a 2xx that crosses the CANCEL is ACKed and BYEd at once.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import urllib.parse
from collections.abc import Iterable

from sipmessage import Request, Response

from voicebot.core.net import Addr
from voicebot.telephony.addresses import bracket
from voicebot.telephony.rtp.session import NoFreePortError
from voicebot.telephony.sip.agent import UserAgent
from voicebot.telephony.sip.dialog import Dialog
from voicebot.telephony.sip.leg import SDP, CallLeg, CallState, Reject, parse_sdp
from voicebot.telephony.sip.message import (
    ALLOWED_METHODS,
    DEFAULT_PORT,
    header_tag,
    new_call_id,
    new_tag,
)
from voicebot.telephony.sip.refer import TargetUri
from voicebot.telephony.sip.sdp import NegotiationError, accept_answer, make_offer
from voicebot.telephony.sip.transaction import InviteClientTransaction

_USER_SAFE = "-_.!~*'()&=+$,;?/"  # RFC 3261 user-unreserved + unreserved


class DialFailed(Exception):
    """The INVITE could not even be sent (bad URI, unsupported transport, no port)."""


class OutboundCall(CallLeg):
    """A call we place to an agent's phone (UAC side)."""

    peer_role = "agent"

    def __init__(self, ua: UserAgent, invite: Request, dialog: Dialog) -> None:
        super().__init__(ua, dialog, f"sip-out-{secrets.token_hex(6)}")
        self.sip_call_id = dialog.call_id
        self.invite = invite
        self.final: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self.provisional: Response | None = None
        self.ringing_at: float | None = None
        self._tx: InviteClientTransaction | None = None
        self._cancel_reason: str | None = None
        self._cancel_sent = False
        self._early_sdp: bytes = b""
        self._ack_wire: bytes = b""
        self._ack_to: Addr = dialog.peer

    # ------------------------------------------------------------- creation

    @classmethod
    async def create(
        cls,
        ua: UserAgent,
        target: TargetUri,
        *,
        caller_id: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
    ) -> OutboundCall:
        """Resolve the target, bind RTP, build the INVITE (not sent yet).

        Headers carried in the target URI (``?X-Voicebot-Call=…``) become
        request headers, as RFC 3261 §19.1.5 says for URIs turned into requests.
        """
        transport = (target.uri.parameters.get("transport") or "udp").lower()
        if transport != "udp" or target.uri.scheme != "sip":
            raise DialFailed(f"only sip: over UDP is supported, not {target.uri}")
        dialog = _pre_dialog(ua, target, caller_id, await _resolve(target))
        call = cls(ua, _invite(ua, dialog, target, headers), dialog)
        try:
            port = await ua.bind_rtp(call.media)
        except NoFreePortError as exc:
            raise DialFailed("no free RTP port") from exc
        call._attach_offer(port)
        return call

    def _attach_offer(self, port: int) -> None:
        host = self.ua.advertised_host(self.dialog.peer[0])
        self._local_sdp = make_offer(host, port, self._origin, self.ua.codecs)
        body = self._local_sdp.serialize()
        self.invite.headers.add("Content-Type", SDP)
        self.invite.headers.set("Content-Length", str(len(body)))
        self.invite.body = body

    # --------------------------------------------------------------- dialing

    async def dial(self) -> Response:
        """Send the INVITE; return its final response (a 2xx means connected).

        Cancelled (the ring is over): CANCEL the INVITE and re-raise."""
        self.ua.add_leg(self)
        self._tx = self.ua.send_invite(self.invite, self.dialog.peer, self._on_response)
        self.log.event(
            "sip_dialing",
            to=str(self.invite.uri),
            peer=f"{self.dialog.peer[0]}:{self.dialog.peer[1]}",
            sip_call_id=self.sip_call_id,
        )
        try:
            return await asyncio.shield(self.final)
        except asyncio.CancelledError:
            self.cancel("ring cancelled")
            raise

    def cancel(self, reason: str) -> None:
        """Stop ringing: CANCEL now, or as soon as a provisional arrives (§9.1)."""
        if self.state is not CallState.RINGING or self._cancel_reason is not None:
            return
        self._cancel_reason = reason
        if self.provisional is not None:
            self._send_cancel()
        elif self._tx is None:
            self._end(reason)

    def _send_cancel(self) -> None:
        if self._cancel_sent:
            return
        self._cancel_sent = True
        self.ua.send_request(_cancel_for(self.invite), self.dialog.peer)
        self.log.event("sip_cancel_sent", reason=self._cancel_reason)
        # No 487 within 64·T1: the agent's side is gone; give up on the leg.
        asyncio.get_running_loop().call_later(self.ua.timers.timeout, self._cancel_unanswered)

    def _cancel_unanswered(self) -> None:
        if self.state is CallState.RINGING:
            self._settle(None)
            self._end("CANCEL unanswered")

    def _end_early(self, reason: str) -> None:
        self.cancel(reason)

    # ------------------------------------------------------------- responses

    def _on_response(self, response: Response) -> None:
        if response.code < 200:
            self._on_provisional(response)
        elif response.code < 300:
            self._on_success(response)
        else:
            self._on_failure(response)

    def _on_provisional(self, response: Response) -> None:
        if self.state is not CallState.RINGING:
            return
        self.provisional = response
        if response.code > 100 and response.body:
            self._early_sdp = response.body
        if response.code > 100 and self.ringing_at is None:
            self.ringing_at = asyncio.get_running_loop().time()
            self.log.event("sip_agent_ringing", code=response.code)
        if self._cancel_reason is not None:
            self._send_cancel()

    def _on_failure(self, response: Response) -> None:
        self.log.event("sip_dial_failed", code=response.code, phrase=response.phrase)
        self._settle(response)
        self._end(f"agent answered {response.code}")

    def _on_success(self, response: Response) -> None:
        tag = header_tag(response.headers["To"])
        if self.state is CallState.RINGING:
            self._establish(response)
        elif tag == self.dialog.remote_tag and self._ack_wire:
            self.ua.send(self._ack_wire, self._ack_to)  # a 2xx retransmission: re-ACK
        else:
            self.ua.spawn(_ack_and_bye(self.ua, self.invite, response, self.dialog.peer))

    def _establish(self, response: Response) -> None:
        self.dialog = Dialog.from_response(self.invite, response, self.dialog.peer)
        self.state = CallState.CONFIRMED
        self._confirmed.set()
        self.limit_duration()
        self.ua.register_dialog(self)
        self._send_ack()
        if self._cancel_reason is not None:  # crossed our CANCEL: too late, hang up
            self._settle(_as_cancelled(response))
            self.ua.spawn(self.hangup(self._cancel_reason))
            return
        try:
            self._apply_answer(response)
        except (Reject, NegotiationError) as exc:
            self.log.event("sip_bad_answer", error=str(exc))
            self._settle(_as_failure(response, 488))
            self.ua.spawn(self.hangup("unusable SDP answer"))
            return
        self.log.event("sip_agent_answered", codec=self.plan and self.plan.codec)
        self._settle(response)

    def _apply_answer(self, response: Response) -> None:
        body = response.body or self._early_sdp
        if not body:
            raise Reject(488, "no SDP answer")
        self._apply_plan(accept_answer(parse_sdp(body), self.ua.codecs))

    def _send_ack(self) -> None:
        """§13.2.2.4: to the remote target (the 2xx's Contact), like any in-dialog request."""
        ack = self.dialog.ack(self.invite.cseq.sequence, self.ua.via_address(self.dialog.peer[0]))
        self._ack_wire = bytes(ack)
        self._ack_to = self.dialog.destination_nowait() or self.dialog.peer
        self.ua.send(self._ack_wire, self._ack_to)

    def _settle(self, response: Response | None) -> None:
        if not self.final.done():
            if response is None:
                self.final.set_result(_as_failure(self.invite, 408))
            else:
                self.final.set_result(response)

    def _ended_hook(self, reason: str) -> None:
        self._settle(None)


# ---------------------------------------------------------------- builders


async def _resolve(target: TargetUri) -> Addr:
    """Where the INVITE goes: the URI's host (A/AAAA, no SRV) and port."""
    host, port = target.uri.host.strip("[]"), target.uri.port or DEFAULT_PORT
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except OSError as exc:
        raise DialFailed(f"cannot resolve {host}: {exc}") from exc
    if not infos:
        raise DialFailed(f"cannot resolve {host}")
    return str(infos[0][4][0]), port


def _pre_dialog(ua: UserAgent, target: TargetUri, caller_id: str | None, peer: Addr) -> Dialog:
    """The dialog-to-be: our identity and the target (the To-tag comes with the 2xx)."""
    uri = target.uri
    local_host = ua.advertised_host(peer[0])
    user = urllib.parse.quote(caller_id or "voicebot", safe=_USER_SAFE)
    local_tag = new_tag()
    return Dialog(
        call_id=new_call_id(local_host),
        local_tag=local_tag,
        remote_tag="",
        local_address=f"<sip:{user}@{bracket(local_host)}>;tag={local_tag}",
        remote_address=f"<{uri}>",
        remote_target=str(uri),
        route_set=[],
        remote_cseq=0,
        peer=peer,
        local_cseq=1,
    )


def _invite(
    ua: UserAgent, dialog: Dialog, target: TargetUri, headers: Iterable[tuple[str, str]]
) -> Request:
    invite = dialog.new_request(
        "INVITE", target.uri, dialog.local_cseq, ua.via_address(dialog.peer[0])
    )
    invite.headers.add("Contact", ua.contact(dialog.peer[0]))
    for name, value in [*target.headers, *headers]:
        invite.headers.set(name, value)
    invite.headers.add("Allow", ", ".join(ALLOWED_METHODS))
    invite.headers.add("User-Agent", ua.config.user_agent)
    invite.headers.add("Content-Length", "0")
    return invite


def _cancel_for(invite: Request) -> Request:
    """§9.1: same Request-URI, Call-ID, From, To, CSeq number and top Via."""
    cancel = Request("CANCEL", invite.uri)
    cancel.headers.add("Via", invite.headers.getlist("Via")[0])
    cancel.headers.add("Max-Forwards", "70")
    for name in ("From", "To", "Call-ID"):
        cancel.headers.add(name, invite.headers[name])
    cancel.headers.add("CSeq", f"{invite.cseq.sequence} CANCEL")
    for route in invite.headers.getlist("Route"):
        cancel.headers.add("Route", route)
    cancel.headers.add("Content-Length", "0")
    return cancel


async def _ack_and_bye(ua: UserAgent, invite: Request, response: Response, peer: Addr) -> None:
    """A 2xx from a second fork (another To-tag): ACK it, then end it (§13.2.2.4)."""
    dialog = Dialog.from_response(invite, response, peer)
    via = ua.via_address(peer[0])
    ua.send(bytes(dialog.ack(invite.cseq.sequence, via)), peer)
    ua.send_request(dialog.request("BYE", via, user_agent=ua.config.user_agent), peer)


def _as_failure(invite_or_response: Request | Response, code: int) -> Response:
    response = Response(code, {408: "Request Timeout", 488: "Not Acceptable Here"}.get(code, ""))
    for name in ("From", "To", "Call-ID", "CSeq"):
        value = invite_or_response.headers.get(name)
        if value:
            response.headers.set(name, value)
    return response


def _as_cancelled(response: Response) -> Response:
    return _as_failure(response, 487)
