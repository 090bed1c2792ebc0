// The admin page (/admin/, docs/console.md "Admin page"): the queues, refreshed every 2 s from
// GET /v1/admin/overview; a channel's dead letters with retry (one, all), purge (confirmed) and
// pause / resume; channel accounts' health; rate-limit policies; Redis; and the messages in
// and out per minute over the last hour, drawn as SVG here. Every value from the server is set
// as text.
import { t } from "./strings.js";
import {
  api, clock, el, session, show_signed_in, resume_session, time_ms, wire_session,
} from "./client.js";

const REFRESH_MS = 2000;
const SVG = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);

const state = { timer: null, dead_channel: null, paused: new Map(), busy: false };

function num(v) {
  return Number.isFinite(v) ? String(v) : "–";
}

function str(v) {
  return typeof v === "string" ? v : v === null || v === undefined ? "" : String(v);
}

function ago(ms) {
  if (!Number.isFinite(ms)) return t("never");
  return t("seconds_ago", { seconds: Math.round(ms / 1000) });
}

function when(ms) {
  if (!Number.isFinite(ms)) return t("never");
  return new Date(ms).toLocaleString();
}

function bytes(n) {
  if (!Number.isFinite(n)) return "–";
  const units = ["B", "KiB", "MiB", "GiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i += 1;
  }
  return (i ? n.toFixed(1) : String(n)) + " " + units[i];
}

// A cell; `label` (its column's name) is shown before it where a narrow screen stacks the table.
function td(text, cls, label) {
  return el("td", { class: cls, text, role: "cell", "data-label": label ? t(label) : null });
}

function row_header(text) {
  return el("th", { scope: "row", role: "rowheader", text });
}

function say(message) {
  $("admin-status").textContent = message;
}

// ---- the overview -------------------------------------------------------------------------

async function refresh() {
  clearTimeout(state.timer);
  try {
    const o = await api("GET", "/v1/admin/overview");
    render_queues(o);
    render_accounts(Array.isArray(o.accounts) ? o.accounts : []);
    render_limits(Array.isArray(o.rate_limits) ? o.rate_limits : []);
    render_redis(o.redis && typeof o.redis === "object" ? o.redis : {});
    render_chart(Array.isArray(o.throughput) ? o.throughput.slice(-60) : []);
    $("updated").textContent = t("updated_at", { time: clock(time_ms(o.generated_at) || Date.now()) });
    if ($("admin-status").dataset.kind === "overview") say("");
    if (state.dead_channel) await load_dead(state.dead_channel);
  } catch (e) {
    if (e.status === 401) return signed_out(t("session_ended"));
    if (e.status === 403) return signed_out(t("admins_only"));
    $("admin-status").dataset.kind = "overview";
    say(t("overview_failed", { message: e.message }));
  }
  if (session.user) state.timer = setTimeout(refresh, REFRESH_MS);
}

function action_button(label, handler, cls) {
  return el("button", { type: "button", class: cls, text: label, onclick: handler });
}

function render_queues(o) {
  const rows = [];
  const inbound = o.inbound && typeof o.inbound === "object" ? o.inbound : {};
  const engines = Array.isArray(inbound.engines) ? inbound.engines : [];
  const in_flight = engines.reduce((sum, e) => sum + (Number.isFinite(e.in_flight) ? e.in_flight : 0), 0);
  rows.push(el("tr", { role: "row" },
    row_header(t("inbound_queue")),
    td(num(inbound.waiting), "num", "waiting"), td(num(in_flight), "num", "in_flight"), td("", "num"),
    td(num(inbound.dead), "num" + (inbound.dead > 0 ? " bad" : ""), "dead"), td(""), td(""),
    td(inbound.unrouted > 0 ? t("unrouted") + ": " + num(inbound.unrouted) : "")));
  for (const e of engines) {
    const alive = e.alive === true;
    rows.push(el("tr", { role: "row" },
      row_header(t("engine_row", { name: str(e.consumer) })),
      td(""), td(num(e.in_flight), "num", "in_flight"), td(""), td(""), td(""),
      td((alive ? t("alive") : t("not_alive")) + " · " + ago(e.heartbeat_age_ms), alive ? "good" : "bad", "heartbeat"),
      td("")));
  }
  for (const q of Array.isArray(o.outbound) ? o.outbound : []) {
    const channel = str(q.channel);
    const paused = q.paused === true || q.paused === 1;
    state.paused.set(channel, paused);
    rows.push(el("tr", { role: "row", "data-channel": channel },
      row_header(channel),
      td(num(q.waiting), "num", "waiting"), td(num(q.active), "num", "in_flight"),
      td(num(q.delayed), "num", "delayed"), td(num(q.dead), "num" + (q.dead > 0 ? " bad" : ""), "dead"),
      td(paused ? t("yes") : t("no"), paused ? "bad" : "", "paused"), td(""),
      el("td", { role: "cell" }, el("span", { class: "cell-actions" },
        paused ? action_button(t("resume"), () => operate(channel, "resume"))
               : action_button(t("pause"), () => operate(channel, "pause"), "quiet"),
        action_button(t("show_dead"), () => show_dead(channel), "quiet")))));
  }
  replace_rows($("queue-rows"), rows);
}

