// The staff inbox (/console/, docs/console.md "Inbox"): the conversations of the properties the
// signed-in account covers, live over /v1/realtime (docs/realtime.md), a conversation's messages
// with their delivery status, the reply box, take over / hand back, held AI suggestions, typing
// and presence. Everything a guest wrote is set with textContent.
import { t } from "./strings.js";
import {
  api, clock, el, new_id, realtime, session, show_signed_in,
  resume_session, time_ms, wire_session,
} from "./client.js";

const MAX_MESSAGES = 200;       // per conversation kept in the page
const MAX_CONVERSATIONS = 500;  // per property kept in the list
const TYPING_SHOWN_MS = 4000;

const state = {
  conversations: new Map(),  // conversation_id -> summary
  messages: new Map(),       // conversation_id -> Map(message id -> message), oldest first
  statuses: new Map(),       // message id -> {status, reason} (may come before the message)
  suggestions: new Map(),    // conversation_id -> [{id, text}]
  typing: new Map(),         // conversation_id -> Map(sub -> until ms)
  presence: new Map(),       // property -> Map(session_id -> sub)
  open: null,                // the conversation shown
  draft_id: null,            // client_msg_id of the reply being written (kept for resends)
  pending: null,             // the reply frame awaiting its ack
  last_typing_sent: 0,
};

const $ = (id) => document.getElementById(id);

const rt = new realtime({
  on_status(s, seconds) {
    $("conn").textContent = s === "online" ? t("connection_online")
      : s === "connecting" ? t("connection_connecting") : t("connection_offline", { seconds });
    $("conn").dataset.state = s;
  },
  on_welcome() {
    // A reply whose ack was lost with the connection: the same client_msg_id again (sent once).
    if (state.pending) rt.send(state.pending);
  },
  on_subscribed(property, reload) {
    if (reload) load_property(property);
  },
  on_reload(property) {
    load_property(property);
  },
  on_event: apply_event,
  on_frame: handle_frame,
  on_session_ended() {
    signed_out(t("session_ended"));
  },
});

// ---- loading over HTTP --------------------------------------------------------------------

async function load_property(property) {
  $("list-status").textContent = t("reloading");
  try {
    // Newest first, a page of 100 at a time, up to what the page keeps.
    const base = "/v1/properties/" + encodeURIComponent(property) + "/conversations?limit=100";
    let before = null;
    for (let loaded = 0; loaded < MAX_CONVERSATIONS;) {
      const data = await api("GET", before === null ? base : base + "&before=" + before);
      const page = Array.isArray(data.conversations) ? data.conversations : [];
      for (const c of page) upsert_conversation(property, c);
      render_list();
      loaded += page.length;
      if (!Number.isSafeInteger(data.next_before) || page.length === 0) break;
      before = data.next_before;
    }
    // The list gives no text: the newest message of the newest 100, a few requests at a time
    // (the others show theirs when they next change or are opened).
    const missing = [...state.conversations.values()]
      .filter((c) => c.property_id === property && c.last_text === null)
      .sort((a, b) => b.last_activity_ms - a.last_activity_ms).slice(0, 100);
    await run_limited(missing, 4, async (c) => {
      const m = await api("GET", "/v1/conversations/" + c.conversation_id + "/messages?limit=1");
      const last = Array.isArray(m.messages) ? m.messages[m.messages.length - 1] : null;
      if (last && c.last_text === null) c.last_text = message_text(last);
    });
    render_list();
    if (state.open && state.conversations.get(state.open)?.property_id === property) await load_messages(state.open);
    const presence = await api("GET", "/v1/properties/" + encodeURIComponent(property) + "/presence");
    const here = new Map();
    for (const s of Array.isArray(presence.staff) ? presence.staff : []) {
      for (const x of Array.isArray(s.sessions) ? s.sessions : []) {
        if (typeof x.session_id === "string" && x.session_id !== rt.session_id) here.set(x.session_id, String(s.sub));
      }
    }
    state.presence.set(property, here);
    render_presence();
    $("list-status").textContent = "";
  } catch (e) {
    $("list-status").textContent = t("error_frame", { message: e.message });
  }
}

