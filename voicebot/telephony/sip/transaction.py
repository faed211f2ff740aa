"""RFC 3261 §17 transactions over UDP, with their timers.

The state machines only; :mod:`~voicebot.telephony.sip.transaction_layer`
keeps the tables that match messages to them.

* :class:`InviteServerTransaction` — §17.2.1 with RFC 6026's *Accepted*
  state: provisional responses are resent on INVITE retransmissions, non-2xx
  finals are retransmitted on Timer G until the ACK (Timer H gives up,
  Timer I absorbs late ACKs); after a 2xx the INVITE retransmissions are
  absorbed for Timer L while the UA core resends the 2xx itself.
* :class:`NonInviteServerTransaction` — §17.2.2: the final response is resent
  for retransmitted requests until Timer J.
* :class:`NonInviteClientTransaction` — §17.1.2 for BYE/REFER/CANCEL:
  Timer E retransmits, Timer F times out, Timer K absorbs stray responses.
* :class:`InviteClientTransaction` — §17.1.1 (+ RFC 6026) for the INVITE of
  a bridged transfer's agent leg: Timers A–D and M.
* :class:`TwoXxRetransmitter` — §13.3.1.4: the UAS core resends its 2xx to
  an INVITE (T1 doubling to T2) until the ACK, and gives up after 64·T1.

Timers are ``loop.call_later`` handles, so hundreds cost nothing.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Self

from sipmessage import Request, Response

from voicebot.core.logs import format_event
from voicebot.core.net import Addr

log = logging.getLogger("voicebot.telephony.sip")

Send = Callable[[bytes, Addr], None]


@dataclass(frozen=True)
class Timers:
    """RFC 3261 §17.1.1.1 values; tests shrink T1 to run fast."""

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0

    @property
    def timeout(self) -> float:
        """64·T1: Timers B, F, H, J, L."""
        return 64 * self.t1


class State(Enum):
    CALLING = "calling"
    TRYING = "trying"
    PROCEEDING = "proceeding"
    COMPLETED = "completed"
    CONFIRMED = "confirmed"
    ACCEPTED = "accepted"
    TERMINATED = "terminated"


class _Timed:
    """Owns named timer handles so a terminated transaction leaves none behind.

    ``_interval`` is the current retransmission interval, for :meth:`_backoff`.
    """

    def __init__(self) -> None:
        self._handles: dict[str, asyncio.TimerHandle] = {}
        self._interval = 0.0

    def _start(self, name: str, delay: float, callback: Callable[[], None]) -> None:
        self._stop(name)
        self._handles[name] = asyncio.get_running_loop().call_later(delay, callback)

    def _stop(self, *names: str) -> None:
        for name in names:
            handle = self._handles.pop(name, None)
            if handle:
                handle.cancel()

    def stop_timers(self) -> None:
        """Cancel every pending timer (shutdown; the transaction is dropped)."""
        for handle in self._handles.values():
            handle.cancel()
        self._handles.clear()

    def _backoff(self, name: str, callback: Callable[[], None], cap: float = math.inf) -> None:
        """After a retransmission: double the interval (up to ``cap``), arm ``name`` again."""
        self._interval = min(2 * self._interval, cap)
        self._start(name, self._interval, callback)


class _Transaction(_Timed):
    """Common to every transaction: its request, where it sends, its state, termination."""

    initial_state: State

    def __init__(
        self,
        request: Request,
        destination: Addr,
        send: Send,
        timers: Timers,
        on_terminated: Callable[[Self], None] = lambda tx: None,
    ) -> None:
        super().__init__()
        self.request = request
        self.destination = destination
        self.state = self.initial_state
        self._send = send
        self._timers = timers
        self._on_terminated = on_terminated

    def _terminate(self) -> None:
        if self.state is not State.TERMINATED:
            self.state = State.TERMINATED
            self.stop_timers()
            self._on_terminated(self)


class ServerTransaction(_Transaction):
    """Common part: where responses go, the last one sent."""

    initial_state = State.PROCEEDING
    last_response: Response | None = None
    to_tag = ""  # set by the UA core
    owner: object = None  # the UA core's object answering it (a call), for CANCEL
    _wire = b""

    @property
    def final(self) -> bool:
        return self.last_response is not None and self.last_response.code >= 200

    def _transmit(self, response: Response) -> None:
        self.last_response = response
        self._wire = bytes(response)
        self._send(self._wire, self.destination)

    def _resend(self) -> None:
        if self._wire:
            self._send(self._wire, self.destination)

    def arm_safety(self, delay: float, fallback: Callable[[], Response]) -> None:
        """If no final response is sent within ``delay``, send ``fallback()``
        (a 500): whatever went wrong above, the transaction cannot live forever."""
        self._start("safety", delay, lambda: self._safety(fallback))

    def _safety(self, fallback: Callable[[], Response]) -> None:
        if not self.final and self.state is not State.TERMINATED:
            log.warning(format_event("sip_transaction_stuck", method=self.request.method))
            self.respond(fallback())

    def respond(self, response: Response) -> None:
        raise NotImplementedError

    def _terminate(self) -> None:
        super()._terminate()
        # The call keeps its INVITE transaction and we keep the call: letting go here
        # breaks that cycle, so both are freed by reference counting, at once.
        self.owner = None


class InviteServerTransaction(ServerTransaction):
    """§17.2.1 (+ RFC 6026): INVITE received, responses reliably delivered."""

    def __init__(
        self,
        request: Request,
        destination: Addr,
        send: Send,
        timers: Timers,
        on_terminated: Callable[[ServerTransaction], None] = lambda tx: None,
        on_timeout: Callable[[], None] = lambda: None,
    ) -> None:
        super().__init__(request, destination, send, timers, on_terminated)
        self._on_timeout = on_timeout

    def respond(self, response: Response) -> None:
        if self.state is not State.PROCEEDING:
            log.debug(format_event("sip_late_response", code=response.code, state=self.state.value))
            return
        self._transmit(response)
        if 200 <= response.code < 300:
            self.state = State.ACCEPTED
            self._start("L", self._timers.timeout, self._terminate)
        elif response.code >= 300:
            self.state = State.COMPLETED
            self._interval = self._timers.t1
            self._start("G", self._interval, self._timer_g)
            self._start("H", self._timers.timeout, self._timer_h)

    def on_retransmission(self) -> None:
        """A retransmitted INVITE: resend our last response (absorbed once accepted)."""
        if self.state in (State.PROCEEDING, State.COMPLETED):
            self._resend()

    def on_ack(self) -> bool:
        """ACK for a non-2xx final; True when this transaction consumed it."""
        if self.state is State.COMPLETED:
            self.state = State.CONFIRMED
            self._stop("G", "H")
            self._start("I", self._timers.t4, self._terminate)
            return True
        return self.state is State.CONFIRMED

    def _timer_g(self) -> None:
        self._resend()
        self._backoff("G", self._timer_g, self._timers.t2)

    def _timer_h(self) -> None:
        log.info(format_event("sip_ack_timeout", sip_call_id=self.request.call_id))
        self._on_timeout()
        self._terminate()


class NonInviteServerTransaction(ServerTransaction):
    """§17.2.2: answer once, repeat the answer to retransmissions until Timer J."""

    def respond(self, response: Response) -> None:
        if self.state in (State.COMPLETED, State.TERMINATED):
            return
        self._transmit(response)
        if response.code >= 200:
            self.state = State.COMPLETED
            self._start("J", self._timers.timeout, self._terminate)

    def on_retransmission(self) -> None:
        self._resend()


class TransactionTimeout(TimeoutError):
    """No final response before Timer F (the peer is gone)."""


class _ClientTransaction(_Transaction):
    """A request we send (``_wire``): retransmitted on one timer until another gives up."""

    _wire: bytes

    def _send_first(
        self,
        retransmit: str,
        on_retransmit: Callable[[], None],
        timeout: str,
        on_timeout: Callable[[], None],
    ) -> None:
        """Send the request; arm its retransmission timer (T1) and its timeout (64·T1)."""
        self._interval = self._timers.t1
        self._send(self._wire, self.destination)
        self._start(retransmit, self._interval, on_retransmit)
        self._start(timeout, self._timers.timeout, on_timeout)


class NonInviteClientTransaction(_ClientTransaction):
    """§17.1.2: send BYE/REFER/NOTIFY reliably over UDP; await the final response."""

    initial_state = State.TRYING

    def __init__(
        self,
        request: Request,
        destination: Addr,
        send: Send,
        timers: Timers,
        on_terminated: Callable[[NonInviteClientTransaction], None] = lambda tx: None,
    ) -> None:
        super().__init__(request, destination, send, timers, on_terminated)
        self.result: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self._wire = bytes(request)

    def start(self) -> None:
        self._send_first("E", self._timer_e, "F", self._timer_f)

    def on_response(self, response: Response) -> None:
        if self.state in (State.COMPLETED, State.TERMINATED):
            return  # a retransmitted final, absorbed during Timer K
        if response.code < 200:
            self.state = State.PROCEEDING
            return
        self.state = State.COMPLETED
        self._stop("E", "F")
        if not self.result.done():
            self.result.set_result(response)
        self._start("K", self._timers.t4, self._terminate)

    def _timer_e(self) -> None:
        self._send(self._wire, self.destination)
        # §17.1.2.2: doubling up to T2 while Trying; every T2 once Proceeding.
        if self.state is State.PROCEEDING:
            self._interval = self._timers.t2
        self._backoff("E", self._timer_e, self._timers.t2)

    def _timer_f(self) -> None:
        if not self.result.done():
            self.result.set_exception(TransactionTimeout(f"no response to {self.request.method}"))
        self._terminate()


class TwoXxRetransmitter(_Timed):
    """§13.3.1.4: resend the 2xx to an INVITE until its ACK arrives."""

    def __init__(
        self,
        wire: bytes,
        destination: Addr,
        send: Send,
        timers: Timers,
        on_give_up: Callable[[], None],
    ) -> None:
        super().__init__()
        self._wire, self._destination = wire, destination
        self._send, self._timers, self._on_give_up = send, timers, on_give_up
        self._interval = timers.t1
        self.retransmissions = 0

    def start(self) -> None:
        self._start("G", self._interval, self._tick)
        self._start("H", self._timers.timeout, self._give_up)

    def acked(self) -> None:
        self.stop_timers()

    def _tick(self) -> None:
        self._send(self._wire, self._destination)
        self.retransmissions += 1
        self._backoff("G", self._tick, self._timers.t2)

    def _give_up(self) -> None:
        self.stop_timers()
        self._on_give_up()


class InviteClientTransaction(_ClientTransaction):
    """§17.1.1 (+ RFC 6026 *Accepted*): one INVITE we send, over UDP.

    Every response that matters reaches ``on_response`` (the UA core):
    provisionals, the first non-2xx final, and every 2xx (retransmissions
    included, so the core re-ACKs them).  Timer B ends in a synthetic 408.
    """

    initial_state = State.CALLING

    def __init__(
        self,
        request: Request,
        destination: Addr,
        send: Send,
        timers: Timers,
        on_response: Callable[[Response], None],
        on_terminated: Callable[[InviteClientTransaction], None] = lambda tx: None,
    ) -> None:
        super().__init__(request, destination, send, timers, on_terminated)
        self._deliver = on_response
        self._wire = bytes(request)
        self._ack: bytes = b""

    def start(self) -> None:
        self._send_first("A", self._timer_a, "B", self._timer_b)

    def on_response(self, response: Response) -> None:
        if self.state is State.TERMINATED:
            return
        if response.code < 200:
            self._provisional(response)
        elif response.code < 300:
            self._accepted(response)
        else:
            self._rejected(response)

    def _provisional(self, response: Response) -> None:
        if self.state in (State.CALLING, State.PROCEEDING):
            self.state = State.PROCEEDING
            self._stop("A", "B")  # §17.1.1.2: only the TU (CANCEL) ends a ringing INVITE
            self._deliver(response)

    def _accepted(self, response: Response) -> None:
        if self.state in (State.CALLING, State.PROCEEDING):
            self.state = State.ACCEPTED
            self._stop("A", "B")
            self._start("M", self._timers.timeout, self._terminate)
        if self.state is State.ACCEPTED:
            self._deliver(response)

    def _rejected(self, response: Response) -> None:
        if self.state is State.COMPLETED:
            self._send(self._ack, self.destination)  # the final again: our ACK was lost
            return
        if self.state not in (State.CALLING, State.PROCEEDING):
            return
        self.state = State.COMPLETED
        self._stop("A", "B")
        self._ack = bytes(ack_for_failure(self.request, response))
        self._send(self._ack, self.destination)
        self._start("D", self._timers.timeout, self._terminate)
        self._deliver(response)

    def _timer_a(self) -> None:
        if self.state is not State.CALLING:
            return
        self._send(self._wire, self.destination)
        self._backoff("A", self._timer_a)  # §17.1.1.2: Timer A doubles without the T2 cap

    def _timer_b(self) -> None:
        if self.state is State.CALLING:
            log.info(format_event("sip_invite_timeout", sip_call_id=self.request.call_id))
            self._deliver(_timeout_response(self.request))
            self._terminate()

    def terminate(self) -> None:
        """The UA core is done with it (the call ended): stop every timer."""
        self._terminate()


def ack_for_failure(invite: Request, response: Response) -> Request:
    """§17.1.1.3: the ACK a client transaction sends for a 300–699 final."""
    ack = Request("ACK", invite.uri)
    ack.headers.add("Via", invite.headers.getlist("Via")[0])
    ack.headers.add("Max-Forwards", "70")
    ack.headers.add("From", invite.headers["From"])
    ack.headers.add("To", response.headers["To"])
    ack.headers.add("Call-ID", invite.call_id)
    ack.headers.add("CSeq", f"{invite.cseq.sequence} ACK")
    for route in invite.headers.getlist("Route"):
        ack.headers.add("Route", route)
    ack.headers.add("Content-Length", "0")
    return ack


def _timeout_response(invite: Request) -> Response:
    """What Timer B means to the UA core: a 408 nobody sent (§8.1.3.1)."""
    response = Response(408, "Request Timeout")
    for name in ("From", "To", "Call-ID", "CSeq"):
        response.headers.set(name, invite.headers[name])
    response.headers.set("Content-Length", "0")
    return response
