"""A paced UDP flooder, run as its own process by scripts/sip_robustness.py.

    flooder.py KIND SOURCE_IP PORT RATE SECONDS     (KIND: options | invite | rtp)

options: 60-header OPTIONS; invite: INVITEs with SDP that are never ACKed,
each a new dialog; rtp: random junk, half of it RTP version 2.  Prints how
many datagrams it sent.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import time


def message(kind: str, src: str, me: int, n: int) -> bytes:
    if kind == "rtp":
        junk = os.urandom(12 + n % 400)
        return bytes([0x80 if n % 2 else 0x40]) + junk[1:]
    via = f"Via: SIP/2.0/UDP {src}:{me};branch=z9hG4bKfl{n};rport\r\n"
    ident = f"From: <sip:f@{src}>;tag={n}\r\nTo: <sip:bot@127.0.0.1>\r\nCall-ID: fl{n}@{src}\r\n"
    if kind == "invite":
        sdp = (
            f"v=0\r\no=- 1 1 IN IP4 {src}\r\ns=-\r\nc=IN IP4 {src}\r\nt=0 0\r\n"
            "m=audio 4000 RTP/AVP 0\r\n"
        )
        return (
            f"INVITE sip:bot@127.0.0.1 SIP/2.0\r\n{via}{ident}CSeq: 1 INVITE\r\n"
            f"Contact: <sip:f@{src}:{me}>\r\nContent-Type: application/sdp\r\n"
            f"Content-Length: {len(sdp)}\r\n\r\n{sdp}"
        ).encode()
    padding = "X-Pad: y\r\n" * 60
    return (
        f"OPTIONS sip:bot@127.0.0.1 SIP/2.0\r\n{via}{ident}CSeq: 1 OPTIONS\r\n{padding}"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def main() -> None:
    kind, src, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    rate, seconds = int(sys.argv[4]), float(sys.argv[5])
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((src, 0))
    me = sock.getsockname()[1]
    sent, start = 0, time.monotonic()
    # SIGTERM ends an open-ended flood early; the count is printed either way.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while time.monotonic() - start < seconds:
            for _ in range(max(1, rate // 100)):
                sent += 1
                with contextlib.suppress(OSError):
                    sock.sendto(message(kind, src, me, sent), ("127.0.0.1", port))
            time.sleep(max(0.0, start + sent / rate - time.monotonic()))
    finally:
        print(sent, flush=True)


if __name__ == "__main__":
    main()
