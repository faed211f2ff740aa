"""Talk to a Rasa server over HTTP: one message in, the bot's reply and state out.

Per caller turn this makes two requests on one keep-alive connection: the REST
webhook (the bot's texts) and the tracker with ``include_events=NONE`` (intent,
confidence, entities, slots).  The PIN never leaves this module: the ``pin``
slot and ``pin`` entity values are replaced by ``REDACTED`` (the entity's
start/end stay, so a transcript can be masked at the right place).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import aiohttp

REDACTED = "[redacted]"
_SECRET_SLOTS = frozenset({"pin"})
_SECRET_ENTITIES = frozenset({"pin"})


class DialogueError(RuntimeError):
    """Rasa could not be reached or answered badly; the message says how."""


@dataclass
class DialogueReply:
    """What the bot said and where the conversation stands after one message."""

    texts: list[str]
    intent: str | None = None
    confidence: float | None = None
    intent_ranking: list[dict[str, Any]] = field(default_factory=list)
    entities: list[dict[str, Any]] = field(default_factory=list)  # PIN values redacted
    slots: dict[str, Any] = field(default_factory=dict)  # PIN slot redacted
    expects_pin: bool = False  # the bot has just asked for the PIN
    end_call: bool = False  # hang up once the texts are spoken
    caller_id_matched: bool | None = None
    pin_verified: bool | None = None
    active_loop: str | None = None

    @property
    def text(self) -> str:
        """All the bot's messages as one utterance to speak."""
        return " ".join(t.strip() for t in self.texts if t.strip())


class RasaClient:
    """An aiohttp client for one Rasa server; share one per process."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        timeout_s: float = 10.0,
        *,
        token_in_header: bool = False,
    ) -> None:
        """The token always goes as ``Authorization: Bearer`` (what voicebot's own
        Rasa checks); ``token_in_header`` False adds Rasa's ``?token=`` query
        parameter too, for an external Rasa started with ``--auth-token`` (query
        strings land in access logs: prefer voicebot's managed Rasa)."""
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout_s = timeout_s
        # False while the server is known to be down (set by ManagedRasa's supervisor):
        # new calls then go to a person rather than to a dialogue that cannot answer.
        self.available = True
        self.token_in_header = token_in_header
        self._session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
            self._session = aiohttp.ClientSession(
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self.timeout_s),
                connector=aiohttp.TCPConnector(limit=32, keepalive_timeout=60),
            )
        return self._session

    def _auth(self) -> dict[str, str]:
        return {"token": self.token} if self.token and not self.token_in_header else {}

    async def send(
        self, sender_id: str, text: str, metadata: dict[str, Any] | None = None
    ) -> DialogueReply:
        """Send one caller message; return the bot's reply and the tracker state."""
        body = {"sender": sender_id, "message": text, "metadata": metadata or {}}
        messages = await self._request("POST", "/webhooks/rest/webhook", json_body=body)
        tracker = await self._tracker(sender_id, "NONE")
        if not isinstance(messages, list):
            raise DialogueError(f"Rasa at {self.base_url} returned an unexpected answer shape")
        latest = tracker.get("latest_message") or {}
        if latest.get("text") != text:
            # A turn the form consumed on its happy path (e.g. the PIN) is folded
            # out of latest_message when Rasa replays the tracker, so it still
            # shows the message that started the form.  Only then: read the events.
            latest = _last_user_parse(await self._tracker(sender_id, "AFTER_RESTART")) or latest
        return _reply(messages, tracker, latest)

    async def _tracker(self, sender_id: str, include_events: str) -> dict[str, Any]:
        tracker = await self._request(
            "GET",
            f"/conversations/{quote(sender_id, safe='')}/tracker",
            params={"include_events": include_events, **self._auth()},
        )
        if not isinstance(tracker, dict):
            raise DialogueError(f"Rasa at {self.base_url} returned an unexpected tracker")
        return tracker

    async def forget(self, sender_id: str) -> None:
        """Replace the conversation's events with none, once the call has ended.

        Rasa's in-memory tracker otherwise keeps every message of every call
        (including a spoken PIN's text) for the life of the server.
        """
        await self._request(
            "PUT",
            f"/conversations/{quote(sender_id, safe='')}/tracker/events",
            json_body=[],
            params=self._auth(),
        )

    async def health(self) -> bool:
        """True when the server answers and (with a token) accepts it."""
        return await self.problem() is None

    async def problem(self) -> str | None:
        """Why the server cannot serve a call right now (no answer, a refused
        token…), or None when it answers."""
        path = "/status" if self.token else "/"
        try:
            await self._request("GET", path, params=self._auth(), expect_json=False)
        except DialogueError as exc:
            return str(exc)
        return None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> RasaClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: dict[str, str] | None = None,
        expect_json: bool = True,
    ) -> Any:
        url = self.base_url + path
        where = f"{method} {self.base_url}{path}"
        try:
            async with self._http().request(method, url, json=json_body, params=params) as resp:
                raw = await resp.read()
                if resp.status >= 400:
                    detail = raw[:300].decode("utf-8", "replace").strip()
                    hint = " (wrong or missing auth token?)" if resp.status in (401, 403) else ""
                    raise DialogueError(f"Rasa {where} answered HTTP {resp.status}{hint}: {detail}")
        except TimeoutError as exc:  # asyncio.TimeoutError is TimeoutError on 3.11
            raise DialogueError(f"Rasa {where} timed out after {self.timeout_s:g} s") from exc
        except aiohttp.ClientConnectorError as exc:
            raise DialogueError(
                f"cannot connect to Rasa at {self.base_url} ({exc.os_error or exc}); is it running?"
            ) from exc
        except aiohttp.ClientError as exc:
            raise DialogueError(f"Rasa {where} failed: {exc!r}") from exc
        if not expect_json:
            return raw
        try:
            return json.loads(raw) if raw else None
        except ValueError as exc:
            raise DialogueError(f"Rasa {where} returned invalid JSON: {raw[:200]!r}") from exc


