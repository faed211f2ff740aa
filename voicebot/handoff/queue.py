"""The transfer queue: store the package, ring agents one by one, report back.

The session calls ``await queue.offer(package)`` while it plays hold audio:

* the package is written to the store first, so nothing is lost if anything
  below fails or the process dies;
* the free agent idle longest (skill match preferred) rings for
  ``ring_timeout_s``; a decline, a failure or a ring-out moves on to the next;
* with nobody free the caller waits for an agent to become free, up to
  ``max_wait_s`` in all, then the result is :class:`NoAgent` and the session
  offers a callback (:meth:`TransferQueue.request_callback`);
* cancelling the awaiting task (the caller hung up) or :meth:`abandon` stops
  any ring and marks the handoff abandoned, package kept.

Every step is also published to listeners (the agent desk) as an event.

In a cluster (``claims`` given: a shared store) an agent must be claimed in
the store before their phone rings, so two instances never ring one agent at
once; other instances learn of the ring through their cluster link.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from voicebot.core.aio import first_of
from voicebot.core.record import CallRecord, utc_now
from voicebot.handoff import store as status
from voicebot.handoff.agents import Agent, choose_agent
from voicebot.handoff.config import AgentConfig, HandoffConfig, ensure_token
from voicebot.handoff.package import HandoffPackage
from voicebot.handoff.rings import DeskDialer, Dialer, Ring, RingBoard, RingResult
from voicebot.handoff.store import AgentClaims, CallbackRequest, HandoffStore
from voicebot.session.handoff import OfferOutcome

log = logging.getLogger("voicebot.handoff")


# ----------------------------------------------------------------- events / results


@dataclass(frozen=True)
class Ringing:
    """An agent's phone started ringing for this call (the desk shows the card)."""

    call_id: str
    agent: str
    ring: Ring


@dataclass(frozen=True)
class RingEnded:
    call_id: str
    agent: str
    result: RingResult | None  # None: stopped because the caller left


@dataclass(frozen=True)
class Waiting:
    """Nobody is free right now; the caller stays on hold."""

    call_id: str
    remaining_s: float


@dataclass(frozen=True)
class Answered:
    call_id: str
    agent: AgentConfig
    attempts: tuple[RingEnded, ...] = ()


@dataclass(frozen=True)
class NoAgent:
    """Nobody answered within ``max_wait_s``: offer the caller a callback."""

    call_id: str
    waited_s: float
    attempts: tuple[RingEnded, ...] = ()


@dataclass(frozen=True)
class Abandoned:
    """The caller hung up while on hold."""

    call_id: str
    attempts: tuple[RingEnded, ...] = ()


@dataclass(frozen=True)
class AgentChanged:
    agent: Agent


@dataclass(frozen=True)
class HandoffChanged:
    """A handoff's status changed (the desk refreshes its follow-up list)."""

    call_id: str
    status: str


OfferStep = Ringing | RingEnded | Waiting
OfferResult = Answered | NoAgent | Abandoned
QueueEvent = OfferStep | OfferResult | AgentChanged | HandoffChanged
Listener = Callable[[QueueEvent], None]
# Shown while another instance holds an agent and its event has not arrived yet.
BUSY_ELSEWHERE = "(another instance)"


@dataclass
class _Offer:
    """Book-keeping of one running offer."""

    package: HandoffPackage
    on_step: Callable[[OfferStep], None] | None
    deadline: float
    abandon: asyncio.Event = field(default_factory=asyncio.Event)
    excluded: set[str] = field(default_factory=set)  # declined or failed
    tried: set[str] = field(default_factory=set)  # rang out this round
    attempts: list[RingEnded] = field(default_factory=list)


