// ccpulse wallboard: follows /events (Server-Sent Events) and draws one tile per queue.
//
// Every piece of data reaches the page through textContent or dataset, never as markup, so a
// queue called "<script>" is shown as those characters. Freshness comes from the server's
// clock: heartbeats carry server_time and the data's updated_at, and the page is "stale"
// when updated_at stops advancing, when Redis is unavailable, or when the connection is lost.
"use strict";

(() => {
  const METRICS = [
    { kpi: "waiting", label: "Waiting", unit: "count", hero: true },
    { kpi: "oldest_wait_seconds", label: "Oldest wait", unit: "duration", hero: true },
    { kpi: "service_level", label: "Service level", unit: "percent" },
    { kpi: "abandon_rate", label: "Abandoned", unit: "percent" },
    { kpi: "asa_seconds", label: "ASA", unit: "duration" },
    { kpi: "agents_available", label: "Agents free", unit: "count" },
    { kpi: "csat", label: "CSAT", unit: "percent" },
    { kpi: "sentiment", label: "Sentiment", unit: "sentiment" },
  ];
  const WINDOWS = ["15m", "1h", "today"];
  const WINDOW_NAMES = { "15m": "last 15 min", "1h": "last hour", today: "today" };
  const LEVEL_MARKS = { good: "✓", warn: "⚠", bad: "✗", none: "" };
  const LEVEL_ORDER = ["none", "good", "warn", "bad"];
  const BACKOFF_FIRST_MS = 1000;
  const BACKOFF_MAX_MS = 30000;
  const TICK_MS = 250;
  const NULL = "—";

  const params = new URLSearchParams(window.location.search);
  const state = {
    window: WINDOWS.includes(params.get("window")) ? params.get("window") : "15m",
    token: params.get("token"),
    source: null,
    tiles: new Map(), // scope -> { root, cells }
    connected: false, // a snapshot arrived on the current connection
    available: false, // the server can read Redis
    serverTime: null, // server clock at the last message, epoch s
    updatedAt: null, // data's updated_at at the last message, epoch s
    receivedAt: null, // performance.now() of the last message
    staleAfter: 5,
    heartbeat: 2,
    backoffMs: 0,
    retryTimer: null,
    retryAt: null,
  };

  // -- formatting -----------------------------------------------------------------------------

  function isNumber(value) {
    return typeof value === "number" && Number.isFinite(value);
  }

  function two(n) {
    return String(n).padStart(2, "0");
  }

  function format(unit, value) {
    if (!isNumber(value)) return NULL;
    if (unit === "count") return Math.round(value).toLocaleString("en-US");
    if (unit === "percent") {
      const pct = value * 100;
      const digits = pct !== 0 && Math.abs(pct) < 10 ? 1 : 0;
      return `${pct.toFixed(digits)}\u00a0%`;
    }
    if (unit === "duration") {
      const s = Math.max(0, Math.round(value));
      if (s < 60) return `${s}\u00a0s`;
      if (s < 3600) return `${Math.floor(s / 60)}:${two(s % 60)}`;
      return `${Math.floor(s / 3600)}:${two(Math.floor(s / 60) % 60)}:${two(s % 60)}`;
    }
    if (unit === "sentiment") {
      const text = Math.abs(value).toFixed(2);
      if (text === "0.00") return text;
      return (value > 0 ? "+" : "\u2212") + text;
    }
    return String(value);
  }

  function targetText(metric, judged) {
    if (!judged || !isNumber(judged.target)) return "\u00a0";
    const sign = judged.better === "lower" ? "≤" : "≥";
    const mark = LEVEL_MARKS[judged.level] || "";
    return `${mark ? mark + " " : ""}target ${sign} ${format(metric.unit, judged.target)}`;
  }

  // -- tiles ----------------------------------------------------------------------------------

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function buildTile(scope) {
    const summary = scope === "all";
    const root = el("article", summary ? "tile tile-summary" : "tile");
    root.dataset.scope = scope;
    const head = el("header", "tile-head");
    const title = el("h2", "tile-title");
    const note = el("span", "tile-note");
    head.append(title, note);
    const grid = el("div", "metrics");
    const cells = {};
    for (const metric of METRICS) {
      const cell = el("div", "metric");
      cell.dataset.kpi = metric.kpi;
      const value = el("div", "metric-value", NULL);
      const target = el("div", "metric-target", "\u00a0");
      cell.append(el("div", "metric-label", metric.label), value, target);
      grid.append(cell);
      cells[metric.kpi] = { cell, value, target, metric };
    }
    const foot = el("footer", "tile-foot");
    root.append(head, grid, foot);
    return { root, title, note, foot, cells };
  }

  function fillTile(entry, tile) {
    const kpis = tile.kpis || {};
    entry.title.textContent = tile.scope === "all" ? "All queues" : tile.queue;
    entry.note.textContent = WINDOW_NAMES[state.window] || state.window;
    let worst = "none";
    for (const { cell, value, target, metric } of Object.values(entry.cells)) {
      const judged = kpis[metric.kpi] || { value: null, level: "none" };
      const level = LEVEL_ORDER.includes(judged.level) ? judged.level : "none";
      cell.className = `metric level-${level}${metric.hero ? " hero" : ""}`;
      value.textContent = format(metric.unit, judged.value);
      target.textContent = targetText(metric, judged);
      if (LEVEL_ORDER.indexOf(level) > LEVEL_ORDER.indexOf(worst)) worst = level;
    }
    entry.root.dataset.level = worst;
    const offered = (kpis.offered || {}).value;
    const answered = (kpis.answered || {}).value;
    entry.foot.textContent = `offered ${format("count", offered)} · answered ${format("count", answered)}`;
  }

  function putTile(tile) {
    if (!tile || typeof tile.scope !== "string") return;
    let entry = state.tiles.get(tile.scope);
    if (!entry) {
      entry = buildTile(tile.scope);
      state.tiles.set(tile.scope, entry);
    }
    fillTile(entry, tile);
  }

  function removeTile(scope) {
    const entry = state.tiles.get(scope);
    if (entry) entry.root.remove();
    state.tiles.delete(scope);
  }

  function arrange() {
    const summary = document.getElementById("summary");
    const queues = document.getElementById("queues");
    const scopes = [...state.tiles.keys()].filter((s) => s !== "all").sort();
    const all = state.tiles.get("all");
    if (all && all.root.parentNode !== summary) summary.append(all.root);
    for (const scope of scopes) queues.append(state.tiles.get(scope).root);
    document.getElementById("empty").hidden = scopes.length > 0 || !state.connected;
  }

  function clearTiles() {
    for (const scope of [...state.tiles.keys()]) removeTile(scope);
    arrange();
  }

  // -- events ---------------------------------------------------------------------------------

  function stamp(data) {
    state.receivedAt = performance.now();
    if (isNumber(data.server_time)) state.serverTime = data.server_time;
    if ("updated_at" in data) state.updatedAt = isNumber(data.updated_at) ? data.updated_at : null;
  }

  function onSnapshot(data) {
    if (data.window !== state.window) return;
    state.backoffMs = 0;
    state.connected = true;
    state.available = true;
    if (isNumber(data.stale_after_seconds)) state.staleAfter = data.stale_after_seconds;
    if (isNumber(data.heartbeat_seconds)) state.heartbeat = data.heartbeat_seconds;
    stamp(data);
    const tiles = Array.isArray(data.tiles) ? data.tiles : [];
    const keep = new Set(tiles.map((t) => t.scope));
    for (const scope of [...state.tiles.keys()]) if (!keep.has(scope)) removeTile(scope);
    tiles.forEach(putTile);
    arrange();
  }

  function onChange(data) {
    if (data.window !== state.window) return;
    stamp(data);
    (Array.isArray(data.tiles) ? data.tiles : []).forEach(putTile);
    (Array.isArray(data.removed) ? data.removed : []).forEach(removeTile);
    arrange();
  }

  function onHeartbeat(data) {
    stamp(data);
    state.available = data.available !== false;
  }

  function onStatus(data) {
    state.receivedAt = performance.now();
    if (isNumber(data.server_time)) state.serverTime = data.server_time;
    state.available = data.available !== false;
  }

  function listen(source, name, handler) {
    source.addEventListener(name, (event) => {
      if (source !== state.source) return;
      let data;
      try {
        data = JSON.parse(event.data);
      } catch (err) {
        return;
      }
      if (data && typeof data === "object") handler(data);
      tick();
    });
  }

  function eventsUrl() {
    const query = new URLSearchParams({ window: state.window });
    if (state.token) query.set("token", state.token);
    return `/events?${query}`;
  }

  function connect() {
    clearTimeout(state.retryTimer);
    state.retryTimer = null;
    state.retryAt = null;
    if (state.source) state.source.close();
    state.connected = false;
    const source = new EventSource(eventsUrl());
    state.source = source;
    listen(source, "snapshot", onSnapshot);
    listen(source, "change", onChange);
    listen(source, "heartbeat", onHeartbeat);
    listen(source, "status", onStatus);
    source.onerror = () => {
      if (source !== state.source) return;
      state.connected = false;
      // CONNECTING: the browser retries by itself (the server's retry: delay). CLOSED: it
      // gave up (a 5xx, a 401, a wrong content type), so we retry with our own backoff.
      if (source.readyState === EventSource.CLOSED) reconnectLater();
      tick();
    };
  }

  function reconnectLater() {
    if (state.source) state.source.close();
    state.source = null;
    state.connected = false;
    state.backoffMs = state.backoffMs ? Math.min(BACKOFF_MAX_MS, state.backoffMs * 2) : BACKOFF_FIRST_MS;
    const delay = state.backoffMs * (0.8 + Math.random() * 0.4);
    state.retryAt = performance.now() + delay;
    clearTimeout(state.retryTimer);
    state.retryTimer = setTimeout(connect, delay);
  }

  // -- freshness ------------------------------------------------------------------------------

  function secondsSinceMessage() {
    return state.receivedAt === null ? Infinity : (performance.now() - state.receivedAt) / 1000;
  }

  function dataAgeSeconds() {
    if (state.updatedAt === null || state.serverTime === null) return null;
    return Math.max(0, state.serverTime - state.updatedAt + secondsSinceMessage());
  }

  function ago(seconds) {
    if (seconds === null) return "no data yet";
    if (seconds < 120) return `last data ${Math.floor(seconds)} s ago`;
    if (seconds < 7200) return `last data ${Math.floor(seconds / 60)} min ago`;
    return `last data ${Math.floor(seconds / 3600)} h ago`;
  }

  function freshness() {
    const age = dataAgeSeconds();
    const silent = secondsSinceMessage() > state.heartbeat * 2 + 1;
    if (state.receivedAt === null && state.retryAt === null) return { live: false, text: "STALE · connecting…" };
    if (!state.connected || silent) {
      const wait = state.retryAt === null ? null : Math.max(0, (state.retryAt - performance.now()) / 1000);
      const next = wait === null ? "reconnecting" : `reconnecting in ${Math.ceil(wait)} s`;
      return { live: false, text: `STALE · connection lost · ${ago(age)} · ${next}` };
    }
    if (!state.available) return { live: false, text: `STALE · data unavailable · ${ago(age)}` };
    if (age === null) return { live: false, text: "STALE · waiting for data" };
    if (age > state.staleAfter) return { live: false, text: `STALE · ${ago(age)}` };
    return { live: true, text: `LIVE · updated ${age < 1 ? "<1" : Math.floor(age)} s ago` };
  }

  function watchdog() {
    // A connection that stays open but goes quiet (a half-open socket) is replaced.
    if (state.source && state.connected && secondsSinceMessage() > state.heartbeat * 3 + 2) {
      reconnectLater();
    }
  }

  function clockText() {
    if (state.serverTime === null) return "--:--:--";
    const now = new Date((state.serverTime + Math.min(secondsSinceMessage(), 3600)) * 1000);
    return `${two(now.getHours())}:${two(now.getMinutes())}:${two(now.getSeconds())}`;
  }

  function tick() {
    watchdog();
    const { live, text } = freshness();
    document.body.classList.toggle("stale", !live);
    document.body.dataset.state = live ? "live" : "stale";
    const status = document.getElementById("status");
    status.className = `status ${live ? "status-live" : "status-stale"}`;
    document.getElementById("status-text").textContent = text;
    document.getElementById("clock").textContent = clockText();
  }

  // -- window switch --------------------------------------------------------------------------

  function showWindow() {
    for (const button of document.querySelectorAll("button[data-window]")) {
      button.setAttribute("aria-pressed", String(button.dataset.window === state.window));
    }
  }

  function switchWindow(name) {
    if (!WINDOWS.includes(name) || name === state.window) return;
    state.window = name;
    const query = new URLSearchParams(window.location.search);
    query.set("window", name);
    window.history.replaceState(null, "", `${window.location.pathname}?${query}`);
    showWindow();
    clearTiles();
    state.backoffMs = 0;
    connect();
    tick();
  }

  function start() {
    for (const button of document.querySelectorAll("button[data-window]")) {
      button.addEventListener("click", () => switchWindow(button.dataset.window));
    }
    showWindow();
    connect();
    tick();
    setInterval(tick, TICK_MS);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
