// The web chat widget (GET /v1/webchat/widget.js) in Debian's Chromium, driven by
// playwright-core, on a page of another origin, against a live Bellhop with the demo engine.
// tests/gateway/webchat_widget_process_test.cpp starts Redis, Bellhop and the engine, runs this
// script and then checks Redis and the API. A failed check throws: the exit status is 1.
//
//   node webchat_widget.mjs --bellhop http://127.0.0.1:<port> --page-port <port>
//                           --adapter-key <key> --out <dir>
//
// Prints one JSON line at the end: {"guest": "wc_…"}.
import { createHash } from "node:crypto";
import { createServer } from "node:http";
import { join } from "node:path";
import { chromium } from "playwright-core";

const args = Object.fromEntries(
  process.argv.slice(2).reduce((pairs, a, i, all) => {
    if (a.startsWith("--")) pairs.push([a.slice(2), all[i + 1]]);
    return pairs;
  }, []),
);
for (const name of ["bellhop", "page-port", "adapter-key", "out"]) {
  if (!args[name]) throw new Error(`--${name} is required`);
}
const bellhop = args.bellhop;
const storageKey = "bellhop-webchat:" + new URL(bellhop).host + "/v1/webchat";

function check(condition, what) {
  if (!condition) throw new Error("check failed: " + what);
  console.error("ok: " + what);
}

// The hotel's page: its own CSS hides every button and paints text red; the widget's shadow
// root keeps it out.
const page_html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Hotel Berlin</title>
<style>button { display: none !important; } * { color: red; }</style></head>
<body><h1>Hotel Berlin</h1><p>Rooms, breakfast and the garden.</p>
<script src="${bellhop}/v1/webchat/widget.js" async data-title="Chat with Hotel Berlin"
        data-greeting="Hello! How can we help?"></script>
</body></html>`;
const site = createServer((req, res) => {
  res.writeHead(req.url === "/" ? 200 : 404, { "Content-Type": "text/html; charset=utf-8" });
  res.end(req.url === "/" ? page_html : "not found");
});
await new Promise((resolve) => site.listen(Number(args["page-port"]), "127.0.0.1", resolve));
const pageUrl = `http://127.0.0.1:${args["page-port"]}/`;

