// rate-limiter-flexible's RateLimiterRedis.consume() (ioredis client) at saturation, what a Node
// team would pick instead of bellhop_ratelimit: the same policy figures (points = --limit per
// --window-ms, a fixed window), keys drawn at random from --keys subjects of the library's form
// (12 digits, zero-padded; prefix bench:ratelimit:flexible:), one decision per consume().
// Started by bench/run_ratelimit_bench.sh against the same redis-server as the library.
//
// Closed loop: `concurrency` consumes outstanding, each completion starts the next. It tries
// every --concurrency level with ioredis auto-pipelining off and on for --sweep-s seconds each
// (after a --warmup-s warm-up), then runs the best of them for --duration-s and reports that.
// Prints machine-readable lines:
//   flexible_sweep concurrency=C auto_pipelining=0|1 decisions_per_s=N ...
//   flexible_bench concurrency=C auto_pipelining=0|1 seconds=S decisions=N decisions_per_s=N
//     allowed=N denied=N errors=N p50_ms p90_ms p99_ms p999_ms max_ms
//
//   node bench/ratelimit_flexible_bench.mjs --port 6379 --limit 1000000 --window-ms 1000 \
//     --keys 1000000 --duration-s 10 --sweep-s 3 --concurrency 64,256,1024
// Exit status 0, or 1 when a consume failed with something other than a refusal.
import Redis from 'ioredis';
import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';

const opts = {
  host: '127.0.0.1', port: 6379, limit: 1000000, windowMs: 1000, keys: 1000000,
  durationS: 10, sweepS: 3, warmupS: 1, concurrency: [64, 256, 1024], pipelining: [0, 1],
};
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  const [k, v] = [argv[i], argv[i + 1]];
  if (v === undefined) usage(`missing value for ${k}`);
  switch (k) {
    case '--host': opts.host = v; break;
    case '--port': opts.port = Number(v); break;
    case '--limit': opts.limit = Number(v); break;
    case '--window-ms': opts.windowMs = Number(v); break;
    case '--keys': opts.keys = Number(v); break;
    case '--duration-s': opts.durationS = Number(v); break;
    case '--sweep-s': opts.sweepS = Number(v); break;
    case '--warmup-s': opts.warmupS = Number(v); break;
    case '--concurrency': opts.concurrency = v.split(',').map(Number); break;
    case '--auto-pipelining': opts.pipelining = v.split(',').map(Number); break;
    default: usage(`unknown option ${k}`);
  }
}
function usage(why) {
  console.error(`${why}\nusage: node ratelimit_flexible_bench.mjs [--host H] [--port P] [--limit L] ` +
                '[--window-ms W] [--keys K] [--duration-s S] [--sweep-s S] [--warmup-s S] ' +
                '[--concurrency C,C,...] [--auto-pipelining 0,1]');
  process.exit(2);
}
// RateLimiterRedis counts in whole seconds.
if (opts.windowMs % 1000 !== 0 || opts.windowMs < 1000) usage('--window-ms must be a multiple of 1000');
if (!(opts.limit > 0) || !(opts.keys >= 1) || opts.concurrency.some((c) => !(c >= 1))) usage('bad number');

const subject = (n) => String(n).padStart(12, '0');

function percentile(sorted, p) {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.round(p * (sorted.length - 1)))];
}

// One closed-loop run: `warmupS` unmeasured, then `seconds` measured.
async function run(concurrency, autoPipelining, seconds, warmupS) {
  const redis = new Redis({ host: opts.host, port: opts.port, enableAutoPipelining: !!autoPipelining,
                            maxRetriesPerRequest: 1, lazyConnect: true });
  await redis.connect();
  const limiter = new RateLimiterRedis({
    storeClient: redis, keyPrefix: 'bench:ratelimit:flexible', points: opts.limit,
    duration: opts.windowMs / 1000,
  });
  await limiter.consume('warmup', 1).catch(() => {});  // loads the script
  const start = performance.now();
  const measureFrom = start + warmupS * 1000;
  const end = measureFrom + seconds * 1000;
  const latencies = [];
  let allowed = 0, denied = 0, errors = 0, firstError = '';
  async function loop() {
    for (;;) {
      const sent = performance.now();
      if (sent >= end) return;
      let result;
      try {
        await limiter.consume(subject(Math.floor(Math.random() * opts.keys)), 1);
        result = 'allowed';
      } catch (e) {
        if (e instanceof RateLimiterRes) {
          result = 'denied';
        } else {
          result = 'error';
          if (!firstError) firstError = String(e && e.message || e);
        }
      }
      const now = performance.now();
      // Counted when it completes inside the measured window, as ratelimit_bench does.
      if (now >= measureFrom && now <= end) {
        latencies.push(now - sent);
        if (result === 'allowed') ++allowed;
        else if (result === 'denied') ++denied;
        else ++errors;
      }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, loop));
  redis.disconnect();
  latencies.sort((a, b) => a - b);
  const decisions = latencies.length;
  return {
    concurrency, autoPipelining, seconds, decisions, perS: decisions / seconds, allowed, denied,
    errors, firstError, p50: percentile(latencies, 0.5), p90: percentile(latencies, 0.9),
    p99: percentile(latencies, 0.99), p999: percentile(latencies, 0.999),
    max: decisions ? latencies[decisions - 1] : 0,
  };
}

function line(name, r) {
  return `${name} concurrency=${r.concurrency} auto_pipelining=${r.autoPipelining} ` +
         `limit=${opts.limit} window_ms=${opts.windowMs} keys=${opts.keys} seconds=${r.seconds.toFixed(2)} ` +
         `decisions=${r.decisions} decisions_per_s=${r.perS.toFixed(0)} allowed=${r.allowed} ` +
         `denied=${r.denied} errors=${r.errors} p50_ms=${r.p50.toFixed(3)} p90_ms=${r.p90.toFixed(3)} ` +
         `p99_ms=${r.p99.toFixed(3)} p999_ms=${r.p999.toFixed(3)} max_ms=${r.max.toFixed(3)}`;
}

let best = null;
for (const c of opts.concurrency) {
  for (const p of opts.pipelining) {
    const r = await run(c, p, opts.sweepS, Math.min(opts.warmupS, 0.5));
    console.log(line('flexible_sweep', r));
    if (r.errors === 0 && (!best || r.perS > best.perS)) best = r;
  }
}
if (!best) {
  console.error('every configuration failed');
  process.exit(1);
}
const final = await run(best.concurrency, best.autoPipelining, opts.durationS, opts.warmupS);
console.log(line('flexible_bench', final));
if (final.errors > 0) console.log(`flexible_bench_first_error ${final.firstError}`);
process.exit(final.errors === 0 ? 0 : 1);
