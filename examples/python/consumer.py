#!/usr/bin/python3
"""A minimal Bellhop AI-engine consumer (Debian's python3-redis).

Follows the consumer contract of docs/ai-engine.md: heartbeat key first, then BLMOVE from
inbound:messages into this consumer's processing list, handle, ack with LREM. Prints one JSON
line per message ({"id": ..., "text": ...}) on stdout. With --reply it answers every message
with a fixed text on outbound:<channel>, reply and ack in one MULTI/EXEC.
"""
import argparse
import json
import os
import signal
import socket
import sys
import threading

import redis

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--redis", required=True,
                    help="redis://engine:PASSWORD@127.0.0.1:6390 (PASSWORD: Bellhop's engine.password)")
parser.add_argument("--consumer", default=f"{socket.gethostname()}-{os.getpid()}",
                    help="unique consumer name (default hostname-pid)")
parser.add_argument("--count", type=int, default=0, help="exit after N messages (0: run until SIGTERM)")
parser.add_argument("--reply", action="store_true", help="answer each message on outbound:<channel>")
parser.add_argument("--key-prefix", default="", help="Bellhop's redis.key_prefix")
parser.add_argument("--visibility-timeout-ms", type=int, default=30000)
args = parser.parse_args()

r = redis.Redis.from_url(args.redis)
inbound = args.key_prefix + "inbound:messages"
processing = f"{inbound}:processing:{args.consumer}"
heartbeat = f"{inbound}:heartbeat:{args.consumer}"
consumers = f"{inbound}:consumers"  # the registry Bellhop's reaper reads
ttl_ms = args.visibility_timeout_ms
stopped = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # runs the finally: below


def beat():  # the heartbeat key, then our name in the registry
    r.pipeline(transaction=True).set(heartbeat, 1, px=ttl_ms).sadd(consumers, args.consumer).execute()


def keep_beating():  # every visibility_timeout/3 until we stop
    while not stopped.wait(ttl_ms / 3000):
        try:
            beat()
        except redis.RedisError as e:  # keep beating: the next attempt may work
            print(f"heartbeat not refreshed: {e}", file=sys.stderr)


beat()  # before the first take
threading.Thread(target=keep_beating, daemon=True).start()
taken = 0
try:
    while args.count == 0 or taken < args.count:
        element = r.blmove(inbound, processing, 5, "RIGHT", "LEFT")
        if element is None:
            continue
        taken += 1
        reply = None
        try:
            msg = json.loads(element)
            print(json.dumps({"id": msg["id"], "text": msg.get("text")}, ensure_ascii=False), flush=True)
            if args.reply:
                reply = (f"{args.key_prefix}outbound:{msg['channel']}", json.dumps({
                    "property_id": msg["property_id"], "channel": msg["channel"], "to": msg["from"],
                    "text": f"Thanks, we got your message: {msg.get('text') or ''}",
                    "conversation_id": msg["conversation_id"], "reply_to": msg["id"],
                    # 1-4: an answer to a guest who is writing is never held for quiet
                    # hours (5-10 are bulk).
                    "priority": 3, "idempotency_key": f"reply:{msg['id']}"}, ensure_ascii=False))
        except (ValueError, TypeError, KeyError, AttributeError) as e:
            print(f"skipping an invalid element: {e!r}", file=sys.stderr)
        tx = r.pipeline(transaction=True)  # MULTI ... EXEC: the reply and the ack, or neither
        if reply:
            tx.lpush(*reply)
        tx.lrem(processing, 1, element)
        tx.execute()
finally:
    stopped.set()
    r.delete(heartbeat)  # tells Bellhop's reaper at once that anything left here is orphaned
