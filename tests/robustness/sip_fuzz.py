"""A bounded, seeded mutational SIP fuzzer, shared by tests/robustness and scripts/fuzz.

Seeds are the torture messages in ``torture/`` plus well-formed INVITE,
OPTIONS, BYE, CANCEL and re-INVITE requests; each datagram is a seed with a
few mutations chosen for what breaks SIP parsers: numbers swapped for huge,
negative or non-ASCII digits, header lines duplicated, dropped or swapped,
separators removed, bytes flipped, truncation, hostnames and IPv6 literals in
addresses, SDP lines garbled.  The same seed gives the same datagrams.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterator
from pathlib import Path

TORTURE = Path(__file__).resolve().parent / "torture"

SDP = (
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio 4000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
)
NUMBERS = ["0", "-1", "65536", "70000", "4294967296", "99999999999999999999", "\u00b2",
           "\u0665\u0660", "1e3", "0x10", "", " ", "007"]  # fmt: skip
HOSTS = ["never.invalid", "[::1]", "::1", "0.0.0.0", "255.255.255.255", "[fe80::1%lo]",
         "a" * 300, "\u00e9.example", "127.0.0.1\x00evil"]  # fmt: skip
TOKENS = [";", ",", ":", "<", ">", '"', "\\", "\r\n", "\r\n ", "%00", "\t", "@", "="]


def request(method: str, *, tag: str = "", body: str = "", n: int = 0) -> bytes:
    """A well-formed request from 127.0.0.1:5061 (the fuzzer's seeds)."""
    to = "<sip:bot@127.0.0.1>" + (f";tag={tag}" if tag else "")
    lines = [
        f"{method} sip:bot@127.0.0.1:5090 SIP/2.0",
        f"Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bKfz{n};rport",
        "Max-Forwards: 70",
        f'From: "Fuzz" <sip:+15550100@127.0.0.1>;tag=f{n}',
        f"To: {to}",
        f"Call-ID: fuzz-{n}@127.0.0.1",
        f"CSeq: {n % 1000 + 1} {method}",
        "Contact: <sip:fuzz@127.0.0.1:5061>",
        "Record-Route: <sip:127.0.0.1:5061;lr>",
    ]
    if body:
        lines.append("Content-Type: application/sdp")
    lines.append(f"Content-Length: {len(body.encode())}")
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


def seeds() -> list[bytes]:
    out = [path.read_bytes() for path in sorted(TORTURE.glob("*.sip"))]
    out += [
        request("INVITE", body=SDP),
        request("INVITE"),
        request("OPTIONS"),
        request("BYE", tag="t1"),
        request("CANCEL"),
        request("INVITE", tag="t1", body=SDP),
        request("INFO", tag="t1"),
        request("ACK", tag="t1"),
        b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bKx\r\n"
        b"From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:b@127.0.0.1>;tag=2\r\nCall-ID: r\r\n"
        b"CSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n",
    ]
    return out


def _numbers(rng: random.Random, text: str) -> str:
    return re.sub(r"\d+", lambda m: rng.choice(NUMBERS) if rng.random() < 0.3 else m[0], text)


def _hosts(rng: random.Random, text: str) -> str:
    return text.replace("127.0.0.1", rng.choice(HOSTS), rng.randint(1, 3))


def _lines(rng: random.Random, text: str) -> str:
    lines = text.split("\r\n")
    if len(lines) < 3:
        return text
    i, j = rng.randrange(1, len(lines)), rng.randrange(1, len(lines))
    choice = rng.randrange(4)
    if choice == 0:
        lines.insert(i, lines[j])  # duplicate a header (two Call-IDs, two Content-Lengths…)
    elif choice == 1:
        del lines[i]
    elif choice == 2:
        lines[i], lines[j] = lines[j], lines[i]
    else:
        lines.insert(i, f"X-Fuzz-{rng.randrange(10**6)}: {'v' * rng.randrange(200)}")
    return "\r\n".join(lines)


def _tokens(rng: random.Random, text: str) -> str:
    if not text:
        return text
    at = rng.randrange(len(text))
    if rng.random() < 0.5:
        return text[:at] + rng.choice(TOKENS) + text[at:]
    return text[:at] + text[at + 1 :]


def _sdp(rng: random.Random, text: str) -> str:
    edits = [("m=audio 4000", f"m=audio {rng.choice(NUMBERS)}"), ("c=IN IP4", "c=IN IP6"),
             ("RTP/AVP 0 8 101", f"RTP/AVP {rng.choice(NUMBERS)}"), ("v=0", "v=\u00b2"),
             ("a=rtpmap:101 telephone-event/8000",
              f"a=rtpmap:{rng.choice(NUMBERS)} x/y")]  # fmt: skip
    old, new = rng.choice(edits)
    return text.replace(old, new)


TEXT_MUTATORS: list[Callable[[random.Random, str], str]] = [_numbers, _hosts, _lines, _tokens, _sdp]


def _bytes(rng: random.Random, data: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        if not buf:
            break
        at = rng.randrange(len(buf))
        kind = rng.randrange(3)
        if kind == 0:
            buf[at] = rng.randrange(256)
        elif kind == 1:
            del buf[at : at + rng.randint(1, 16)]
        else:
            buf[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
    if rng.random() < 0.1:
        buf = buf[: rng.randrange(len(buf) + 1)]
    return bytes(buf)


def mutate(rng: random.Random, seed: bytes) -> bytes:
    """One mutated datagram from ``seed``."""
    if rng.random() < 0.25:
        return _bytes(rng, seed)
    text = seed.decode("utf-8", "surrogateescape")
    for _ in range(rng.randint(1, 3)):
        text = rng.choice(TEXT_MUTATORS)(rng, text)
    return text.encode("utf-8", "surrogateescape")


def datagrams(seed: int, count: int) -> Iterator[bytes]:
    """``count`` mutated datagrams, reproducible from ``seed``."""
    rng = random.Random(seed)
    corpus = seeds()
    for _ in range(count):
        yield mutate(rng, rng.choice(corpus))[:9000]