async function run_limited(items, n, work) {
  const queue = [...items];
  const worker = async () => {
    while (queue.length) {
      try {
        await work(queue.shift());
      } catch (e) {
        // one conversation's text missing is not worth failing the list
      }
    }
  };
  await Promise.all(Array.from({ length: n }, worker));
}

async function load_messages(id) {
  const data = await api("GET", "/v1/conversations/" + id + "/messages?limit=50");
  const list = message_map(id);
  const messages = Array.isArray(data.messages) ? data.messages : [];
  for (const m of messages) {
    // The status a reply had when the history was read (a live message.status may be newer).
    const d = m && typeof m.delivery === "object" && m.delivery;
    if (d && typeof m.id === "string" && !state.statuses.has(m.id)) {
      state.statuses.set(m.id, { status: str(d.status), reason: str(d.reason) });
    }
    add_message(id, m, list);
  }
  // The AI's replies held while staff have the conversation, as its state keeps them.
  const held = Array.isArray(data.held) ? data.held : [];
  if (held.length) {
    const list = state.suggestions.get(id) || [];
    for (const h of held) {
      const hid = str(h && h.id);
      if (hid && str(h.text) && !list.some((s) => s.id === hid)) list.push({ id: hid, text: h.text });
    }
    state.suggestions.set(id, list.slice(-5));
  }
  const conv = state.conversations.get(id);
  if (conv && conv.last_text === null && messages.length) {
    conv.last_text = message_text(messages[messages.length - 1]);
    render_list();
  }
  if (state.open === id) render_messages();
}

// ---- the model ----------------------------------------------------------------------------

function str(v) {
  return typeof v === "string" ? v : null;
}

function upsert_conversation(property, c) {
  const id = str(c.conversation_id);
  if (!id) return null;
  let conv = state.conversations.get(id);
  if (!conv) {
    conv = { conversation_id: id, property_id: property, last_text: null, last_activity_ms: 0, unread: 0 };
    state.conversations.set(id, conv);
  }
  if (str(c.channel)) conv.channel = c.channel;
  if (str(c.guest)) conv.guest = c.guest;
  if ("guest_name" in c) conv.guest_name = str(c.guest_name);
  if (c.mode === "ai" || c.mode === "human") conv.mode = c.mode;
  if ("assignee" in c) conv.assignee = str(c.assignee);
  if (Number.isFinite(c.unread)) conv.unread = Math.max(0, c.unread);
  const activity = Number(c.last_activity_ms);
  if (Number.isFinite(activity) && activity > conv.last_activity_ms) conv.last_activity_ms = activity;
  trim_conversations();
  return conv;
}

function trim_conversations() {
  if (state.conversations.size <= MAX_CONVERSATIONS) return;
  const oldest = [...state.conversations.values()].sort((a, b) => a.last_activity_ms - b.last_activity_ms);
  for (const c of oldest.slice(0, state.conversations.size - MAX_CONVERSATIONS)) {
    if (c.conversation_id !== state.open) state.conversations.delete(c.conversation_id);
  }
}

function message_map(id) {
  let list = state.messages.get(id);
  if (!list) {
    list = new Map();
    state.messages.set(id, list);
  }
  return list;
}

function message_text(m) {
  const text = str(m.text);
  if (text) return text;
  return Array.isArray(m.attachments) && m.attachments.length ? t("attachment_only") : "";
}

function add_message(conversation_id, m, list = message_map(conversation_id)) {
  const id = str(m.id);
  if (!id || list.has(id)) return false;  // applying a message twice is harmless
  list.set(id, m);
  while (list.size > MAX_MESSAGES) list.delete(list.keys().next().value);
  return true;
}

