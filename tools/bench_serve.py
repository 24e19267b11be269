#!/usr/bin/env python3
"""Load test for an OpenAI-compatible server: N concurrent streaming completions, each with a
prompt of about P tokens and max_tokens T, greedy, with the end-of-generation tokens banned
through logit_bias (so every stream generates all T tokens, on any server).

Prints aggregate generated tokens/s, per-stream decode tokens/s, TTFT p50/p99 and
inter-token latency p50/p99 (gaps between streamed chunks), as JSON with --json. With
--json-schema FILE every request also carries `response_format` json_schema with that schema
(structured output; pick a schema that cannot complete within T tokens, e.g.
tools/bench_schema.json, so every stream still generates all T). Standard library only. Used
by scripts/bench-serve.

    tools/bench_serve.py --url http://127.0.0.1:8080 --concurrency 1,4,16 --prompt-words 75 --max-tokens 128
"""
import argparse
import http.client
import json
import statistics
import threading
import time
import urllib.parse

WORDS = ("the quick brown fox jumps over a lazy dog while seven bright stars watch "
         "from far above quiet hills and rivers").split()


def prompt_of(words, salt):
    # Distinct prompts (salted first word) so the prefix cache cannot serve one from another.
    body = " ".join(WORDS[(i * 7 + salt) % len(WORDS)] for i in range(words))
    return f"Request {salt}: {body}"


def percentile(sorted_xs, q):
    return sorted_xs[min(len(sorted_xs) - 1, int(round(q * (len(sorted_xs) - 1))))]


API_KEY = None  # --api-key: sent as `Authorization: Bearer` (a metered server needs one)


def one_stream(url, model, prompt, max_tokens, ban, out, schema=None):
    u = urllib.parse.urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=600)
    req = {
        "model": model, "prompt": prompt, "max_tokens": max_tokens, "temperature": 0,
        "stream": True, "logit_bias": {str(t): -100 for t in ban},
    }
    if schema is not None:
        req["response_format"] = {"type": "json_schema", "json_schema": {"name": "bench", "schema": schema}}
    body = json.dumps(req)
    start = time.perf_counter()
    headers = {"Content-Type": "application/json"}
    if API_KEY:
        headers["Authorization"] = f"Bearer {API_KEY}"
    conn.request("POST", "/v1/completions", body, headers)
    resp = conn.getresponse()
    if resp.status != 200:
        out.append({"error": f"HTTP {resp.status}: {resp.read()[:200]!r}"})
        return
    first = None
    chunks = 0
    times = []
    for raw in resp:
        line = raw.decode().strip()
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        data = json.loads(line[6:])
        if data.get("choices") and data["choices"][0].get("text"):
            chunks += 1
            now = time.perf_counter()
            times.append(now)
            if first is None:
                first = now
    end = time.perf_counter()
    conn.close()
    gaps = [b - a for a, b in zip(times, times[1:])]
    out.append({"ttft": (first or end) - start, "total": end - start, "chunks": chunks, "gaps": gaps})


def run_level(url, model, n, words, max_tokens, round_no, ban, schema=None):
    results = []
    threads = [threading.Thread(target=one_stream,
                                args=(url, model, prompt_of(words, 1000 * round_no + i), max_tokens, ban, results,
                                      schema))
               for i in range(n)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    errors = [r["error"] for r in results if "error" in r]
    if errors:
        raise SystemExit(f"{len(errors)} requests failed, e.g. {errors[0]}")
    short = [r["chunks"] for r in results if r["chunks"] < max_tokens * 0.9]
    if short:
        raise SystemExit(f"{len(short)} streams ended early ({short[0]} chunks of {max_tokens}): "
                         "the aggregate would overstate; use a schema that cannot complete")
    ttfts = sorted(r["ttft"] for r in results)
    gaps = sorted(g for r in results for g in r["gaps"]) or [0.0]
    return {
        "concurrency": n,
        "generated_tokens": n * max_tokens,
        "wall_s": wall,
        "aggregate_tokens_per_s": n * max_tokens / wall,
        "per_stream_tokens_per_s": statistics.mean(
            max_tokens / max(r["total"] - r["ttft"], 1e-9) for r in results),
        "ttft_p50_s": statistics.median(ttfts),
        "ttft_p99_s": percentile(ttfts, 0.99),
        "itl_p50_s": percentile(gaps, 0.50),
        "itl_p99_s": percentile(gaps, 0.99),
        "chunks_per_stream": statistics.mean(r["chunks"] for r in results),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="http://127.0.0.1:8080")
    ap.add_argument("--model", default="default")
    ap.add_argument("--concurrency", default="1,4,16")
    ap.add_argument("--prompt-words", type=int, default=75, help="about 100 tokens for SmolLM2")
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--ban", default="", help="comma-separated token ids to ban (end-of-generation)")
    ap.add_argument("--label", default="")
    ap.add_argument("--json-schema", help="a JSON schema file: constrain every request's output to it")
    ap.add_argument("--api-key", help="sent as `Authorization: Bearer KEY`")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    global API_KEY
    API_KEY = a.api_key
    ban = [int(t) for t in a.ban.split(",") if t]
    schema = None
    if a.json_schema:
        with open(a.json_schema) as f:
            schema = json.load(f)
    rows = [run_level(a.url, a.model, int(n), a.prompt_words, a.max_tokens, k, ban, schema)
            for k, n in enumerate(a.concurrency.split(","))]
    for r in rows:
        r["label"] = a.label
    if a.json:
        print(json.dumps(rows, indent=2))
        return
    print("| server | streams | aggregate tok/s | per-stream tok/s | TTFT p50 s | TTFT p99 s | ITL p50 ms | ITL p99 ms |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {a.label} | {r['concurrency']} | {r['aggregate_tokens_per_s']:.1f} | {r['per_stream_tokens_per_s']:.1f} "
              f"| {r['ttft_p50_s']:.3f} | {r['ttft_p99_s']:.3f} | {1000 * r['itl_p50_s']:.1f} | {1000 * r['itl_p99_s']:.1f} |")


if __name__ == "__main__":
    main()
