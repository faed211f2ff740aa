"""Structured logging: one ``key=value`` line per call event, always with the call ID.

Caller text is never passed here for turns that may hold a PIN; the session
redacts before it logs.
"""

from __future__ import annotations

import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

# Control characters (and Unicode line breaks) would let a caller-chosen value
# such as a carrier's callSid forge whole log lines: they are escaped.
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    named = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
    return named.get(char) or (f"\\x{ord(char):02x}" if ord(char) < 256 else f"\\u{ord(char):04x}")


def _fmt(value: Any) -> str:
    text = str(value)
    if not text or any(c in text for c in ' ="\\') or _UNSAFE.search(text):
        text = text.replace("\\", "\\\\").replace('"', '\\"')
        return '"' + _UNSAFE.sub(_escape, text) + '"'
    return text


def format_event(event: str, **fields: Any) -> str:
    parts = [f"event={event}"] + [f"{k}={_fmt(v)}" for k, v in fields.items() if v is not None]
    return " ".join(parts)


class CallLogger:
    """Logs the events of one call with its call ID on every line."""

    def __init__(self, call_id: str, logger: logging.Logger | None = None) -> None:
        self.call_id = call_id
        self._log = logger or logging.getLogger("voicebot.call")

    def event(self, event: str, level: int = logging.INFO, **fields: Any) -> None:
        self._log.log(level, format_event(event, call_id=self.call_id, **fields))

    def error(self, event: str, **fields: Any) -> None:
        self.event(event, logging.ERROR, **fields)


# A message that already is key=value pairs (what format_event writes).
_KEY_VALUE = re.compile(
    r'^[A-Za-z_][\w.]*=(?:"(?:[^"\\]|\\.)*"|\S*)(?: [A-Za-z_][\w.]*=(?:"(?:[^"\\]|\\.)*"|\S*))*$'
)

# Libraries that chat at INFO (faster-whisper announces every decode's audio length).
_QUIET_LOGGERS = ("faster_whisper", "aiohttp.access", "asyncio")


class KeyValueFormatter(logging.Formatter):
    """Every line ``ts=… level=… logger=…`` then the event's own pairs.

    A library's free-text message becomes ``msg="…"``, and a traceback
    ``exc="…"`` with escaped newlines, so one event is always one line a
    log shipper can split on spaces and ``=``.
    """

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if not _KEY_VALUE.match(message):
            message = f"msg={_fmt(message)}"
        at = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        line = f"ts={at} level={record.levelname} logger={record.name} {message}"
        if record.exc_info:
            line += f" exc={_fmt(self.formatException(record.exc_info))}"
        return line


def setup_logging(level: str = "INFO") -> None:
    """Log to stderr, so stdout stays clean for ``--json`` output."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(KeyValueFormatter())
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO), handlers=[handler])
    if logging.getLogger().level > logging.DEBUG:
        for name in _QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