// Replaces a table body's rows keeping the focused button's place, so a keyboard user is not
// thrown to the top every 2 s.
function replace_rows(tbody, rows) {
  const focused = tbody.contains(document.activeElement) ? document.activeElement : null;
  const key = focused ? [focused.closest("tr")?.dataset.channel || focused.closest("tr")?.dataset.id, focused.textContent] : null;
  tbody.replaceChildren(...rows);
  if (!key) return;
  for (const b of tbody.querySelectorAll("button")) {
    const row = b.closest("tr");
    if ((row.dataset.channel || row.dataset.id) === key[0]) {
      (b.textContent === key[1] ? b : row.querySelector("button")).focus();
      return;
    }
  }
}

function health(h) {
  if (!h || typeof h !== "object") return [t("health_unknown"), ""];
  const ok = time_ms(h.ok_at), bad = time_ms(h.error_at);
  if (Number.isFinite(bad) && (!Number.isFinite(ok) || bad > ok)) {
    return [t("health_error", { time: when(bad), error: str(h.error) }), "bad"];
  }
  if (Number.isFinite(ok)) return [t("health_ok", { time: when(ok) }), "good"];
  return [t("health_unknown"), ""];
}

function render_accounts(accounts) {
  $("account-rows").replaceChildren(...accounts.slice(0, 500).map((a) => {
    const [webhook, wcls] = health(a.webhook);
    const [send, scls] = health(a.send);
    return el("tr", {}, td(str(a.channel)), td(str(a.account)), td(str(a.property_id)), td(webhook, wcls), td(send, scls));
  }));
}

function render_limits(limits) {
  $("limit-rows").replaceChildren(...limits.slice(0, 200).map((l) => el("tr", {},
    td(str(l.name)), td(num(l.limit), "num"), td(t("window_seconds", { seconds: num(l.window_s) }), "num"))));
}

function render_redis(r) {
  const facts = [
    ["redis_embedded", r.embedded === true ? t("yes") : t("no")],
    ["redis_memory", bytes(r.used_memory)],
    ["redis_maxmemory", r.maxmemory ? bytes(r.maxmemory) : "–"],
    ["redis_aof", r.aof_enabled === true ? t("enabled") : t("disabled")],
    ["redis_last_save", when(time_ms(r.rdb_last_save_at))],
    ["redis_bgsave", str(r.rdb_last_bgsave_status)],
    ["redis_restarts", num(r.restarts)],
    ["redis_uptime", Number.isFinite(r.uptime_s) ? t("window_seconds", { seconds: r.uptime_s }) : "–"],
  ];
  $("redis").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", { text: t(k) }), el("dd", { text: v })]));
}

// Bars per minute, in and out side by side, drawn at the card's width (text stays its size).
function render_chart(points) {
  const w = Math.max(300, Math.min(2000, Math.round($("chart").clientWidth) || 600)), h = 180, pad = 28;
  const data = points.map((p) => ({
    minute: Number(p.minute), in: Math.max(0, Number(p.in) || 0), out: Math.max(0, Number(p.out) || 0),
  }));
  const peak = Math.max(1, ...data.map((d) => Math.max(d.in, d.out)));
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-labelledby", "chart-heading chart-summary");
  const slot = (w - pad) / Math.max(data.length, 60);
  const add = (name, attrs) => {
    const n = document.createElementNS(SVG, name);
    for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, String(v));
    svg.append(n);
    return n;
  };
  add("line", { x1: pad, y1: h - pad, x2: w, y2: h - pad, class: "axis" });
  add("line", { x1: pad, y1: 4, x2: pad, y2: h - pad, class: "axis" });
  add("text", { x: 0, y: 12 }).textContent = String(peak);
  add("text", { x: 0, y: h - pad }).textContent = "0";
  data.forEach((d, i) => {
    const x = pad + i * slot;
    const bar = Math.max(1, slot / 2 - 1);
    const hin = ((h - pad - 6) * d.in) / peak, hout = ((h - pad - 6) * d.out) / peak;
    if (d.in) add("rect", { x, y: h - pad - hin, width: bar, height: hin, class: "in" });
    if (d.out) add("rect", { x: x + bar, y: h - pad - hout, width: bar, height: hout, class: "out" });
  });
  if (data.length) {
    add("text", { x: pad, y: h - 6 }).textContent = clock(data[0].minute);
    add("text", { x: w, y: h - 6, "text-anchor": "end" }).textContent = clock(data[data.length - 1].minute);
  }
  $("chart").replaceChildren(svg);
  const total_in = data.reduce((s, d) => s + d.in, 0), total_out = data.reduce((s, d) => s + d.out, 0);
  const busiest = data.reduce((best, d) => (d.in + d.out > best.in + best.out ? d : best), { in: 0, out: 0, minute: NaN });
  $("chart-summary").textContent = t("throughput_summary", {
    in: total_in, out: total_out, peak: busiest.in + busiest.out, time: clock(busiest.minute),
  });
}

