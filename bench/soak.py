#!/usr/bin/python3
"""Soak: a steady mixed load on one bellhop for a long time, resident memory sampled.

    bench/run_soak.sh [path/to/bellhop]     (the wrapper; see it for the knobs)

The load, all on loopback, for DURATION seconds:
- an adapter posts INBOUND guest messages per second (WhatsApp, many guests);
- an AI engine stand-in takes each one from `inbound:messages` (BLMOVE to its processing list,
  heartbeat, LREM ack) and LPUSHes a reply onto `outbound:whatsapp`;
- a tool posts OUTBOUND more messages per second to POST /v1/messages/outbound;
- a fake Graph API answers every send at once;
- DASHBOARDS staff WebSockets are subscribed to the property and read every event; one of them
  drops and resumes (`since`) every minute.
Every SAMPLE seconds the script prints bellhop's and Redis's VmRSS, Redis's used_memory and the
traffic of the interval; at the end, a summary: the resident memory after warm-up (WARMUP s) as
first / median / last / max and the growth from the first to the last quarter. Exit status 1 if
a process died or the traffic stalled.
"""

import argparse
import base64
import http.client
import json
import os
import secrets
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import shutil

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fault_run import Bellhop, Provider, Redis  # noqa: E402  (same folder)


def rss_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class Counter:
    def __init__(self):
        self.lock = threading.Lock()
        self.n = 0
        self.errors = 0

    def add(self, k=1):
        with self.lock:
            self.n += k

    def error(self):
        with self.lock:
            self.errors += 1


def paced(rate, stop, body):
    """Calls body() `rate` times a second until stop is set."""
    interval = 1.0 / rate
    due = time.monotonic()
    while not stop.is_set():
        due += interval
        body()
        wait = due - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        elif wait < -1:
            due = time.monotonic()  # fell behind: do not burst to catch up


def poster(bellhop, path, make_body, rate, stop, counter):
    conn = [None]
    n = [0]

    def one():
        n[0] += 1
        try:
            if conn[0] is None:
                conn[0] = http.client.HTTPConnection("127.0.0.1", bellhop.port, timeout=10)
            conn[0].request("POST", path, body=make_body(n[0]), headers={
                "Authorization": "Bearer " + bellhop.key, "Content-Type": "application/json"})
            r = conn[0].getresponse()
            r.read()
            if r.status in (200, 202):
                counter.add()
            else:
                counter.error()
        except (OSError, http.client.HTTPException):
            counter.error()
            conn[0] = None

    paced(rate, stop, one)


def engine(bellhop, stop, counter):
    """The AI engine stand-in: take, ack, reply."""
    r = bellhop.redis()
    name = "soak-engine"
    processing = "inbound:messages:processing:" + name
    last_beat = 0
    while not stop.is_set():
        try:
            if time.monotonic() - last_beat > 5:
                r.call("SET", "inbound:messages:heartbeat:" + name, "1", "EX", "30")
                r.call("SADD", "inbound:messages:consumers", name)
                last_beat = time.monotonic()
            element = r.call("BLMOVE", "inbound:messages", processing, "RIGHT", "LEFT", "1")
            if element is None:
                continue
            m = json.loads(element)
            reply = json.dumps({"property_id": m["property_id"], "channel": "whatsapp",
                                "to": m["from"], "text": "re: " + m["text"][:40],
                                "conversation_id": m["conversation_id"], "reply_to": m["id"]})
            r.call("LPUSH", "outbound:whatsapp", reply)
            r.call("LREM", processing, "1", element)
            counter.add()
        except (OSError, ConnectionError):
            if stop.is_set():
                break
            raise
    r.close()


