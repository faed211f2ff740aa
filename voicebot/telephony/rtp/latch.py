"""Strict RTP source latching, as Asterisk's ``strictrtp`` does it.

An RTP port is open to anyone who can reach it, so the first packet to
arrive must not decide where the bot's audio goes, and a stranger's packets
must not reach the caller's receive buffer (a new SSRC resets it) or its
DTMF detector (a sprayed RFC 4733 "0" once transferred every live call).

A source (address + SSRC) is *learned* after ``probation`` packets in
sequence (RFC 3550 §A.1's MIN_SEQUENTIAL idea); from then on only its packets
pass.  Another source — a new SSRC, or a new address after a NAT rebind — is
learned the same way, but only once the latched one has been silent for
``rebind_silence_s``: while the caller is talking, no one can take over.
"""

from __future__ import annotations

from dataclasses import dataclass

from voicebot.core.net import Addr
from voicebot.telephony.addresses import IPAddress, ip_address_of
from voicebot.telephony.rtp.packet import seq_diff

IP = IPAddress
Source = tuple[IP, int, int]  # address, port, SSRC
normalise = ip_address_of  # compare addresses as objects: '::ffff:10.0.0.1' is '10.0.0.1'


@dataclass
class _Candidate:
    last_seq: int
    count: int


MAX_CANDIDATES = 8  # sources on probation at once; a spray cannot grow the table


class SourceLatch:
    """Which (address, SSRC) the caller's media comes from; everything else is dropped."""

    def __init__(self, probation: int = 4, rebind_silence_s: float = 0.5) -> None:
        self.probation = probation
        self.rebind_silence_s = rebind_silence_s
        self.latched: Source | None = None
        self.relearned = 0  # times a new source took over (NAT rebind, SSRC change)
        self._candidates: dict[Source, _Candidate] = {}
        self._last_seen = 0.0

    @property
    def address(self) -> Addr | None:
        """Where the latched media comes from (where symmetric RTP answers)."""
        return (str(self.latched[0]), self.latched[1]) if self.latched else None

    def reset(self) -> None:
        """Forget the source (a re-INVITE moved the media): learn it again."""
        self.latched = None
        self._candidates.clear()

    def accept(self, addr: Addr, ssrc: int, seq: int, now: float) -> bool:
        """Whether this packet is the caller's media (and may be played or read as DTMF)."""
        host = normalise(addr[0])
        if host is None:
            return False
        source = (host, addr[1], ssrc)
        if source == self.latched:
            self._last_seen = now
            return True
        if self.latched is not None and now - self._last_seen < self.rebind_silence_s:
            return False
        if not self._on_probation(source, seq):
            return False
        self.relearned += self.latched is not None
        self.latched, self._last_seen = source, now
        self._candidates.clear()
        return True

    def _on_probation(self, source: Source, seq: int) -> bool:
        """Count in-sequence packets of ``source``; True once it has enough.

        Each source is counted apart, so a stranger's packets interleaved with
        the caller's cannot keep the caller from being learned."""
        candidate = self._candidates.get(source)
        if candidate and seq_diff(seq, candidate.last_seq) == 1:
            candidate.count += 1
            candidate.last_seq = seq
        else:
            if candidate is None and len(self._candidates) >= MAX_CANDIDATES:
                del self._candidates[next(iter(self._candidates))]
            candidate = self._candidates[source] = _Candidate(seq, 1)
        return candidate.count >= self.probation
