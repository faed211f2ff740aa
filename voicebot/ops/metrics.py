"""Prometheus metrics, gathered by watching the running system from outside.

Nothing in the call path calls a metric.  :class:`CallMetrics` learns what
happened from what is already published:

* every call-record save (the store is wrapped by :class:`ObservedStore`):
  calls active and ended by outcome, transfers by reason, and each finished
  turn's voice-to-voice and per-stage latencies (``record.turns[].timings``);
* the transfer queue's events: ring outcomes;
* the SIP transport's sent datagrams (a watcher it calls): responses by code;
* the transcriber's backlog, read when Prometheus scrapes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from voicebot.handoff.queue import QueueEvent, RingEnded

LATENCY_BUCKETS = (0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0)
# Turn timings worth a histogram each (seconds); others are internal detail.
STAGES = ("stt_s", "dialogue_s", "tts_first_audio_s", "first_packet_s")
IN_PROGRESS = "in_progress"
__all__ = ["CONTENT_TYPE_LATEST", "CallMetrics", "ObservedStore"]


@dataclass
class _CallSeen:
    outcome: str = IN_PROGRESS
    transfer_counted: bool = False
    turns_done: set[int] = field(default_factory=set)


class CallMetrics:
    """All of voicebot's metrics on one registry (one per process, or per test)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.calls_active = Gauge("voicebot_calls_active", "Calls in progress", registry=r)
        self.calls_total = Counter(
            "voicebot_calls", "Calls ended, by outcome", ["outcome"], registry=r
        )
        self.transfers_total = Counter(
            "voicebot_transfers", "Transfers to a person, by reason", ["reason"], registry=r
        )
        self.voice_to_voice = Histogram(
            "voicebot_voice_to_voice_seconds",
            "End of the caller's turn to the first reply packet sent",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.stage = Histogram(
            "voicebot_turn_stage_seconds",
            "Time spent per stage of a turn",
            ["stage"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.stt_queue = Gauge(
            "voicebot_stt_queue_depth", "Utterances waiting for a speech decoder", registry=r
        )
        self.rings_total = Counter(
            "voicebot_agent_rings", "Agent rings, by how they ended", ["result"], registry=r
        )
        self.sip_responses_total = Counter(
            "voicebot_sip_responses", "SIP responses sent, by status code", ["code"], registry=r
        )
        self._calls: dict[str, _CallSeen] = {}

    # ------------------------------------------------------------------ sources

    def watch_stt_queue(self, depth: Callable[[], int]) -> None:
        self.stt_queue.set_function(lambda: float(depth()))

    def on_record(self, record: dict[str, Any]) -> None:
        """A call record was saved (the whole record, as stored)."""
        call_id = record["call_id"]
        seen = self._calls.get(call_id)
        if seen is None:
            seen = self._calls[call_id] = _CallSeen()
            self.calls_active.inc()
        transfer = record.get("transfer")
        if transfer and transfer.get("reason") and not seen.transfer_counted:
            seen.transfer_counted = True
            self.transfers_total.labels(transfer["reason"]).inc()
        for turn in record.get("turns", []):
            self._on_turn(seen, turn)
        outcome = record.get("outcome", IN_PROGRESS)
        if outcome != IN_PROGRESS and seen.outcome == IN_PROGRESS:
            seen.outcome = outcome
            self.calls_active.dec()
            self.calls_total.labels(outcome).inc()
            del self._calls[call_id]

    def _on_turn(self, seen: _CallSeen, turn: dict[str, Any]) -> None:
        """A turn counts once, when its reply has gone out (``reply_s`` is known)."""
        timings = turn.get("timings") or {}
        index = turn.get("index")
        if "reply_s" not in timings or index in seen.turns_done:
            return
        seen.turns_done.add(index)
        self.voice_to_voice.observe(timings["reply_s"])
        for stage in STAGES:
            if stage in timings:
                self.stage.labels(stage).observe(timings[stage])

    def on_queue_event(self, event: QueueEvent) -> None:
        if isinstance(event, RingEnded) and event.result is not None:
            self.rings_total.labels(event.result).inc()

    def on_sip_sent(self, datagram: bytes) -> None:
        """Every datagram the SIP transport sends; responses are counted by code
        (a retransmitted response counts again: it was sent again)."""
        if datagram.startswith(b"SIP/2.0 ") and datagram[8:11].isdigit():
            self.sip_responses_total.labels(datagram[8:11].decode()).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class ObservedStore:
    """The call store as the session sees it, reporting every saved record."""

    def __init__(self, inner: Any, metrics: CallMetrics) -> None:
        self._inner = inner
        self._metrics = metrics

    def save(self, record: Any) -> None:
        self._inner.save(record)
        self._metrics.on_record(record.to_dict())

    def save_later(self, record: Any) -> Any:
        """A store that writes on its own thread: observe the snapshot it takes."""
        future = self._inner.save_later(record)
        self._metrics.on_record(record.to_dict())
        return future

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)
