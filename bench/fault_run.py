#!/usr/bin/python3
"""Fault runs: kill -9 of bellhop and of its embedded Redis, repeatedly, under load.

    bench/run_fault.sh [path/to/bellhop]     (the wrapper; see it for the knobs)

Inbound: WORKERS threads post guest messages to POST /v1/messages/inbound, each with a new
external_id, as an adapter would: a message whose answer did not come (connection refused,
reset, 503) is posted again, with the same external_id, until it is answered 202 or 200
duplicate. Meanwhile the process (or its Redis child) is killed with SIGKILL every few
seconds and bellhop is started again. Afterwards, every answered message must be in
`inbound:messages` exactly once: none lost, none twice.

Outbound: messages are posted to POST /v1/messages/outbound (each with its own text and
recipient) while a local fake Graph API records what it is asked to send, and the kills go on.
Afterwards every 202'd message must have a `message:<id>` record that ends `sent`, nothing may
be left in the queues, every message must have reached the provider, and none may have been
queued twice. A send in flight at the moment of a SIGKILL may reach the provider twice (the
process cannot know whether the provider got it): those are counted and printed, bounded by
outbound.concurrency per kill.

Prints one `fault_run` line per phase and exits non-zero when a check fails. Loopback only.
Needs only the standard library (run with Debian's /usr/bin/python3).
"""

import argparse
import http.client
import http.server
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time


