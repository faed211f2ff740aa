"""The SIP transport layer (RFC 3261 §18) over UDP: datagrams in, messages up, bytes out.

It owns the socket and nothing else: a datagram is size-checked, parsed and
validated (:func:`~voicebot.telephony.sip.message.parse_message`), a
request's top Via is stamped with where it really came from (§18.2.1), and
the message goes up to a :class:`MessageSink` (the user agent).  Sending is
guarded: a destination a peer wrote into a message must never be able to
close the socket every call shares.

It also knows how we appear to peers (the host and port in Via, Contact and
SDP), since that is the address this socket is reached at.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from typing import Any, Protocol

from sipmessage import Request, Response

from voicebot.core.logs import format_event
from voicebot.core.net import Addr
from voicebot.telephony.addresses import is_wildcard, local_address_towards, sendable
from voicebot.telephony.sip.config import SipConfig
from voicebot.telephony.sip.flood import LogLimiter, SourceLimiter
from voicebot.telephony.sip.message import (
    RawRequest,
    SipParseError,
    new_tag,
    parse_message,
    release_parser_tracebacks,
    stamp_via,
)

log = logging.getLogger("voicebot.telephony.sip")


def _event(event: str, level: int = logging.INFO, **fields: Any) -> None:
    log.log(level, format_event(event, **fields))


class MessageSink(Protocol):
    """Where parsed messages go: the layer above the transport."""

    def admits(self, host: str) -> bool:
        """Whether datagrams from ``host`` are worth parsing at all."""
        ...

    def exempt(self, host: str) -> bool:
        """Whether ``host`` (a carrier trunk) skips the per-source rate limit."""
        ...

    def on_request(self, request: Request, source: Addr) -> None: ...

    def on_response(self, response: Response, source: Addr) -> None: ...

    def on_malformed(self, data: bytes, source: Addr, reason: str) -> None: ...


def header_lines(data: bytes) -> int:
    """Line breaks before the body: a bound on the header count, found without parsing."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        end = data.find(b"\n\n")
    return data.count(b"\n", 0, end if end >= 0 else len(data))


class _SipProtocol(asyncio.DatagramProtocol):
    def __init__(self, transport: SipTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Addr) -> None:
        # A bug met while handling one datagram costs that datagram, logged
        # with its peer, rather than surfacing in asyncio's generic handler.
        try:
            self.transport.datagram_received(data, addr[:2])
        except Exception:
            log.exception(format_event("sip_internal_error", peer=f"{addr[0]}:{addr[1]}"))
        finally:
            release_parser_tracebacks()

    def error_received(self, exc: Exception) -> None:
        log.debug(format_event("sip_socket_error", error=str(exc)))


class SipTransport:
    """One UDP socket carrying SIP for every call."""

    def __init__(self, config: SipConfig, sink: MessageSink) -> None:
        self.config = config
        self._sink = sink
        self._socket: asyncio.DatagramTransport | None = None
        self._port = config.listen_port
        self._limiter = SourceLimiter(config.source_rate, config.source_burst)
        # Stateless 503s to over-budget sources are themselves budgeted.
        answers = max(1.0, config.source_rate / 10)
        self._answers = SourceLimiter(answers, answers)
        self.warn = LogLimiter(log)
        self.dropped: Counter[str] = Counter()
        # Watchers of every datagram sent (metrics count responses by code).
        self.sent_watchers: list[Callable[[bytes], None]] = []

    async def open(self) -> None:
        """Bind the socket (port 0 picks a free one; read :attr:`port`)."""
        loop = asyncio.get_running_loop()
        self._socket, _ = await loop.create_datagram_endpoint(
            lambda: _SipProtocol(self),
            local_addr=(self.config.listen_host, self.config.listen_port),
        )
        self._port = self._socket.get_extra_info("sockname")[1]

    @property
    def port(self) -> int:
        return self._port

    def close(self) -> None:
        if self._socket:
            self._socket.close()
            self._socket = None

    # --------------------------------------------------------------- sending

    def send(self, data: bytes, addr: Addr) -> None:
        """Send one datagram; an impossible destination is logged and dropped."""
        if self._socket is None:
            return
        if not sendable(addr):
            self.warn.warning("sip_unsendable", destination=repr(addr)[:80])
            return
        self._socket.sendto(data, addr)
        for watcher in self.sent_watchers:
            watcher(data)

    # ------------------------------------------------------------- receiving

    def datagram_received(self, data: bytes, addr: Addr) -> None:
        reason = self._refusal(data, addr[0])
        if reason == "rate":
            self._over_budget(data, addr)
            return
        if reason:
            self._drop(addr, reason, len(data))
            return
        if not data.strip(b"\r\n\0 "):
            return  # keep-alive (RFC 5626 CRLF ping)
        try:
            message = parse_message(data)
        except SipParseError as exc:
            self._sink.on_malformed(data, addr, str(exc))
            return
        if isinstance(message, Response):
            self._sink.on_response(message, addr)
        else:
            stamp_via(message, addr)
            self._sink.on_request(message, addr)

    def _refusal(self, data: bytes, host: str) -> str | None:
        """Why a datagram is dropped unread (cheapest checks first), or None."""
        if not self._sink.admits(host):
            return "not_allowed"
        if len(data) > self.config.max_message_bytes:
            return "oversized"
        if header_lines(data) > self.config.max_headers:
            return "too_many_headers"
        if not self._sink.exempt(host) and not self._limiter.allow(host):
            return "rate"
        return None

    def _drop(self, addr: Addr, reason: str, size: int) -> None:
        self.dropped[reason] += 1
        self.warn.warning("sip_dropped", peer=f"{addr[0]}:{addr[1]}", reason=reason, size=size)

    def _over_budget(self, data: bytes, addr: Addr) -> None:
        """Pike: a statelessly built 503 while the answer budget lasts, then silence."""
        self._drop(addr, "rate", len(data))
        if not self._answers.allow(addr[0]):
            return
        raw = RawRequest.scan(data)
        if raw is not None:
            self.send(raw.stateless(503, "rate limited", new_tag(), [("Retry-After", "5")]), addr)

    # ------------------------------------------------------ how peers see us

    def advertised_host(self, peer_ip: str) -> str:
        """The address we put in Contact/Via/SDP for this peer."""
        if self.config.public_host:
            return self.config.public_host
        if not is_wildcard(self.config.listen_host):
            return self.config.listen_host
        return local_address_towards(peer_ip)

    def via_address(self, peer_ip: str) -> Addr:
        """Our Via sent-by towards this peer (§18.1.1)."""
        return (self.advertised_host(peer_ip), self._port)