function apply_event(frame) {
  const data = frame.data && typeof frame.data === "object" ? frame.data : {};
  const property = frame.property_id;
  switch (frame.event) {
    case "message.created": {
      const cid = str(data.conversation_id);
      if (!cid) return;
      const inbound = data.direction === "inbound";
      const conv = upsert_conversation(property, {
        conversation_id: cid, channel: data.channel, guest: inbound ? data.from : data.to,
        ...(inbound && "guest_name" in data ? { guest_name: data.guest_name } : {}),
        ...(inbound && (data.conversation_mode === "ai" || data.conversation_mode === "human") ? { mode: data.conversation_mode } : {}),
      });
      if (!conv) return;
      conv.last_text = message_text(data);
      const at = time_ms(inbound ? data.received_at : data.created_at);
      conv.last_activity_ms = Math.max(conv.last_activity_ms, Number.isFinite(at) ? at : Date.now());
      const added = add_message(cid, data);
      if (inbound && added) {
        conv.unread += 1;
        if (state.open === cid && document.visibilityState === "visible") mark_read(conv);
      }
      render_list();
      if (state.open === cid) render_messages();
      return;
    }
    case "message.status": {
      const id = str(data.id);
      if (!id) return;
      const status = str(data.status);
      state.statuses.set(id, { status, reason: str(data.reason) });
      if (state.statuses.size > 5000) state.statuses.delete(state.statuses.keys().next().value);
      const cid = str(data.conversation_id);
      if (status === "held" && cid && str(data.text)) {
        const list = state.suggestions.get(cid) || [];
        if (!list.some((s) => s.id === id)) list.push({ id, text: data.text });
        state.suggestions.set(cid, list.slice(-5));
      }
      if (cid && state.open === cid) render_messages();
      return;
    }
    case "conversation.updated": {
      const conv = upsert_conversation(property, data);
      // Handed back: the AI answers again, its held replies are dropped (as on the server).
      if (conv && str(data.change) === "release") state.suggestions.delete(conv.conversation_id);
      if (conv && state.open === conv.conversation_id) {
        render_view_head();
        render_suggestions();
      }
      render_list();
      return;
    }
    case "typing": {
      const cid = str(data.conversation_id);
      const sub = str(data.sub);
      if (!cid || !sub || data.session_id === rt.session_id) return;
      const who = state.typing.get(cid) || new Map();
      who.set(sub, Date.now() + TYPING_SHOWN_MS);
      state.typing.set(cid, who);
      render_typing();
      setTimeout(render_typing, TYPING_SHOWN_MS + 50);
      return;
    }
    case "presence": {
      const sid = str(data.session_id);
      if (!sid || sid === rt.session_id) return;
      const here = state.presence.get(property) || new Map();
      if (data.status === "joined") here.set(sid, String(data.sub));
      else here.delete(sid);
      state.presence.set(property, here);
      render_presence();
      return;
    }
    default:
      return;  // event names this page does not know
  }
}

function handle_frame(frame) {
  if (frame.type === "ack" && state.pending && frame.client_msg_id === state.pending.client_msg_id) {
    state.pending = null;
    state.draft_id = null;
    $("reply").value = "";
    $("reply-status").textContent = "";
    update_send();
    return;
  }
  if (frame.type !== "error") return;
  const message = frame.code === "rate_limited" ? t("error_rate_limited") : t("error_frame", { message: String(frame.message || frame.code) });
  if (state.pending && frame.ref === state.pending.client_msg_id) {
    state.pending = null;  // nothing was queued: the same draft (and id) may be sent again
    update_send();
  }
  $("reply-status").textContent = message;
}

// ---- actions ------------------------------------------------------------------------------

function mark_read(conv) {
  if (conv.unread === 0) return;
  if (rt.send({ type: "read", property_id: conv.property_id, conversation_id: conv.conversation_id })) {
    conv.unread = 0;
    render_list();
  }
}

