"""A scripted SIP UAC and RTP peer on 127.0.0.1, for fast, exact server tests.

Real peers (baresip, SIPp) prove interoperability; this one lets a test send
precisely the bytes a corner case needs and look at every response.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from dataclasses import dataclass, field

from sipmessage import Request, Response

from voicebot.telephony.rtp.dtmf import TelephoneEvent
from voicebot.telephony.rtp.packet import RtpPacket
from voicebot.telephony.sip.message import SipParseError, header_tag, parse_message


def sdp(rtp_port: int, formats: str = "0 101", direction: str = "sendrecv", extra: str = "") -> str:
    return (
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        f"m=audio {rtp_port} RTP/AVP {formats}\r\na=rtpmap:101 telephone-event/8000\r\n"
        f"a={direction}\r\n{extra}"
    )


class Uac(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.inbox: asyncio.Queue[Request | Response] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None
        self.server: tuple[str, int] = ("127.0.0.1", 0)
        self.raw: list[bytes] = []  # every datagram, also those the UAC cannot parse

    @classmethod
    async def open(cls, server_port: int) -> Uac:
        loop = asyncio.get_running_loop()
        transport, uac = await loop.create_datagram_endpoint(cls, local_addr=("127.0.0.1", 0))
        uac.transport = transport
        uac.server = ("127.0.0.1", server_port)
        return uac

    @property
    def port(self) -> int:
        assert self.transport
        return int(self.transport.get_extra_info("sockname")[1])

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.raw.append(data)
        with contextlib.suppress(SipParseError):
            self.inbox.put_nowait(parse_message(data))

    def send(self, data: bytes | str) -> None:
        assert self.transport
        self.transport.sendto(data.encode() if isinstance(data, str) else data, self.server)

    async def recv(self, timeout: float = 2.0) -> Request | Response:
        return await asyncio.wait_for(self.inbox.get(), timeout)

    async def response(self, code: int | None = None, timeout: float = 2.0) -> Response:
        """The next response (skipping 100 Trying unless asked for)."""
        while True:
            message = await self.recv(timeout)
            if isinstance(message, Response) and (
                code == message.code or (code is None and message.code != 100)
            ):
                return message

    async def request(self, method: str, timeout: float = 2.0) -> Request:
        while True:
            message = await self.recv(timeout)
            if isinstance(message, Request) and message.method == method:
                return message

    async def silence(self, seconds: float) -> list[Request | Response]:
        """Whatever arrives within ``seconds`` (expected: nothing)."""
        got = []
        try:
            while True:
                got.append(await self.recv(seconds))
        except TimeoutError:
            return got

    def close(self) -> None:
        if self.transport:
            self.transport.close()

    def reply(self, request: Request, code: int = 200, reason: str = "OK") -> None:
        """Answer a request the server sent us (BYE)."""
        lines = [f"SIP/2.0 {code} {reason}"]
        lines += [f"Via: {v}" for v in request.headers.getlist("Via")]
        lines += [f"{h}: {request.headers[h]}" for h in ("From", "To", "Call-ID", "CSeq")]
        self.send("\r\n".join([*lines, "Content-Length: 0", "", ""]))


@dataclass
class Leg:
    """One call from the UAC's side: its identifiers and message builders."""

    uac: Uac
    call_id: str = field(default_factory=lambda: secrets.token_hex(8))
    from_tag: str = field(default_factory=lambda: secrets.token_hex(4))
    to_tag: str = ""
    cseq: int = 1
    user: str = "+15550100"
    invite_branch: str = ""
    callee: str = "bot"

    def build(
        self,
        method: str,
        *,
        body: str = "",
        branch: str | None = None,
        cseq: int | None = None,
        headers: tuple[str, ...] = (),
        content_type: str = "application/sdp",
    ) -> str:
        branch = branch or "z9hG4bK" + secrets.token_hex(6)
        to = "<sip:bot@127.0.0.1>" + (f";tag={self.to_tag}" if self.to_tag else "")
        lines = [
            f"{method} sip:{self.callee}@127.0.0.1:{self.uac.server[1]} SIP/2.0",
            f"Via: SIP/2.0/UDP 127.0.0.1:{self.uac.port};branch={branch};rport",
            "Max-Forwards: 70",
            f"From: <sip:{self.user}@127.0.0.1>;tag={self.from_tag}",
            f"To: {to}",
            f"Call-ID: {self.call_id}",
            f"CSeq: {cseq or self.cseq} {method}",
            f"Contact: <sip:uac@127.0.0.1:{self.uac.port}>",
            *headers,
        ]
        if body:
            lines.append(f"Content-Type: {content_type}")
        lines.append(f"Content-Length: {len(body.encode())}")
        return "\r\n".join(lines) + "\r\n\r\n" + body

    def invite(self, body: str = "", headers: tuple[str, ...] = ()) -> str:
        self.invite_branch = "z9hG4bK" + secrets.token_hex(6)
        return self.build("INVITE", body=body, branch=self.invite_branch, headers=headers)

    def take_tag(self, response: Response) -> None:
        self.to_tag = header_tag(response.headers["To"])

    def ack(self, body: str = "", cseq: int | None = None) -> str:
        return self.build("ACK", body=body, cseq=cseq or self.cseq)

    def next(self, method: str, **kwargs) -> str:  # type: ignore[no-untyped-def]
        self.cseq += 1
        return self.build(method, **kwargs)

    async def establish(self, rtp_port: int, formats: str = "0 101") -> Response:
        """INVITE → 200 → ACK; returns the 200 OK."""
        self.uac.send(self.invite(sdp(rtp_port, formats)))
        ok = await self.uac.response(200)
        self.take_tag(ok)
        self.uac.send(self.ack())
        return ok


class RtpPeer(asyncio.DatagramProtocol):
    """The UAC's media socket: records what the server sends, sends RTP back."""

    def __init__(self) -> None:
        self.packets: list[RtpPacket] = []
        self.transport: asyncio.DatagramTransport | None = None
        self.seq = 100
        self.ts = 5000

    @classmethod
    async def open(cls) -> RtpPeer:
        loop = asyncio.get_running_loop()
        transport, peer = await loop.create_datagram_endpoint(cls, local_addr=("127.0.0.1", 0))
        peer.transport = transport
        return peer

    @property
    def port(self) -> int:
        assert self.transport
        return int(self.transport.get_extra_info("sockname")[1])

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.packets.append(RtpPacket.parse(data))

    def send(
        self,
        to_port: int,
        payload_type: int,
        payload: bytes,
        *,
        advance: bool = True,
        ts: int | None = None,
    ) -> None:
        assert self.transport
        packet = RtpPacket(payload_type, self.seq, self.ts if ts is None else ts, 0x1234, payload)
        self.transport.sendto(packet.serialize(), ("127.0.0.1", to_port))
        self.seq += 1
        if advance:
            self.ts += 160

    async def send_audio(self, to_port: int, ulaw_frames: list[bytes]) -> None:
        for frame in ulaw_frames:
            self.send(to_port, 0, frame)
            await asyncio.sleep(0.02)

    async def send_digit(self, to_port: int, event: int) -> None:
        """An RFC 4733 key press: updates, then the end packet three times."""
        start = self.ts
        for duration in (160, 320, 480):
            self.send(to_port, 101, TelephoneEvent(event, duration=duration).serialize(), ts=start)
            await asyncio.sleep(0.02)
        for _ in range(3):
            self.send(
                to_port, 101, TelephoneEvent(event, end=True, duration=640).serialize(), ts=start
            )
        self.ts += 640

    def close(self) -> None:
        if self.transport:
            self.transport.close()
