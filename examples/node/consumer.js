#!/usr/bin/env node
// A minimal Bellhop AI-engine consumer with ioredis.
//
// Follows the consumer contract of docs/ai-engine.md: heartbeat key first, then BLMOVE from
// inbound:messages into this consumer's processing list, handle, ack with LREM. Prints one JSON
// line per message ({"id": ..., "text": ...}) on stdout. With --reply it answers every message
// with a fixed text on outbound:<channel>, reply and ack in one MULTI/EXEC.
//
//   node consumer.js --redis URL [--consumer NAME] [--count N] [--reply]
//                    [--key-prefix P] [--visibility-timeout-ms MS]
'use strict';
const os = require('node:os');
const { parseArgs } = require('node:util');
const Redis = require('ioredis');

const { values: opts } = parseArgs({
  options: {
    redis: { type: 'string' },
    consumer: { type: 'string', default: `${os.hostname()}-${process.pid}` },
    count: { type: 'string', default: '0' }, // 0: run until SIGTERM
    reply: { type: 'boolean', default: false },
    'key-prefix': { type: 'string', default: '' },
    'visibility-timeout-ms': { type: 'string', default: '30000' },
  },
});
const count = Number(opts.count);
const ttlMs = Number(opts['visibility-timeout-ms']);
if (!opts.redis || !Number.isInteger(count) || count < 0 || !(ttlMs > 0)) {
  console.error('usage: consumer.js --redis URL [--consumer NAME] [--count N] [--reply] ' +
                '[--key-prefix P] [--visibility-timeout-ms MS]');
  process.exit(2);
}

// BLMOVE holds its connection while it waits, so it gets a client of its own. No ready check:
// it sends INFO, which Bellhop's engine user may not run (docs/ai-engine.md, "Connecting").
const redis = new Redis(opts.redis, { enableReadyCheck: false });
const blocking = new Redis(opts.redis, { enableReadyCheck: false });
const prefix = opts['key-prefix'];
const inbound = `${prefix}inbound:messages`;
const processing = `${inbound}:processing:${opts.consumer}`;
const heartbeat = `${inbound}:heartbeat:${opts.consumer}`;
const consumers = `${inbound}:consumers`; // the registry Bellhop's reaper reads
let stopping = false;
process.on('SIGTERM', () => { stopping = true; }); // finish the message in hand, then stop
process.on('SIGINT', () => { stopping = true; });

function replyFor(msg) {
  for (const field of ['property_id', 'channel', 'from', 'conversation_id']) {
    if (typeof msg[field] !== 'string') throw new Error(`no "${field}"`);
  }
  return [`${prefix}outbound:${msg.channel}`, JSON.stringify({
    property_id: msg.property_id, channel: msg.channel, to: msg.from,
    text: `Thanks, we got your message: ${msg.text ?? ''}`,
    conversation_id: msg.conversation_id, reply_to: msg.id,
    // 1-4: an answer to a guest who is writing is never held for quiet hours (5-10 are bulk).
    priority: 3, idempotency_key: `reply:${msg.id}`,
  })];
}

async function main() {
  // The heartbeat key, then our name in the registry; before the first take, then every ttl/3.
  const beat = () => redis.multi().set(heartbeat, '1', 'PX', ttlMs).sadd(consumers, opts.consumer).exec();
  await beat();
  const beating = setInterval(() => beat().catch((e) => console.error(`heartbeat: ${e.message}`)), ttlMs / 3);
  let taken = 0;
  while (!stopping && (count === 0 || taken < count)) {
    const element = await blocking.blmove(inbound, processing, 'RIGHT', 'LEFT', 5);
    if (element === null) continue;
    taken += 1;
    let reply = null;
    try {
      const msg = JSON.parse(element);
      if (typeof msg?.id !== 'string') throw new Error('no "id"');
      console.log(JSON.stringify({ id: msg.id, text: msg.text ?? null }));
      if (opts.reply) reply = replyFor(msg);
    } catch (e) {
      console.error(`skipping an invalid element: ${e.message}`);
    }
    const tx = redis.multi(); // MULTI ... EXEC: the reply and the ack, or neither
    if (reply) tx.lpush(...reply);
    tx.lrem(processing, 1, element);
    await tx.exec();
  }
  clearInterval(beating);
  await redis.del(heartbeat); // tells Bellhop's reaper at once that anything left is orphaned
  await Promise.all([redis.quit(), blocking.quit()]);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
