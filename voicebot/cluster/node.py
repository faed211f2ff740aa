"""This instance's place in a cluster: lease, reaper, and the event link.

* **Lease**: a heartbeat every ``LEASE_S / 4`` keeps this instance live in
  the shared store.  The same loop reaps instances whose lease ran out (one
  reaper wins each), marks *their* open handoffs and calls interrupted and
  corrects agents they held (:meth:`TransferQueue.resync_claims`).
* **Events**: the local queue's rings, ring ends, agent and handoff changes
  go out with ``NOTIFY``; events from other instances come in over
  ``LISTEN`` and are replayed into the local queue, so the desk served here
  shows rings of calls held anywhere.  A desk Accept/Decline for such a ring
  is sent to the instance holding the call.

PostgreSQL delivers notifications in commit order to every listener; a
connection lost meanwhile misses some, which the periodic resync repairs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

import psycopg

from voicebot.core.record import utc_now
from voicebot.handoff import store as status
from voicebot.handoff.package import HandoffPackage
from voicebot.handoff.queue import (
    AgentChanged,
    HandoffChanged,
    QueueEvent,
    RingEnded,
    Ringing,
    TransferQueue,
)
from voicebot.handoff.rings import Ring, RingError
from voicebot.storage.postgres import EVENT_CHANNEL, LEASE_S, PostgresStore

log = logging.getLogger("voicebot.cluster")


class ClusterNode:
    """Runs while the instance runs: ``async with ClusterNode(store, queue):``."""

    def __init__(self, store: PostgresStore, queue: TransferQueue) -> None:
        self.store = store
        self.queue = queue
        self.instance = store.instance
        self._replaying = False
        self._tasks: list[asyncio.Task[None]] = []
        self._listening = asyncio.Event()
        self._unsubscribe = queue.subscribe(self._on_local)
        queue.forward_response = self._forward_response

    async def __aenter__(self) -> ClusterNode:
        calls = self.store.reconcile_interrupted()
        if calls:
            log.warning("event=calls_interrupted count=%d", len(calls))
        self._tasks = [
            asyncio.create_task(self._listen(), name="cluster-listen"),
            asyncio.create_task(self._heartbeat(), name="cluster-heartbeat"),
        ]
        async with asyncio.timeout(10):
            await self._listening.wait()
        return self

    async def __aexit__(self, *_: object) -> None:
        self._unsubscribe()
        self.queue.forward_response = None
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # ------------------------------------------------------------------- lease

    async def _heartbeat(self) -> None:
        while True:
            try:
                self.beat()
            except psycopg.Error:
                log.exception("event=heartbeat_failed instance=%s", self.instance)
            await asyncio.sleep(LEASE_S / 4)

    def beat(self) -> list[str]:
        """Renew the lease; take over after instances that are gone."""
        self.store.heartbeat()
        gone = self.store.reap_instances()
        if gone:
            at = utc_now()
            handoffs = self.store.mark_handoffs(status.OPEN_STATUSES, status.INTERRUPTED, at)
            calls = self.store.reconcile_interrupted()
            log.warning(
                "event=instances_gone ids=%s handoffs_interrupted=%d calls_interrupted=%d",
                ",".join(gone),
                len(handoffs),
                len(calls),
            )
            for call_id in handoffs:
                self._publish({"kind": "handoff", "call_id": call_id, "status": status.INTERRUPTED})
        self.queue.resync_claims()
        return gone

    # ------------------------------------------------------------- local → all

    def _on_local(self, event: QueueEvent) -> None:
        if self._replaying:
            return
        if isinstance(event, Ringing) and event.ring.owner is None:
            ring = event.ring
            self._publish(
                {
                    "kind": "ring",
                    "call_id": ring.call_id,
                    "agent": ring.agent,
                    "started_at": ring.started_at,
                    "timeout_s": ring.timeout_s,
                }
            )
        elif isinstance(event, RingEnded):
            self._publish(
                {
                    "kind": "ring_ended",
                    "call_id": event.call_id,
                    "agent": event.agent,
                    "result": event.result,
                }
            )
        elif isinstance(event, AgentChanged):
            self._publish(
                {"kind": "agent", "name": event.agent.name, "state": event.agent.public()}
            )
        elif isinstance(event, HandoffChanged):
            self._publish({"kind": "handoff", "call_id": event.call_id, "status": event.status})

    def _forward_response(self, ring: Ring, accept: bool) -> None:
        self._publish(
            {
                "kind": "respond",
                "to": ring.owner,
                "agent": ring.agent,
                "call_id": ring.call_id,
                "accept": accept,
            }
        )

    def _publish(self, message: dict[str, Any]) -> None:
        try:
            self.store.notify({**message, "origin": self.instance})
        except psycopg.Error:
            log.exception("event=notify_failed kind=%s", message.get("kind"))

    # ------------------------------------------------------------- all → local

    async def _listen(self) -> None:
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(self.store.url, autocommit=True)
                async with conn:
                    await conn.execute(f"LISTEN {EVENT_CHANNEL}")
                    self._listening.set()
                    self.queue.resync_claims()  # whatever was missed while away
                    async for note in conn.notifies():
                        self.receive(json.loads(note.payload))
            except psycopg.Error:
                log.exception("event=listen_lost instance=%s", self.instance)
                await asyncio.sleep(1.0)

    def receive(self, message: dict[str, Any]) -> None:
        """Apply one event from another instance to this one's queue and desk."""
        origin = message.get("origin")
        if origin == self.instance:
            return
        self._replaying = True
        try:
            self._apply(message, str(origin))
        except Exception:  # one bad event must not stop the link
            log.exception("event=cluster_event_failed kind=%s", message.get("kind"))
        finally:
            self._replaying = False

    def _apply(self, message: dict[str, Any], origin: str) -> None:
        kind, queue = message.get("kind"), self.queue
        if kind == "agent":
            queue.apply_remote_agent(message["name"], message["state"])
        elif kind == "ring":
            self._remote_ring(message, origin)
        elif kind == "ring_ended":
            ring = queue.board.get(message["call_id"])
            if ring is not None and ring.owner == origin:
                queue.board.close(ring.call_id)
            queue.publish(RingEnded(message["call_id"], message["agent"], message["result"]))
        elif kind == "handoff":
            queue.publish(HandoffChanged(message["call_id"], message["status"]))
        elif kind == "respond" and message.get("to") == self.instance:
            with contextlib.suppress(RingError):  # the ring ended meanwhile
                queue.respond(message["agent"], message["call_id"], bool(message["accept"]))

    def _remote_ring(self, message: dict[str, Any], origin: str) -> None:
        handoff = self.store.get_handoff(message["call_id"])
        if handoff is None or message["agent"] not in self.queue.agents:
            return
        ring = Ring(
            message["call_id"],
            message["agent"],
            HandoffPackage.from_dict(handoff["package"]),
            message["started_at"],
            float(message["timeout_s"]),
            owner=origin,
        )
        self.queue.board.open(ring)
        self.queue.publish(Ringing(ring.call_id, ring.agent, ring))