def _redact_entities(entities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for entity in entities:
        entity = dict(entity)
        if entity.get("entity") in _SECRET_ENTITIES:
            entity["value"] = REDACTED
            entity.pop("text", None)
        out.append(entity)
    return out


def _redact_slots(slots: dict[str, Any]) -> dict[str, Any]:
    return {
        name: (REDACTED if name in _SECRET_SLOTS and value is not None else value)
        for name, value in slots.items()
    }


def _optional_bool(value: Any) -> bool | None:
    return None if value is None else bool(value)


def _last_user_parse(tracker: dict[str, Any]) -> dict[str, Any] | None:
    for event in reversed(tracker.get("events") or []):
        if event.get("event") == "user":
            return {"text": event.get("text"), **(event.get("parse_data") or {})}
    return None


def _reply(
    messages: list[dict[str, Any]], tracker: dict[str, Any], latest: dict[str, Any]
) -> DialogueReply:
    intent = latest.get("intent") or {}
    slots = tracker.get("slots") or {}
    active_loop = (tracker.get("active_loop") or {}).get("name")
    return DialogueReply(
        texts=[m["text"] for m in messages if isinstance(m, dict) and m.get("text")],
        intent=intent.get("name"),
        confidence=intent.get("confidence"),
        intent_ranking=list(latest.get("intent_ranking") or []),
        entities=_redact_entities(list(latest.get("entities") or [])),
        slots=_redact_slots(slots),
        expects_pin=slots.get("requested_slot") == "pin",
        end_call=bool(slots.get("end_call")),
        caller_id_matched=_optional_bool(slots.get("caller_id_matched")),
        pin_verified=_optional_bool(slots.get("pin_verified")),
        active_loop=active_loop,
    )


__all__ = ["REDACTED", "DialogueError", "DialogueReply", "RasaClient"]