function send_reply(ev) {
  ev.preventDefault();
  const conv = state.conversations.get(state.open);
  if (!conv || state.pending) return;  // one reply at a time: a second press sends nothing
  const text = $("reply").value;
  if (!text.trim()) {
    $("reply-status").textContent = t("reply_empty");
    return;
  }
  if (!state.draft_id) state.draft_id = new_id();
  state.pending = {
    type: "reply", property_id: conv.property_id, conversation_id: conv.conversation_id,
    text, client_msg_id: state.draft_id,
  };
  $("reply-status").textContent = "";
  rt.send(state.pending);  // if the socket is down, on_welcome sends it
  update_send();
}

function update_send() {
  const pending = state.pending !== null;
  $("send").disabled = pending;
  $("reply").readOnly = pending;
  $("send").textContent = pending ? t("sending") : t("send");
}

function change_mode(type) {
  const conv = state.conversations.get(state.open);
  if (!conv) return;
  rt.send({ type, property_id: conv.property_id, conversation_id: conv.conversation_id, client_msg_id: new_id() });
}

function open_conversation(id) {
  const conv = state.conversations.get(id);
  if (!conv) return;
  if (state.open !== id) {
    state.open = id;
    state.draft_id = null;
    if (!state.pending) $("reply").value = "";
    $("reply-status").textContent = "";
  }
  $("inbox").dataset.open = "1";
  $("view-empty").hidden = true;
  $("view-body").hidden = false;
  render_view_head();
  render_messages();
  render_list();
  mark_read(conv);
  load_messages(id).catch((e) => {
    $("reply-status").textContent = t("error_frame", { message: e.message });
  });
  $("view-heading").focus();
}

function close_conversation() {
  const id = state.open;
  delete $("inbox").dataset.open;
  const button = id ? document.querySelector(`[data-conversation="${CSS.escape(id)}"]`) : null;
  if (button) button.focus();
}

// ---- rendering ----------------------------------------------------------------------------

function channel_name(channel) {
  const key = "channel_" + channel;
  const name = t(key);
  return name === key ? String(channel || "") : name;
}

function guest_label(conv) {
  return conv.guest_name || conv.guest || conv.conversation_id;
}

// The list is redrawn at the next frame, but under a stream of events (a busy property sends
// many a second, and each redraw repaints the screen) at most four times a second: a bucket of 8
// redraws, refilled by one every 250 ms.
const LIST_REDRAW_MS = 250, LIST_REDRAW_BURST = 8;
let list_timer = 0, list_frame = 0, list_tokens = LIST_REDRAW_BURST, list_tokens_at = 0;
function render_list() {
  if (list_timer || list_frame) return;
  const now = performance.now();
  list_tokens = Math.min(LIST_REDRAW_BURST, list_tokens + (now - list_tokens_at) / LIST_REDRAW_MS) - 1;
  list_tokens_at = now;
  list_timer = setTimeout(() => {
    list_timer = 0;
    list_frame = requestAnimationFrame(draw_list);
  }, list_tokens >= 0 ? 0 : -list_tokens * LIST_REDRAW_MS);
}

const list_items = new Map();  // conversation_id -> {li, button, shown: what it shows now}

