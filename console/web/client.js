// What the inbox and the admin page share (docs/console.md): the texts applied to the page,
// the API client (the session cookie + X-CSRF-Token), sign-in and sign-out, and the
// /v1/realtime WebSocket with reconnection and `since` (docs/realtime.md).
import { t } from "./strings.js";

// Fills the page's fixed texts from strings.js: data-text (textContent), data-label
// (aria-label), data-title on <html> (the document title).
export function apply_strings(root = document) {
  for (const el of root.querySelectorAll("[data-text]")) el.textContent = t(el.dataset.text);
  for (const el of root.querySelectorAll("[data-label]")) el.setAttribute("aria-label", t(el.dataset.label));
  const title = document.documentElement.dataset.title;
  if (title) document.title = t(title);
}

// A new element: el("li", {class: "x", text: "…"}, child, …). Text goes in as text only.
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "text") node.textContent = v;
    else if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) if (c) node.append(c);
  return node;
}

export class api_error extends Error {
  constructor(status, code, message, retry_after) {
    super(message || code);
    this.status = status;
    this.code = code;
    this.retry_after = retry_after;
  }
}

// The signed-in session: who, role, properties and the CSRF token every write carries.
export const session = { user: null, role: null, properties: [], csrf_token: "", expires_at: null };

// One API call on this origin with the session cookie; the parsed JSON answer, or an api_error.
export async function api(method, path, body) {
  const headers = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && session.csrf_token) headers["X-CSRF-Token"] = session.csrf_token;
  let res;
  try {
    res = await fetch(path, {
      method, headers, credentials: "same-origin", cache: "no-store",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new api_error(0, "network", t("error_network"));
  }
  let data = null;
  try {
    data = await res.json();
  } catch (e) {
    data = null;
  }
  if (!res.ok) {
    const err = data && data.error ? data.error : {};
    throw new api_error(res.status, err.code || "http_" + res.status, err.message,
                        Number(res.headers.get("Retry-After")) || 0);
  }
  return data;
}

function take_session(data) {
  session.user = typeof data.user === "string" ? data.user : "";
  session.role = data.role === "admin" ? "admin" : "staff";
  session.properties = Array.isArray(data.properties) ? data.properties.filter((p) => typeof p === "string") : [];
  session.csrf_token = typeof data.csrf_token === "string" ? data.csrf_token : "";
  session.expires_at = data.expires_at ?? null;
  return session;
}

// The current session, or null when signed out.
export async function current_session() {
  try {
    return take_session(await api("GET", "/v1/auth/me"));
  } catch (e) {
    if (e.status === 401) return null;
    throw e;
  }
}

export async function sign_out() {
  try {
    await api("POST", "/v1/auth/logout", {});
  } finally {
    session.user = null;
    session.csrf_token = "";
  }
}

function sign_in_error(e) {
  if (e.code === "invalid_credentials") return t("error_invalid_credentials");
  if (e.code === "too_many_attempts") return t("error_too_many_attempts", { seconds: e.retry_after || 60 });
  if (e.code === "network") return t("error_network");
  return t("error_generic", { code: e.code });
}

// Wires the page's sign-in form (#sign-in): on success `on_signed_in(session)`.
export function wire_sign_in(on_signed_in) {
  const form = document.getElementById("sign-in-form");
  const error = document.getElementById("sign-in-error");
  const button = form.querySelector("button[type=submit]");
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (button.disabled) return;
    button.disabled = true;
    button.textContent = t("signing_in");
    error.textContent = "";
    const username = form.elements.username.value;
    const password = form.elements.password.value;
    try {
      const data = await api("POST", "/v1/auth/login", { username, password });
      form.elements.password.value = "";
      on_signed_in(take_session(data));
    } catch (e) {
      error.textContent = sign_in_error(e);
      form.elements.password.select();
    } finally {
      button.disabled = false;
      button.textContent = t("sign_in");
    }
  });
}

// What every page does first: its texts, the sign-in form (`on_signed_in(session)` after a
// sign-in) and the sign-out button (`on_signed_out()` after it, whether or not Bellhop answered).
export function wire_session(on_signed_in, on_signed_out) {
  apply_strings();
  wire_sign_in(on_signed_in);
  document.getElementById("sign-out").addEventListener("click", async () => {
    try {
      await sign_out();
    } finally {
      on_signed_out();
    }
  });
}

// Signs the page in with the session its cookie still has (`on_signed_in()`), or shows the
// sign-in form (with the reason when Bellhop could not be asked).
export async function resume_session(on_signed_in) {
  try {
    if (await current_session()) return on_signed_in();
  } catch (e) {
    return show_signed_in(false, e.message);
  }
  show_signed_in(false);
}

// Shows either the sign-in section or the signed-in application (the [data-signed-in] parts).
export function show_signed_in(signed_in, message = "") {
  document.getElementById("sign-in").hidden = signed_in;
  for (const part of document.querySelectorAll("[data-signed-in]")) part.hidden = !signed_in;
  if (!signed_in) {
    document.getElementById("sign-in-error").textContent = message;
    document.getElementById("username").focus();
  } else {
    const who = document.getElementById("who");
    if (who) who.textContent = t("signed_in_as", { user: session.user });
  }
}

