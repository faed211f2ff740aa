"""Wait until a Rasa or action server answers: ``python wait_ready.py URL [--timeout S]``.

The systemd units' ``ExecStartPost`` (deploy/systemd/): a unit counts as
started only once its server answers ``URL`` with 200, so units ordered after
it (the voicebot instances) find the dialogue up.  The bearer token comes
from ``$VOICEBOT_RASA_TOKEN`` (the unit's 0600 environment file), never from
the command line.  Exit 0 when ready; 1 with one line saying why otherwise.

Standard library only: runs with whichever Python the unit names.
"""

from __future__ import annotations

import argparse
import sys
import time
import urllib.error
import urllib.request

import process_guard

POLL_S = 0.5


def probe(url: str, token: str | None) -> int | None:
    """The HTTP status ``url`` answers, or None when nothing answers yet."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError):
        return None


def wait_ready(url: str, timeout_s: float, token: str | None) -> str | None:
    """None once ``url`` answers 200; else why it will not (a refused token at once)."""
    deadline = time.monotonic() + timeout_s
    status = None
    while True:
        status = probe(url, token)
        if status == 200:
            return None
        if status in (401, 403):
            return f"{url} refuses the token (HTTP {status}): check ${process_guard.TOKEN_ENV}"
        if time.monotonic() >= deadline:
            seen = f"last answer HTTP {status}" if status else "nothing answered"
            return f"{url} not ready within {timeout_s:g} s ({seen})"
        time.sleep(POLL_S)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds")
    args = parser.parse_args(argv)
    problem = wait_ready(args.url, args.timeout, process_guard.token())
    if problem:
        print(f"wait_ready: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
