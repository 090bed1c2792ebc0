// Bellhop web chat widget, served by Bellhop at GET /v1/webchat/widget.js. A hotel puts one
// line on its pages:
//
//   <script src="https://bellhop.hotel.example/v1/webchat/widget.js" async
//           data-title="Chat with Hotel Berlin"></script>
//
// and guests get a chat button that talks to GET /v1/webchat (docs/webchat.md). Options, as
// data- attributes of the script tag: data-title (the panel's title), data-greeting (a first
// line shown to every guest, never sent), data-open="true" (open at load), data-server (the
// Bellhop base URL, when the script is not served by Bellhop itself), data-site (the site's id,
// channels.webchat.sites[].id, when Bellhop serves several sites).
//
// What the guest writes is never lost by the page: it is kept in localStorage until Bellhop
// acknowledges it, and sent again, with the same client_id, after a reconnection (Bellhop
// stores it once). Replies are kept with the transcript, and confirmed ("received") only once
// kept, so each is shown once, across reloads and the site's tabs. No framework, no build step,
// no cookie.
(() => {
  "use strict";
  const script = document.currentScript;
  if (!script || window.__bellhopWebchat) return;  // one widget per page
  window.__bellhopWebchat = true;

  // GET /v1/webchat next to the script (…/v1/webchat/widget.js), or under data-server.
  const endpoint = script.dataset.server
    ? new URL("v1/webchat", script.dataset.server.replace(/\/?$/, "/"))
    : new URL("../webchat", script.src);
  const socketUrl = (endpoint.protocol === "https:" ? "wss://" : "ws://") + endpoint.host +
                    endpoint.pathname;
  const site = script.dataset.site || "";
  const title = script.dataset.title || "Chat with us";
  const greeting = script.dataset.greeting || "";
  const storageKey = "bellhop-webchat:" + endpoint.host + endpoint.pathname;
  const maxTextBytes = 16384;   // inbound.max_text_bytes' default; Bellhop says so when lower
  const maxFrameBytes = 65536;  // Bellhop's frame limit
  const maxTranscript = 200;
  const maxStoredChars = 1000000;
  const tokenPattern = /^[A-Za-z0-9_-]{43}$/;
  const encoder = new TextEncoder();

  // ---- state, kept in localStorage and shared by the site's tabs -----------------------------
  // {session, transcript: [entry], pending: [{client_id, text}]}
  // entry: guest {from: "guest", client_id, text, at, state: "sending" | "sent" | "failed",
  //               error} or hotel {from: "hotel", id, text, attachments, at, read}
  const keyOf = (e) => (e.from === "guest" ? "g:" + e.client_id : "h:" + e.id);
  const validEntry = (e) =>
    e && typeof e === "object" && typeof e.text === "string" &&
    ((e.from === "guest" && typeof e.client_id === "string") ||
     (e.from === "hotel" && typeof e.id === "string"));

  function parseState(text) {
    try {
      const s = JSON.parse(text || "{}") || {};
      return {
        session: typeof s.session === "string" && tokenPattern.test(s.session) ? s.session : "",
        transcript: Array.isArray(s.transcript) ? s.transcript.filter(validEntry) : [],
        pending: Array.isArray(s.pending)
          ? s.pending.filter((p) => p && typeof p.client_id === "string" &&
                                    typeof p.text === "string")
          : [],
      };
    } catch (e) {
      return { session: "", transcript: [], pending: [] };
    }
  }
  function load() {
    try {
      return parseState(localStorage.getItem(storageKey));
    } catch (e) {
      return parseState("");
    }
  }

  // Joins what another tab stored with this tab's state: the union of both transcripts (an
  // acknowledged or failed message beats one still sending, a read reply beats an unread one),
  // what is still sending on either side, and one session.
  const rank = { sending: 0, sent: 1, failed: 1 };
  function merge(mine, theirs) {
    const byKey = new Map();
    for (const e of [...theirs.transcript, ...mine.transcript]) {
      const k = keyOf(e), seen = byKey.get(k);
      if (!seen) byKey.set(k, { ...e });
      else if (e.from === "hotel") seen.read = seen.read || e.read;
      else if ((rank[e.state] || 0) > (rank[seen.state] || 0)) byKey.set(k, { ...e });
    }
    // The stored order, then this tab's new lines (clocks of browser and server differ: no
    // sorting by time).
    const transcript = [...byKey.values()];
    const sending = new Set(transcript.filter((e) => e.from === "guest" && e.state === "sending")
                                      .map((e) => e.client_id));
    const pending = new Map();
    for (const p of [...theirs.pending, ...mine.pending]) {
      if (sending.has(p.client_id)) pending.set(p.client_id, p);
    }
    return { session: oneSession(theirs.session, mine.session), transcript,
             pending: [...pending.values()] };
  }

  // Two tabs of a first visit may each get a session: all tabs settle on the same one, the
  // smaller token, whatever order their writes reach each other in.
  function oneSession(a, b) {
    return !a ? b : !b ? a : a < b ? a : b;
  }

  let state = load();

  // Stores the state (merged with what other tabs stored meanwhile); false when the browser
  // refused (storage full, private mode): the chat then still works for this page's life.
  function save() {
    state = merge(state, load());
    state.transcript = state.transcript.slice(-maxTranscript);
    let text = JSON.stringify(state);
    while (text.length > maxStoredChars && state.transcript.length > 1) {
      state.transcript.shift();
      text = JSON.stringify(state);
    }
    try {
      localStorage.setItem(storageKey, text);
      return true;
    } catch (e) {
      return false;
    }
  }

  function newClientId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();  // secure contexts
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  // What Bellhop can store: no NUL, no half of a surrogate pair (JSON.stringify would write it
  // as an escape Bellhop refuses as malformed, and the message would never be acknowledged).
  function storable(text) {
    return text.replace(/\0/g, "")
      .replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, "\uFFFD");
  }

  // ---- the page: a launcher and a panel in a shadow root, so the site's CSS stays out --------
  const host = document.createElement("div");
  host.id = "bellhop-webchat";
  const root = host.attachShadow({ mode: "open" });
  root.innerHTML = `
    <style>
      :host { all: initial; }
      * { box-sizing: border-box; font: 15px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; }
      .sr { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0);
        white-space: nowrap; }
      .launcher { position: fixed; right: 20px; bottom: 20px; z-index: 2147483000;
        border: 0; border-radius: 28px; padding: 14px 20px; background: #1f4e79; color: #fff;
        cursor: pointer; box-shadow: 0 4px 14px rgba(0,0,0,.25); }
      .launcher:focus-visible, button:focus-visible, textarea:focus-visible {
        outline: 3px solid #f0b429; outline-offset: 2px; }
      .badge { display: inline-block; min-width: 20px; margin-left: 8px; padding: 0 6px;
        border-radius: 10px; background: #d64545; font-size: 12px; line-height: 20px; }
      .badge[hidden] { display: none; }
      .panel { position: fixed; right: 20px; bottom: 84px; z-index: 2147483000;
        width: min(370px, calc(100vw - 40px)); height: min(520px, calc(100vh - 110px));
        height: min(520px, calc(100dvh - 110px)); display: flex; flex-direction: column;
        background: #fff; color: #1b1b1b; border-radius: 12px;
        box-shadow: 0 8px 30px rgba(0,0,0,.3); overflow: hidden; }
      .panel[hidden] { display: none; }
      header { display: flex; align-items: center; justify-content: space-between;
        padding: 12px 16px; background: #1f4e79; color: #fff; }
      header h2 { margin: 0; font-weight: 600; }
      header button { border: 0; background: transparent; color: #fff; font-size: 22px;
        line-height: 1; cursor: pointer; }
      .status { padding: 4px 16px; font-size: 13px; background: #fff4d6; color: #5c4400; }
      .status:empty { display: none; }
      .log { flex: 1; overflow-y: auto; padding: 12px 16px; background: #f5f7fa; }
      .msg { max-width: 85%; margin: 6px 0; padding: 8px 12px; border-radius: 12px;
        white-space: pre-wrap; overflow-wrap: anywhere; }
      .msg.hotel { background: #fff; border: 1px solid #dde3ea; }
      .msg.guest { margin-left: auto; background: #1f4e79; color: #fff; }
      .msg.greeting { background: #fff; border: 1px dashed #b8c4d0; }
      .msg a { color: inherit; }
      .meta { display: block; margin-top: 2px; font-size: 12px; opacity: .75; }
      .msg.guest[data-state="failed"] { background: #8a1c1c; }
      form { display: flex; gap: 8px; padding: 10px; border-top: 1px solid #dde3ea; }
      textarea { flex: 1; resize: none; height: 44px; padding: 10px; border: 1px solid #b8c4d0;
        border-radius: 8px; font-size: 16px; }
      form button { border: 0; border-radius: 8px; padding: 0 16px; background: #1f4e79;
        color: #fff; cursor: pointer; }
    </style>
    <button class="launcher" type="button" aria-expanded="false" aria-controls="panel">
      <span class="label"></span><span class="badge" hidden aria-hidden="true"></span>
    </button>
    <section class="panel" id="panel" role="dialog" aria-labelledby="title" hidden>
      <header><h2 id="title"></h2><button class="close" type="button"
        aria-label="Close the chat">\u00d7</button></header>
      <div class="status" role="status"></div>
      <div class="log" role="log" aria-live="polite"></div>
      <form>
        <textarea aria-label="Your message" placeholder="Write a message…"></textarea>
        <button type="submit">Send</button>
      </form>
    </section>`;
  const $ = (selector) => root.querySelector(selector);
  const launcher = $(".launcher"), badge = $(".badge"), panel = $(".panel"), log = $(".log");
  const statusLine = $(".status"), form = $("form"), input = $("textarea");
  $(".label").textContent = title;
  $("#title").textContent = title;

  function timeOf(at) {
    const d = new Date(at);
    return isNaN(d) ? "" : d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  // One element per entry, made once and updated in place, so a screen reader announces what is
  // new rather than the whole conversation again. Text goes in as text: nothing a guest or a
  // reply writes is ever parsed as HTML.
  const nodes = new Map();
  function bubble(e) {
    const div = document.createElement("div");
    div.className = "msg " + e.from;
    const who = document.createElement("span");
    who.className = "sr";
    who.textContent = e.from === "guest" ? "You: " : "Hotel: ";
    const text = document.createElement("span");
    text.className = "text";
    text.textContent = e.text;
    div.append(who, text);
    for (const a of Array.isArray(e.attachments) ? e.attachments : []) {
      let url;
      try {
        url = new URL(a.url);
      } catch (err) {
        continue;
      }
      if (url.protocol !== "https:" && url.protocol !== "http:") continue;
      const link = document.createElement("a");
      link.href = url.href;
      link.target = "_blank";
      link.rel = "noopener noreferrer";
      link.textContent = typeof a.filename === "string" && a.filename ? a.filename : "Attachment";
      div.append(document.createElement("br"), link);
    }
    const meta = document.createElement("span");
    meta.className = "meta";
    div.append(meta);
    if (e.from === "guest") div.dataset.clientId = e.client_id;
    else div.dataset.id = e.id;
    return div;
  }
  const said = { sending: "Sending…", sent: "Sent" };

  let greetingNode = null;
  if (greeting) {
    greetingNode = document.createElement("div");
    greetingNode.className = "msg hotel greeting";
    greetingNode.textContent = greeting;
    log.append(greetingNode);
  }

  function render() {
    const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
    const keys = new Set();
    let previous = greetingNode, added = false;
    for (const e of state.transcript) {
      const k = keyOf(e);
      keys.add(k);
      let el = nodes.get(k);
      if (!el) {
        el = bubble(e);
        nodes.set(k, el);
        added = true;
      }
      if (e.from === "guest") {
        el.dataset.state = e.state;
        const what = e.state === "failed" ? "Not sent: " + (e.error || "refused") : said[e.state];
        el.lastChild.textContent = timeOf(e.at) + " · " + (what || "");
      } else {
        el.lastChild.textContent = timeOf(e.at);
      }
      const expected = previous ? previous.nextSibling : log.firstChild;
      if (expected !== el) {
        if (previous) previous.after(el);
        else log.prepend(el);
      }
      previous = el;
    }
    for (const [k, el] of nodes) {
      if (!keys.has(k)) {
        el.remove();
        nodes.delete(k);
      }
    }
    if (added && (atBottom || !panel.hidden)) log.scrollTop = log.scrollHeight;
    const unread = panel.hidden
      ? state.transcript.filter((e) => e.from === "hotel" && !e.read).length : 0;
    badge.hidden = unread === 0;
    badge.textContent = String(unread);
    launcher.setAttribute("aria-label", unread ? `${title} (${unread} new)` : title);
  }

  function setStatus(text) {
    statusLine.textContent = text;
  }

  function markRead() {
    let changed = false;
    for (const e of state.transcript) {
      if (e.from === "hotel" && !e.read) e.read = changed = true;
    }
    if (changed) save();
  }

  function open(show, focus = true) {
    panel.hidden = !show;
    launcher.setAttribute("aria-expanded", String(show));
    if (show) {
      markRead();
      connect();
      if (focus) input.focus();
    }
    render();
    if (show) log.scrollTop = log.scrollHeight;  // the latest lines (a hidden log has no height)
  }
  launcher.addEventListener("click", () => open(panel.hidden));
  $(".close").addEventListener("click", () => {
    open(false);
    launcher.focus();
  });
  panel.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape") {
      open(false);
      launcher.focus();
    }
  });

  // ---- the socket -----------------------------------------------------------------------------
  let socket = null, socketSession = "", ready = false, upSince = 0, failures = 0;
  let retryMs = 1000, retryTimer = 0, resendTimer = 0;

  function send(frame) {
    if (socket && ready) socket.send(JSON.stringify(frame));
  }

  function flushPending() {
    for (const p of state.pending) send({ type: "message", client_id: p.client_id, text: p.text });
  }

  function settle(clientId, update) {
    const e = state.transcript.find((x) => x.from === "guest" && x.client_id === clientId);
    if (!e) return;  // another tab's message, settled there
    Object.assign(e, update);
    state.pending = state.pending.filter((p) => p.client_id !== clientId);
    save();
    render();
  }

  // The session this tab should use is another than its socket's (another tab got one too):
  // reconnect as that guest.
  function followSession() {
    if (socket && socketSession !== state.session && (ready || socketSession)) {
      const old = socket;
      socket = null;
      old.close();
      connect();
    }
  }

  function onFrame(frame) {
    switch (frame.type) {
      case "welcome":
        ready = true;
        upSince = Date.now();
        failures = 0;
        state.session = oneSession(state.session, frame.session);
        socketSession = frame.session;
        save();
        mintDone();
        setStatus("");
        if (state.session !== socketSession) return followSession();
        flushPending();
        break;
      case "ack":
        settle(frame.client_id, { state: "sent", id: frame.id });
        break;
      case "message": {
        if (typeof frame.id !== "string") break;
        if (!state.transcript.some((e) => e.from === "hotel" && e.id === frame.id)) {
          state.transcript.push({
            from: "hotel", id: frame.id, text: typeof frame.text === "string" ? frame.text : "",
            attachments: Array.isArray(frame.attachments) ? frame.attachments : [],
            at: frame.sent_at || new Date().toISOString(), read: !panel.hidden,
          });
          if (!save()) {  // not kept: not confirmed either, so it comes again
            render();
            break;
          }
          render();
        }
        send({ type: "received", id: frame.id });  // kept: it stops waiting
        break;
      }
      case "error":
        if (!frame.client_id) {
          console.warn("bellhop web chat:", frame.code, frame.message);
        } else if (frame.code === "unavailable" || frame.code === "redis_full") {
          // Not stored this time: still pending, sent again shortly (later when Redis is full).
          clearTimeout(resendTimer);
          resendTimer = setTimeout(flushPending, frame.code === "redis_full" ? 5000 : 2000);
        } else {
          settle(frame.client_id, { state: "failed", error: frame.message || frame.code });
        }
        break;
    }
  }

  // A tab without a session asks Bellhop for one under a lock all the site's tabs share
  // (navigator.locks, in secure contexts), held until the welcome is stored: a second tab of a
  // first visit waits, then reads the session the first one stored and sends as that guest, so
  // its first message is never filed under a session it gives up a moment later. The lock does
  // not carry the write: another tab's localStorage reaches this one a little later (Chromium
  // copies it between its processes), so a tab that had to wait and still sees no session
  // waits for the storage event that brings it (at most sessionWaitMs) before asking for one
  // itself. Without the lock (an http page, an old browser) the tabs still settle on one
  // session (oneSession).
  const sessionWaitMs = 2000;
  let minting = false, minted = null;
  function connect() {
    if (socket || minting) return;
    clearTimeout(retryTimer);
    state = merge(state, load());
    if (state.session || !(navigator.locks && navigator.locks.request)) return openSocket();
    minting = true;
    const busy = {};
    navigator.locks.request(storageKey, { ifAvailable: true }, (lock) => (lock ? mint(false) : busy))
      .then((r) => (r === busy ? navigator.locks.request(storageKey, () => mint(true)) : r))
      .catch(() => {
        minting = false;
        openSocket();
      });
  }
  // Holding the lock: open the socket, and unless a session is known by then, keep the lock
  // until the welcome (or the close) ends it.
  async function mint(waited) {
    state = merge(state, load());
    if (!state.session && waited) {
      await sessionFromAnotherTab();
      state = merge(state, load());  // its event may have come before this tab listened
    }
    minting = false;
    if (socket) return;
    openSocket();
    if (state.session) return;
    return new Promise((resolve) => { minted = resolve; });  // welcome or close ends it
  }
  // Resolves once a storage event has brought a session another tab stored (the listener below,
  // added first, has merged it into `state` by then), or after sessionWaitMs.
  function sessionFromAnotherTab() {
    return new Promise((resolve) => {
      const done = () => {
        window.removeEventListener("storage", stored);
        clearTimeout(timer);
        resolve();
      };
      const stored = () => { if (state.session) done(); };
      window.addEventListener("storage", stored);
      const timer = setTimeout(done, sessionWaitMs);
    });
  }
  function mintDone() {
    if (minted) minted();
    minted = null;
  }

  function openSocket() {
    if (socket) return;
    socketSession = state.session;
    const query = [];
    if (site) query.push("site=" + encodeURIComponent(site));
    if (state.session) query.push("session=" + encodeURIComponent(state.session));
    const url = socketUrl + (query.length ? "?" + query.join("&") : "");
    const ws = new WebSocket(url);
    socket = ws;
    ready = false;
    ws.onmessage = (ev) => {
      if (socket !== ws) return;
      let frame;
      try {
        frame = JSON.parse(ev.data);
      } catch (err) {
        return;
      }
      if (frame && typeof frame === "object") onFrame(frame);
    };
    ws.onclose = () => {
      if (socket !== ws) return;
      socket = null;
      mintDone();
      // The backoff starts again only after a connection that lasted: a server that accepts
      // and drops at once is not hammered.
      if (ready && Date.now() - upSince > 10000) retryMs = 1000;
      if (!ready) failures++;
      ready = false;
      setStatus(failures >= 6 ? "The chat is unavailable right now. We keep trying."
                : state.pending.length ? "Reconnecting… your message will be sent when we are back."
                : "Reconnecting…");
      // 1 s, 2 s, 4 s … 30 s, with jitter so a restarted server is not hit all at once.
      retryTimer = setTimeout(connect, retryMs * (0.75 + Math.random() / 2));
      retryMs = Math.min(retryMs * 2, 30000);
    };
  }
  window.addEventListener("online", () => {
    if (!socket && (state.session || state.pending.length)) connect();
  });

  // Another tab of the site wrote: join what it wrote with this tab's state. Tabs read and write
  // storage each from a copy of their own, so a write may have missed a line of this tab: then
  // the union is written back (it converges: a tab writes only what the other lacked).
  window.addEventListener("storage", (ev) => {
    if (ev.key !== storageKey) return;
    state = merge(state, parseState(ev.newValue));
    if (JSON.stringify(state) !== ev.newValue) save();
    render();
    followSession();
  });

  // ---- writing --------------------------------------------------------------------------------
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const text = storable(input.value.trim());
    if (!text) return;
    const clientId = newClientId();
    const frame = { type: "message", client_id: clientId, text };
    if (encoder.encode(text).length > maxTextBytes ||
        encoder.encode(JSON.stringify(frame)).length > maxFrameBytes) {
      setStatus("This message is too long: please split it.");
      return;
    }
    state.pending.push({ client_id: clientId, text });
    state.transcript.push({ from: "guest", client_id: clientId, text, state: "sending",
                            at: new Date().toISOString() });
    save();
    render();
    input.value = "";
    setStatus("");
    send(frame);
    connect();
  });
  input.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      form.requestSubmit();
    }
  });

  function start() {
    document.body.append(host);
    render();
    // A returning guest reconnects at once: replies that waited arrive, the badge counts them.
    if (state.session || state.pending.length) connect();
    if (script.dataset.open === "true") open(true, false);
  }
  if (document.body) start();
  else document.addEventListener("DOMContentLoaded", start);
})();
