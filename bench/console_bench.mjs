// The staff inbox under load (bench/run_console_bench.sh starts Redis, Bellhop and the account):
// CONVERSATIONS guests write once, then RATE messages a second go to random conversations for
// DURATION seconds (the open one among them) while the inbox shows them. Measures the page's
// main-thread busy time and JavaScript heap (Chromium's Performance metrics) and bellhop's CPU
// time and resident memory (/proc). Prints one JSON line.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(new URL("../tests/browser/package.json", import.meta.url));
const { chromium } = require("playwright-core");
const args = Object.fromEntries(process.argv.slice(2).reduce((pairs, a, i, all) => {
  if (a.startsWith("--")) pairs.push([a.slice(2), all[i + 1]]);
  return pairs;
}, []));
const bellhop = args.bellhop;
const conversations = Number(args.conversations), rate = Number(args.rate), duration_s = Number(args["duration-s"]);

let n = 0;
async function post(guest, text) {
  const res = await fetch(`${bellhop}/v1/messages/inbound`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${args["adapter-key"]}` },
    body: JSON.stringify({ property_id: "hotel-berlin", channel: "whatsapp", external_id: `bench.${++n}`,
                           from: guest, guest_name: `Guest ${guest.slice(-4)}`, text }),
  });
  if (res.status !== 202) throw new Error(`inbound answered ${res.status}`);
}
const guest = (i) => "+49151" + String(1000000 + i);

function bellhop_usage() {  // CPU seconds (user + system) and resident MiB
  const stat = readFileSync(`/proc/${args["bellhop-pid"]}/stat`, "utf8").split(") ")[1].split(" ");
  const ticks = Number(stat[11]) + Number(stat[12]);
  const rss = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${args["bellhop-pid"]}/status`, "utf8"))[1];
  return { cpu_s: ticks / 100, rss_mib: Number(rss) / 1024 };
}

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
                                        headless: true, args: ["--no-sandbox"] });
try {
  for (let i = 0; i < conversations; i += 25) {
    await Promise.all(Array.from({ length: Math.min(25, conversations - i) }, (_, k) => post(guest(i + k), "Hello, a first question.")));
  }
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("Performance.enable");
  const metrics = async () => Object.fromEntries((await cdp.send("Performance.getMetrics")).metrics.map((m) => [m.name, m.value]));
  const load_started = Date.now();
  await page.goto(`${bellhop}/console/`);
  await page.getByLabel("Username").fill("ana");
  await page.getByLabel("Password").fill(args.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  const list = page.getByRole("list", { name: "Conversations" });
  await page.waitForFunction((want) => document.querySelectorAll("#conversations button").length >= want, Math.min(conversations, 500), { timeout: 60000 });
  const list_loaded_ms = Date.now() - load_started;
  await list.getByRole("button").first().click();
  await page.waitForTimeout(1000);
  const before = await metrics(), bellhop_before = bellhop_usage();
  const start = Date.now();
  let sent = 0;
  while (Date.now() - start < duration_s * 1000) {
    const due = Math.floor(((Date.now() - start) / 1000) * rate);
    const batch = [];
    for (; sent < due; sent++) batch.push(post(guest(Math.floor(Math.random() * conversations)), `Message ${sent} under load`));
    await Promise.all(batch);
    await new Promise((r) => setTimeout(r, 20));
  }
  const last = `Message ${sent - 1} under load`;
  await page.waitForFunction((text) => [...document.querySelectorAll("#conversations .last")].some((e) => e.textContent === text), last, { timeout: 30000 });
  const elapsed_s = (Date.now() - start) / 1000;
  const after = await metrics(), bellhop_after = bellhop_usage();
  console.log(JSON.stringify({
    conversations, rate, duration_s: Math.round(elapsed_s), messages: sent,
    list_of_500_loaded_ms: list_loaded_ms,
    page: {
      main_thread_busy_pct: Math.round((100 * (after.TaskDuration - before.TaskDuration)) / elapsed_s * 10) / 10,
      script_s: Math.round((after.ScriptDuration - before.ScriptDuration) * 100) / 100,
      layout_s: Math.round((after.LayoutDuration - before.LayoutDuration) * 100) / 100,
      style_s: Math.round((after.RecalcStyleDuration - before.RecalcStyleDuration) * 100) / 100,
      task_s: Math.round((after.TaskDuration - before.TaskDuration) * 100) / 100,
      js_heap_mib: Math.round(after.JSHeapUsedSize / 1048576 * 10) / 10,
      dom_nodes: after.Nodes,
    },
    bellhop: {
      cpu_pct: Math.round((100 * (bellhop_after.cpu_s - bellhop_before.cpu_s)) / elapsed_s * 10) / 10,
      rss_mib: Math.round(bellhop_after.rss_mib * 10) / 10,
    },
  }));
} finally {
  await browser.close();
}