// Redraws only the conversations whose shown values changed, and moves only those out of place:
// a busy property changes one or two a frame, not 500.
function draw_list() {
  list_frame = 0;
  const ul = $("conversations");
  // A keyboard user keeps their place: a moved button loses the focus, so it is given back.
  const focused = ul.contains(document.activeElement) ? document.activeElement.dataset.conversation : null;
  const sorted = [...state.conversations.values()].sort((a, b) => b.last_activity_ms - a.last_activity_ms);
  const keep = new Set();
  let next = ul.firstChild;
  for (const c of sorted) {
    const id = c.conversation_id;
    keep.add(id);
    const shown = [guest_label(c), clock(c.last_activity_ms), c.last_text, c.channel, c.mode, c.assignee,
                   c.unread, id === state.open].join("\u0000");
    let item = list_items.get(id);
    if (!item) {
      const button = el("button", { type: "button", "data-conversation": id, onclick: () => open_conversation(id) });
      item = { li: el("li", {}, button), button, shown: null };
      list_items.set(id, item);
    }
    if (item.shown !== shown) {
      item.shown = shown;
      fill_item(item.button, c);
    }
    if (item.li === next) next = next.nextSibling;
    else ul.insertBefore(item.li, next);
  }
  for (const [id, item] of list_items) {
    if (!keep.has(id)) {
      item.li.remove();
      list_items.delete(id);
    }
  }
  while (next) {  // the "no conversations" note, or anything else left over
    const after = next.nextSibling;
    next.remove();
    next = after;
  }
  if (!sorted.length) ul.append(el("li", { class: "note", text: t("no_conversations") }));
  if (focused && document.activeElement?.dataset?.conversation !== focused) {
    list_items.get(focused)?.button.focus();
  }
}

function fill_item(button, c) {
  button.className = "conversation" + (c.unread ? " unread" : "");
  if (c.conversation_id === state.open) button.setAttribute("aria-current", "true");
  else button.removeAttribute("aria-current");
  button.replaceChildren(
    el("span", { class: "row" },
      el("strong", { class: "guest", text: guest_label(c) }),
      el("span", { class: "time", text: clock(c.last_activity_ms) })),
    el("span", { class: "last", text: c.last_text === null ? t("no_message_yet") : c.last_text }),
    el("span", { class: "row tags" },
      el("span", { class: "tag", text: channel_name(c.channel) }),
      el("span", { class: "tag mode-" + c.mode, text: c.mode === "human" ? t("mode_human") : t("mode_ai") }),
      el("span", { class: "tag", text: c.assignee ? t("assigned_to", { name: c.assignee }) : t("unassigned") }),
      c.unread ? el("span", { class: "badge", text: t("unread_count", { count: c.unread }) }) : null));
}

function render_view_head() {
  const conv = state.conversations.get(state.open);
  if (!conv) return;
  $("view-heading").textContent = guest_label(conv);
  $("view-heading").tabIndex = -1;
  $("view-meta").textContent = [channel_name(conv.channel), conv.guest,
    conv.mode === "human" ? t("mode_now_human") : t("mode_now_ai"),
    conv.assignee ? t("assigned_to", { name: conv.assignee }) : ""].filter(Boolean).join(" · ");
  const human = conv.mode === "human";
  const had_focus = document.activeElement === $("take-over") || document.activeElement === $("hand-back");
  $("take-over").hidden = human;
  $("hand-back").hidden = !human;
  if (had_focus) (human ? $("hand-back") : $("take-over")).focus();
  render_presence();
}

function status_text(id) {
  const s = state.statuses.get(id);
  if (!s) return t("status_queued");
  switch (s.status) {
    case "sent": return t("status_sent");
    case "delivered": return t("status_delivered");
    case "read": return t("status_read");
    case "failed": return t("status_failed", { reason: s.reason || "" });
    case "held": return t("status_held", { reason: s.reason || "" });
    default: return String(s.status || "");
  }
}

function render_messages() {
  const list = state.messages.get(state.open) || new Map();
  const ol = $("messages");
  const box = $("messages-log");
  const near_bottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  const items = [];
  for (const m of list.values()) {
    const inbound = m.direction === "inbound";
    const who = inbound ? t("guest_said") : m.sent_by ? t("staff_said", { name: m.sent_by }) : t("ai_said");
    const at = time_ms(inbound ? m.received_at : m.created_at);
    items.push(el("li", { class: "message " + (inbound ? "in" : "out"), "data-id": m.id },
      el("span", { class: "meta", text: t("message_from", { who, time: clock(at) }) }),
      el("p", { class: "text", text: message_text(m) }),
      inbound ? null : el("span", { class: "status", "data-status": state.statuses.get(m.id)?.status || "queued", text: status_text(m.id) })));
  }
  ol.replaceChildren(...items);
  if (near_bottom || items.length < 4) box.scrollTop = box.scrollHeight;
  render_suggestions();
}

