"""The SIP user agent server: a UDP socket, the transaction layer, and calls.

Every datagram goes through one synchronous path (parse → transaction match →
dispatch) in the event loop, so there is no locking; anything slow (binding
RTP ports, ringing, running the caller's handler) is a task.  Every failure
inside that path is caught and logged: a hostile datagram can cost us at most
the datagram.

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
import contextlib
import ipaddress
import logging
import socket
from collections.abc import Awaitable, Callable
from typing import Any

from sipmessage import URI, Request, Response

from voicebot.logs import format_event
from voicebot.telephony.channel import CallChannel
from voicebot.telephony.rtp.session import PortAllocator
from voicebot.telephony.sip.call import CallState, SipCall
from voicebot.telephony.sip.config import PeerAllowlist, SipConfig
from voicebot.telephony.sip.leg import CallLeg
from voicebot.telephony.sip.message import (
    ALLOWED_METHODS,
    KNOWN_METHODS,
    MAGIC_COOKIE,
    RawRequest,
    SipParseError,
    header_tag,
    make_response,
    new_tag,
    parse_message,
    response_address,
    stamp_via,
    transaction_branch,
)
from voicebot.telephony.sip.transaction import (
    InviteClientTransaction,
    InviteServerTransaction,
    NonInviteClientTransaction,
    NonInviteServerTransaction,
    ServerTransaction,
    Timers,
)

log = logging.getLogger("voicebot.telephony.sip")

CallHandler = Callable[[CallChannel], Awaitable[None]]
Addr = tuple[str, int]
ClientTransaction = NonInviteClientTransaction | InviteClientTransaction
SUPPORTED_EXTENSIONS: frozenset[str] = frozenset()  # we honour no Require'd extension
HANDLER_CANCEL_WAIT_S = 2.0


def _event(event: str, level: int = logging.INFO, **fields: Any) -> None:
    log.log(level, format_event(event, **fields))


class _SipProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: SipServer) -> None:
        self.server = server

    def datagram_received(self, data: bytes, addr: Addr) -> None:
        try:
            self.server.datagram_received(data, addr[:2])
        except Exception:
            log.exception(format_event("sip_internal_error", peer=f"{addr[0]}:{addr[1]}"))

    def error_received(self, exc: Exception) -> None:
        log.debug(format_event("sip_socket_error", error=str(exc)))


class SipServer:
    """Answers SIP calls on UDP and runs ``on_call(channel)`` for each."""

    def __init__(self, config: SipConfig, on_call: CallHandler) -> None:
        config.validate()
        self.config = config
        self.logger = log
        self.timers = Timers(config.t1_s, config.t2_s, config.t4_s)
        self.allocator = PortAllocator(config.rtp_port_min, config.rtp_port_max)
        self.codecs = tuple(c.upper() for c in config.codecs)
        self._on_call = on_call
        self._allowlist = PeerAllowlist(config.allowed_peers)
        self._transport: asyncio.DatagramTransport | None = None
        self._port = config.listen_port
        self._accepting = True
        self._server_txs: dict[tuple[Any, ...], ServerTransaction] = {}
        self._client_txs: dict[tuple[str, str], ClientTransaction] = {}
        self._dialogs: dict[tuple[str, str, str], CallLeg] = {}
        self._calls: set[CallLeg] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self._tasks: set[asyncio.Task[Any]] = set()

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Bind the UDP socket (port 0 picks a free one; read :attr:`port`)."""
        loop = asyncio.get_running_loop()
        self._transport, _ = await loop.create_datagram_endpoint(
            lambda: _SipProtocol(self),
            local_addr=(self.config.listen_host, self.config.listen_port),
        )
        self._port = self._transport.get_extra_info("sockname")[1]
        _event("sip_listening", host=self.config.listen_host, port=self._port)

    @property
    def port(self) -> int:
        return self._port

    @property
    def calls(self) -> list[SipCall]:
        """Callers' calls not yet ended (ringing, answered, in progress or bridged)."""
        return [c for c in self._calls if isinstance(c, SipCall) and not c.ended]

    @property
    def legs(self) -> list[CallLeg]:
        """Every live leg, agent legs of bridged transfers included."""
        return [c for c in self._calls if not c.ended]

    def stop_accepting(self) -> None:
        """New INVITEs get 503 from now on; calls in progress go on."""
        self._accepting = False

    async def close(self, grace_s: float = 0.0) -> None:
        """Shut down: give handlers ``grace_s`` to finish, BYE every call left,
        cancel the handlers, close the socket."""
        self.stop_accepting()
        if grace_s > 0 and self._handlers:
            await asyncio.wait(set(self._handlers), timeout=grace_s)
        calls = list(self._calls)
        if calls:
            await asyncio.gather(
                *(c.hangup("server shutting down") for c in calls), return_exceptions=True
            )
        await self._cancel_handlers()
        for tx in list(self._client_txs.values()):
            tx._stop_all()
        for stx in list(self._server_txs.values()):
            stx._stop_all()
        if self._transport:
            self._transport.close()
            self._transport = None
        _event("sip_closed", port=self._port)

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

    # ------------------------------------------------------------- transport

    def send(self, data: bytes, addr: Addr) -> None:
        if self._transport:
            self._transport.sendto(data, addr)

    def datagram_received(self, data: bytes, addr: Addr) -> None:
        if len(data) > self.config.max_message_bytes:
            _event(
                "sip_dropped",
                logging.WARNING,
                peer=f"{addr[0]}:{addr[1]}",
                reason="oversized",
                size=len(data),
            )
            return
        if not data.strip(b"\r\n\0 "):
            return  # keep-alive (RFC 5626 CRLF ping)
        try:
            message = parse_message(data)
        except SipParseError as exc:
            self._malformed(data, addr, str(exc))
            return
        if isinstance(message, Response):
            self._on_response(message)
        else:
            self._on_request(message, addr)

    def _malformed(self, data: bytes, addr: Addr, reason: str) -> None:
        raw = RawRequest.scan(data) if self._allowlist.allows(addr[0]) else None
        _event(
            "sip_malformed",
            logging.WARNING,
            peer=f"{addr[0]}:{addr[1]}",
            reason=reason,
            answered=bool(raw),
        )
        if raw:
            self.send(raw.bad_request(reason, new_tag()), addr)

    # -------------------------------------------------------------- requests

    def _on_request(self, request: Request, addr: Addr) -> None:
        stamp_via(request, addr)
        if not self._allowed(request, addr[0]):
            self._forbid(request, addr)
            return
        if request.method == "ACK":
            self._on_ack(request)
            return
        key = _server_key(request)
        existing = self._server_txs.get(key)
        if existing:
            existing.on_retransmission()
            return
        tx_class = (
            InviteServerTransaction if request.method == "INVITE" else NonInviteServerTransaction
        )
        tx = tx_class(
            request, response_address(request, addr), self.send, self.timers, self._forget_server_tx
        )
        self._server_txs[key] = tx
        self._dispatch(request, tx, addr)

    def _allowed(self, request: Request, host: str) -> bool:
        """The allowlist — or a peer we called ourselves, inside that dialog
        (an agent's phone must be able to BYE the bridged leg we placed)."""
        if self._allowlist.allows(host):
            return True
        leg = self._dialogs.get(_dialog_key(request))
        return leg is not None and not isinstance(leg, SipCall) and leg.dialog.peer[0] == host

    def _forbid(self, request: Request, addr: Addr) -> None:
        """403, statelessly (§8.2.7): strangers get no transaction state to fill."""
        _event("sip_forbidden", logging.WARNING, peer=addr[0], method=request.method)
        if request.method != "ACK":
            response = make_response(request, 403, to_tag=new_tag())
            self.send(bytes(response), response_address(request, addr))

    def _dispatch(self, request: Request, tx: ServerTransaction, addr: Addr) -> None:
        rejection = self._screen(request)
        if rejection:
            code, headers = rejection
            tx.respond(make_response(request, code, to_tag=new_tag(), headers=headers))
        elif request.method == "CANCEL":
            self._on_cancel(request, tx)
        elif header_tag(request.headers["To"]):
            self._in_dialog(request, tx)
        elif request.method == "INVITE":
            assert isinstance(tx, InviteServerTransaction)
            self._new_call(request, tx, addr)
        elif request.method == "OPTIONS":
            tx.respond(
                make_response(request, 200, to_tag=new_tag(), headers=self.capability_headers())
            )
        else:
            tx.respond(make_response(request, 481, to_tag=new_tag()))

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

    def _new_call(self, invite: Request, tx: InviteServerTransaction, addr: Addr) -> None:
        if self._merged(invite):
            tx.respond(make_response(invite, 482, to_tag=new_tag()))
            return
        if not self._accepting or len(self.calls) >= self.config.max_calls:
            tx.respond(
                make_response(invite, 503, to_tag=new_tag(), headers=[("Retry-After", "30")])
            )
            return
        content_type = (
            (invite.headers.get("Content-Type") or "application/sdp").split(";")[0].strip()
        )
        if invite.body and content_type.lower() != "application/sdp":
            tx.respond(
                make_response(
                    invite, 415, to_tag=new_tag(), headers=[("Accept", "application/sdp")]
                )
            )
            return
        tx.respond(make_response(invite, 100))
        call = SipCall(self, invite, tx, addr)
        self._calls.add(call)
        self._dialogs[call.dialog.key] = call
        call.log.event(
            "sip_invite",
            sip_call_id=invite.call_id,
            caller_id=call.caller_id,
            to=str(invite.uri),
            peer=f"{addr[0]}:{addr[1]}",
        )
        tx.owner = call  # type: ignore[attr-defined]
        self._spawn(call.answer())

    def _merged(self, invite: Request) -> bool:
        """§8.2.2.2: the same INVITE reaching us twice by different paths."""
        ident = (invite.call_id, header_tag(invite.headers["From"]), invite.cseq.sequence)
        return any(
            (c.sip_call_id, c.dialog.remote_tag, c.dialog.remote_cseq) == ident
            and c.state is CallState.RINGING
            for c in self._calls
        )

    def _on_cancel(self, cancel: Request, tx: ServerTransaction) -> None:
        invite_tx = self._server_txs.get(_server_key(cancel, method="INVITE"))
        call: SipCall | None = getattr(invite_tx, "owner", None)
        if invite_tx is None:
            tx.respond(make_response(cancel, 481, to_tag=new_tag()))
            return
        tx.respond(make_response(cancel, 200, to_tag=invite_tx.to_tag or new_tag()))
        if call is not None:
            call.cancel()

    def _in_dialog(self, request: Request, tx: ServerTransaction) -> None:
        call = self._dialogs.get(_dialog_key(request))
        if call is None:
            tx.respond(make_response(request, 481))
            return
        call.on_request(request, tx)

    def _on_ack(self, ack: Request) -> None:
        invite_tx = self._server_txs.get(_server_key(ack, method="INVITE"))
        if isinstance(invite_tx, InviteServerTransaction) and invite_tx.on_ack():
            return  # ACK for a non-2xx final
        call = self._dialogs.get(_dialog_key(ack))
        if call is not None:
            call.on_ack(ack)

    # ------------------------------------------------------------- responses

    def _on_response(self, response: Response) -> None:
        tx = self._client_txs.get((transaction_branch(response), response.cseq.method))
        if tx is not None:
            tx.on_response(response)

    def send_request(self, request: Request, destination: Addr) -> NonInviteClientTransaction:
        """Send a non-INVITE request (BYE, REFER, CANCEL) reliably."""
        tx = NonInviteClientTransaction(
            request, destination, self.send, self.timers, self._forget_client_tx
        )
        tx.result.add_done_callback(_consume)
        self._client_txs[(transaction_branch(request), request.method)] = tx
        tx.start()
        return tx

    def send_invite(
        self, request: Request, destination: Addr, on_response: Callable[[Response], None]
    ) -> InviteClientTransaction:
        """Send an INVITE (the agent leg of a bridge) through a client transaction."""
        tx = InviteClientTransaction(
            request, destination, self.send, self.timers, on_response, self._forget_client_tx
        )
        self._client_txs[(transaction_branch(request), "INVITE")] = tx
        tx.start()
        return tx

    def add_leg(self, leg: CallLeg) -> None:
        """Track a leg we placed, so shutdown hangs it up like any call."""
        self._calls.add(leg)

    def register_dialog(self, leg: CallLeg) -> None:
        """The leg's dialog exists (2xx received): in-dialog requests now reach it."""
        self._dialogs[leg.dialog.key] = leg

    # ---------------------------------------------------- helpers for calls

    @property
    def rtp_host(self) -> str:
        return self.config.rtp_host or self.config.listen_host

    def advertised_host(self, peer_ip: str) -> str:
        """The address we put in Contact/Via/SDP for this peer."""
        if self.config.public_host:
            return self.config.public_host
        if not _is_wildcard(self.config.listen_host):
            return self.config.listen_host
        return local_address_towards(peer_ip)

    def via_address(self, peer_ip: str) -> Addr:
        return (self.advertised_host(peer_ip), self._port)

    def contact(self, peer_ip: str) -> str:
        host = self.advertised_host(peer_ip)
        host = f"[{host}]" if ":" in host else host
        return f"<{URI(scheme='sip', host=host, port=self._port, user='voicebot')}>"

    def dialog_headers(self, peer_ip: str) -> list[tuple[str, str]]:
        """Headers of dialog-creating responses (18x/2xx to INVITE)."""
        return [("Contact", self.contact(peer_ip)), *self.capability_headers()]

    def capability_headers(self) -> list[tuple[str, str]]:
        return [
            ("Allow", ", ".join(ALLOWED_METHODS)),
            ("Accept", "application/sdp"),
            ("Server", self.config.user_agent),
        ]

    def start_handler(self, call: SipCall) -> None:
        task = asyncio.create_task(self._run_handler(call), name=f"sip-call-{call.call_id}")
        self._handlers.add(task)
        task.add_done_callback(self._handlers.discard)

    async def _run_handler(self, call: SipCall) -> None:
        try:
            await self._on_call(call)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception(format_event("handler_error", call_id=call.call_id, error=repr(exc)))
        finally:
            await call.handler_returned()

    def forget(self, call: CallLeg) -> None:
        """The call ended: it no longer matches in-dialog requests."""
        self._dialogs.pop(call.dialog.key, None)
        self._calls.discard(call)

    def _forget_server_tx(self, tx: ServerTransaction) -> None:
        key = _server_key(tx.request)
        if self._server_txs.get(key) is tx:
            del self._server_txs[key]

    def _forget_client_tx(self, tx: ClientTransaction) -> None:
        self._client_txs.pop((transaction_branch(tx.request), tx.request.method), None)

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _consume(future: asyncio.Future[Response]) -> None:
    """Fire-and-forget requests (CANCEL, a stray fork's BYE): read the outcome
    so an unanswered one does not log 'exception was never retrieved'."""
    if not future.cancelled():
        future.exception()


def _server_key(request: Request, method: str | None = None) -> tuple[Any, ...]:
    """§17.2.3: branch + sent-by + method (ACK and CANCEL look up their INVITE)."""
    top = request.via[0]
    sent_by = (top.host, top.port)
    method = method or request.method
    branch = top.parameters.get("branch") or ""
    if branch.startswith(MAGIC_COOKIE):
        return (branch, sent_by, method)
    # RFC 2543 peers: no unique branch; fall back on the request's identity.
    return (
        request.call_id,
        header_tag(request.headers["From"]),
        request.cseq.sequence,
        sent_by,
        method,
    )


def _dialog_key(request: Request) -> tuple[str, str, str]:
    return (request.call_id, header_tag(request.headers["To"]), header_tag(request.headers["From"]))


def _is_wildcard(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


def local_address_towards(peer_ip: str) -> str:
    """Our address on the route to ``peer_ip`` (a UDP connect sends nothing)."""
    family = socket.AF_INET6 if ":" in peer_ip else socket.AF_INET
    with contextlib.suppress(OSError), socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.connect((peer_ip, 9))
        return str(sock.getsockname()[0])
    return "127.0.0.1"
