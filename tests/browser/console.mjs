// The operations console (/console/ and /admin/) in Debian's Chromium, driven by playwright-core,
// against a live Bellhop. tests/gateway/console_process_test.cpp starts Redis, Bellhop and the
// fake WhatsApp Graph API, creates the accounts (`bellhop user add`) and a dead letter, runs this
// script, restarts Bellhop when asked (the file <out>/restart.request -> <out>/restart.done),
// and afterwards checks what reached the provider and Redis. A failed check throws: exit 1.
//
//   node console.mjs --bellhop http://127.0.0.1:<port> --adapter-key <key> --app-secret <secret>
//                    --password <the accounts' password> --out <dir>
//
// Accounts: ana (staff, hotel-berlin), paul (staff, hotel-paris), root (admin, *).
// Screenshots go to --out and, when BELLHOP_SCREENSHOTS_DIR is set, there too.
// Prints one JSON line at the end: the figures and the ids the C++ test checks.
import { createHmac } from "node:crypto";
import { copyFileSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { chromium } from "playwright-core";

const args = Object.fromEntries(
  process.argv.slice(2).reduce((pairs, a, i, all) => {
    if (a.startsWith("--")) pairs.push([a.slice(2), all[i + 1]]);
    return pairs;
  }, []),
);
for (const name of ["bellhop", "adapter-key", "app-secret", "password", "out"]) {
  if (!args[name]) throw new Error(`--${name} is required`);
}
const bellhop = args.bellhop;
const require = createRequire(import.meta.url);
const axe_source = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
const screenshots_dir = process.env.BELLHOP_SCREENSHOTS_DIR;
const figures = {};

function check(condition, what) {
  if (!condition) throw new Error("check failed: " + what);
  console.error("ok: " + what);
}

async function eventually(what, fn, timeout_ms = 10000) {
  const deadline = Date.now() + timeout_ms;
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() > deadline) throw new Error("timed out: " + what);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// ---- what an adapter, a provider and the operator do (plain HTTP, not the page) ------------

let external = 0;
async function post_inbound(property_id, from, text, guest_name) {
  const res = await fetch(`${bellhop}/v1/messages/inbound`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${args["adapter-key"]}` },
    body: JSON.stringify({ property_id, channel: "whatsapp", external_id: `wamid.console.${process.pid}.${++external}`,
                           from, guest_name, text }),
  });
  check(res.status === 202, `POST /v1/messages/inbound answers 202 (got ${res.status})`);
  return res.json();
}

async function post_ai_reply(to, text) {
  const res = await fetch(`${bellhop}/v1/messages/outbound`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${args["adapter-key"]}` },
    body: JSON.stringify({ property_id: "hotel-berlin", channel: "whatsapp", to, text, source: "ai" }),
  });
  check(res.status === 202, `an AI reply is accepted (got ${res.status})`);
}

async function message_record(id) {
  const res = await fetch(`${bellhop}/v1/messages/${id}`, {
    headers: { Authorization: `Bearer ${args["adapter-key"]}` },
  });
  return res.status === 200 ? res.json() : null;
}

// Meta's status callback for a sent message, signed like Meta signs it.
async function whatsapp_status(provider_message_id, status, recipient) {
  const body = JSON.stringify({ object: "whatsapp_business_account", entry: [{ id: "WABA", changes: [{
    field: "messages", value: { messaging_product: "whatsapp",
      metadata: { display_phone_number: "4930123456", phone_number_id: "1234" },
      statuses: [{ id: provider_message_id, status, timestamp: String(Math.floor(Date.now() / 1000)),
                   recipient_id: recipient }] } }] }] });
  const signature = "sha256=" + createHmac("sha256", args["app-secret"]).update(body).digest("hex");
  const res = await fetch(`${bellhop}/v1/webhooks/whatsapp`, {
    method: "POST", body,
    headers: { "Content-Type": "application/json", "X-Hub-Signature-256": signature },
  });
  check(res.status === 200, `the status webhook is taken (got ${res.status})`);
}

// Asks the C++ test to restart Bellhop and waits until it is back. `how`: "plain", or
// "lose-events" (while Bellhop is down, the property's event counter and history are deleted, as
// when Redis loses its data: the page's `since` is then ahead and Bellhop answers recovered:false).
let restarts = 0;
async function restart_bellhop(how) {
  const n = ++restarts;
  writeFileSync(join(args.out, `restart-${n}.request`), how + "\n");
  await eventually("Bellhop restarted", () => existsSync(join(args.out, `restart-${n}.done`)), 60000);
}

