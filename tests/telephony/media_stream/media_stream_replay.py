"""A stand-in carrier: replays a recorded Twilio media-stream session against
the real endpoint and plays the bot's replies the way Twilio would.

It models Twilio's side of the bidirectional stream: ``media`` we receive is
buffered and "played" in real time, a ``mark`` is echoed when the audio sent
before it has finished playing, and ``clear`` empties the buffer and echoes
every outstanding mark at once.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

DATA = Path(__file__).resolve().parent / "data"
SESSION = DATA / "session.jsonl"


def recorded_session(path: Path = SESSION) -> list[str]:
    """The recording's messages, one JSON text per line, untouched."""
    return [line for line in path.read_text().splitlines() if line.strip()]


@contextlib.asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[TestServer]:
    """The real aiohttp server on 127.0.0.1, on a free port."""
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        yield server
    finally:
        await server.close()


@dataclass
class Received:
    at: float  # monotonic arrival time
    msg: dict


@dataclass
class FakeCarrier:
    """Twilio's end of one media-stream WebSocket."""

    ws: aiohttp.ClientWebSocketResponse
    echo_marks: bool = True
    stream_sid: str = ""  # learnt from the replayed ``start``
    received: list[Received] = field(default_factory=list)
    marks_echoed: list[str] = field(default_factory=list)
    max_ahead_s: float = 0.0  # most bot audio ever buffered beyond real time
    closed_by_server: asyncio.Event = field(default_factory=asyncio.Event)
    _play_end: float = 0.0
    _pending_marks: dict[str, asyncio.TimerHandle] = field(default_factory=dict)

    # --------------------------------------------------------------- sending

    async def replay(
        self,
        messages: Iterable[str],
        *,
        realtime: bool = True,
        inject: dict[int, list[str | bytes]] | None = None,
    ) -> None:
        """Send the recording; in real time, ``media`` follows its own timestamps.

        ``inject`` maps a message index to extra raw messages (str or bytes)
        sent just before it — malformed input, for instance.
        """
        started = time.monotonic()
        for index, text in enumerate(messages):
            for extra in (inject or {}).get(index, []):
                await self._send_raw(extra)
            msg = json.loads(text)
            if msg.get("event") == "start":
                self.stream_sid = msg["start"]["streamSid"]
            if realtime and msg.get("event") == "media":
                due = started + int(msg["media"]["timestamp"]) / 1000
                await asyncio.sleep(max(0.0, due - time.monotonic()))
            if self.ws.closed:
                return
            await self.ws.send_str(text)

    async def _send_raw(self, extra: str | bytes) -> None:
        if isinstance(extra, bytes):
            await self.ws.send_bytes(extra)
        else:
            await self.ws.send_str(extra)

    # ------------------------------------------------------------- receiving

    async def receive_all(self) -> None:
        """Read the bot's messages until the server closes the socket."""
        async for msg in self.ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                self._on_message(json.loads(msg.data))
        self.closed_by_server.set()

    def _on_message(self, msg: dict) -> None:
        now = time.monotonic()
        self.received.append(Received(now, msg))
        event = msg.get("event")
        if event == "media":
            seconds = len(base64.b64decode(msg["media"]["payload"])) / 8000
            self._play_end = max(self._play_end, now) + seconds
            self.max_ahead_s = max(self.max_ahead_s, self._play_end - now)
        elif event == "mark" and self.echo_marks:
            name = msg["mark"]["name"]
            delay = max(0.0, self._play_end - now)
            loop = asyncio.get_running_loop()
            self._pending_marks[name] = loop.call_later(delay, self._echo, name)
        elif event == "clear":
            self._play_end = now
            for name, handle in list(self._pending_marks.items()):
                handle.cancel()
                self._echo(name)

    def _echo(self, name: str) -> None:
        self._pending_marks.pop(name, None)
        self.marks_echoed.append(name)
        if not self.ws.closed:
            mark = {"event": "mark", "streamSid": self.stream_sid, "mark": {"name": name}}
            asyncio.get_running_loop().create_task(self.ws.send_str(json.dumps(mark)))

    # --------------------------------------------------------------- queries

    def of(self, event: str) -> list[Received]:
        return [r for r in self.received if r.msg.get("event") == event]

    def media_bytes(self) -> bytes:
        return b"".join(base64.b64decode(r.msg["media"]["payload"]) for r in self.of("media"))


@contextlib.asynccontextmanager
async def connect(server: TestServer, path: str = "/media-stream", **carrier: object):
    """Open the WebSocket as Twilio would and run the carrier's receive loop."""
    async with aiohttp.ClientSession() as http, http.ws_connect(server.make_url(path)) as ws:
        fake = FakeCarrier(ws, **carrier)  # type: ignore[arg-type]
        reader = asyncio.create_task(fake.receive_all())
        try:
            yield fake
        finally:
            if not ws.closed:
                await ws.close()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(reader, 5)