// ---- dead letters and operations ----------------------------------------------------------

async function show_dead(channel) {
  state.dead_channel = channel;
  $("dead-section").hidden = false;
  $("dead-heading").textContent = t("dead_letters", { channel });
  await load_dead(channel);
  $("dead-heading").focus();
}

async function load_dead(channel) {
  const data = await api("GET", "/v1/admin/queues/" + encodeURIComponent(channel) + "/dead?limit=50");
  if (state.dead_channel !== channel) return;
  const dead = Array.isArray(data.dead) ? data.dead : [];
  $("dead-empty").hidden = dead.length > 0;
  $("dead-table").hidden = dead.length === 0;
  $("retry-all").disabled = $("purge").disabled = dead.length === 0;
  replace_rows($("dead-rows"), dead.map((d) => {
    const id = str(d.id);
    const content = d.message && typeof d.message === "object" ? JSON.stringify(d.message, null, 2) : str(d.element);
    return el("tr", { role: "row", "data-id": id },
      td(str(d.reason), "", "reason"), td(num(d.attempts), "num", "attempts"),
      td(when(time_ms(d.failed_at)), "", "failed_at"),
      el("td", { role: "cell" }, el("pre", { class: "content", tabindex: "0", text: content })),
      el("td", { role: "cell" }, id ? action_button(t("retry"), () => operate(channel, "retry", id)) : null));
  }));
}

async function operate(channel, what, id) {
  if (state.busy) return;
  state.busy = true;
  const base = "/v1/admin/queues/" + encodeURIComponent(channel);
  try {
    if (what === "pause") {
      await api("POST", base + "/pause", {});
      say(t("done_pause", { channel }));
    } else if (what === "resume") {
      await api("POST", base + "/resume", {});
      say(t("done_resume", { channel }));
    } else if (what === "retry") {
      const r = await api("POST", base + "/dead/" + encodeURIComponent(id) + "/retry", {});
      say(t("done_retry", { count: num(r.requeued) }));
    } else if (what === "retry_all") {
      const r = await api("POST", base + "/dead/retry", {});
      say(t("done_retry", { count: num(r.requeued) }));
    } else if (what === "purge") {
      await api("DELETE", base + "/dead");
      say(t("done_purge", { channel }));
    }
    delete $("admin-status").dataset.kind;
  } catch (e) {
    say(t("error_frame", { message: e.message }));
  } finally {
    state.busy = false;
  }
  await refresh();
}

function confirm_purge() {
  const channel = state.dead_channel;
  if (!channel) return;
  const dialog = $("purge-dialog");
  $("purge-text").textContent = t("purge_confirm", { channel });
  dialog.returnValue = "";
  dialog.onclose = () => {
    if (dialog.returnValue === "purge") operate(channel, "purge");
    $("purge").focus();
  };
  dialog.showModal();
}

// ---- the page -----------------------------------------------------------------------------

function signed_in() {
  if (session.role !== "admin") {
    // The server answers 403 to a staff session's page load; one signing in here sees why.
    show_signed_in(false, t("admins_only"));
    return;
  }
  show_signed_in(true);
  refresh();
}

function signed_out(message = "") {
  clearTimeout(state.timer);
  session.user = null;
  state.dead_channel = null;
  $("dead-section").hidden = true;
  show_signed_in(false, message);
}

async function start() {
  wire_session(signed_in, () => signed_out());
  $("retry-all").addEventListener("click", () => operate(state.dead_channel, "retry_all"));
  $("purge").addEventListener("click", confirm_purge);
  await resume_session(signed_in);
}

start();
