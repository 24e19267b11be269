"""Soak and fault load against a running `kaiyuan serve` (issue #18): CLIENTS concurrent clients
for SECONDS, each looping over a mix of whole and streamed chat and completion requests of
mixed lengths, cancellations at every phase (before the first token, mid-stream, a non-streamed
request abandoned), slow readers, and bad requests that must get a clean 4xx.

It fails (exit 1) when a request gets anything but the intended outcome (200, or the 4xx its
bad body deserves, or 429 when the queue is full), when the server's RSS grew by more than 5%
between the end of the warm-up and the end, or when KV blocks or running sequences are not
back to zero after the load. It prints the figures RELIABILITY.md records: requests by kind,
p50/p99 time to first token, RSS at warm-up and at the end.

    python tests/e2e/soak.py --url http://127.0.0.1:8080 --pid PID [--clients 64] [--seconds 1800]

`test_soak.py` runs a 60-second version in the e2e suite (and so in CI)."""

import argparse
import http.client
import json
import random
import re
import socket
import statistics
import sys
import threading
import time
import urllib.parse

PROMPTS = [
    "Hi!",
    "What is the capital of France?",
    "Write a short poem about the sea.",
    "Explain what a hash table is. " * 8,
    "List the numbers from one to thirty in words. " * 20,
]
BAD = [
    ({"messages": []}, 400),
    ({"messages": [{"role": "robot", "content": "x"}]}, 400),
    ({"messages": [{"role": "user", "content": "x"}], "temperature": "hot"}, 400),
    ({"messages": [{"role": "user", "content": "x"}], "max_tokens": -1}, 400),
    ({"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function"}]}, 400),
    ({"messages": [{"role": "user", "content": "x"}], "max_tokens": 10 ** 9}, 400),
]


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


def metrics(host, port):
    conn = http.client.HTTPConnection(host, port, timeout=30)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = out.get(name, 0.0) + float(value)
    return {k.split("{")[0]: v for k, v in out.items()}


def metric(m, name):
    return sum(v for k, v in m.items() if k == name)


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.counts = {}
        self.ttft = []
        self.failures = []

    def count(self, kind):
        with self.lock:
            self.counts[kind] = self.counts.get(kind, 0) + 1

    def fail(self, what):
        with self.lock:
            self.failures.append(what)


def post(host, port, path, body, timeout=300):
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    conn.request("POST", path, body=json.dumps(body).encode(),
                 headers={"Content-Type": "application/json"})
    return conn, conn.getresponse()


def one(host, port, rng, stats, model):
    kind = rng.choices(
        ["chat", "stream", "completion", "cancel_queued", "cancel_stream", "slow", "bad"],
        weights=[4, 4, 2, 1, 2, 1, 2])[0]
    prompt = rng.choice(PROMPTS)
    max_tokens = rng.choice([1, 8, 32, 64])
    chat = {"model": model, "messages": [{"role": "user", "content": prompt}],
            "max_tokens": max_tokens, "temperature": rng.choice([0, 0.8])}
    if kind == "bad":
        body, want = rng.choice(BAD)
        conn, resp = post(host, port, "/v1/chat/completions", dict(body, model=model))
        data = resp.read()
        conn.close()
        if resp.status != want:
            stats.fail(f"bad request {body}: {resp.status} {data[:200]!r}")
        stats.count("bad")
        return
    if kind == "completion":
        conn, resp = post(host, port, "/v1/completions",
                          {"model": model, "prompt": prompt, "max_tokens": max_tokens})
        data = resp.read()
        conn.close()
    elif kind == "chat":
        start = time.monotonic()
        conn, resp = post(host, port, "/v1/chat/completions", chat)
        data = resp.read()
        conn.close()
    elif kind == "cancel_queued":
        # Send and hang up before anything can come back.
        s = socket.create_connection((host, port), timeout=30)
        body = json.dumps(dict(chat, max_tokens=64)).encode()
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: "
                  b"application/json\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        s.close()
        stats.count(kind)
        return
    else:
        start = time.monotonic()
        conn, resp = post(host, port, "/v1/chat/completions",
                          dict(chat, stream=True, max_tokens=max(max_tokens, 16)))
        if resp.status == 200:
            first = True
            lines = 0
            while True:
                line = resp.readline()
                if not line:
                    break
                # Time to first token: the first chunk with text (the opening one has none).
                if first and line.startswith(b"data: {") and b'"content":"' in line \
                        and b'"content":""' not in line:
                    first = False
                    with stats.lock:
                        stats.ttft.append(time.monotonic() - start)
                lines += 1
                if kind == "cancel_stream" and lines > 4:
                    break  # hang up mid-stream
                if kind == "slow":
                    time.sleep(0.05)
            conn.close()
            stats.count(kind)
            return
        data = resp.read()
        conn.close()
    if resp.status == 429:
        stats.count("429")
        return
    if resp.status != 200:
        stats.fail(f"{kind}: {resp.status} {data[:200]!r}")
        return
    stats.count(kind)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=1800)
    ap.add_argument("--warmup", type=float, default=None, help="default: a tenth of the run")
    ap.add_argument("--model", default="default")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    u = urllib.parse.urlparse(args.url)
    host, port = u.hostname, u.port
    stats = Stats()
    stop = time.monotonic() + args.seconds
    warmup = args.warmup if args.warmup is not None else args.seconds / 10

    def client(i):
        rng = random.Random(args.seed * 1000 + i)
        while time.monotonic() < stop:
            try:
                one(host, port, rng, stats, args.model)
            except Exception as e:  # noqa: BLE001 — every failure is reported
                stats.fail(f"client {i}: {type(e).__name__}: {e}")

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(args.clients)]
    start = time.monotonic()
    for t in threads:
        t.start()
    time.sleep(warmup)
    rss_warm = rss_kb(args.pid)
    for t in threads:
        t.join(timeout=args.seconds + 600)
    elapsed = time.monotonic() - start
    # Hung-up requests finish on the engine shortly after: wait for the gauges to drain.
    deadline = time.monotonic() + 60
    while True:
        m = metrics(host, port)
        busy = metric(m, "kaiyuan_kv_blocks_used") + metric(m, "kaiyuan_running_sequences") \
            + metric(m, "kaiyuan_queue_length")
        if busy == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    rss_end = rss_kb(args.pid)
    growth = (rss_end - rss_warm) / rss_warm
    ttft = sorted(stats.ttft)
    report = {
        "clients": args.clients, "seconds": round(elapsed, 1), "requests": stats.counts,
        "ttft_p50_s": round(statistics.median(ttft), 3) if ttft else None,
        "ttft_p99_s": round(ttft[int(0.99 * (len(ttft) - 1))], 3) if ttft else None,
        "rss_warm_mb": round(rss_warm / 1024, 1), "rss_end_mb": round(rss_end / 1024, 1),
        "rss_growth": round(growth, 4),
        "kv_blocks_used_end": metric(m, "kaiyuan_kv_blocks_used"),
        "running_end": metric(m, "kaiyuan_running_sequences"),
        "queued_end": metric(m, "kaiyuan_queue_length"),
        "failures": stats.failures[:20], "failure_count": len(stats.failures),
    }
    print(json.dumps(report, indent=1))
    ok = not stats.failures and growth < 0.05 and busy == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
