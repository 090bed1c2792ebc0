// What a Node team would run instead of Bellhop's outbound queue, measured the way
// bench/run_outbound_bench.sh measures Bellhop: a BullMQ 5 Queue filled with COUNT jobs
// (addBulk) before its Worker starts, then a Worker with a no-op processor; jobs/s from the
// first to the last completed job. Its own fresh redis-server on a free loopback port, with the
// persistence of Bellhop's embedded Redis (appendonly yes, appendfsync everysec, AOF rewrites
// from 256 MB, no RDB snapshots), flushed between runs. Each concurrency of the list is tried,
// the best is reported.
//   node bench/bullmq_bench.mjs [--count N] [--concurrency 50,100,200] [--redis-server PATH]
//                               [--provider-url http://127.0.0.1:PORT/v21.0]
// With --provider-url the processor is no longer a no-op: it does what Bellhop's sender does for
// each message, a WhatsApp Cloud API send (POST <url>/1000/messages, JSON, bearer token) on
// keep-alive connections (at most `concurrency` of them), and returns the provider's message id
// (BullMQ keeps it as the job's return value): what a Node team's outbound worker would run.
// Prints one line per concurrency, then
//   bullmq_bench best_jobs_per_s=X concurrency=C count=N cpu_s_node=S redis=S
// (the CPU seconds node and its redis-server spent while the Worker ran, at that concurrency).
import { spawn } from 'node:child_process';
import http from 'node:http';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue, Worker } from 'bullmq';
import IORedis from 'ioredis';

function option(name, fallback) {
  const at = process.argv.indexOf(`--${name}`);
  return at > 0 && at + 1 < process.argv.length ? process.argv[at + 1] : fallback;
}
const count = Number(option('count', process.env.COUNT ?? 20000));
const concurrencies = String(option('concurrency', process.env.BULLMQ_CONCURRENCY ?? '50,100,200'))
  .split(',')
  .map(Number)
  .filter((c) => c > 0);
const redisServer = option('redis-server', 'redis-server');
const providerUrl = option('provider-url', '');

// One WhatsApp Cloud API text send to the provider; resolves to its message id. Any answer but
// a 200 with an id fails the job (BullMQ counts it failed: the run then never completes).
function sendToProvider(agent, data) {
  const body = JSON.stringify({
    messaging_product: 'whatsapp',
    recipient_type: 'individual',
    to: data.to,
    type: 'text',
    text: { body: data.text },
  });
  return new Promise((resolve, reject) => {
    const req = http.request(
      `${providerUrl}/1000/messages`,
      {
        method: 'POST',
        agent,
        headers: {
          'Content-Type': 'application/json',
          'Content-Length': Buffer.byteLength(body),
          Authorization: 'Bearer t',
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (text += c));
        res.on('end', () => {
          try {
            const id = JSON.parse(text)?.messages?.[0]?.id;
            if (res.statusCode === 200 && id) return resolve(id);
          } catch {
            // reported below
          }
          reject(new Error(`provider answered ${res.statusCode}: ${text.slice(0, 200)}`));
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function startRedis() {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bullmq-bench-'));
  const port = await freePort();
  const child = spawn(
    redisServer,
    ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '',
      '--appendonly', 'yes', '--appendfsync', 'everysec', '--aof-use-rdb-preamble', 'yes',
      '--auto-aof-rewrite-min-size', '256mb',
      '--maxmemory-policy', 'noeviction', '--logfile', path.join(dir, 'redis.log')],
    { stdio: 'ignore' },
  );
  const probe = new IORedis({ port, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => null });
  probe.on('error', () => {});  // refused while redis-server starts: the loop below retries
  for (let i = 0; ; ++i) {
    try {
      await probe.connect();
      await probe.ping();
      break;
    } catch (e) {
      if (i >= 100) throw new Error(`redis-server did not start on ${port}: ${e.message}`);
      probe.disconnect();
      await sleep(50);
    }
  }
  return {
    port,
    pid: child.pid,
    client: probe,
    async stop() {
      probe.disconnect();
      child.kill('SIGTERM');
      await new Promise((resolve) => (child.exitCode !== null ? resolve() : child.once('exit', resolve)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// CPU seconds (user + system) a process has used, from /proc (0 when unreadable).
function cpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;  // clock ticks (USER_HZ 100)
  } catch {
    return 0;
  }
}

// One run: COUNT jobs queued, then a Worker at `concurrency` until every one completed.
async function run(redis, concurrency) {
  await redis.client.flushall();
  const connection = { host: '127.0.0.1', port: redis.port, maxRetriesPerRequest: null };
  const queue = new Queue('outbound', { connection });
  const chunk = 5000;
  for (let from = 0; from < count; from += chunk) {
    const jobs = [];
    for (let i = from; i < Math.min(from + chunk, count); ++i) {
      jobs.push({ name: 'send', data: { to: `+49151${10000000 + i}`, text: 'Your room is ready.' } });
    }
    await queue.addBulk(jobs);
  }
  let done = 0;
  let first = 0;
  let last = 0;
  let finished;
  const all = new Promise((resolve) => (finished = resolve));
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const processor = providerUrl ? (job) => sendToProvider(agent, job.data) : async () => {};
  const worker = new Worker('outbound', processor, { connection, concurrency, autorun: false });
  let failure;
  worker.on('failed', (job, e) => {
    failure ??= e;
    finished();
  });
  worker.on('completed', () => {
    const now = process.hrtime.bigint();
    if (done === 0) first = now;
    last = now;
    if (++done === count) finished();
  });
  worker.on('error', (e) => console.error(`bullmq_bench worker error: ${e.message}`));
  const node0 = process.cpuUsage();
  const redis0 = cpuSeconds(redis.pid);
  worker.run();
  await all;
  if (failure) {
    await worker.close(true);
    throw new Error(`a job failed: ${failure.message}`);
  }
  const node1 = process.cpuUsage(node0);
  const redisCpu = cpuSeconds(redis.pid) - redis0;
  await worker.close();
  await queue.close();
  agent.destroy();
  const seconds = Number(last - first) / 1e9;
  return {
    seconds,
    perSecond: seconds > 0 ? (count - 1) / seconds : 0,
    cpu: `cpu_s_node=${((node1.user + node1.system) / 1e6).toFixed(2)} redis=${redisCpu.toFixed(2)}`,
  };
}

const redis = await startRedis();
let best = { perSecond: 0, concurrency: 0 };
try {
  for (const concurrency of concurrencies) {
    const r = await run(redis, concurrency);
    console.log(
      `bullmq_bench concurrency=${concurrency} jobs=${count} first_to_last_s=${r.seconds.toFixed(3)} ` +
        `jobs_per_s=${r.perSecond.toFixed(0)} ${r.cpu}`,
    );
    if (r.perSecond > best.perSecond) best = { perSecond: r.perSecond, concurrency, cpu: r.cpu };
  }
} finally {
  await redis.stop();
}
console.log(
  `bullmq_bench best_jobs_per_s=${best.perSecond.toFixed(0)} concurrency=${best.concurrency} count=${count} ${best.cpu ?? ''}`,
);