class Dashboard:
    """A staff WebSocket client (RFC 6455, text frames) that reads every event."""

    def __init__(self, port, token, prop, counter):
        self.port, self.token, self.prop, self.counter = port, token, prop, counter
        self.seq = 0

    def _connect(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        key = base64.b64encode(os.urandom(16)).decode()
        s.sendall(("GET /v1/realtime?token=%s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                   "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                   "Sec-WebSocket-Version: 13\r\n\r\n" % (self.token, key)).encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = s.recv(4096)
            if not chunk:
                raise ConnectionError("closed during the upgrade")
            head += chunk
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise ConnectionError(head.split(b"\r\n", 1)[0].decode(errors="replace"))
        self.buf = head.split(b"\r\n\r\n", 1)[1]
        self.sock = s
        self._send({"type": "subscribe", "property_id": self.prop,
                    **({"since": self.seq} if self.seq else {})})

    def _send(self, obj):
        data = json.dumps(obj).encode()
        mask = os.urandom(4)
        header = bytes([0x81])
        n = len(data)
        header += bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack(">H", n)
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def _read(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _frame(self):
        b0, b1 = self._read(2)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack(">H", self._read(2))[0]
        elif n == 127:
            n = struct.unpack(">Q", self._read(8))[0]
        return b0 & 0x0F, self._read(n)

    def run(self, stop, reconnect_every):
        next_drop = time.monotonic() + reconnect_every if reconnect_every else None
        while not stop.is_set():
            try:
                self._connect()
                last_ping = time.monotonic()
                while not stop.is_set():
                    if time.monotonic() - last_ping > 20:
                        self._send({"type": "ping"})
                        last_ping = time.monotonic()
                    if next_drop and time.monotonic() > next_drop:
                        next_drop = time.monotonic() + reconnect_every
                        break
                    self.sock.settimeout(1)
                    try:
                        op, payload = self._frame()
                    except socket.timeout:
                        continue
                    if op == 8:
                        raise ConnectionError("closed by bellhop")
                    if op != 1:
                        continue
                    msg = json.loads(payload)
                    if msg.get("type") == "event":
                        self.seq = max(self.seq, msg.get("seq", 0))
                        self.counter.add()
                self.sock.close()
            except (OSError, ConnectionError, ValueError):
                self.counter.error()
                time.sleep(1)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bellhop", required=True)
    p.add_argument("--duration", type=float, default=1800)
    p.add_argument("--warmup", type=float, default=300)
    p.add_argument("--sample", type=float, default=30)
    p.add_argument("--inbound", type=float, default=100, help="guest messages per second")
    p.add_argument("--outbound", type=float, default=50, help="extra outbound per second")
    p.add_argument("--dashboards", type=int, default=20)
    p.add_argument("--record-ttl", type=int, default=300,
                   help="inbound.message_ttl_s and dedup_ttl_s (s)")
    args = p.parse_args()

    workdir = tempfile.mkdtemp(prefix="bellhop-soak-")
    provider = Provider()
    # Records and dedup keys live RECORD_TTL s instead of 7 days, so that Redis reaches its
    # steady state within the run too (the event history is capped by count anyway).
    bellhop = Bellhop(args.bellhop, workdir, provider.port, 8, extra={"inbound": {
        "message_ttl_s": args.record_ttl, "dedup_ttl_s": args.record_ttl}})
    stop = threading.Event()
    ok = True
    try:
        bellhop.start()
        token = subprocess.run([args.bellhop, "gen-token", "--config", bellhop.config,
                                "--sub", "soak", "--properties", "fault-1", "--ttl", "7d"],
                               capture_output=True, text=True, check=True).stdout.strip()
        inbound, replies, outbound, events = Counter(), Counter(), Counter(), Counter()
        threads = [
            threading.Thread(target=poster, daemon=True, args=(
                bellhop, "/v1/messages/inbound",
                lambda n: json.dumps({"property_id": "fault-1", "channel": "whatsapp",
                                      "external_id": "soak-%d" % n,
                                      "from": "+49151%07d" % (n % 500),
                                      "text": "soak message %d" % n}).encode(),
                args.inbound, stop, inbound)),
            threading.Thread(target=engine, daemon=True, args=(bellhop, stop, replies)),
            threading.Thread(target=poster, daemon=True, args=(
                bellhop, "/v1/messages/outbound",
                lambda n: json.dumps({"property_id": "fault-1", "channel": "whatsapp",
                                      "to": "+49152%07d" % (n % 5000),
                                      "text": "soak outbound %d" % n,
                                      "priority": 7}).encode(),
                args.outbound, stop, outbound)),
        ]
        for i in range(args.dashboards):
            d = Dashboard(bellhop.port, token, "fault-1", events)
            threads.append(threading.Thread(target=d.run, daemon=True,
                                            args=(stop, 60 if i == 0 else 0)))
        for t in threads:
            t.start()

        redis = bellhop.redis()
        redis_pid = bellhop.redis_child()
        t0 = time.monotonic()
        samples = []
        last = (0, 0, 0, 0, 0)
        print("soak_sample t_s bellhop_rss_mb redis_rss_mb redis_used_mb inbound_per_s "
              "replies_per_s outbound_per_s provider_per_s events_per_s errors", flush=True)
        while time.monotonic() - t0 < args.duration:
            time.sleep(args.sample)
            t = time.monotonic() - t0
            if bellhop.proc.poll() is not None:
                print("bellhop exited during the soak")
                ok = False
                break
            info = redis.call("INFO", "memory").decode()
            used = int(next(line.split(":")[1] for line in info.split("\r\n")
                            if line.startswith("used_memory:")))
            with provider.lock:
                at_provider = sum(provider.received.values())
            now = (inbound.n, replies.n, outbound.n, at_provider, events.n)
            rates = [(a - b) / args.sample for a, b in zip(now, last)]
            last = now
            errors = inbound.errors + outbound.errors + events.errors
            b_rss, r_rss = rss_kb(bellhop.proc.pid) / 1024, rss_kb(redis_pid) / 1024
            samples.append((t, b_rss, r_rss, used / 2**20))
            print("soak_sample %.0f %.1f %.1f %.1f %.1f %.1f %.1f %.1f %.1f %d" % (
                t, b_rss, r_rss, used / 2**20, *rates, errors), flush=True)
            if min(rates[:4]) == 0:
                print("traffic stalled in the last interval")
                ok = False
        redis.close()
        stop.set()

        after = [s for s in samples if s[0] >= args.warmup]
        if len(after) >= 4:
            q = max(1, len(after) // 4)
            for name, col in (("bellhop_rss_mb", 1), ("redis_rss_mb", 2), ("redis_used_mb", 3)):
                vals = [s[col] for s in after]
                first_q = statistics.median(vals[:q])
                last_q = statistics.median(vals[-q:])
                print("soak_summary %s after_warmup first=%.1f median=%.1f last=%.1f max=%.1f "
                      "growth_first_to_last_quarter=%+.1f%%" % (
                          name, vals[0], statistics.median(vals), vals[-1], max(vals),
                          100.0 * (last_q - first_q) / first_q if first_q else 0.0))
        print("soak_totals inbound=%d replies=%d outbound=%d at_provider=%d events=%d "
              "errors=%d" % (inbound.n, replies.n, outbound.n, sum(provider.received.values()),
                             events.n, inbound.errors + outbound.errors + events.errors))
    finally:
        stop.set()
        bellhop.stop()
        provider.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    print("soak result=%s" % ("ok" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
