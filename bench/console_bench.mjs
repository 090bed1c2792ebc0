// The console under load (bench/run_console_bench.sh starts Bellhop and runs this): signs in to
// /console/ in Debian's Chromium (playwright-core from tests/browser), with CONVERSATIONS
// conversations on one property already there, then posts RATE guest messages/s for DURATION_S
// seconds through POST /v1/messages/inbound, spread over the conversations, and measures
//  - the time from clicking "Sign in" to the first live message shown,
//  - each message's latency from its POST to the moment its text is in the page (p50/p99),
//  - the page's CPU (Chromium's renderer: main-thread task time per second) and JS heap,
//  - Bellhop's CPU and RSS (/proc of --bellhop-pid) over the same seconds.
// Prints one line: console_bench key=value … (no assertion: figures for the note).
//
//   node bench/console_bench.mjs --url http://127.0.0.1:<port> --key <adapter key>
//        --user <name> --password-file <file> --property <id> --bellhop-pid <pid>
//        [--conversations 500] [--rate 20] [--duration-s 60]
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const { chromium } = await import(
  pathToFileURL(join(root, "tests/browser/node_modules/playwright-core/index.mjs")).href);

const args = Object.fromEntries(
  process.argv.slice(2).reduce((pairs, a, i, all) => {
    if (a.startsWith("--")) pairs.push([a.slice(2), all[i + 1]]);
    return pairs;
  }, []),
);
for (const name of ["url", "key", "user", "password-file", "property", "bellhop-pid"]) {
  if (!args[name]) throw new Error(`--${name} is required`);
}
const url = args.url;
const conversations = Number(args.conversations ?? 500);
const rate = Number(args.rate ?? 20);
const durationS = Number(args["duration-s"] ?? 60);
const password = readFileSync(args["password-file"], "utf8").trim();
const pid = Number(args["bellhop-pid"]);
const hz = 100;  // Linux clock ticks (getconf CLK_TCK on every Debian kernel)

function procStat() {
  const s = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
  return { ticks: Number(f[11]) + Number(f[12]), rssPages: Number(f[21]) };
}

let serial = 0;
async function postGuest(conversation, text) {
  const res = await fetch(`${url}/v1/messages/inbound`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${args.key}` },
    body: JSON.stringify({
      property_id: args.property, channel: "sms", external_id: `bench-${Date.now()}-${serial++}`,
      from: `+4915000${String(conversation).padStart(5, "0")}`, to: "+4930123456", text,
    }),
  });
  if (res.status !== 202) throw new Error(`POST /v1/messages/inbound answered ${res.status}`);
}

// The conversations exist before the page opens (the list loads them over REST).
for (let c = 0; c < conversations; c += 25) {
  await Promise.all(Array.from({ length: Math.min(25, conversations - c) },
                               (_, i) => postGuest(c + i, `Hello from guest ${c + i}`)));
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium", headless: true,
  args: ["--no-sandbox"],
});
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  await page.goto(`${url}/console/`);
  await page.getByLabel("Username").fill(args.user);
  await page.getByLabel("Password").fill(password);
  // Seen texts: a MutationObserver stamps the first time each "bench-N" marker is in the page.
  await page.evaluate(() => {
    window.__seen = new Map();
    const scan = (node) => {
      const text = node.textContent || "";
      for (const m of text.matchAll(/bench-(\d+)/g)) {
        if (!window.__seen.has(m[1])) window.__seen.set(m[1], performance.timeOrigin + performance.now());
      }
    };
    new MutationObserver((records) => {
      for (const r of records) {
        for (const n of r.addedNodes) scan(n);
        if (r.type === "characterData") scan(r.target);
      }
    }).observe(document.body, { childList: true, subtree: true, characterData: true });
  });
  const signInAt = Date.now();
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("list", { name: "Conversations" }).or(
    page.getByRole("listbox", { name: "Conversations" })).or(
    page.getByRole("region", { name: "Conversations" })).first().waitFor({ timeout: 30000 });
  // The first live message after sign-in.
  const firstSent = Date.now();
  await postGuest(0, "bench-0 first live message");
  await page.waitForFunction(() => window.__seen.has("0"), null, { timeout: 30000 });
  const firstShownMs = (await page.evaluate(() => window.__seen.get("0"))) - signInAt;
  const firstLatencyMs = (await page.evaluate(() => window.__seen.get("0"))) - firstSent;

  const cdp = await context.newCDPSession(page);
  await cdp.send("Performance.enable");
  const metric = async () => Object.fromEntries(
    (await cdp.send("Performance.getMetrics")).metrics.map((m) => [m.name, m.value]));
  const before = await metric();
  const b0 = procStat();
  const t0 = Date.now();
  const sentAt = new Map();
  const total = rate * durationS;
  const posts = [];
  for (let n = 1; n <= total; n++) {
    const due = t0 + ((n - 1) * 1000) / rate;
    const wait = due - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    sentAt.set(String(n), Date.now());
    posts.push(postGuest(n % conversations, `bench-${n} guest message`));
  }
  await Promise.all(posts);
  await page.waitForFunction((t) => window.__seen.size >= t + 1, total, { timeout: 30000 })
    .catch(() => {});
  const elapsedS = (Date.now() - t0) / 1000;
  const after = await metric();
  const b1 = procStat();
  const seen = new Map(await page.evaluate(() => [...window.__seen.entries()]));
  const lat = [];
  for (const [n, at] of sentAt) if (seen.has(n)) lat.push(seen.get(n) - at);
  lat.sort((a, b) => a - b);
  const q = (p) => (lat.length ? lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] : NaN);
  const taskS = after.TaskDuration - before.TaskDuration;
  console.log([
    "console_bench",
    `conversations=${conversations}`, `rate=${rate}`, `duration_s=${elapsedS.toFixed(1)}`,
    `signin_to_first_live_ms=${firstShownMs.toFixed(0)}`,
    `first_live_latency_ms=${firstLatencyMs.toFixed(0)}`,
    `shown=${lat.length}`, `of=${total}`,
    `p50_ms=${q(0.5).toFixed(1)}`, `p99_ms=${q(0.99).toFixed(1)}`,
    `page_cpu_pct=${((100 * taskS) / elapsedS).toFixed(1)}`,
    `page_js_heap_mb=${(after.JSHeapUsedSize / 1048576).toFixed(1)}`,
    `page_dom_nodes=${after.Nodes}`,
    `bellhop_cpu_pct=${((100 * (b1.ticks - b0.ticks)) / hz / elapsedS).toFixed(1)}`,
    `bellhop_rss_mb=${((b1.rssPages * 4096) / 1048576).toFixed(1)}`,
  ].join(" "));
} finally {
  await browser.close();
}