// The dashboards' WebSocket (docs/realtime.md) for the signed-in session: the browser sends the
// cookie with the upgrade and the server answers `welcome` at once. Keeps the last seq handled
// per property, subscribes with `since` after every (re)connect, reconnects with exponential
// backoff and jitter (0.5 s doubling to 30 s), pings every heartbeat and drops a silent
// connection. `handlers`: on_status(state, seconds), on_welcome(frame), on_subscribed(property,
// reload: load the view over HTTP), on_event(frame) (sequenced ones each once, in order), on_reload(property)
// (events were lost), on_frame(frame) (ack, error), on_session_ended().
export class realtime {
  constructor(handlers) {
    this.handlers = handlers;
    this.properties = new Set();
    this.last = new Map();  // property -> last seq handled
    this.ws = null;
    this.backoff_ms = 500;
    this.timer = null;
    this.ping_timer = null;
    this.last_frame_at = 0;
    this.session_id = null;
    this.stopped = true;
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.ping_timer);
    if (this.ws) this.ws.close(1000);
    this.ws = null;
  }

  open() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN && this.session_id !== null;
  }

  send(frame) {
    if (!this.open()) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  subscribe(property) {
    this.properties.add(property);
    if (!this.open()) return;
    const frame = { type: "subscribe", property_id: property };
    if (this.last.has(property)) frame.since = this.last.get(property);
    this.send(frame);
  }

  connect() {
    if (this.stopped) return;
    this.handlers.on_status("connecting");
    const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/v1/realtime";
    const ws = new WebSocket(url);
    this.ws = ws;
    this.session_id = null;
    ws.onmessage = (m) => {
      if (this.ws !== ws) return;
      this.last_frame_at = Date.now();
      let frame;
      try {
        frame = JSON.parse(m.data);
      } catch (e) {
        return;
      }
      if (frame && typeof frame === "object") this.handle(frame);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.session_id = null;
      clearInterval(this.ping_timer);
      if (this.stopped) return;
      if (ev.code === 4401) {
        // The session ended (signed out elsewhere, disabled, expired): no retry with it.
        this.stopped = true;
        this.handlers.on_session_ended();
        return;
      }
      this.retry();
    };
  }

  retry() {
    const delay = this.backoff_ms * (0.5 + Math.random() / 2);
    this.backoff_ms = Math.min(this.backoff_ms * 2, 30000);
    this.handlers.on_status("offline", Math.ceil(delay / 1000));
    clearTimeout(this.timer);
    this.timer = setTimeout(async () => {
      // A refused upgrade looks like any failed connection to a browser: ask whether the
      // session still stands before trying again.
      try {
        if ((await current_session()) === null) {
          this.stopped = true;
          this.handlers.on_session_ended();
          return;
        }
      } catch (e) {
        // Bellhop unreachable (restarting): try the socket anyway.
      }
      this.connect();
    }, delay);
  }

  handle(frame) {
    switch (frame.type) {
      case "welcome": {
        this.session_id = typeof frame.session_id === "string" ? frame.session_id : "";
        this.backoff_ms = 500;
        const heartbeat_ms = Math.min(Math.max(Number(frame.heartbeat_s) || 30, 5), 300) * 1000;
        clearInterval(this.ping_timer);
        this.ping_timer = setInterval(() => {
          if (Date.now() - this.last_frame_at > 2 * heartbeat_ms + 5000) {
            if (this.ws) this.ws.close();  // silent too long: reconnect
            return;
          }
          this.send({ type: "ping" });
        }, heartbeat_ms);
        this.handlers.on_status("online");
        this.handlers.on_welcome(frame);
        for (const p of this.properties) this.subscribe(p);
        return;
      }
      case "subscribed": {
        const p = frame.property_id;
        if (!this.properties.has(p)) return;
        const seq = Number(frame.seq);
        if (!Number.isSafeInteger(seq) || seq < 0) return;
        // Recovered: the missed events follow (from history) and are applied one by one; else
        // (or the first time) the view is loaded over HTTP and live events apply from `seq`.
        const reload = !this.last.has(p) || frame.recovered !== true;
        if (reload) this.last.set(p, seq);
        this.handlers.on_subscribed(p, reload);
        return;
      }
      case "event": {
        const p = frame.property_id;
        if (!this.properties.has(p)) return;
        if (frame.seq === undefined || frame.seq === null) return this.handlers.on_event(frame);
        const seq = Number(frame.seq);
        const last = this.last.get(p);
        if (!Number.isSafeInteger(seq) || last === undefined || seq <= last) return;
        this.last.set(p, seq);
        if (seq > last + 1) return this.handlers.on_reload(p);  // a gap: reload, do not patch
        return this.handlers.on_event(frame);
      }
      case "error":
        if (frame.code === "session_ended") {
          this.stopped = true;
          this.handlers.on_session_ended();
          return;
        }
        return this.handlers.on_frame(frame);
      default:
        return this.handlers.on_frame(frame);
    }
  }
}

// A random id for a message's idempotency (client_msg_id).
export function new_id() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

// A time as the viewer's local clock shows it (one formatter: making one per call is slow).
const clock_format = new Intl.DateTimeFormat([], { hour: "2-digit", minute: "2-digit" });
export function clock(ms) {
  if (!Number.isFinite(ms)) return "";
  return clock_format.format(ms);
}

// Epoch ms of an RFC 3339 string or a number; NaN when neither.
export function time_ms(value) {
  if (typeof value === "number") return value;
  if (typeof value === "string") return Date.parse(value);
  return NaN;
}
