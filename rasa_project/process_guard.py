"""What both Rasa processes voicebot starts share: a token, and dying with voicebot.

* Every request must carry ``Authorization: Bearer <token>``: without it any
  local process could read a customer's balance, block a card through the
  actions server, or join a live conversation through Rasa's REST channel.
  The token arrives in the environment (``$VOICEBOT_RASA_TOKEN``), readable
  only by this user, never on a command line (``/proc/*/cmdline`` is public).
* ``PR_SET_PDEATHSIG``: when voicebot dies, even by ``kill -9``, the kernel
  kills these processes too, so no dialogue state (a PIN's text) outlives it.

Runs inside the Rasa venv (Python 3.10), standard library plus Sanic.
"""

from __future__ import annotations

import ctypes
import hmac
import os
import signal
import sys
from typing import Any

TOKEN_ENV = "VOICEBOT_RASA_TOKEN"
PARENT_ENV = "VOICEBOT_PARENT_PID"
_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """SIGKILL this process when the process that started it exits."""
    expected = os.environ.get(PARENT_ENV)
    if not expected:
        return  # started by hand
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        sys.exit(f"prctl(PR_SET_PDEATHSIG) failed: errno {ctypes.get_errno()}")
    if os.getppid() != int(expected):
        sys.exit("voicebot exited before this process was ready")  # the race before prctl


def token() -> str | None:
    return os.environ.get(TOKEN_ENV) or None


def require_token(app: Any, expected: str) -> None:
    """A Sanic request middleware: 401 unless the request carries the bearer token."""
    from sanic.response import json as json_response

    wanted = f"Bearer {expected}".encode()

    async def check(request: Any) -> Any:
        given = request.headers.get("authorization", "").encode("utf-8", "replace")
        if not hmac.compare_digest(given, wanted):
            return json_response({"error": "not authenticated"}, status=401)
        return None

    app.register_middleware(check, "request")