class TransferQueue:
    """Agents, their availability, and the offers of calls to them."""

    def __init__(
        self,
        store: HandoffStore,
        config: HandoffConfig | None = None,
        dialer: Dialer | None = None,
        *,
        clock: Callable[[], float] = time.time,
        recover: bool = True,
        claims: AgentClaims | None = None,
    ) -> None:
        self.config = config or HandoffConfig()
        self.config.validate()
        self.store = store
        self.board = RingBoard()
        self.dialer: Dialer = dialer or DeskDialer(self.board)
        self.agents: dict[str, Agent] = {}
        self._clock = clock
        self._listeners: list[Listener] = []
        self._offers: dict[str, _Offer] = {}
        self._changed = asyncio.Event()
        self.claims = claims
        self.claimed: dict[str, str] = {}  # agent → call, claims this instance holds
        # A desk answer to a ring held by another instance goes there (cluster link).
        self.forward_response: Callable[[Ring, bool], None] | None = None
        saved = store.agent_states()
        for agent in self.config.agents:
            self._register(agent, saved.get(agent.name))
        if recover:
            self.recover()

    # ------------------------------------------------------------------ agents

    def add_agent(
        self, name: str, sip_uri: str, skills: list[str] | None = None, token: str = ""
    ) -> AgentConfig:
        """``voicebot serve --agent NAME=URI``: signed in and available at once.

        Returns the config with its (generated) desk token for the operator."""
        if name in self.agents:
            raise ValueError(f"agent {name!r} is already configured")
        agent = AgentConfig(name, sip_uri, [s.lower() for s in skills or []], token)
        ensure_token(agent)
        if self.agent_by_token(agent.token) is not None:
            raise ValueError("every agent needs their own token")
        self._register(agent, {"available": True, "idle_since": self._clock()})
        self._save_agent(self.agents[name])
        return agent

    def _register(self, config: AgentConfig, saved: dict | None) -> None:
        available = saved["available"] if saved else config.available
        idle = saved.get("idle_since") if saved else None
        self.agents[config.name] = Agent(config, available, idle or self._clock())

    def agent_by_token(self, token: str) -> Agent | None:
        """Constant-time token check against every agent."""
        found = None
        for agent in self.agents.values():
            if token and hmac.compare_digest(token.encode(), agent.config.token.encode()):
                found = agent
        return found

    def set_available(self, name: str, available: bool) -> Agent:
        """The desk's availability toggle.  Becoming available also ends any
        call the agent was marked on (they say they are ready again)."""
        agent = self.agents[name]
        if available and (not agent.available or agent.on_call):
            agent.idle_since = self._clock()
            if agent.on_call:
                self._release(name, agent.on_call)
            agent.on_call = None
        agent.available = available
        self._agent_changed(agent)
        return agent

    def call_ended(self, call_id: str) -> None:
        """The transferred call is over (bridge hung up): its agent is free again."""
        for agent in self.agents.values():
            if agent.on_call == call_id:
                self._release(agent.name, call_id)
                agent.on_call = None
                agent.idle_since = self._clock()
                self._agent_changed(agent)

    def finish(self, name: str) -> Agent:
        """The desk's "Finish call" button."""
        agent = self.agents[name]
        if agent.on_call:
            self.call_ended(agent.on_call)
        return agent

    def _agent_changed(self, agent: Agent) -> None:
        self._save_agent(agent)
        self._emit(AgentChanged(agent))
        self._wake()

    def _wake(self) -> None:
        """Callers on hold look for a free agent again."""
        self._changed.set()
        self._changed = asyncio.Event()

    def apply_remote_agent(self, name: str, state: dict) -> None:
        """Another instance changed an agent (``Agent.public()``); mirror it here."""
        agent = self.agents.get(name)
        if agent is None:
            return
        held = self.claimed.get(name)
        if held is not None:
            if agent.ringing == held or held in (state.get("ringing"), state.get("on_call")):
                return  # our ring in progress, or a view that agrees with ours
            del self.claimed[name]  # they finished our call on another instance's desk
        agent.available = bool(state["available"])
        agent.idle_since = float(state.get("idle_since") or agent.idle_since)
        agent.ringing, agent.on_call = state.get("ringing"), state.get("on_call")
        self._emit(AgentChanged(agent))
        self._wake()

    def resync_claims(self) -> None:
        """Correct agents held elsewhere from the store (a missed event, a dead
        instance's claim that lapsed)."""
        if self.claims is None:
            return
        states = self.claims.agent_states()
        for name, agent in self.agents.items():
            if name in self.claimed or name not in states:
                continue
            busy = states[name].get("busy_with")
            if busy is None and (agent.ringing or agent.on_call):
                agent.ringing = agent.on_call = None
            elif busy is not None and agent.free:
                agent.ringing = BUSY_ELSEWHERE
            else:
                continue
            self._emit(AgentChanged(agent))
            self._wake()

    def _claim(self, agent: Agent, call_id: str) -> bool:
        """Reserve the agent for this call in the shared store (always yes alone)."""
        if self.claims is None:
            return True
        if not self.claims.claim_agent(agent.name, call_id):
            agent.ringing = BUSY_ELSEWHERE  # corrected by that instance's events
            return False
        self.claimed[agent.name] = call_id
        return True

    def _release(self, name: str, call_id: str) -> None:
        """Free the agent's claim for this call, whichever instance holds it
        (an agent may finish a call held elsewhere on the desk served here)."""
        if self.claims is None:
            return
        if self.claimed.get(name) == call_id:
            del self.claimed[name]
        self.claims.release_agent(name, call_id)

    def _save_agent(self, agent: Agent) -> None:
        self.store.save_agent_state(agent.name, agent.available, agent.idle_since, utc_now())

    # --------------------------------------------------------------- listeners

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` with every event; returns the unsubscribe function."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def publish(self, event: QueueEvent) -> None:
        """Tell listeners about an event that happened elsewhere (a cluster link)."""
        self._emit(event)

    def _emit(self, event: QueueEvent) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:  # a broken desk must never break a caller's transfer
                log.exception("event=listener_failed")

    def _set_status(self, call_id: str, state: str, agent: str | None = None) -> None:
        self.store.set_handoff_status(call_id, state, utc_now(), agent)
        self._emit(HandoffChanged(call_id, state))

    # ------------------------------------------------------------------ offers

    async def offer(
        self, package: HandoffPackage, on_step: Callable[[OfferStep], None] | None = None
    ) -> OfferResult:
        """Hand the call to an agent; see the module docstring for the rules."""
        if package.call_id in self._offers:
            raise ValueError(f"call {package.call_id} is already being offered")
        self.store.save_handoff(package.to_dict(), status.PENDING, utc_now())
        loop = asyncio.get_running_loop()
        offer = _Offer(package, on_step, loop.time() + self.config.max_wait_s)
        self._offers[package.call_id] = offer
        started = loop.time()
        try:
            result = await self._route(offer)
        except asyncio.CancelledError:
            self._finish(offer, Abandoned(package.call_id, tuple(offer.attempts)))
            raise
        finally:
            self._offers.pop(package.call_id, None)
        if isinstance(result, NoAgent):
            result = NoAgent(package.call_id, round(loop.time() - started, 3), result.attempts)
        return self._finish(offer, result)

    async def _route(self, offer: _Offer) -> OfferResult:
        call_id, waiting = offer.package.call_id, False
        loop = asyncio.get_running_loop()
        while not offer.abandon.is_set():
            remaining = offer.deadline - loop.time()
            if remaining <= 0 or self._nobody_left(offer):
                return NoAgent(call_id, 0.0, tuple(offer.attempts))
            agent = self._next_agent(offer)
            if agent is None:
                if not waiting:
                    self._step(offer, Waiting(call_id, round(remaining, 3)))
                    self._set_status(call_id, status.WAITING)
                waiting = True
                await self._wait_for_change(remaining, offer.abandon)
                continue
            if not self._claim(agent, call_id):
                continue  # another instance rang them first: pick again
            waiting = False
            result = await self._ring(offer, agent, min(self.config.ring_timeout_s, remaining))
            if result == "answered":
                return Answered(call_id, agent.config, tuple(offer.attempts))
            if result in ("declined", "failed"):
                offer.excluded.add(agent.name)
            offer.tried.add(agent.name)
        return Abandoned(call_id, tuple(offer.attempts))

    def _next_agent(self, offer: _Offer) -> Agent | None:
        """Everyone free gets one ring per round before anyone rings twice."""
        agents = self.agents.values()
        agent = choose_agent(agents, offer.package, offer.excluded | offer.tried)
        if agent is None and offer.tried:
            offer.tried.clear()
            agent = choose_agent(agents, offer.package, offer.excluded)
        return agent

    def _nobody_left(self, offer: _Offer) -> bool:
        """Every agent declined or failed: holding the caller longer is pointless."""
        return all(name in offer.excluded for name in self.agents)

    async def _wait_for_change(self, timeout: float, abandon: asyncio.Event) -> None:
        await first_of(self._changed.wait(), abandon.wait(), timeout=timeout)

    def _step(self, offer: _Offer, step: OfferStep) -> None:
        self._emit(step)
        if offer.on_step is not None:
            try:
                offer.on_step(step)
            except Exception:
                log.exception("event=on_step_failed call_id=%s", offer.package.call_id)

    def _finish(self, offer: _Offer, result: OfferResult) -> OfferResult:
        call_id = offer.package.call_id
        if isinstance(result, Answered):
            self._set_status(call_id, status.ANSWERED, result.agent.name)
        elif isinstance(result, NoAgent):
            self._set_status(call_id, status.NO_AGENT)
        else:
            self._set_status(call_id, status.ABANDONED)
        log.info(
            "event=handoff_result call_id=%s result=%s attempts=%d",
            call_id,
            type(result).__name__,
            len(result.attempts),
        )
        self._emit(result)
        return result

    # ------------------------------------------------------------------- rings

    async def _ring(self, offer: _Offer, agent: Agent, timeout: float) -> RingResult | None:
        """Ring one agent; None means the caller left meanwhile."""
        ring = Ring(offer.package.call_id, agent.name, offer.package, utc_now(), timeout)
        attempt = self._start_ring(ring, agent)
        result: RingResult | None = None
        try:
            result = await self._await_ring(ring, agent, timeout, offer.abandon)
        finally:
            self._end_ring(offer, ring, agent, attempt, result)
        return result

    def _start_ring(self, ring: Ring, agent: Agent) -> int:
        self.board.open(ring)
        agent.ringing = ring.call_id
        attempt = self.store.add_handoff_attempt(ring.call_id, agent.name, ring.started_at)
        self._set_status(ring.call_id, status.RINGING, agent.name)
        self._step(self._offers[ring.call_id], Ringing(ring.call_id, agent.name, ring))
        self._agent_changed(agent)
        return attempt

    async def _await_ring(
        self, ring: Ring, agent: Agent, timeout: float, abandon: asyncio.Event
    ) -> RingResult | None:
        dial = asyncio.ensure_future(self._dial(agent, ring.package))
        declined = asyncio.ensure_future(ring.declined.wait())
        left = asyncio.ensure_future(abandon.wait())
        # first_of awaits the cancelled dial: the dialer stops ringing before we move on
        done = await first_of(dial, declined, left, timeout=timeout)
        if dial in done and not dial.cancelled():
            return dial.result()
        if declined in done:
            return "declined"
        return None if left in done else "timeout"

    async def _dial(self, agent: Agent, package: HandoffPackage) -> RingResult:
        try:
            result = await self.dialer.ring(agent.config, package)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("event=dial_failed agent=%s call_id=%s", agent.name, package.call_id)
            return "failed"
        return result if result in ("answered", "declined", "timeout", "failed") else "failed"

    def _end_ring(
        self, offer: _Offer, ring: Ring, agent: Agent, attempt: int, result: RingResult | None
    ) -> None:
        self.board.close(ring.call_id)
        agent.ringing = None
        self.store.finish_handoff_attempt(attempt, result or status.ABANDONED, utc_now())
        if result == "answered":
            agent.on_call = ring.call_id
        else:
            self._release(agent.name, ring.call_id)
            if result == "timeout" and self.config.missed_ring_makes_unavailable:
                agent.available = False
        ended = RingEnded(ring.call_id, agent.name, result)
        offer.attempts.append(ended)
        self._step(offer, ended)
        self._agent_changed(agent)

    # ------------------------------------------------------------ desk actions

    def respond(self, agent: str, call_id: str, accept: bool) -> Ring:
        """A desk Accept/Decline (raises NoSuchRing / NotYourRing)."""
        ring = self.board.respond(agent, call_id, accept)
        if ring.owner is not None and self.forward_response is not None:
            self.forward_response(ring, accept)
        return ring

    async def hand_off(
        self,
        record: CallRecord,
        on_ringing: Callable[[str], None],
        on_waiting: Callable[[float], None],
    ) -> OfferOutcome:
        """The session's :class:`~voicebot.session.handoff.HandoffPort`: offer this call."""

        def on_step(step: OfferStep) -> None:
            if isinstance(step, Ringing):
                on_ringing(step.agent)
            elif isinstance(step, Waiting):
                on_waiting(step.remaining_s)

        package = HandoffPackage.from_record(record, record.transfer or {})
        result = await self.offer(package, on_step=on_step)
        attempts = len(result.attempts)
        if isinstance(result, Answered):
            return OfferOutcome("answered", attempts, result.agent.name)
        if isinstance(result, Abandoned):
            return OfferOutcome("abandoned", attempts)
        return OfferOutcome("no_agent", attempts)

    def abandon(self, call_id: str) -> bool:
        """The caller hung up on hold: stop ringing; the offer returns Abandoned."""
        offer = self._offers.get(call_id)
        if offer is None:
            return False
        offer.abandon.set()
        return True

    def request_callback(self, call_id: str, number: str) -> CallbackRequest:
        """Keep the caller's confirmed callback number (after NoAgent)."""
        request = CallbackRequest(call_id, number, utc_now())
        self.store.save_callback(call_id, number, request.confirmed_at)
        self._set_status(call_id, status.CALLBACK)
        return request

    def follow_up_done(self, call_id: str, agent: str) -> bool:
        """An agent called the customer back / dealt with a missed handoff."""
        if self.store.get_handoff(call_id) is None:
            return False
        self.store.set_callback_status(call_id, status.DONE, agent, utc_now())
        self._set_status(call_id, status.DONE, agent)
        return True

    def recover(self) -> list[str]:
        """At start-up: handoffs left open by a previous process lost their
        caller; mark them interrupted so the desk lists them for follow-up."""
        ids = self.store.mark_handoffs(status.OPEN_STATUSES, status.INTERRUPTED, utc_now())
        if ids:
            log.warning("event=handoffs_interrupted count=%d", len(ids))
        return ids