async function postReply(guest, text, source = "ai") {
  const res = await fetch(`${bellhop}/v1/messages/outbound`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${args["adapter-key"]}` },
    body: JSON.stringify({ property_id: "hotel-berlin", channel: "webchat", to: guest, text, source }),
  });
  check(res.status === 202, `POST /v1/messages/outbound answers 202 (got ${res.status})`);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox"],  // CI runs as root
});
const errors = [];
try {
  const context = await browser.newContext();
  let page = await context.newPage();
  page.on("pageerror", (e) => errors.push(String(e)));

  // 1. The launcher shows despite the site's CSS; the panel opens with the greeting.
  await page.goto(pageUrl);
  const launcher = page.getByRole("button", { name: "Chat with Hotel Berlin" });
  await launcher.waitFor({ state: "visible", timeout: 10000 });
  await launcher.click();
  const dialog = page.getByRole("dialog", { name: "Chat with Hotel Berlin" });
  await dialog.waitFor({ state: "visible" });
  check((await dialog.locator(".greeting").textContent()) === "Hello! How can we help?",
        "the greeting is shown");

  // 2. A question: stored (the page says "Sent" once Bellhop acknowledged it), and the demo
  // engine's answer comes back into the panel.
  await page.getByLabel("Your message").fill("Hello, when is breakfast?");
  await page.getByLabel("Your message").press("Enter");
  await dialog.locator('.msg.guest[data-state="sent"]').first().waitFor({ timeout: 10000 });
  const answer = dialog.locator(".msg.hotel", { hasText: "Breakfast is served" });
  await answer.waitFor({ timeout: 15000 });
  check(await answer.count() === 1, "the engine's answer is shown once");

  const session = await page.evaluate((k) => JSON.parse(localStorage.getItem(k)).session,
                                      storageKey);
  check(/^[A-Za-z0-9_-]{43}$/.test(session), "the session token is kept in localStorage");
  const guest = "wc_" + createHash("sha256").update(session).digest("hex").slice(0, 32);

  // 3. A reply with markup is shown as text, never run.
  await postReply(guest, '<img src=x onerror="window.__pwned=1"> <b>not bold</b>');
  const markup = dialog.locator(".msg.hotel", { hasText: "<img src=x" });
  await markup.waitFor({ timeout: 10000 });
  check(await dialog.locator("img, b").count() === 0, "no element was made of a reply's text");
  check(await page.evaluate(() => window.__pwned === undefined), "no script of a reply ran");

  // 4. A lost acknowledgement: the socket drops after Bellhop stored the message but before the
  // page heard so. The page reconnects and sends it again with the same client_id; Bellhop
  // answers "duplicate" (the C++ side checks the conversation holds it once).
  let dropNextAck = true;
  await page.routeWebSocket(/\/v1\/webchat/, (ws) => {
    const server = ws.connectToServer();
    ws.onMessage((m) => server.send(m));
    server.onMessage((m) => {
      if (dropNextAck && JSON.parse(m).type === "ack") {
        dropNextAck = false;
        ws.close();
        server.close();
        return;
      }
      ws.send(m);
    });
  });
  // routeWebSocket applies to sockets opened from now on: drop the current one by reloading.
  await page.reload();
  await launcher.click();
  await dialog.waitFor({ state: "visible" });
  await page.getByLabel("Your message").fill("Is there parking at the hotel?");
  await page.getByLabel("Your message").press("Enter");
  await dialog.locator('.msg.guest[data-state="sent"]', { hasText: "Is there parking" })
    .waitFor({ timeout: 15000 });
  check(!dropNextAck, "the first acknowledgement was dropped, the message still ends sent");

  // 5. A reply while the guest is away waits for them: a new tab of the same browser shows a
  // badge before it is opened, then the reply. The demo engine had no answer about parking and
  // handed the conversation to staff (docs/properties.md): this reply is staff's (an engine's
  // would be held as a suggestion).
  await page.close();
  await postReply(guest, "Your room is ready.", "staff");
  page = await context.newPage();
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(pageUrl);
  const badge = page.locator(".badge:not([hidden])");
  await badge.waitFor({ timeout: 10000 });
  check((await badge.textContent()) === "1", "the launcher counts one unread reply");
  await page.getByRole("button", { name: /Chat with Hotel Berlin/ }).click();
  const panel = page.getByRole("dialog", { name: "Chat with Hotel Berlin" });
  await panel.locator(".msg.hotel", { hasText: "Your room is ready." }).waitFor();

  // 6. The transcript survived the reload and the new tab, each message once.
  const texts = await panel.locator(".msg .text").evaluateAll((els) =>
    els.map((e) => e.textContent));
  const once = (t) => texts.filter((x) => x.startsWith(t)).length === 1;
  check(once("Hello, when is breakfast?") && once("Breakfast is served") &&
        once("Is there parking") && once("<img src=x") && once("Your room is ready."),
        "the transcript holds each message once: " + JSON.stringify(texts));
  await page.screenshot({ path: join(args.out, "webchat_widget.png") });

  // 7. Two tabs of a first visit open the chat at the same moment and both send before either
  // hears Bellhop's welcome (the frames Bellhop sends are held until both messages are
  // submitted, so the race is there on every run): one session is asked for, the other tab
  // takes it from storage, so both messages are one guest's and both tabs show both.
  const fresh = await browser.newContext();
  let releaseFrames;
  const bothSubmitted = new Promise((resolve) => { releaseFrames = resolve; });
  await fresh.routeWebSocket(/\/v1\/webchat/, (route) => {
    const server = route.connectToServer();
    let queue = bothSubmitted;  // Bellhop's frames, in their order, once both tabs have sent
    server.onMessage((m) => { queue = queue.then(() => route.send(m)); });
  });
  const tabs = [await fresh.newPage(), await fresh.newPage()];
  const frames = [[], []];  // what each tab's sockets said and heard, shown when a check fails
  for (const [i, t] of tabs.entries()) {
    t.on("pageerror", (e) => errors.push(String(e)));
    t.on("websocket", (ws) => {
      const n = frames[i].length;
      frames[i].push(`#${n} open ${ws.url().replace(/session=.*/, "session=…")}`);
      ws.on("framesent", (f) => frames[i].push(`#${n} > ${f.payload}`));
      ws.on("framereceived", (f) => frames[i].push(`#${n} < ${f.payload}`));
      ws.on("close", () => frames[i].push(`#${n} closed`));
    });
  }
  await Promise.all(tabs.map((t) => t.goto(pageUrl)));
  await Promise.all(tabs.map((t) => t.getByRole("button", { name: "Chat with Hotel Berlin" })
                                       .click()));
  const words = ["Tab one asks about the spa.", "Tab two asks about the gym."];
  await Promise.all(tabs.map(async (t, i) => {
    await t.getByLabel("Your message").fill(words[i]);
    await t.getByLabel("Your message").press("Enter");
  }));
  releaseFrames();
  for (const [i, t] of tabs.entries()) {
    for (const w of words) {
      try {
        await t.locator('.msg.guest[data-state="sent"]', { hasText: w }).waitFor({ timeout: 15000 });
      } catch (e) {
        const shown = await t.locator(".msg").evaluateAll((els) =>
          els.map((el) => `${el.className} ${el.dataset.state || ""}: ${el.textContent}`));
        const stored = await t.evaluate((k) => localStorage.getItem(k), storageKey);
        throw new Error(`tab ${i}: "${w}" is not shown as sent.\nshown: ${shown.join(" | ")}` +
                        `\nstored: ${stored}\nframes of tab 0:\n${frames[0].join("\n")}` +
                        `\nframes of tab 1:\n${frames[1].join("\n")}\n${e.message}`);
      }
    }
  }
  check(true, "both tabs show both messages, sent");
  const welcomed = new Set(frames.flat().map((f) => /^#\d+ < (\{.*"type":"welcome".*)$/.exec(f))
                                .filter(Boolean).map((m) => JSON.parse(m[1]).session));
  check(welcomed.size === 1, `one session for both tabs (Bellhop welcomed ${welcomed.size})` +
                             `\nframes of tab 0:\n${frames[0].join("\n")}` +
                             `\nframes of tab 1:\n${frames[1].join("\n")}`);
  const shared = await tabs[0].evaluate((k) => JSON.parse(localStorage.getItem(k)).session,
                                        storageKey);
  const sharedGuest = "wc_" + createHash("sha256").update(shared).digest("hex").slice(0, 32);
  check(errors.length === 0, "no script error on the pages: " + errors.join("; "));
  console.log(JSON.stringify({ guest, shared_guest: sharedGuest }));
} finally {
  await browser.close();
  site.close();
}
