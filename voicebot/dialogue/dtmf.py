"""Keypad digits → the message Rasa gets (docs/CONTRACTS.md, "Dialogue contract").

Keyed input skips NLU: Rasa parses ``/intent{"entity": "value"}`` directly
with confidence 1.0, so a keyed PIN can't be misheard or misclassified.
"""

from __future__ import annotations

import json

from voicebot.core.frames import DTMF_DIGITS

REQUEST_HUMAN = "/request_human"


def dtmf_message(digits: str, expects_pin: bool) -> str:
    """The Rasa message for a run of keyed digits.

    - PIN expected: ``/provide_pin{"pin":"1234"}`` (a trailing ``#`` ends entry
      and ``*`` is not a digit, so both are dropped; validation in Rasa decides
      whether it is four digits).
    - No PIN expected, a lone ``0``: ``/request_human`` ("press 0 for a person").
    - Anything else: the digits as plain text (``#``/``*`` dropped), for NLU.
      Empty when nothing but ``#``/``*`` was keyed: nothing to send.
    """
    bad = set(digits) - DTMF_DIGITS
    if bad:
        raise ValueError(f"not DTMF digits: {''.join(sorted(bad))!r}")
    numeric = "".join(ch for ch in digits if ch.isdigit())
    if expects_pin:
        if not numeric:
            return ""
        return "/provide_pin" + json.dumps({"pin": numeric}, separators=(",", ":"))
    if numeric == "0" and digits.rstrip("#") == "0":
        return REQUEST_HUMAN
    return numeric
