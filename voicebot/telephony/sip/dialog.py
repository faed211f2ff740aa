"""Dialog state (RFC 3261 §12), from either side, and in-dialog requests we send.

A caller's INVITE makes us the UAS (:meth:`Dialog.from_invite`); the INVITE
we send to an agent when bridging a transfer makes us the UAC
(:meth:`Dialog.from_response`).  After that both behave the same.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field

from sipmessage import URI, Address, Request, Response

from voicebot.core.net import Addr
from voicebot.telephony.addresses import bracket, ip_literal
from voicebot.telephony.sip.message import DEFAULT_PORT, header_tag, new_branch, with_tag


@dataclass
class Dialog:
    """§12.1.1: everything needed to send BYE/REFER/NOTIFY into this call."""

    call_id: str
    local_tag: str
    remote_tag: str
    local_address: str  # the INVITE's To with our tag: our From from now on
    remote_address: str  # the INVITE's From: our To from now on
    remote_target: str  # the peer's Contact URI, where requests go (§12.2.1.1)
    route_set: list[str]
    remote_cseq: int
    peer: Addr  # where the INVITE came from; a fallback when Contact won't resolve
    local_cseq: int = field(default_factory=lambda: secrets.randbelow(10_000) + 1)

    @classmethod
    def from_invite(cls, invite: Request, local_tag: str, peer: Addr) -> Dialog:
        contact = invite.contact
        target = str(contact[0].uri) if contact else f"sip:{peer[0]}:{peer[1]}"
        return cls(
            call_id=invite.call_id,
            local_tag=local_tag,
            remote_tag=header_tag(invite.headers["From"]),
            local_address=with_tag(invite.headers["To"], local_tag),
            remote_address=invite.headers["From"],
            remote_target=target,
            route_set=[str(a) for a in invite.record_route],
            remote_cseq=invite.cseq.sequence,
            peer=peer,
        )

    @classmethod
    def from_response(cls, invite: Request, response: Response, peer: Addr) -> Dialog:
        """§12.1.2: the UAC's dialog from the 2xx to our INVITE."""
        contact = response.contact
        return cls(
            call_id=invite.call_id,
            local_tag=header_tag(invite.headers["From"]),
            remote_tag=header_tag(response.headers["To"]),
            local_address=invite.headers["From"],
            remote_address=response.headers["To"],
            remote_target=str(contact[0].uri) if contact else str(invite.uri),
            route_set=[str(a) for a in reversed(response.record_route)],
            remote_cseq=0,
            peer=peer,
            local_cseq=invite.cseq.sequence,
        )

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.call_id, self.local_tag, self.remote_tag)

    def refresh_target(self, request: Request) -> None:
        """A re-INVITE may move the peer (§12.2.2: target refresh)."""
        contact = request.contact
        if contact:
            self.remote_target = str(contact[0].uri)

    def request(
        self,
        method: str,
        via: Addr,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
        user_agent: str = "voicebot",
    ) -> Request:
        """A new in-dialog request with the next local CSeq (§12.2.1.1)."""
        self.local_cseq += 1
        return self._build(
            method, self.local_cseq, via, body, content_type, headers, user_agent=user_agent
        )

    def ack(
        self, cseq: int, via: Addr, *, body: bytes = b"", content_type: str | None = None
    ) -> Request:
        """§13.2.2.4: the ACK for a 2xx — the INVITE's CSeq number, a new branch."""
        return self._build("ACK", cseq, via, body, content_type, ())

    def new_request(self, method: str, uri: URI, cseq: int, via: Addr) -> Request:
        """A request from our side of the dialog with the headers every one starts with (§8.1.1).

        Via (a new branch), Max-Forwards, From, To, Call-ID and CSeq; the rest is up to the caller.
        """
        request = Request(method, uri)
        request.headers.add(
            "Via", f"SIP/2.0/UDP {bracket(via[0])}:{via[1]};branch={new_branch()};rport"
        )
        request.headers.add("Max-Forwards", "70")
        request.headers.add("From", self.local_address)
        request.headers.add("To", self.remote_address)
        request.headers.add("Call-ID", self.call_id)
        request.headers.add("CSeq", f"{cseq} {method}")
        return request

    def _build(
        self,
        method: str,
        cseq: int,
        via: Addr,
        body: bytes,
        content_type: str | None,
        headers: Iterable[tuple[str, str]],
        user_agent: str | None = None,
    ) -> Request:
        request = self.new_request(method, URI.parse(self.remote_target), cseq, via)
        for route in self.route_set:
            request.headers.add("Route", route)
        if user_agent:
            request.headers.add("User-Agent", user_agent)
        for name, value in headers:
            request.headers.add(name, value)
        if content_type and body:
            request.headers.add("Content-Type", content_type)
        request.headers.add("Content-Length", str(len(body)))
        request.body = body
        return request

    def _next_hop(self) -> URI | None:
        """The first Route, else the remote target (§8.1.2, loose routing); None if unparseable."""
        try:
            return (
                Address.parse(self.route_set[0]).uri
                if self.route_set
                else URI.parse(self.remote_target)
            )
        except ValueError:
            return None

    def destination_nowait(self) -> Addr | None:
        """:meth:`destination` when it needs no DNS (an IP literal), else None."""
        uri = self._next_hop()
        if uri is None:
            return self.peer
        host = ip_literal(uri.host)
        port = uri.port or DEFAULT_PORT
        return (host, port) if host is not None and 0 < port < 65536 else None

    async def destination(self) -> Addr:
        """The first Route, else the remote target (§8.1.2, loose routing).

        Only IP literals are followed: a name a peer wrote into Contact or
        Record-Route is never resolved (a DNS server that never answers would
        hold the call), and the request goes where the dialog's INVITE came from."""
        return self.destination_nowait() or self.peer
