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
    """Whether ``sendto(data, addr)`` is safe: an IP literal and a port in 1–65535.

    asyncio reports an ``OSError`` from ``sendto`` to the protocol and carries
    on, but any other exception (a port outside 1–65535, a NUL or an
    unencodable character in the host) closes the datagram transport for
    good — and a host name would be resolved synchronously, blocking the
    event loop that clocks every call's audio.  So only IP literals pass.
    """
    host, port = addr
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        return False
    return isinstance(host, str) and is_ip(host)


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def ip_address_of(host: str) -> IPAddress | None:
    """``host`` as an address object (brackets and the IPv4-mapped form
    removed), or None for a name or garbage: we never resolve what a peer wrote."""
    try:
        address = ipaddress.ip_address(host.strip().strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def ip_literal(host: str) -> str | None:
    """``host`` as a normalised IP literal string, or None (see :func:`ip_address_of`)."""
    address = ip_address_of(host)
    return None if address is None else str(address)


def same_ip(a: str, b: str) -> bool:
    """Compare two hosts as addresses ('::ffff:127.0.0.1' is '127.0.0.1'); names never match."""
    left, right = ip_literal(a), ip_literal(b)
    return left is not None and left == right


def decimal(text: str, low: int, high: int) -> int | None:
    """An ASCII decimal in [low, high], else None.

    ``str.isdigit`` is true for '²' and ``int`` reads '٥٠' as 50: a peer's
    number must be plain ASCII digits, and in range, before we act on it."""
    if not text or len(text) > 10 or not text.isascii() or not text.isdigit():
        return None
    value = int(text)
    return value if low <= value <= high else None