def free_port():
    # Below the ephemeral range (32768-): a port there may be taken by any connect() before
    # the server binds it.
    for _ in range(1000):
        port = random.randrange(10000, 32000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port below 32000")


# --- a minimal RESP client over the embedded Redis's unix socket -----------------------------

class Redis:
    def __init__(self, path, password):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(30)
        self.sock.connect(path)
        self.buf = b""
        self.call("AUTH", password)

    def close(self):
        self.sock.close()

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def _reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RuntimeError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n)
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply() for _ in range(n)]
        raise RuntimeError("unexpected reply " + repr(line[:40]))

    def call(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.sock.sendall(b"".join(out))
        return self._reply()


# --- the fake provider ------------------------------------------------------------------------

class Provider:
    """A Graph-API stand-in that counts what it was asked to send, per text."""

    def __init__(self):
        self.lock = threading.Lock()
        self.received = {}
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                try:
                    text = json.loads(body)["text"]["body"]
                except (ValueError, KeyError, TypeError):
                    text = "?"
                with owner.lock:
                    owner.received[text] = owner.received.get(text, 0) + 1
                answer = json.dumps({"messaging_product": "whatsapp",
                                     "messages": [{"id": "wamid." + secrets.token_hex(8)}]})
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer.encode())

            def log_message(self, *args):
                pass

        class Server(http.server.ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                pass  # bellhop killed in the middle of a request: expected here

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()


# --- bellhop under test -----------------------------------------------------------------------

class Bellhop:
    def __init__(self, binary, workdir, provider_port, concurrency, extra=None):
        self.binary = binary
        self.dir = workdir
        self.data = os.path.join(workdir, "data")
        os.mkdir(self.data, 0o700)
        self.key = secrets.token_hex(24)
        self.port = free_port()
        self.redis_port = free_port()
        raised = {"algorithm": "gcra", "limit": 1000000, "window_ms": 1000, "burst": 1000000}
        cfg = {
            "listen": "127.0.0.1:%d" % self.port,
            "data_dir": self.data,
            "redis": {"url": "embedded", "embedded": {"port": self.redis_port}},
            "auth": {"adapter_keys": [{"name": "fault", "key": self.key, "properties": ["*"]}],
                     "jwt_secret": secrets.token_hex(24), "admin_token": secrets.token_hex(24)},
            "outbound": {"concurrency": concurrency, "backoff_initial_ms": 100,
                         "backoff_max_ms": 1000, "max_attempts": 1000},
            "ratelimit": {"policies": {"whatsapp_business_number": raised,
                                       "whatsapp_recipient": raised}},
            "channels": {"whatsapp": {
                "app_secret": "s", "verify_token": "v", "access_token": "t",
                "phone_number_id": "1000", "property_id": "fault-1",
                # Messages to guests who never wrote: the service window is not what is measured.
                "service_window_s": 0,
                "api_base_url": "http://127.0.0.1:%d/v21.0" % provider_port}},
        }
        for k, v in (extra or {}).items():
            cfg[k] = v
        self.config = os.path.join(workdir, "config.json")
        with open(os.open(self.config, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            json.dump(cfg, f)
        self.proc = None
        self.log = open(os.path.join(workdir, "bellhop.log"), "ab")
        self.starts = 0

    def start(self):
        self.proc = subprocess.Popen([self.binary, "serve", "--config", self.config],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        self.starts += 1
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("bellhop exited during startup (see %s/bellhop.log)" % self.dir)
            if self.ready():
                return
            time.sleep(0.05)
        raise RuntimeError("bellhop did not become ready within 60 s")

    def ready(self):
        try:
            c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
            c.request("GET", "/readyz")
            ok = c.getresponse().status == 200
            c.close()
            return ok
        except OSError:
            return False

    def redis_child(self):
        out = subprocess.run(["pgrep", "-P", str(self.proc.pid), "redis-server"],
                             capture_output=True, text=True).stdout.split()
        return int(out[0]) if out else None

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def redis(self):
        with open(os.path.join(self.data, "redis.password")) as f:
            password = f.read().strip()
        return Redis(os.path.join(self.data, "redis.sock"), password)


# --- load -------------------------------------------------------------------------------------

class Load:
    """Workers that post numbered messages until each one is answered 202/200."""

    def __init__(self, bellhop, path, make_body, workers, rate=0.0):
        self.bellhop = bellhop
        self.interval = 1.0 / rate if rate > 0 else 0.0  # between new messages, all workers
        self.due = time.monotonic()
        self.path = path
        self.make_body = make_body
        self.workers = workers
        self.lock = threading.Lock()
        self.next = 0
        self.answered = {}  # n -> (status, id)
        self.retries = 0
        self.stopping = threading.Event()
        self.threads = []

    def run(self):
        for _ in range(self.workers):
            t = threading.Thread(target=self._work, daemon=True)
            t.start()
            self.threads.append(t)

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join()

    def _post(self, conn, body):
        conn.request("POST", self.path, body=body, headers={
            "Authorization": "Bearer " + self.bellhop.key, "Content-Type": "application/json"})
        r = conn.getresponse()
        return r.status, r.read()

    def _work(self):
        conn = None
        while not self.stopping.is_set():
            with self.lock:
                n = self.next
                self.next += 1
                wait = 0.0
                if self.interval:
                    self.due = max(self.due + self.interval, time.monotonic())
                    wait = self.due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            body = self.make_body(n)
            while True:  # until answered: a real adapter retries the same message
                try:
                    if conn is None:
                        conn = http.client.HTTPConnection("127.0.0.1", self.bellhop.port,
                                                          timeout=10)
                    status, answer = self._post(conn, body)
                except (OSError, http.client.HTTPException):
                    status, answer = None, b""
                    if conn is not None:
                        conn.close()
                    conn = None
                if status in (200, 202):
                    with self.lock:
                        self.answered[n] = (status, json.loads(answer)["id"])
                    break
                with self.lock:
                    self.retries += 1
                time.sleep(0.02)


def kill_loop(bellhop, kills, target, interval, log):
    """Kills bellhop or its Redis child `kills` times, `interval` seconds apart (jittered)."""
    done = {"bellhop": 0, "redis": 0}
    for i in range(kills):
        time.sleep(interval * random.uniform(0.5, 1.5))
        victim = target if target != "both" else ("bellhop" if i % 2 == 0 else "redis")
        if victim == "redis":
            pid = bellhop.redis_child()
            if pid is None:
                continue
            os.kill(pid, signal.SIGKILL)
            done["redis"] += 1
            # bellhop restarts its Redis; wait until it is usable again before the next kill.
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not (bellhop.redis_child() not in (None, pid)
                                                         and bellhop.ready()):
                time.sleep(0.05)
        else:
            bellhop.kill9()
            done["bellhop"] += 1
            bellhop.start()
        log("kill %d: %s" % (i + 1, victim))
    return done


def inbound_phase(args, bellhop, log):
    def body(n):
        return json.dumps({"property_id": "fault-1", "channel": "sms",
                           "external_id": "fx-%d" % n, "from": "+49151%07d" % (n % 50),
                           "text": "fault inbound %d" % n}).encode()

    load = Load(bellhop, "/v1/messages/inbound", body, args.workers)
    t0 = time.monotonic()
    load.run()
    kills = kill_loop(bellhop, args.kills, args.target, args.interval, log)
    time.sleep(args.interval)
    load.stop()
    elapsed = time.monotonic() - t0

    r = bellhop.redis()
    elements = r.call("LRANGE", "inbound:messages", 0, -1)
    r.close()
    seen = {}
    for e in elements:
        ext = json.loads(e)["external_id"]
        seen[ext] = seen.get(ext, 0) + 1
    answered = {"fx-%d" % n for n in load.answered}
    lost = sorted(answered - set(seen))
    twice = sorted(k for k, c in seen.items() if c > 1)
    duplicates = sum(1 for s, _ in load.answered.values() if s == 200)
    print("fault_run phase=inbound target=%s kills_bellhop=%d kills_redis=%d answered=%d "
          "answered_duplicate=%d retried_posts=%d in_redis=%d lost=%d twice=%d seconds=%.1f" % (
              args.target, kills["bellhop"], kills["redis"], len(answered), duplicates,
              load.retries, len(elements), len(lost), len(twice), elapsed), flush=True)
    if lost:
        print("  lost (first 10): " + " ".join(lost[:10]))
    if twice:
        print("  twice (first 10): " + " ".join(twice[:10]))
    return not lost and not twice


def outbound_phase(args, bellhop, provider, log):
    def body(n):
        return json.dumps({"property_id": "fault-1", "channel": "whatsapp",
                           "to": "+49152%07d" % n, "text": "fault outbound %d" % n}).encode()

    load = Load(bellhop, "/v1/messages/outbound", body, args.workers, args.outbound_rate)
    t0 = time.monotonic()
    load.run()
    kills = kill_loop(bellhop, args.kills, args.target, args.interval, log)
    time.sleep(args.interval)
    load.stop()

    # Every 202'd message must end sent; wait for the queues to drain.
    ids = {n: i for n, (s, i) in load.answered.items()}
    deadline = time.monotonic() + args.drain_s
    r = bellhop.redis()
    while True:
        pipe_status = {}
        for n, i in ids.items():
            pipe_status[n] = r.call("HGET", "message:" + i, "status")
        pending = [n for n, s in pipe_status.items() if s != b"sent"]
        if not pending or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    left = {}
    for k in r.call("KEYS", "outbound:whatsapp*"):  # a test instance: KEYS is fine here
        kind = r.call("TYPE", k)
        if kind in ("list", "zset"):
            left[k.decode()] = r.call("LLEN" if kind == "list" else "ZCARD", k)
    r.close()
    elapsed = time.monotonic() - t0
    with provider.lock:
        received = dict(provider.received)
    never_sent = [n for n in ids if received.get("fault outbound %d" % n, 0) == 0]
    sent_twice = sum(1 for n in ids if received.get("fault outbound %d" % n, 0) > 1)
    not_final = len(pending)
    queued = {k: v for k, v in left.items() if v and not k.endswith(":dead")}
    dead = sum(v for k, v in left.items() if k.endswith(":dead"))
    distinct_ids = len(set(ids.values()))
    print("fault_run phase=outbound target=%s kills_bellhop=%d kills_redis=%d answered=%d "
          "distinct_ids=%d not_sent=%d never_at_provider=%d at_provider_twice=%d dead=%d "
          "left_in_queues=%d seconds=%.1f" % (
              args.target, kills["bellhop"], kills["redis"], len(ids), distinct_ids, not_final,
              len(never_sent), sent_twice, dead, sum(queued.values()), elapsed), flush=True)
    if queued:
        print("  left: %s" % queued)
    return (not_final == 0 and not never_sent and distinct_ids == len(ids) and dead == 0
            and not queued)


POISON = [
    ("too_deep", b"[" * 1000000 + b"]" * 1000000),
    ("invalid_utf8", b'{"property_id":"fault-1","channel":"whatsapp","to":"+4915200000001","text":"\xff"}'),
    ("syntax", b"not json at all"),
    ("invalid", b'{"property_id":7,"channel":"whatsapp","to":[],"text":{}}'),
]


def poison_phase(args, bellhop, provider, log):
    """Poison in every list Bellhop reads, planted while it runs and before each restart (SIGKILL):
    the outbound lists' poison ends in outbound:whatsapp:dead with a reason, a dead consumer's
    inbound poison goes back to the queue like any message (dead after inbound.max_deliveries
    failed deliveries, docs/ai-engine.md), the process stays up and good messages still go."""
    r = bellhop.redis()
    planted = inbound_planted = 0

    def plant():
        nonlocal planted, inbound_planted
        for kind, element in POISON:
            r.call("LPUSH", "outbound:whatsapp", element)
            r.call("ZADD", "outbound:whatsapp:ready", "1", element + b" ")
            r.call("ZADD", "outbound:whatsapp:delayed", "1", element + b"  ")
            r.call("LPUSH", "outbound:whatsapp:processing:gone-1-AAAA", element + b"   ")
            r.call("LPUSH", "inbound:messages:processing:ghost", element)
            planted += 4
            inbound_planted += 1
        r.call("SADD", "inbound:messages:consumers", "ghost")
        r.call("ZADD", "outbound:gateways", "1", "gone-1-AAAA")

    plant()
    for i in range(args.kills):  # restarts with poison waiting, and more planted each time
        bellhop.kill9()
        r.close()
        bellhop.start()
        r = bellhop.redis()
        plant()
        r.call("LPUSH", "outbound:whatsapp", json.dumps({
            "property_id": "fault-1", "channel": "whatsapp", "to": "+4915300000%03d" % i,
            "text": "after poison %d" % i}))
        log("restart %d with poison" % (i + 1))
    deadline = time.monotonic() + args.drain_s
    while time.monotonic() < deadline:
        dead = r.call("LLEN", "outbound:whatsapp:dead")
        inbound_back = (r.call("LLEN", "inbound:messages") + r.call("LLEN", "inbound:messages:dead")
                        + r.call("LLEN", "inbound:messages:processing:ghost"))
        with provider.lock:
            good = sum(v for k, v in provider.received.items() if k.startswith("after poison"))
        if dead >= planted and good >= args.kills and inbound_back == inbound_planted:
            break
        time.sleep(0.5)
    ready = bellhop.ready() and bellhop.proc.poll() is None
    reasons = {}
    for letter in r.call("LRANGE", "outbound:whatsapp:dead", 0, -1):
        reason = json.loads(letter).get("reason", "?").split(":")[0]
        reasons[reason] = reasons.get(reason, 0) + 1
    r.close()
    print("fault_run phase=poison restarts=%d planted_outbound=%d outbound_dead=%d "
          "planted_inbound=%d inbound_kept=%d good_sent_after=%d/%d up=%s reasons=%s" % (
              args.kills, planted, dead, inbound_planted, inbound_back, good, args.kills, ready,
              reasons), flush=True)
    return ready and dead == planted and good >= args.kills and inbound_back == inbound_planted


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bellhop", required=True)
    p.add_argument("--phase", choices=["inbound", "outbound", "poison", "all"], default="all")
    p.add_argument("--target", choices=["bellhop", "redis", "both"], default="both")
    p.add_argument("--kills", type=int, default=10)
    p.add_argument("--interval", type=float, default=2.0, help="seconds between kills (mean)")
    p.add_argument("--workers", type=int, default=8)
    p.add_argument("--concurrency", type=int, default=8, help="outbound.concurrency")
    p.add_argument("--outbound-rate", type=float, default=300,
                   help="new outbound messages per second (the fake provider is Python)")
    p.add_argument("--drain-s", type=float, default=120)
    p.add_argument("--keep", action="store_true", help="keep the work dir")
    args = p.parse_args()

    ok = True
    phases = ["inbound", "outbound", "poison"] if args.phase == "all" else [args.phase]
    for phase in phases:
        workdir = tempfile.mkdtemp(prefix="bellhop-fault-")
        provider = Provider()
        bellhop = Bellhop(args.bellhop, workdir, provider.port, args.concurrency)

        def log(msg):
            if os.environ.get("VERBOSE"):
                print("  " + msg, flush=True)

        try:
            bellhop.start()
            if phase == "inbound":
                ok = inbound_phase(args, bellhop, log) and ok
            elif phase == "poison":
                ok = poison_phase(args, bellhop, provider, log) and ok
            else:
                ok = outbound_phase(args, bellhop, provider, log) and ok
            if bellhop.proc.poll() is not None:
                print("bellhop is not running at the end of the phase")
                ok = False
        except Exception as e:  # noqa: BLE001 -- any failure: report it, keep the evidence
            print("fault_run phase=%s FAILED: %s" % (phase, e), flush=True)
            ok = False
        finally:
            bellhop.stop()
            provider.stop()
            if args.keep or not ok:
                print("  work dir kept: " + workdir)
            else:
                shutil.rmtree(workdir, ignore_errors=True)
    print("fault_run result=%s" % ("ok" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
