"""The transaction layer: which transaction a message belongs to, and new ones.

Kamailio's ``tm`` and the ``sip_strans``/``sip_ctrans`` tables of baresip's
``re`` play this part.  The user agent above asks it for a server
transaction for each request it accepts (a retransmission is absorbed here
and never reaches the user agent), hands it every response (matched to the
client transaction that sent the request, §17.1.3), and sends BYE, REFER,
CANCEL and INVITE through it so they are retransmitted until answered.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from sipmessage import Request, Response

from voicebot.core.net import Addr
from voicebot.telephony.sip.message import (
    MAGIC_COOKIE,
    header_tag,
    make_response,
    new_tag,
    response_address,
    transaction_branch,
)
from voicebot.telephony.sip.transaction import (
    InviteClientTransaction,
    InviteServerTransaction,
    NonInviteClientTransaction,
    NonInviteServerTransaction,
    Send,
    ServerTransaction,
    Timers,
)

ClientTransaction = NonInviteClientTransaction | InviteClientTransaction


class TransactionLayer:
    """Server and client transactions in flight, keyed as §17.1.3 and §17.2.3 say."""

    def __init__(self, send: Send, timers: Timers) -> None:
        self.timers = timers
        self._send = send
        self._server: dict[tuple[Any, ...], ServerTransaction] = {}
        self._client: dict[tuple[str, str], ClientTransaction] = {}

    # ------------------------------------------------------------- requests

    def server_transaction(self, request: Request, source: Addr) -> ServerTransaction | None:
        """A new server transaction for ``request`` (not an ACK), or None when
        the request retransmits one in flight (its last response is resent)."""
        key = server_key(request)
        existing = self._server.get(key)
        if existing:
            existing.on_retransmission()
            return None
        tx_class = (
            InviteServerTransaction if request.method == "INVITE" else NonInviteServerTransaction
        )
        tx = tx_class(
            request, response_address(request, source), self._send, self.timers, self._forget_server
        )
        self._server[key] = tx
        tx.arm_safety(self.timers.timeout, lambda: make_response(request, 500, to_tag=new_tag()))
        return tx

    def invite_transaction(self, request: Request) -> ServerTransaction | None:
        """The INVITE server transaction an ACK or a CANCEL refers to."""
        return self._server.get(server_key(request, method="INVITE"))

    def absorb_ack(self, ack: Request) -> bool:
        """True when ``ack`` acknowledges a non-2xx final (the transaction's
        business, §17.2.1); False for the ACK of a 2xx, which is the dialog's."""
        invite_tx = self.invite_transaction(ack)
        return isinstance(invite_tx, InviteServerTransaction) and invite_tx.on_ack()

    # ------------------------------------------------------------ responses

    def on_response(self, response: Response) -> None:
        """A response: to the client transaction that sent its request (strays dropped)."""
        tx = self._client.get((transaction_branch(response), response.cseq.method))
        if tx is not None:
            tx.on_response(response)

    def send_request(self, request: Request, destination: Addr) -> NonInviteClientTransaction:
        """Send a non-INVITE request (BYE, REFER, CANCEL) reliably."""
        tx = NonInviteClientTransaction(
            request, destination, self._send, self.timers, self._forget_client
        )
        tx.result.add_done_callback(_consume)
        self._client[(transaction_branch(request), request.method)] = tx
        tx.start()
        return tx

    def send_invite(
        self, request: Request, destination: Addr, on_response: Callable[[Response], None]
    ) -> InviteClientTransaction:
        """Send an INVITE (the agent leg of a bridge) through a client transaction."""
        tx = InviteClientTransaction(
            request, destination, self._send, self.timers, on_response, self._forget_client
        )
        self._client[(transaction_branch(request), "INVITE")] = tx
        tx.start()
        return tx

    # ------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Shutdown: stop every transaction's timers (nothing is resent after)."""
        for tx in list(self._client.values()):
            tx.stop_timers()
        for stx in list(self._server.values()):
            stx.stop_timers()

    def _forget_server(self, tx: ServerTransaction) -> None:
        key = server_key(tx.request)
        if self._server.get(key) is tx:
            del self._server[key]

    def _forget_client(self, tx: ClientTransaction) -> None:
        self._client.pop((transaction_branch(tx.request), tx.request.method), None)


def _consume(future: asyncio.Future[Response]) -> None:
    """Fire-and-forget requests (CANCEL, a stray fork's BYE): read the outcome
    so an unanswered one does not log 'exception was never retrieved'."""
    if not future.cancelled():
        future.exception()


def server_key(request: Request, method: str | None = None) -> tuple[Any, ...]:
    """§17.2.3: branch + sent-by + method (ACK and CANCEL look up their INVITE)."""
    top = request.via[0]
    # The transport stamped where the request really came from: part of the
    # key, so a stranger who copies a branch cannot own (or answer) the
    # caller's transaction.
    params = top.parameters
    sent_by = (top.host, top.port, params.get("received"), params.get("rport"))
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