function render_suggestions() {
  const list = state.suggestions.get(state.open) || [];
  $("suggestions").hidden = list.length === 0;
  $("suggestion-list").replaceChildren(...list.map((s) => el("li", {},
    el("p", { class: "text", text: s.text }),
    el("button", { type: "button", class: "quiet", text: t("use_suggestion"), onclick: () => {
      $("reply").value = s.text;
      state.draft_id = null;
      $("reply").focus();
    } }))));
}

function render_typing() {
  const now = Date.now();
  const who = state.typing.get(state.open);
  const names = who ? [...who].filter(([, until]) => until > now).map(([sub]) => sub) : [];
  $("typing").textContent = names.length ? t("typing", { names: names.join(", ") }) : "";
}

function render_presence() {
  const conv = state.conversations.get(state.open);
  const here = conv ? state.presence.get(conv.property_id) : null;
  const names = here ? [...new Set(here.values())].filter((n) => n !== session.user) : [];
  $("presence").textContent = names.length ? t("present", { names: names.join(", ") }) : "";
}

// ---- the page -----------------------------------------------------------------------------

// The properties this browser opened with the property form (an account for every property).
function opened_properties() {
  try {
    const list = JSON.parse(localStorage.getItem("bellhop-console:properties") || "[]");
    return Array.isArray(list) ? list.filter((p) => typeof p === "string" && /^[A-Za-z0-9._-]{1,64}$/.test(p)) : [];
  } catch (e) {
    return [];  // unreadable: start afresh
  }
}

async function properties_of_session() {
  if (!session.properties.includes("*")) return session.properties;
  // An account for every property: the configured ones (GET /v1/properties), and any the user
  // opens with the property form (remembered in this browser), shown when none is configured.
  const known = new Set(opened_properties());
  try {
    const data = await api("GET", "/v1/properties");
    for (const p of Array.isArray(data.properties) ? data.properties : []) {
      if (p && typeof p.id === "string") known.add(p.id);
    }
  } catch (e) {
    // not listed: the form still works
  }
  $("property-form").hidden = known.size > 0;
  return [...known];
}

async function signed_in() {
  show_signed_in(true);
  for (const p of await properties_of_session()) rt.subscribe(p);
  render_list();
  rt.start();
}

function signed_out(message = "") {
  rt.stop();
  rt.properties.clear();
  rt.last.clear();
  state.conversations.clear();
  state.messages.clear();
  state.open = null;
  state.pending = null;
  render_list();
  show_signed_in(false, message);
}

async function start() {
  wire_session(signed_in, () => signed_out());
  $("reply-form").addEventListener("submit", send_reply);
  $("reply").addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) send_reply(ev);
  });
  $("reply").addEventListener("input", () => {
    const conv = state.conversations.get(state.open);
    if (!conv || Date.now() - state.last_typing_sent < 2000) return;
    state.last_typing_sent = Date.now();
    rt.send({ type: "typing", property_id: conv.property_id, conversation_id: conv.conversation_id });
  });
  $("take-over").addEventListener("click", () => change_mode("takeover"));
  $("hand-back").addEventListener("click", () => change_mode("release"));
  $("back").addEventListener("click", close_conversation);
  $("property-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const p = $("property-id").value.trim();
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(p)) return;
    const known = new Set(opened_properties());
    known.add(p);
    localStorage.setItem("bellhop-console:properties", JSON.stringify([...known].slice(-200)));
    $("property-id").value = "";
    rt.subscribe(p);
  });
  document.addEventListener("visibilitychange", () => {
    const conv = state.conversations.get(state.open);
    if (conv && document.visibilityState === "visible") mark_read(conv);
  });
  update_send();
  await resume_session(signed_in);
}

start();
