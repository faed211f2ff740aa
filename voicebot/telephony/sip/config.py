"""SIP listener settings: the ``sip`` section of voicebot's configuration file."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

# When no allowlist is configured only this machine may call: the default
# listener is 127.0.0.1, and exposing a bot that answers anyone (and can be
# made to place transfers) should be a deliberate choice.
LOOPBACK_NETWORKS = ("127.0.0.0/8", "::1/128")


@dataclass
class SipConfig:
    """Where we listen, what we advertise, who may call, and the RFC 3261 timers."""

    listen_host: str = "127.0.0.1"
    listen_port: int = 5060
    # Address put in Contact, Via and SDP (c=/o=) — set it behind NAT or when
    # listening on 0.0.0.0.  None: the listen address, or the local address
    # the routing table picks towards each caller when listening on 0.0.0.0.
    public_host: str | None = None
    rtp_host: str | None = None  # where RTP sockets bind; None = listen_host
    rtp_port_min: int = 20000
    rtp_port_max: int = 20999  # even ports carry RTP, the odd one above RTCP
    # Peers (IPs or CIDRs) allowed to send requests; others get 403.
    # Empty = loopback only; "0.0.0.0/0" and "::/0" open it to everyone.
    allowed_peers: list[str] = field(default_factory=list)
    codecs: list[str] = field(default_factory=lambda: ["PCMU", "PCMA"])
    max_calls: int = 32
    ring_s: float = 0.0  # pause between 180 Ringing and 200 OK
    jitter_ms: int = 60  # receive buffer depth (playout delay)
    max_jitter_ms: int = 200  # latency bound; beyond it playout skips ahead
    rtp_timeout_s: float = 30.0  # no RTP for this long (while expected) → BYE
    # Send RTP back to where the caller's RTP comes from (NATed softphones put
    # a private address in their SDP).  Only sources on the signalling or SDP
    # IP are followed.  Turn off for peers that send from another port than
    # the one they advertise.
    symmetric_rtp: bool = True
    max_message_bytes: int = 8192  # larger UDP datagrams are dropped unread
    max_headers: int = 100  # datagrams with more header lines are dropped unread
    # Per-source budget (a token bucket, Kamailio's pike idea): datagrams a
    # second and the burst; over it, requests get a stateless 503 or nothing.
    source_rate: float = 100.0
    source_burst: float = 200.0
    # Carriers' addresses (IPs/CIDRs; they must also be allowed): exempt from
    # the per-source limits, and only they may take the last reserved slots.
    trunks: list[str] = field(default_factory=list)
    max_calls_per_source: int = 16  # calls (answered or not) from one IP at once
    trunk_reserved_calls: int = 4  # of max_calls, kept for trunks
    max_call_s: float = 4 * 3600.0  # a call longer than this is hung up (0: no limit)
    heap_trim_s: float = 10.0  # return fragmented free heap to the kernel this often (0: never)
    t1_s: float = 0.5
    t2_s: float = 4.0
    t4_s: float = 5.0
    hangup_wait_s: float = 2.0  # how long hangup() waits for the BYE's 200
    user_agent: str = "voicebot"
    # Live-agent transfer: "refer" = blind REFER, bridging when the caller's
    # side refuses or fails it; "bridge" = always call the agent ourselves and
    # relay audio (keeps the queue in control: a REFERred ring cannot be
    # withdrawn on ring timeout, a bridged INVITE is CANCELled).
    transfer_mode: str = "refer"
    # Most audio a bridge may hold between the two legs' clocks.
    bridge_max_delay_ms: int = 120

    def validate(self) -> None:
        """Raise ValueError on settings that could never work."""
        self.listen_host = self.listen_host.strip().strip("[]")  # "[::1]" from HOST:PORT
        if self.rtp_host:
            self.rtp_host = self.rtp_host.strip().strip("[]")
        if self.max_headers < 10 or self.max_calls_per_source < 1 or self.max_call_s < 0:
            raise ValueError("sip.max_headers ≥ 10, max_calls_per_source ≥ 1, max_call_s ≥ 0")
        if self.trunks and not 0 <= self.trunk_reserved_calls < self.max_calls:
            raise ValueError("sip.trunk_reserved_calls must be below sip.max_calls")
        PeerAllowlist(self.trunks, default=())  # raises on a bad entry
        if not 0 <= self.listen_port <= 65535:
            raise ValueError(f"sip.listen_port out of range: {self.listen_port}")
        if not 1024 <= self.rtp_port_min < self.rtp_port_max <= 65535:
            raise ValueError("sip.rtp_port_min/max must be 1024 ≤ min < max ≤ 65535")
        if self.rtp_port_max - self.rtp_port_min < 3:
            raise ValueError("sip RTP port range must hold at least one RTP/RTCP pair")
        unknown = {c.upper() for c in self.codecs} - {"PCMU", "PCMA"}
        if unknown or not self.codecs:
            raise ValueError(f"sip.codecs must be PCMU and/or PCMA, got {self.codecs}")
        if self.transfer_mode not in ("refer", "bridge"):
            raise ValueError(
                f"sip.transfer_mode must be refer or bridge, got {self.transfer_mode!r}"
            )
        if self.bridge_max_delay_ms < 20:
            raise ValueError("sip.bridge_max_delay_ms must be at least one 20 ms frame")
        PeerAllowlist(self.allowed_peers)  # raises on a bad entry


class PeerAllowlist:
    """IP/CIDR allowlist for SIP requests."""

    def __init__(self, entries: list[str], default: tuple[str, ...] = LOOPBACK_NETWORKS) -> None:
        try:
            self.networks = [
                ipaddress.ip_network(e.strip(), strict=False) for e in (entries or default)
            ]
        except ValueError as exc:
            raise ValueError(f"sip peer list: {exc}") from exc

    def allows(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        return any(address in net for net in self.networks if net.version == address.version)
