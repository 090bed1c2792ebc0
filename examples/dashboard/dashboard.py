#!/usr/bin/python3
"""A minimal Bellhop staff dashboard client (Debian's python3-websockets).

Follows docs/realtime.md: authenticates with a first {"type":"auth"} frame, subscribes to each
--property (with `since` from --since-file, so nothing is missed across restarts and
reconnects), prints one JSON line per event ({"property_id","seq","event","id"?}) on stdout and
keeps the last seq per property. On recovered:false or a gap in the seqs it prints
{"property_id","seq","reload":true}: a real dashboard reloads its view over HTTP then. With
--reply it answers every guest message; the client_msg_id is derived from the message id, so a
resend after a reconnect (or a replayed event) is queued once. Reconnects with backoff.
"""
import argparse
import asyncio
import json
import os
import random
import sys

import websockets

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--url", default="ws://127.0.0.1:8080/v1/realtime")
parser.add_argument("--token", default=os.environ.get("BELLHOP_TOKEN"),
                    help="staff token from `bellhop gen-token` (default: $BELLHOP_TOKEN)")
parser.add_argument("--property", action="append", required=True, help="property id (repeatable)")
parser.add_argument("--since-file", help="JSON file keeping the last seq per property")
parser.add_argument("--count", type=int, default=0, help="exit after N events (0: run forever)")
parser.add_argument("--reply", metavar="TEXT", help="answer every guest message with TEXT")
args = parser.parse_args()
if not args.token:
    parser.error("--token or BELLHOP_TOKEN is required")

last = {}  # property id -> last seq seen
if args.since_file and os.path.exists(args.since_file):
    with open(args.since_file) as f:
        last = {p: s for p, s in json.load(f).items() if isinstance(s, int)}
MAX_IN_FLIGHT = 16  # replies awaiting their ack; the server answers "busy" beyond that
pending = {}  # client_msg_id -> reply frame, until its ack (sent again after a reconnect)
in_flight = set()  # the client_msg_ids of `pending` sent on the current connection
printed = 0
delay = 0.5  # reconnect backoff, back to this once a connection is authenticated


class Fatal(Exception):  # the token is refused: reconnecting with it cannot help
    pass


def save():
    if args.since_file:  # write and rename: a crash never leaves half a file
        with open(args.since_file + ".tmp", "w") as f:
            json.dump(last, f)
        os.replace(args.since_file + ".tmp", args.since_file)


def out(line):
    print(json.dumps(line, ensure_ascii=False), flush=True)


async def send_replies(ws):
    for msg_id, reply in list(pending.items()):
        if len(in_flight) >= MAX_IN_FLIGHT:
            return
        if msg_id not in in_flight:
            in_flight.add(msg_id)
            await ws.send(json.dumps(reply))


async def on_event(ws, frame):
    global printed
    if args.count and printed >= args.count:
        return  # done: only waiting for the acks of our replies
    prop, seq, data = frame["property_id"], frame.get("seq"), frame.get("data") or {}
    if seq is not None:  # typing events are ephemeral: no seq, not stored
        if seq <= last.get(prop, -1):
            return  # seen before
        if prop in last and seq > last[prop] + 1:  # events were lost (see docs/realtime.md)
            out({"property_id": prop, "seq": last[prop], "reload": True})
        last[prop] = seq
        save()
    line = {"property_id": prop, "seq": seq, "event": frame["event"]}
    if "id" in data:
        line["id"] = data["id"]
    out(line)
    printed += 1
    if (args.reply and frame["event"] == "message.created" and data.get("direction") == "inbound"):
        reply = {"type": "reply", "property_id": prop, "conversation_id": data["conversation_id"],
                 "text": args.reply, "client_msg_id": "reply-" + data["id"]}
        pending[reply["client_msg_id"]] = reply
        await send_replies(ws)


async def session():
    global delay
    # The library answers the server's pings and pings the server every 20 s by itself.
    async with websockets.connect(args.url) as ws:
        in_flight.clear()
        await ws.send(json.dumps({"type": "auth", "token": args.token}))
        async for text in ws:
            frame = json.loads(text)
            kind = frame.get("type")
            if kind == "welcome":  # authenticated: (re)subscribe, resend unacked replies
                delay = 0.5
                for prop in args.property:
                    sub = {"type": "subscribe", "property_id": prop}
                    if prop in last:
                        sub["since"] = last[prop]
                    await ws.send(json.dumps(sub))
                await send_replies(ws)
            elif kind == "subscribed":
                if not frame["recovered"]:  # history does not reach back: reload, go on live
                    out({"property_id": frame["property_id"], "seq": frame["seq"], "reload": True})
                if not frame["recovered"] or frame["property_id"] not in last:
                    last[frame["property_id"]] = frame["seq"]
                    save()
            elif kind == "event":
                await on_event(ws, frame)
            elif kind == "ack":  # queued (now, or the first time this client_msg_id was sent)
                pending.pop(frame["client_msg_id"], None)
                in_flight.discard(frame["client_msg_id"])
                await send_replies(ws)
            elif kind == "error":
                print(f"error from bellhop: {text}", file=sys.stderr)
                if frame["code"] in ("unauthorized", "token_expired"):
                    raise Fatal(frame["message"])
                ref = frame.get("ref")  # a reply's error names its client_msg_id
                in_flight.discard(ref)
                if frame["code"] in ("unavailable", "busy"):  # Redis trouble: try again soon
                    await asyncio.sleep(1)
                    await send_replies(ws)
                else:
                    pending.pop(ref, None)  # refused for good (not_found, invalid_field, ...)
            if args.count and printed >= args.count and not pending:
                return True
    return False


async def main():
    global delay
    while True:
        try:
            if await session():
                return 0
            print("connection closed by bellhop", file=sys.stderr)  # e.g. 1001, 4008
        except Fatal as e:
            print(f"giving up: {e}", file=sys.stderr)
            return 2
        except websockets.InvalidStatusCode as e:
            if e.status_code == 401:
                print("giving up: the token was refused (HTTP 401)", file=sys.stderr)
                return 2
            print(f"connect failed: {e}", file=sys.stderr)
        except (OSError, asyncio.TimeoutError, websockets.WebSocketException) as e:
            print(f"disconnected: {e}", file=sys.stderr)
        await asyncio.sleep(delay * random.uniform(0.5, 1.5))  # jitter: not all at once
        delay = min(delay * 2, 30)


sys.exit(asyncio.run(main()))
