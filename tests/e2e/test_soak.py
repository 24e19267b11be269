"""A short soak (issue #18): soak.py's mixed load — whole and streamed requests, cancellations
at every phase, slow readers, bad requests — for 80 seconds (40 of them warm-up) with 32 clients against a fresh
server with a small KV pool, which must give only the intended answers, end with no KV blocks or sequences held,
keep its RSS flat after the warm-up, and still answer afterwards. The long run (64 clients,
30 minutes) is `python tests/e2e/soak.py` by hand; its figures are in RELIABILITY.md."""

import json
import pathlib
import subprocess
import sys

from kaiyuan_e2e import Server, make_client

HERE = pathlib.Path(__file__).resolve().parent
MODEL = "SmolLM2-135M-Instruct.Q4_1"


def test_short_soak_leaves_the_server_healthy():
    # A KV pool of 2048 positions: touched in full during the warm-up (the pool's pages are
    # committed as they are first written, so RSS would otherwise grow with the prefix
    # cache), and too small for 32 clients, so preemption and queueing are exercised too.
    s = Server("-t", "2", "--kv-tokens", "2048", "--ctx", "1024")
    try:
        out = subprocess.run(
            [sys.executable, str(HERE / "soak.py"), "--url", s.url, "--pid", str(s.proc.pid),
             "--clients", "32", "--seconds", "80", "--warmup", "40", "--model", MODEL],
            capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stdout + out.stderr
        report = json.loads(out.stdout)
        assert report["failure_count"] == 0
        assert sum(report["requests"].values()) > 50, report
        assert report["requests"].get("bad", 0) > 0 and report["requests"].get("cancel_stream", 0) > 0
        # Still serving.
        r = make_client(s).chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=3)
        assert r.choices[0].finish_reason in ("stop", "length")
    finally:
        code = s.terminate()
    assert code == 0, f"log kept at {s.log_path}"