// ---- page helpers ---------------------------------------------------------------------------

const errors = [];
let restarting = false;  // Bellhop is down or the pages are reconnecting: failed connections expected
function watch(page, name) {
  page.on("pageerror", (e) => errors.push(`${name}: ${e}`));
  page.on("console", (m) => {
    if (m.type() !== "error") return;
    // The expected refusals (GET /v1/auth/me while signed out, a refused sign-in, the checks'
    // own forbidden requests) are logged by Chromium as failed loads; anything else is a defect.
    if (/Failed to load resource: the server responded with a status of (401|403)/.test(m.text())) return;
    if (restarting && /WebSocket connection to .* failed|net::ERR_CONNECTION_REFUSED|net::ERR_EMPTY_RESPONSE/.test(m.text())) return;
    errors.push(`${name}: ${m.text()}`);
  });
}

async function shoot(page, name) {
  for (const [w, h] of [[1280, 800], [360, 740]]) {
    await page.setViewportSize({ width: w, height: h });
    await page.waitForTimeout(150);  // layout settles
    const file = `console-${name}-${w}.png`;
    await page.screenshot({ path: join(args.out, file) });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    check(overflow <= 0, `${name} at ${w} px: nothing wider than the screen (${overflow} px over)`);
    await accessible(page, `${name} at ${w} px`);
    if (screenshots_dir) copyFileSync(join(args.out, file), join(screenshots_dir, file));
  }
  await page.setViewportSize({ width: 1280, height: 800 });
}

// axe-core evaluated as a script in the page (Runtime.evaluate is not subject to the page's CSP,
// so the CSP stays on); any serious or critical violation fails.
async function accessible(page, name) {
  await page.evaluate(axe_source);
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ["violations"] }));
  const bad = result.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  check(bad.length === 0, `${name}: no serious or critical axe violation` +
        (bad.length ? ": " + JSON.stringify(bad.map((v) => [v.id, v.nodes.map((n) => n.target)])) : ""));
}

// Bytes of HTML, CSS and JavaScript a page loads from Bellhop (uncompressed, as served).
function weigh(page) {
  const sizes = new Map();
  page.on("response", async (res) => {
    const url = new URL(res.url());
    if (url.origin !== new URL(bellhop).origin || url.pathname.startsWith("/v1/")) return;
    if (res.status() !== 200) return;
    try {
      sizes.set(url.pathname, (await res.body()).length);
    } catch (e) {
      // a redirect or an aborted load has no body
    }
  });
  return sizes;
}

async function sign_in(page, user, password) {
  await page.getByLabel("Username").fill(user);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
}

async function page_fetch(page, method, path, headers = {}) {
  return page.evaluate(async ([method, path, headers]) => {
    const res = await fetch(path, { method, headers, credentials: "same-origin" });
    let body = null;
    try { body = await res.json(); } catch (e) { body = null; }
    return { status: res.status, body };
  }, [method, path, headers]);
}

