"""Host and address helpers for the UDP transports (SIP signalling, RTP media).

A leaf under ``telephony``: both SIP and RTP send to addresses a peer wrote
into a message, and neither should import the other to check them.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket

from voicebot.core.net import Addr


def is_ip(host: str) -> bool:
    """True for an IPv4/IPv6 literal (no brackets), False for a name."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def is_wildcard(host: str) -> bool:
    """0.0.0.0 or :: (listening on every interface)."""
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


def bracket(host: str) -> str:
    """An IPv6 literal in brackets, as a URI or a Via sent-by needs it."""
    return f"[{host}]" if ":" in host else host


def local_address_towards(peer_ip: str) -> str:
    """Our address on the route to ``peer_ip`` (a UDP connect sends nothing)."""
    family = socket.AF_INET6 if ":" in peer_ip else socket.AF_INET
    with contextlib.suppress(OSError), socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.connect((peer_ip, 9))
        return str(sock.getsockname()[0])
    return "127.0.0.1"


def sendable(addr: Addr) -> bool:
    """Whether ``sendto(data, addr)`` can only fail with an ``OSError``.

    asyncio reports an ``OSError`` from ``sendto`` to the protocol and carries
    on, but any other exception (a port outside 1–65535, a NUL or an
    unencodable character in the host) closes the datagram transport for
    good — so an address a peer wrote into a message is checked first.
    """
    host, port = addr
    if not isinstance(port, int) or not 0 < port < 65536 or not host or "\0" in host:
        return False
    try:
        host.encode("idna")
    except UnicodeError:
        return False
    return True
