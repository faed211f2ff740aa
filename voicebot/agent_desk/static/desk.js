// Agent desk. Plain JS, no build step.
// Every caller-derived string is untrusted: it only ever reaches the page as
// a text node (el()/textContent), never as markup. The CSP forbids inline
// script as a second line of defence.
"use strict";

(() => {
  const REASONS = {
    explicit: "Asked for a person",
    frustration: "Frustration",
    complexity: "Complex request",
  };
  const STATUS_LABELS = {
    pending: "Waiting to ring",
    ringing: "Ringing",
    waiting: "On hold",
    answered: "Answered",
    no_agent: "No agent answered",
    callback: "Callback requested",
    abandoned: "Caller hung up on hold",
    interrupted: "Cut by a restart",
    done: "Followed up",
    served: "Served by the assistant",
    failed: "Failed (technical problem)",
    contained: "Handled by the assistant",
    transferred: "Transferred",
    in_progress: "In progress",
  };
  const AGENT_STATUS = {
    offline: "Unavailable",
    available: "Available",
    ringing: "Ringing",
    on_call: "On a call",
  };
  const SVG_NS = "http://www.w3.org/2000/svg";

  const $ = (id) => document.getElementById(id);
  const state = { me: null, ws: null, cards: new Map(), retry: 0 };

  // ------------------------------------------------------------------ DOM

  /** Build an element; string children become text nodes (never HTML). */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "text") node.textContent = String(value);
      else if (key === "onclick") node.addEventListener("click", value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function svg(tag, attrs) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
    return node;
  }

  const clock = (seconds) => {
    const s = Math.max(0, Math.round(Number(seconds) || 0));
    return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
  };
  const when = (iso) => {
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? "" : d.toLocaleString();
  };
  const reasonLabel = (r) => REASONS[r] || (r ? String(r) : "—");
  const statusLabel = (s) => STATUS_LABELS[s] || String(s || "");
  const safeClass = (s) => String(s || "none").replace(/[^a-z_]/g, "");

  function notice(text) {
    $("notice").textContent = text;
  }

  // ------------------------------------------------------------------ API

  async function api(path, options = {}) {
    const init = { credentials: "same-origin", headers: {}, ...options };
    if (options.body !== undefined) {
      init.method = init.method || "POST";
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(options.body);
    }
    const response = await fetch(path, init);
    if (response.status === 401) {
      showSignIn();
      throw new Error("signed out");
    }
    if (!response.ok) throw new Error(await response.text());
    return response.json();
  }

  // -------------------------------------------------------------- sign-in

  function showSignIn(message) {
    state.me = null;
    if (state.ws) state.ws.close();
    $("desk").hidden = true;
    $("me").hidden = true;
    $("signin").hidden = false;
    $("signin-error").textContent = message || "";
    $("token").focus();
  }

  async function signIn(event) {
    event.preventDefault();
    const token = $("token").value;
    const response = await fetch("api/signin", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ token }),
    });
    if (!response.ok) {
      $("signin-error").textContent = "That token was not recognised.";
      return;
    }
    $("token").value = "";
    await start();
  }

  async function signOut() {
    try {
      await api("api/signout", { method: "POST", body: {} });
    } finally {
      showSignIn("Signed out.");
    }
  }

  async function start() {
    let me;
    try {
      me = await api("api/me");
    } catch {
      return;
    }
    $("signin").hidden = true;
    $("desk").hidden = false;
    $("me").hidden = false;
    showAgent(me.agent);
    for (const ring of me.rings) showRing(ring);
    connect();
    loadFollowups();
    loadHistory();
  }

  // ---------------------------------------------------------------- agent

  function showAgent(agent) {
    state.me = agent;
    $("me-name").textContent = agent.name;
    const pill = $("me-status");
    pill.textContent = AGENT_STATUS[agent.status] || agent.status;
    pill.className = `pill status-${safeClass(agent.status)}`;
    const toggle = $("availability");
    toggle.setAttribute("aria-pressed", String(agent.available));
    toggle.textContent = agent.available ? "Available" : "Unavailable";
    toggle.title = agent.available ? "Click to stop receiving transfers" : "Click to receive transfers";
    $("finish").hidden = agent.status !== "on_call";
  }

  async function toggleAvailability() {
    const result = await api("api/availability", { body: { available: !state.me.available } });
    showAgent(result.agent);
  }

  async function finishCall() {
    const result = await api("api/finish", { method: "POST", body: {} });
    showAgent(result.agent);
  }

  function showTeam(agents) {
    const list = $("team-list");
    list.replaceChildren(
      ...agents.map((a) =>
        el("li", { class: `team-member status-${safeClass(a.status)}` },
          el("span", { class: "dot", "aria-hidden": "true" }),
          `${a.name} — ${AGENT_STATUS[a.status] || a.status}`)),
    );
  }

  // ------------------------------------------------------------ websocket

  function connect() {
    const url = new URL("ws", window.location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(url);
    state.ws = ws;
    ws.addEventListener("open", () => { state.retry = 0; });
    ws.addEventListener("message", (event) => onMessage(JSON.parse(event.data)));
    ws.addEventListener("close", () => {
      if (state.ws !== ws || !state.me) return;
      state.retry = Math.min(state.retry + 1, 5);
      notice("Connection lost — reconnecting…");
      setTimeout(() => { if (state.me) start(); }, 500 * state.retry);
    });
  }

  function onMessage(message) {
    switch (message.type) {
      case "hello":
        showAgent(message.agent);
        for (const ring of message.rings) showRing(ring);
        notice("");
        break;
      case "ring":
        showRing(message.ring);
        break;
      case "ring_ended":
        ringEnded(message.call_id, message.result);
        break;
      case "agent":
        showAgent(message.agent);
        break;
      case "team":
        showTeam(message.agents);
        break;
      case "handoff":
        loadFollowups();
        break;
      default:
        break;
    }
  }

  // ----------------------------------------------------------------- cards

  function showRing(ring) {
    if (state.cards.has(ring.call_id)) return;
    const card = buildCard(ring);
    state.cards.set(ring.call_id, card);
    $("cards").prepend(card.node);
    $("no-cards").hidden = true;
    notice(`Incoming transfer: ${reasonLabel(ring.package.reason)}.`);
  }

  function buildCard(ring) {
    const pkg = ring.package;
    const id = `card-${ring.call_id.replace(/[^A-Za-z0-9_-]/g, "_")}`;
    const deadline = Date.now() + Number(ring.timeout_s) * 1000;
    const timer = el("span", { class: "timer", "aria-label": "time left to answer" });
    const accept = el("button", { type: "button", class: "accept" }, "Accept");
    const decline = el("button", { type: "button", class: "decline" }, "Decline");
    const stateLine = el("p", { class: "card-state", role: "status" });
    const node = el("article", {
      class: `card reason-${safeClass(pkg.reason)}`, "aria-labelledby": `${id}-title`,
      "data-call-id": ring.call_id,
    },
      el("header", { class: "card-head" },
        el("span", { class: `badge reason-${safeClass(pkg.reason)}` }, reasonLabel(pkg.reason)),
        el("h3", { id: `${id}-title` }, `Caller ${pkg.caller_id || "(no caller ID)"}`),
        timer),
      el("p", { class: "summary" }, pkg.summary || ""),
      verifiedList(pkg.verified),
      el("div", { class: "card-grid" },
        signalsBlock(pkg.signals),
        chart(pkg.frustration_timeline)),
      transcriptBlock(pkg.transcript, true),
      el("div", { class: "actions" }, accept, decline),
      stateLine,
    );
    const card = { node, accept, decline, stateLine, timer, deadline, tick: null };
    accept.addEventListener("click", () => answer(ring.call_id, true));
    decline.addEventListener("click", () => answer(ring.call_id, false));
    card.tick = setInterval(() => {
      timer.textContent = `Ringing · ${clock((card.deadline - Date.now()) / 1000)}`;
    }, 250);
    timer.textContent = `Ringing · ${clock(ring.timeout_s)}`;
    if (ring.accepted) accepted(card);
    return card;
  }

  function verifiedList(verified) {
    const fact = (label, value, yes, no) => [
      el("dt", {}, label),
      el("dd", { class: value === true ? "ok" : value === false ? "no" : "unknown" },
        value === true ? `✓ ${yes}` : value === false ? `✗ ${no}` : "Not checked"),
    ];
    return el("dl", { class: "verified", "aria-label": "What the assistant verified" },
      fact("Caller ID", verified && verified.caller_id_matched, "Matched", "Not on file"),
      fact("PIN", verified && verified.pin_verified, "Verified", "Not verified"));
  }

  function signalsBlock(signals) {
    const fired = (signals || []).filter((s) => Number(s.value) > 0);
    return el("div", { class: "signals" },
      el("h4", {}, "Why it came to you"),
      fired.length
        ? el("ul", {}, fired.map((s) => el("li", {},
          el("span", { class: "signal-name" }, String(s.name).replace(/_/g, " ")),
          el("span", { class: "signal-value" }, ` ${Number(s.value).toFixed(2)}`),
          s.evidence ? el("span", { class: "evidence" }, ` — ${s.evidence}`) : null)))
        : el("p", { class: "empty" }, "No signals recorded."));
  }

  /** Frustration score (0–1) per turn as a small line chart. */
  function chart(points) {
    const data = (points || []).map((p) => ({ t: Number(p.at_s) || 0, s: Number(p.score) || 0 }));
    const figure = el("figure", { class: "chart" });
    const W = 260, H = 90, L = 26, R = 8, T = 8, B = 20;
    const peak = data.reduce((m, p) => Math.max(m, p.s), 0);
    const box = svg("svg", {
      viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: "img",
      "aria-label": data.length
        ? `Frustration over ${data.length} turns, peak ${peak.toFixed(2)} of 1`
        : "No frustration data",
    });
    const x = (t) => {
      const span = data.length > 1 ? data[data.length - 1].t - data[0].t : 0;
      const left = L + 8, width = W - left - R;  // keep the first dot off the axis labels
      return span > 0 ? left + ((t - data[0].t) / span) * width : left + width / 2;
    };
    const y = (s) => T + (1 - Math.min(1, Math.max(0, s))) * (H - T - B);
    for (const level of [0, 0.5, 1]) {
      box.append(svg("line", { x1: L, x2: W - R, y1: y(level), y2: y(level), class: "grid" }));
      const label = svg("text", { x: L - 4, y: y(level) + 3, class: "axis", "text-anchor": "end" });
      label.textContent = String(level);
      box.append(label);
    }
    if (data.length) {
      box.append(svg("polyline", {
        points: data.map((p) => `${x(p.t).toFixed(1)},${y(p.s).toFixed(1)}`).join(" "),
        class: "line",
      }));
      for (const p of data) {
        const dot = svg("circle", { cx: x(p.t).toFixed(1), cy: y(p.s).toFixed(1), r: 3, class: "point" });
        const title = svg("title", {});
        title.textContent = `${clock(p.t)} — ${p.s.toFixed(2)}`;
        dot.append(title);
        box.append(dot);
      }
      const tail = svg("text", { x: W - R, y: H - 4, class: "axis", "text-anchor": "end" });
      tail.textContent = clock(data[data.length - 1].t);
      box.append(tail);
    }
    figure.append(box, el("figcaption", {}, "Frustration over the call"));
    return figure;
  }

  function transcriptBlock(turns, open) {
    const list = el("ol", { class: "transcript" });
    for (const turn of turns || []) {
      const item = el("li", { class: "turn" }, el("span", { class: "at" }, clock(turn.offset_s)));
      const lines = el("div", { class: "lines" });
      if (turn.caller_text !== null && turn.caller_text !== undefined) {
        lines.append(el("p", { class: "caller" },
          el("span", { class: "who" }, turn.input === "dtmf" ? "Caller (keypad)" : "Caller"),
          el("span", { class: "said" }, turn.caller_text),
          turn.intent ? el("span", { class: "intent" },
            turn.confidence !== null && turn.confidence !== undefined
              ? `${turn.intent} ${Number(turn.confidence).toFixed(2)}` : turn.intent) : null));
      }
      if (turn.bot_text) {
        lines.append(el("p", { class: "bot" },
          el("span", { class: "who" }, "Assistant"), el("span", { class: "said" }, turn.bot_text)));
      }
      item.append(lines);
      list.append(item);
    }
    return el("details", { class: "transcript-box", open },
      el("summary", {}, `Transcript (${(turns || []).length} turns)`), list);
  }

  async function answer(callId, accept) {
    const card = state.cards.get(callId);
    if (card) { card.accept.disabled = true; card.decline.disabled = true; }
    try {
      await api(`api/rings/${encodeURIComponent(callId)}/${accept ? "accept" : "decline"}`,
        { method: "POST", body: {} });
      // The push that the call connected may beat this response.
      if (card && accept && !card.node.classList.contains("connected")) accepted(card);
    } catch (error) {
      if (card) card.stateLine.textContent = "This ring has already ended.";
    }
  }

  function accepted(card) {
    card.accept.disabled = true;
    card.decline.disabled = true;
    card.stateLine.textContent = "Accepted — connecting the caller…";
  }

  function ringEnded(callId, result) {
    const card = state.cards.get(callId);
    if (!card) return;
    clearInterval(card.tick);
    if (result === "answered") {
      notice("");
      card.timer.textContent = "Connected";
      card.node.classList.add("connected");
      card.stateLine.textContent = "Connected. The caller is with you.";
      card.accept.remove();
      card.decline.replaceWith(el("button", {
        type: "button", class: "secondary", onclick: () => removeCard(callId),
      }, "Close card"));
      return;
    }
    const why = {
      declined: "You declined the call; it went to the next agent.",
      timeout: "The call rang out and went to the next agent.",
      failed: "Your phone could not be reached; the call went to the next agent.",
    }[result] || "The caller left before the call was answered.";
    notice(why);
    removeCard(callId);
  }

  function removeCard(callId) {
    const card = state.cards.get(callId);
    if (!card) return;
    clearInterval(card.tick);
    card.node.remove();
    state.cards.delete(callId);
    $("no-cards").hidden = state.cards.size > 0;
  }

  // ------------------------------------------------------ lists and detail

  function callItem(item, extra) {
    return el("li", { class: "item" },
      el("button", { type: "button", class: "item-open", onclick: () => openCall(item.call_id) },
        el("span", { class: "item-top" },
          el("strong", {}, item.caller_id || "(no caller ID)"),
          item.reason ? el("span", { class: `badge small reason-${safeClass(item.reason)}` },
            reasonLabel(item.reason)) : null,
          el("span", { class: `status status-${safeClass(item.status)}` }, statusLabel(item.status))),
        el("span", { class: "item-summary" }, item.summary || ""),
        el("span", { class: "item-meta" }, `${when(item.created_at)} · ${item.call_id}`)),
      extra || null);
  }

  async function loadFollowups() {
    const { followups } = await api("api/followups");
    $("followup-count").textContent = followups.length ? `(${followups.length})` : "";
    const list = $("followup-list");
    list.replaceChildren(...followups.map((item) => callItem(item, el("div", { class: "item-actions" },
      item.callback ? el("span", { class: "callback" }, `Call back ${item.callback.number}`) : null,
      el("button", {
        type: "button", class: "secondary", onclick: () => markDone(item.call_id),
      }, "Mark done")))));
    if (!followups.length) list.append(el("li", { class: "empty" }, "Nothing to follow up."));
  }

  async function markDone(callId) {
    await api(`api/followups/${encodeURIComponent(callId)}/done`, { method: "POST", body: {} });
    loadFollowups();
  }

  async function loadHistory(event) {
    if (event) event.preventDefault();
    const q = $("search").value.trim();
    const { calls } = await api(`api/calls${q ? `?q=${encodeURIComponent(q)}` : ""}`);
    const list = $("history-list");
    list.replaceChildren(...calls.map((item) => callItem(item)));
    if (!calls.length) list.append(el("li", { class: "empty" }, q ? "No calls match." : "No calls yet."));
  }

  async function openCall(callId) {
    const call = await api(`api/calls/${encodeURIComponent(callId)}`);
    const pkg = call.handoff ? call.handoff.package : null;
    const record = call.record;
    const body = $("detail-body");
    const parts = [
      el("p", { class: "item-meta" }, `Call ${call.call_id}`),
      pkg ? el("p", {}, el("span", { class: `badge reason-${safeClass(pkg.reason)}` },
        reasonLabel(pkg.reason)), " ", statusLabel(call.handoff.status)) : null,
      pkg ? el("p", { class: "summary" }, pkg.summary) : null,
      call.handoff && call.handoff.callback
        ? el("p", { class: "callback" }, `Callback requested on ${call.handoff.callback.number}`) : null,
      verifiedList(record ? record.verified : pkg && pkg.verified),
      pkg ? el("div", { class: "card-grid" }, signalsBlock(pkg.signals), chart(pkg.frustration_timeline)) : null,
      call.handoff && call.handoff.attempts.length ? el("p", { class: "item-meta" }, "Rang: " +
        call.handoff.attempts.map((a) => `${a.agent} (${a.result || "ringing"})`).join(", ")) : null,
      transcriptBlock(record ? record.transcript : pkg.transcript, true),
    ];
    body.replaceChildren(...parts.filter(Boolean));  // replaceChildren would print "null"
    $("detail-title").textContent = `Caller ${(record || pkg).caller_id || "(no caller ID)"}`;
    $("detail").hidden = false;
    $("detail").focus();
  }

  // ------------------------------------------------------------------ boot

  document.addEventListener("DOMContentLoaded", () => {
    $("signin-form").addEventListener("submit", signIn);
    $("signout").addEventListener("click", signOut);
    $("availability").addEventListener("click", toggleAvailability);
    $("finish").addEventListener("click", finishCall);
    $("search-form").addEventListener("submit", loadHistory);
    $("detail-close").addEventListener("click", () => { $("detail").hidden = true; });
    start();
  });
})();
