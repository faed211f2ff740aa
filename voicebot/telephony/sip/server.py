"""The SIP user agent core: admission, INVITE/OPTIONS/CANCEL, and the calls' lifecycle.

It sits on the layers below and owns one of each — the transport (the UDP
socket), the transaction layer and the dialog table — and implements the
:class:`~voicebot.telephony.sip.agent.UserAgent` port its call legs use.
Every datagram goes through one synchronous path (transport parse →
admission → transaction match → dialog or new call) in the event loop, so
there is no locking; anything slow (binding RTP ports, ringing, running the
caller's handler) is a task.  Every failure inside that path is caught and
logged by the transport: a hostile datagram can cost us at most the datagram.

Usage::

    async def on_call(channel: CallChannel) -> None: ...

    server = SipServer(SipConfig(listen_port=5090), on_call)
    await server.start()
    ...
    server.stop_accepting()      # new INVITEs now get 503
    await server.close(grace_s=10)  # wait for handlers, then BYE the rest
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from sipmessage import URI, Request, Response

from voicebot.core.heap import trim_heap_every
from voicebot.core.logs import format_event
from voicebot.core.net import Addr
from voicebot.telephony.addresses import bracket, same_ip
from voicebot.telephony.channel import CallChannel
from voicebot.telephony.rtp.session import MediaSession, PortAllocator
from voicebot.telephony.sip.agent import ConfirmedCall
from voicebot.telephony.sip.call import CallState, SipCall
from voicebot.telephony.sip.config import PeerAllowlist, SipConfig
from voicebot.telephony.sip.dialog_table import DialogTable, DialogUser
from voicebot.telephony.sip.leg import CallLeg
from voicebot.telephony.sip.message import (
    ALLOWED_METHODS,
    KNOWN_METHODS,
    RawRequest,
    header_tag,
    make_response,
    new_tag,
    response_address,
)
from voicebot.telephony.sip.transaction import (
    InviteClientTransaction,
    InviteServerTransaction,
    NonInviteClientTransaction,
    ServerTransaction,
    Timers,
)
from voicebot.telephony.sip.transaction_layer import TransactionLayer
from voicebot.telephony.sip.transport import SipTransport

log = logging.getLogger("voicebot.telephony.sip")

CallHandler = Callable[[CallChannel], Awaitable[None]]
SUPPORTED_EXTENSIONS: frozenset[str] = frozenset()  # we honour no Require'd extension
HANDLER_CANCEL_WAIT_S = 2.0


def _event(event: str, level: int = logging.INFO, **fields: Any) -> None:
    log.log(level, format_event(event, **fields))


class SipServer:
    """Answers SIP calls on UDP and runs ``on_call(channel)`` for each."""

    def __init__(self, config: SipConfig, on_call: CallHandler) -> None:
        config.validate()
        self.config = config
        self.logger = log
        self.timers = Timers(config.t1_s, config.t2_s, config.t4_s)
        self.allocator = PortAllocator(config.rtp_port_min, config.rtp_port_max)
        self.codecs = tuple(c.upper() for c in config.codecs)
        self.transport = SipTransport(config, self)
        self.transactions = TransactionLayer(self.transport.send, self.timers)
        self.dialogs = DialogTable()
        self._on_call = on_call
        self._allowlist = PeerAllowlist(config.allowed_peers)
        self._trunks = PeerAllowlist(config.trunks, default=())
        self._accepting = True
        self._handlers: set[asyncio.Task[None]] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._housekeeping: asyncio.Task[None] | None = None

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Bind the UDP socket (port 0 picks a free one; read :attr:`port`)."""
        await self.transport.open()
        self._housekeeping = asyncio.create_task(trim_heap_every(self.config.heap_trim_s))
        _event("sip_listening", host=self.config.listen_host, port=self.port)

    @property
    def port(self) -> int:
        return self.transport.port

    @property
    def calls(self) -> list[SipCall]:
        """Callers' calls not yet ended (ringing, answered, in progress or bridged)."""
        return [c for c in self.dialogs if isinstance(c, SipCall) and not c.ended]

    @property
    def legs(self) -> list[CallLeg]:
        """Every live leg, agent legs of bridged transfers included."""
        return [c for c in self.dialogs if isinstance(c, CallLeg) and not c.ended]

    def bridge_ends(self) -> list[Awaitable[object]]:
        """One awaitable per caller an agent is talking to through us: its end."""
        return [c.bridge.ended.wait() for c in self.calls if c.bridged and c.bridge]

    def stop_accepting(self) -> None:
        """New INVITEs and OPTIONS get 503 from now on; calls in progress go on."""
        self._accepting = False

    @property
    def taking_calls(self) -> bool:
        """Below capacity and not draining: what OPTIONS tells a load balancer."""
        return self._accepting and len(self.calls) < self.config.max_calls

    async def close(self, grace_s: float = 0.0) -> None:
        """Shut down: give handlers ``grace_s`` to finish, BYE every call left,
        cancel the handlers, close the socket."""
        self.stop_accepting()
        if grace_s > 0 and self._handlers:
            await asyncio.wait(set(self._handlers), timeout=grace_s)
        legs = list(self.dialogs)
        for leg in legs:
            leg.abandon_unconfirmed()  # an unACKed 200 holds up nothing
        if legs:
            await asyncio.gather(
                *(leg.hangup("server shutting down") for leg in legs), return_exceptions=True
            )
        await self._cancel_handlers()
        if self._housekeeping is not None:
            self._housekeeping.cancel()
        self.transactions.close()
        self.transport.close()
        _event("sip_closed", port=self.port)

    async def _cancel_handlers(self) -> None:
        if self._handlers:
            await asyncio.wait(set(self._handlers), timeout=HANDLER_CANCEL_WAIT_S)
        for task in list(self._handlers):
            task.cancel()
        if self._handlers:
            await asyncio.wait(set(self._handlers), timeout=HANDLER_CANCEL_WAIT_S)

    async def __aenter__(self) -> SipServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------- messages from the transport

    def on_malformed(self, data: bytes, source: Addr, reason: str) -> None:
        """An unparsable datagram: a 400 if an allowed peer sent a request we can address."""
        raw = RawRequest.scan(data) if self._allowlist.allows(source[0]) else None
        self.transport.warn.warning(
            "sip_malformed", peer=f"{source[0]}:{source[1]}", reason=reason, answered=bool(raw)
        )
        if raw:
            self.send(raw.bad_request(reason, new_tag()), source)

    def on_response(self, response: Response, source: Addr) -> None:
        self.transactions.on_response(response)

    def on_request(self, request: Request, source: Addr) -> None:
        if not self._allowed(request, source[0]):
            self._forbid(request, source)
            return
        if request.method == "ACK":
            self._on_ack(request, source)
            return
        tx = self.transactions.server_transaction(request, source)
        if tx is None:  # a retransmission, answered by its transaction
            return
        try:
            self._dispatch(request, tx, source)
        except Exception as exc:
            # A bug or an input we did not foresee: the peer gets a 500 and
            # the transaction ends on its timers instead of living forever.
            self.transport.warn.warning(
                "sip_request_failed", method=request.method, error=repr(exc)[:200]
            )
            if not tx.final:
                tx.respond(make_response(request, 500, to_tag=tx.to_tag or new_tag()))

    # ------------------------------------------------- admission, pre-parse

    def admits(self, host: str) -> bool:
        """Worth parsing: the allowlist, or the peer of a leg we placed (an
        agent's phone must be able to BYE the bridged leg we dialled)."""
        if self._allowlist.allows(host):
            return True
        return any(
            not isinstance(leg, SipCall) and same_ip(leg.dialog.peer[0], host)
            for leg in self.dialogs
        )

    def exempt(self, host: str) -> bool:
        """A carrier trunk: no per-source rate limit or call cap."""
        return self._trunks.allows(host)

    def _from_peer(self, leg: DialogUser, source: Addr) -> bool:
        """In-dialog requests come from the dialog's peer (IP and port), or
        from the trunk the dialog came in on: anyone else could end the call
        or move its audio."""
        peer = leg.dialog.peer
        if same_ip(peer[0], source[0]) and peer[1] == source[1]:
            return True
        return self.exempt(peer[0]) and self.exempt(source[0])

    def _refuse_stranger(self, request: Request, tx: ServerTransaction, source: Addr) -> None:
        self.transport.warn.warning(
            "sip_not_dialog_peer", method=request.method, peer=f"{source[0]}:{source[1]}"
        )
        tx.respond(make_response(request, 403, to_tag=tx.to_tag or new_tag()))

    def _source_refusal(self, source: Addr) -> tuple[int, list[tuple[str, str]]] | None:
        """Per-source cap, and the slots kept for trunks (a flood from one
        address must not take every slot)."""
        if self.exempt(source[0]):
            return None
        busy = [0, 0]  # calls from this source, calls in all
        for call in self.calls:
            busy[0] += same_ip(call.dialog.peer[0], source[0])
            busy[1] += 1
        reserved = self.config.trunk_reserved_calls if self.config.trunks else 0
        if (
            busy[0] >= self.config.max_calls_per_source
            or busy[1] >= self.config.max_calls - reserved
        ):
            return 503, [("Retry-After", "30")]
        return None

    # ------------------------------------------------------------- admission

    def _allowed(self, request: Request, host: str) -> bool:
        """The allowlist — or a peer we called ourselves, inside that dialog
        (an agent's phone must be able to BYE the bridged leg we placed)."""
        if self._allowlist.allows(host):
            return True
        leg = self.dialogs.match(request)
        return (
            leg is not None and not isinstance(leg, SipCall) and same_ip(leg.dialog.peer[0], host)
        )

    def _forbid(self, request: Request, source: Addr) -> None:
        """403, statelessly (§8.2.7): strangers get no transaction state to fill."""
        _event("sip_forbidden", logging.WARNING, peer=source[0], method=request.method)
        if request.method != "ACK":
            response = make_response(request, 403, to_tag=new_tag())
            self.send(bytes(response), response_address(request, source))

    def _screen(self, request: Request) -> tuple[int, list[tuple[str, str]]] | None:
        """§8.2 checks, in order: hops, method, extensions (the allowlist came first)."""
        allow = [("Allow", ", ".join(ALLOWED_METHODS))]
        if request.max_forwards == 0:
            return 483, []
        if request.method not in KNOWN_METHODS:
            return 501, allow
        if request.method not in ALLOWED_METHODS:
            return 405, allow
        unsupported = [ext for ext in request.require if ext not in SUPPORTED_EXTENSIONS]
        if unsupported and request.method != "CANCEL":
            return 420, [("Unsupported", ", ".join(unsupported))]
        return None

    def _admit_call(self, invite: Request) -> tuple[int, list[tuple[str, str]]] | None:
        """Why a new INVITE cannot become a call (a final code and headers), or None."""
        if self._merged(invite):
            return 482, []
        if not self.taking_calls:
            return 503, [("Retry-After", "30")]
        content_type = (
            (invite.headers.get("Content-Type") or "application/sdp").split(";")[0].strip()
        )
        if invite.body and content_type.lower() != "application/sdp":
            return 415, [("Accept", "application/sdp")]
        return None

    def _merged(self, invite: Request) -> bool:
        """§8.2.2.2: the same INVITE reaching us twice by different paths."""
        ident = (invite.call_id, header_tag(invite.headers["From"]), invite.cseq.sequence)
        return any(
            (c.sip_call_id, c.dialog.remote_tag, c.dialog.remote_cseq) == ident
            and c.state is CallState.RINGING
            for c in self.calls
        )

    # -------------------------------------------------------------- requests

    def _dispatch(self, request: Request, tx: ServerTransaction, source: Addr) -> None:
        rejection = self._screen(request)
        if rejection:
            code, headers = rejection
            tx.respond(make_response(request, code, to_tag=new_tag(), headers=headers))
        elif request.method == "CANCEL":
            self._on_cancel(request, tx, source)
        elif header_tag(request.headers["To"]):
            self._in_dialog(request, tx, source)
        elif request.method == "INVITE":
            assert isinstance(tx, InviteServerTransaction)
            self._new_call(request, tx, source)
        elif request.method == "OPTIONS":
            # Kamailio's dispatcher probes with OPTIONS: 503 takes us out of rotation.
            code = 200 if self.taking_calls else 503
            tx.respond(
                make_response(request, code, to_tag=new_tag(), headers=self.capability_headers())
            )
        else:
            tx.respond(make_response(request, 481, to_tag=new_tag()))

    def _new_call(self, invite: Request, tx: InviteServerTransaction, source: Addr) -> None:
        refusal = self._admit_call(invite) or self._source_refusal(source)
        if refusal:
            code, headers = refusal
            tx.respond(make_response(invite, code, to_tag=new_tag(), headers=headers))
            return
        try:
            call = SipCall(self, invite, tx, source)
        except ValueError as exc:  # a Contact or Record-Route that does not parse
            warning = [("Warning", '399 voicebot "unparsable Contact or Record-Route"')]
            tx.respond(make_response(invite, 400, to_tag=new_tag(), headers=warning))
            self.transport.warn.warning("sip_bad_invite", error=repr(exc)[:200])
            return
        tx.respond(make_response(invite, 100))
        self.dialogs.track(call)
        self.dialogs.register(call)
        call.log.event(
            "sip_invite",
            sip_call_id=invite.call_id,
            caller_id=call.caller_id,
            to=str(invite.uri),
            peer=f"{source[0]}:{source[1]}",
        )
        tx.owner = call
        self.spawn(call.answer())

    def _on_cancel(self, cancel: Request, tx: ServerTransaction, source: Addr) -> None:
        invite_tx = self.transactions.invite_transaction(cancel)
        if invite_tx is None:
            tx.respond(make_response(cancel, 481, to_tag=new_tag()))
            return
        if isinstance(invite_tx.owner, SipCall) and not self._from_peer(invite_tx.owner, source):
            self._refuse_stranger(cancel, tx, source)
            return
        tx.respond(make_response(cancel, 200, to_tag=invite_tx.to_tag or new_tag()))
        if isinstance(invite_tx.owner, SipCall):
            invite_tx.owner.cancel()

    def _in_dialog(self, request: Request, tx: ServerTransaction, source: Addr) -> None:
        leg = self.dialogs.match(request)
        if leg is None:
            tx.respond(make_response(request, 481))
        elif not self._from_peer(leg, source):
            self._refuse_stranger(request, tx, source)
        else:
            leg.on_request(request, tx)

    def _on_ack(self, ack: Request, source: Addr) -> None:
        if self.transactions.absorb_ack(ack):
            return  # ACK for a non-2xx final
        leg = self.dialogs.match(ack)
        if leg is not None and self._from_peer(leg, source):
            leg.on_ack(ack)

    # ------------------------------------------ the UserAgent port, for legs

    def send(self, data: bytes, addr: Addr) -> None:
        self.transport.send(data, addr)

    def send_request(self, request: Request, destination: Addr) -> NonInviteClientTransaction:
        """Send a non-INVITE request (BYE, REFER, CANCEL) reliably."""
        return self.transactions.send_request(request, destination)

    def send_invite(
        self, request: Request, destination: Addr, on_response: Callable[[Response], None]
    ) -> InviteClientTransaction:
        """Send an INVITE (the agent leg of a bridge) through a client transaction."""
        return self.transactions.send_invite(request, destination, on_response)

    def add_leg(self, leg: DialogUser) -> None:
        """Track a leg we placed, so shutdown hangs it up like any call."""
        self.dialogs.track(leg)

    def register_dialog(self, leg: DialogUser) -> None:
        """The leg's dialog exists (2xx received): in-dialog requests now reach it."""
        self.dialogs.register(leg)

    def forget(self, leg: DialogUser) -> None:
        """The call ended: it no longer matches in-dialog requests."""
        self.dialogs.forget(leg)

    @property
    def rtp_host(self) -> str:
        return self.config.rtp_host or self.config.listen_host

    async def bind_rtp(self, media: MediaSession) -> int:
        return await media.bind(self.rtp_host, self.allocator)

    def advertised_host(self, peer_ip: str) -> str:
        """The address we put in Contact/Via/SDP for this peer."""
        return self.transport.advertised_host(peer_ip)

    def via_address(self, peer_ip: str) -> Addr:
        return self.transport.via_address(peer_ip)

    def contact(self, peer_ip: str) -> str:
        host = bracket(self.advertised_host(peer_ip))
        return f"<{URI(scheme='sip', host=host, port=self.port, user='voicebot')}>"

    def dialog_headers(self, peer_ip: str) -> list[tuple[str, str]]:
        """Headers of dialog-creating responses (18x/2xx to INVITE)."""
        return [("Contact", self.contact(peer_ip)), *self.capability_headers()]

    def capability_headers(self) -> list[tuple[str, str]]:
        return [
            ("Allow", ", ".join(ALLOWED_METHODS)),
            ("Accept", "application/sdp"),
            ("Server", self.config.user_agent),
        ]

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def start_handler(self, call: ConfirmedCall) -> None:
        task = asyncio.create_task(self._run_handler(call), name=f"sip-call-{call.call_id}")
        self._handlers.add(task)
        task.add_done_callback(self._handlers.discard)

    async def _run_handler(self, call: ConfirmedCall) -> None:
        try:
            await self._on_call(call)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception(format_event("handler_error", call_id=call.call_id, error=repr(exc)))
        finally:
            await call.handler_returned()