// ---- the run --------------------------------------------------------------------------------

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox"],  // CI runs as root
});
const result = {};
try {
  // 1. What is served: the redirects, the headers, the ETag.
  const redirect = await fetch(`${bellhop}/console`, { redirect: "manual" });
  check(redirect.status === 301 && redirect.headers.get("location") === "/console/", "/console redirects to /console/");
  const admin_redirect = await fetch(`${bellhop}/admin`, { redirect: "manual" });
  check(admin_redirect.status === 301 && admin_redirect.headers.get("location") === "/admin/", "/admin redirects to /admin/");
  const html = await fetch(`${bellhop}/console/`);
  const csp = html.headers.get("content-security-policy") || "";
  check(csp.includes("default-src 'none'") && csp.includes("script-src 'self'") &&
        csp.includes("style-src 'self'") && csp.includes("frame-ancestors 'none'") &&
        !csp.includes("unsafe"), "a strict Content-Security-Policy: " + csp);
  check(html.headers.get("x-content-type-options") === "nosniff", "X-Content-Type-Options nosniff");
  check(html.headers.get("referrer-policy") === "no-referrer", "Referrer-Policy no-referrer");
  check(html.headers.get("cache-control") === "no-cache", "HTML is revalidated (no-cache)");
  const body = await html.text();
  check(!/<script>|<style|\sstyle=|\son[a-z]+=/.test(body), "no inline script, style or handler in the HTML");
  const etag = html.headers.get("etag");
  const again = await fetch(`${bellhop}/console/`, { headers: { "If-None-Match": etag } });
  check(again.status === 304, "If-None-Match answers 304");

  // 2. Sign-in: refused, then accepted; the cookie's flags.
  const ana_context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const ana = await ana_context.newPage();
  watch(ana, "ana");
  const console_weight = weigh(ana);
  await ana.goto(`${bellhop}/console/`);
  await ana.getByRole("button", { name: "Sign in" }).waitFor();
  await shoot(ana, "sign-in");
  await sign_in(ana, "ana", "not-the-password-1");
  await eventually("the refusal is shown", async () =>
    (await ana.locator("[aria-live]#sign-in-error").textContent()) === "Wrong username or password.");
  check(true, "a wrong password is refused, in the aria-live region");
  const signed_in_at = Date.now();
  await sign_in(ana, "ana", args.password);
  const conversations = ana.getByRole("list", { name: "Conversations" });
  await conversations.waitFor();
  await eventually("the connection is live", async () => (await ana.locator("#conn").textContent()) === "Live");
  figures.sign_in_to_live_ms = Date.now() - signed_in_at;
  const cookie = (await ana_context.cookies()).find((c) => c.name === "bellhop_session");
  check(cookie && cookie.httpOnly && cookie.sameSite === "Strict" && cookie.path === "/",
        "the session cookie is HttpOnly, SameSite=Strict, Path=/");
  check(cookie && !cookie.secure, "not Secure over http:// (public_url is http)");
  figures.console_page_bytes = [...console_weight.values()].reduce((a, b) => a + b, 0);
  figures.console_page_files = Object.fromEntries(console_weight);

  // 3. A guest message from an adapter appears live; another property's does not.
  const guest = "+4915112345678";
  const posted_at = Date.now();
  const first = await post_inbound("hotel-berlin", guest, "Hello <img src=x onerror=alert(1)>, is breakfast included?", "Ana <b>Guest</b>");
  const paris = await post_inbound("hotel-paris", "+33612345678", "Bonjour, une question.", "Paris Guest");
  const item = conversations.getByRole("button").filter({ hasText: "is breakfast included?" });
  await item.waitFor({ timeout: 10000 });
  figures.post_to_shown_ms = Date.now() - posted_at;
  figures.sign_in_to_first_live_message_ms = Date.now() - signed_in_at;
  check(true, "the adapter's message appears live in the inbox");
  check((await item.textContent()).includes("Ana <b>Guest</b>"), "the guest's name is shown as text");
  check((await ana.locator("#conversations img, #conversations b").count()) === 0, "guest text never becomes markup");
  check((await item.textContent()).includes("1 unread"), "the unread count is shown");
  check((await item.textContent()).includes("WhatsApp") && (await item.textContent()).includes("AI"), "channel and mode are shown");
  await ana.waitForTimeout(300);
  check((await conversations.getByText("Bonjour").count()) === 0, "a staff account sees only its properties");
  const foreign = await page_fetch(ana, "GET", "/v1/properties/hotel-paris/conversations");
  check(foreign.status === 403, `another property's conversations are refused (got ${foreign.status})`);

  // 4. The conversation: opened (marked read), taken over and handed back.
  await item.click();
  const log = ana.getByRole("log", { name: "Messages" });
  await log.getByText("is breakfast included?").waitFor();
  await eventually("marked read", async () => !(await item.textContent()).includes("unread"));
  check(true, "opening a conversation marks it read");
  await ana.getByRole("button", { name: "Take over" }).click();
  await ana.getByRole("button", { name: "Hand back to AI" }).waitFor();
  await eventually("the list says Staff", async () => (await item.textContent()).includes("Staff"));
  check((await item.textContent()).includes("Assigned to ana"), "taken over: staff mode, assigned to ana");
  await ana.getByRole("button", { name: "Hand back to AI" }).click();
  await ana.getByRole("button", { name: "Take over" }).waitFor();
  check(true, "handed back to the AI");
  await ana.getByRole("button", { name: "Take over" }).click();
  await ana.getByRole("button", { name: "Hand back to AI" }).waitFor();

  // 5. An AI reply while staff have the conversation is held: shown as a suggestion.
  await post_ai_reply(guest, "Breakfast is included, 7:00 to 10:30.");
  const suggestion = ana.getByRole("region", { name: "AI suggestions (held, not sent)" });
  await suggestion.getByText("Breakfast is included").waitFor({ timeout: 10000 });
  await suggestion.getByRole("button", { name: "Use this suggestion" }).click();
  check((await ana.getByLabel("Reply").inputValue()) === "Breakfast is included, 7:00 to 10:30.",
        "a held suggestion goes into the reply box");

  // 6. Colleagues: root (an admin covering every property) opens the same conversation and
  // types; ana sees them present and typing.
  const root_context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const root_inbox = await root_context.newPage();
  watch(root_inbox, "root inbox");
  await root_inbox.goto(`${bellhop}/console/`);
  await sign_in(root_inbox, "root", args.password);
  // An account for every property follows every configured one (GET /v1/properties): no form.
  const root_item = root_inbox.getByRole("list", { name: "Conversations" }).getByRole("button").filter({ hasText: "is breakfast included?" });
  await root_item.waitFor();
  check(await root_inbox.locator("#property-form").isHidden(), "the configured properties are listed: no property form");
  await eventually("ana sees root present", async () => (await ana.locator("#presence").textContent()).includes("root"));
  check(true, "a colleague's presence is shown");
  await root_item.click();
  await root_inbox.getByLabel("Reply").pressSequentially("Let me check", { delay: 20 });
  await eventually("ana sees root typing", async () => (await ana.locator("#typing").textContent()).includes("root typing"));
  check(true, "a colleague typing is shown");
  await root_inbox.getByLabel("Reply").fill("");

  // 7. A reply: Send pressed twice sends once; its status goes to sent, then delivered.
  await ana.getByLabel("Reply").fill("We kept a table by the window for you.");
  await ana.getByRole("button", { name: "Send" }).dblclick();
  const reply = log.locator("li.message.out").filter({ hasText: "We kept a table by the window" });
  await reply.waitFor({ timeout: 10000 });
  await eventually("the reply box is cleared", async () => (await ana.getByLabel("Reply").inputValue()) === "");
  const reply_id = await reply.getAttribute("data-id");
  await eventually("the reply shows Sent", async () => (await reply.locator(".status").textContent()) === "Sent", 15000);
  check(true, "the reply's status is Sent");
  const record = await eventually("the reply's provider id", async () => {
    const r = await message_record(reply_id);
    return r && r.provider_message_id ? r : null;
  });
  await whatsapp_status(record.provider_message_id, "delivered", guest.slice(1));
  await eventually("the reply shows Delivered", async () => (await reply.locator(".status").textContent()) === "Delivered");
  check(true, "the provider's delivered status shows on the reply");
  check((await log.locator("li.message.out").filter({ hasText: "We kept a table by the window" }).count()) === 1,
        "the reply is shown once");
  // The history brings each reply's status: a page loaded now shows Delivered with no event.
  await root_inbox.reload();
  await root_inbox.locator(`button[data-conversation="${first.conversation_id}"]`).click();
  const reloaded = root_inbox.locator(`li.message.out[data-id="${reply_id}"] .status`);
  await eventually("a page loaded after delivery shows Delivered", async () => (await reloaded.textContent()) === "Delivered");
  check(true, "the history brings the reply's delivery status");
  await root_inbox.getByRole("region", { name: "AI suggestions (held, not sent)" })
    .getByText("Breakfast is included").waitFor({ timeout: 10000 });
  check(true, "a page loaded later shows the held suggestion the conversation keeps");
  await shoot(ana, "inbox");

  // A second reply within the session's limit (one a minute in this test's config) is refused:
  // the page says so and keeps the text to send again.
  await ana.getByLabel("Reply").fill("A second reply right away");
  await ana.getByRole("button", { name: "Send" }).click();
  await eventually("the refusal is shown", async () =>
    (await ana.locator("#reply-status").textContent()).startsWith("Too many replies"));
  check(await ana.getByRole("button", { name: "Send" }).isEnabled(), "the rate-limit refusal is shown; Send works again");
  check((await ana.getByLabel("Reply").inputValue()) === "A second reply right away", "the refused text stays in the box");
  await ana.getByLabel("Reply").fill("");
  result.reply_id = reply_id;
  result.conversation_id = first.conversation_id;

  // 8. CSRF: a cookie request that changes state without the header is refused.
  const no_csrf = await page_fetch(ana, "POST", `/v1/conversations/${first.conversation_id}/read`);
  check(no_csrf.status === 403 && no_csrf.body?.error?.code === "csrf_failed",
        `a POST without X-CSRF-Token is refused 403 csrf_failed (got ${no_csrf.status})`);

  // 9. Bellhop restarts: a message just before, one right after (while the page is still
  // reconnecting); the page shows both, once each, without reloading.
  await ana.evaluate(() => { window.still_the_same_page = true; });
  let plain_loads = 0;
  const count_plain = (r) => { if (r.url().includes("/v1/properties/hotel-berlin/conversations")) plain_loads += 1; };
  ana.on("request", count_plain);
  await post_inbound("hotel-berlin", guest, "Message before the restart");
  await log.getByText("Message before the restart").waitFor();
  restarting = true;
  await restart_bellhop("plain");
  await post_inbound("hotel-berlin", guest, "Message after the restart");
  await log.getByText("Message after the restart").waitFor({ timeout: 45000 });
  check(await ana.evaluate(() => window.still_the_same_page === true), "no page reload across the restart");
  for (const text of ["Message before the restart", "Message after the restart", "is breakfast included?"]) {
    check((await log.getByText(text).count()) === 1, `"${text}" shown once after the restart`);
  }
  await eventually("live again", async () => (await ana.locator("#conn").textContent()) === "Live");
  await eventually("root live again", async () => (await root_inbox.locator("#conn").textContent()) === "Live");
  restarting = false;
  await post_inbound("hotel-berlin", guest, "Live again after the restart");
  await log.getByText("Live again after the restart").waitFor();
  check(true, "live messages flow again after the restart");
  ana.off("request", count_plain);
  check(plain_loads === 0, `the restart was caught up from events, not by reloading (${plain_loads} reloads)`);

  // Bellhop restarts and the property's events are gone (Redis lost them): the page, whose
  // `since` is now ahead, gets recovered:false and reloads over HTTP, still without a page reload.
  let list_loads = 0;
  ana.on("request", (r) => { if (r.url().endsWith("/v1/properties/hotel-berlin/conversations?limit=100")) list_loads += 1; });
  restarting = true;
  await restart_bellhop("lose-events");
  await post_inbound("hotel-berlin", guest, "Message after the events were lost");
  await log.getByText("Message after the events were lost").waitFor({ timeout: 45000 });
  await eventually("live again", async () => (await ana.locator("#conn").textContent()) === "Live");
  await eventually("root live again", async () => (await root_inbox.locator("#conn").textContent()) === "Live");
  restarting = false;
  await post_inbound("hotel-berlin", guest, "Live after the reload");
  await log.getByText("Live after the reload").waitFor();
  for (const text of ["Message after the events were lost", "Live after the reload", "Message after the restart"]) {
    check((await log.getByText(text).count()) === 1, `"${text}" shown once after recovered:false`);
  }
  check(await ana.evaluate(() => window.still_the_same_page === true), "no page reload after recovered:false");
  // The page's request is reported by Chromium on its own schedule: wait for it rather than
  // read the count at once (it was 0 once in CI with the reloaded messages already shown).
  await eventually("the conversations reloaded over HTTP", () => list_loads >= 1).catch(() => {});
  check(list_loads === 1, `recovered:false reloaded the conversations over HTTP once (${list_loads})`);

  // 10. A staff account and the admin page or API.
  const forbidden = await ana.goto(`${bellhop}/admin/`);
  check(forbidden.status() === 403, `a staff session gets 403 at /admin/ (got ${forbidden.status()})`);
  check((forbidden.headers()["content-security-policy"] || "") === csp, "the 403 page has the same CSP");
  await ana.getByRole("heading", { name: "Admins only" }).waitFor();
  const overview_as_staff = await page_fetch(ana, "GET", "/v1/admin/overview");
  check(overview_as_staff.status === 403 || overview_as_staff.status === 401,
        `a staff session cannot read the admin API (got ${overview_as_staff.status})`);

  // paul covers hotel-paris only.
  const paul_context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const paul = await paul_context.newPage();
  watch(paul, "paul");
  await paul.goto(`${bellhop}/console/`);
  // By keyboard only: the user name field, Tab to the password, Enter signs in.
  await paul.getByLabel("Username").focus();
  await paul.keyboard.type("paul");
  await paul.keyboard.press("Tab");
  check(await paul.getByLabel("Password").evaluate((e) => e === document.activeElement), "Tab goes from Username to Password");
  await paul.keyboard.type(args.password);
  await paul.keyboard.press("Enter");
  await paul.getByRole("list", { name: "Conversations" }).getByText("Bonjour").waitFor();
  check((await paul.getByRole("list", { name: "Conversations" }).getByText("breakfast").count()) === 0,
        "paul sees hotel-paris and not hotel-berlin");
  // A conversation opened from the keyboard: focus its button, Enter; the focus goes to its heading.
  const paul_list = paul.getByRole("list", { name: "Conversations" });
  await paul_list.getByRole("button").first().focus();
  // A new conversation arriving redraws the list: the keyboard focus stays on the same one.
  await post_inbound("hotel-paris", "+33698765432", "Une autre question.");
  await paul_list.getByText("Une autre question.").waitFor();
  check(await paul.evaluate((id) => document.activeElement?.dataset.conversation === id, paris.conversation_id),
        "the focus stays on its conversation when the list is redrawn");
  await paul.keyboard.press("Enter");
  await paul.getByRole("log", { name: "Messages" }).getByText("Bonjour").waitFor();
  check(await paul.locator("#view-heading").evaluate((e) => e === document.activeElement),
        "Enter opens a conversation and moves the focus to it");
  check(paris.conversation_id !== first.conversation_id, "two conversations");

  // 11. The admin page: the queues, a dead letter retried, a channel paused and resumed.
  const root = await root_context.newPage();
  watch(root, "root admin");
  const admin_weight = weigh(root);
  const admin_response = await root.goto(`${bellhop}/admin/`);
  check(admin_response.status() === 200, "an admin session gets the admin page");
  const queues = root.getByRole("table", { name: "Queues" });
  await queues.waitFor();
  figures.admin_page_bytes = [...admin_weight.values()].reduce((a, b) => a + b, 0);
  figures.admin_page_files = Object.fromEntries(admin_weight);
  const whatsapp_row = queues.locator("tr[data-channel=whatsapp]");
  await eventually("one dead letter on whatsapp", async () =>
    (await whatsapp_row.locator("td").nth(3).textContent()) === "1");
  check(true, "the Queues table shows the dead letter");
  await whatsapp_row.getByRole("button", { name: "Dead letters" }).click();
  const dead = root.locator("#dead-rows tr");
  await dead.first().waitFor();
  check((await dead.first().textContent()).includes("Dead letter please <b>"), "the dead letter's content as text");
  check((await root.locator("#dead-rows b").count()) === 0, "dead-letter content never becomes markup");
  await shoot(root, "admin");
  await root.getByRole("button", { name: "Purge" }).click();
  const dialog = root.getByRole("dialog");
  await dialog.waitFor();
  check((await dialog.textContent()).includes("cannot be undone"), "purge asks for confirmation");
  await dialog.getByRole("button", { name: "Cancel" }).click();
  check((await dead.count()) === 1, "cancelled purge keeps the dead letter");
  result.dead_id = await dead.first().getAttribute("data-id");
  await dead.first().getByRole("button", { name: "Retry", exact: true }).click();
  await eventually("no dead letter left", async () =>
    (await whatsapp_row.locator("td").nth(3).textContent()) === "0", 15000);
  check(true, "a dead letter retried from the page leaves the dead list");
  await whatsapp_row.getByRole("button", { name: "Pause" }).click();
  await whatsapp_row.getByRole("button", { name: "Resume" }).waitFor();
  const paused = await page_fetch(root, "GET", "/v1/admin/overview");
  check(paused.body.outbound.find((q) => q.channel === "whatsapp").paused === true, "the channel is paused");
  await whatsapp_row.getByRole("button", { name: "Resume" }).click();
  await whatsapp_row.getByRole("button", { name: "Pause" }).waitFor();
  const resumed = await page_fetch(root, "GET", "/v1/admin/overview");
  check(resumed.body.outbound.find((q) => q.channel === "whatsapp").paused === false, "the channel is resumed");
  check((await root.locator("#chart svg").count()) === 1 &&
        (await root.locator("#chart-summary").textContent()).startsWith("Last hour:"),
        "the throughput chart and its text alternative");

  // 12. Sign-out ends the session.
  await root.getByRole("button", { name: "Sign out" }).click();
  await root.getByRole("button", { name: "Sign in" }).waitFor();
  const after = await page_fetch(root, "GET", "/v1/auth/me");
  check(after.status === 401, "signed out: /v1/auth/me answers 401");

  check(errors.length === 0, "no script or console error on the pages: " + errors.join("; "));
  console.log(JSON.stringify({ ...result, figures }));
} finally {
  await browser.close();
}
