"""Helpers of the end-to-end suite: start the real `kaiyuan serve` binary on a free
loopback port, talk raw HTTP to it, parse its SSE strictly, and read /metrics.

Nothing here asserts timings: waits poll with generous timeouts.
"""

import http.client
import json
import os
import pathlib
import re
import signal
import subprocess
import tempfile
import time

import openai

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = os.environ.get("KAIYUAN_BIN", str(ROOT / "target" / "debug" / "kaiyuan"))

# Generous: a debug build on a 2-core machine, possibly under load.
START_TIMEOUT = 120
REQUEST_TIMEOUT = 300


def wait_for(predicate, timeout, what):
    """Polls `predicate` until it returns a truthy value; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


class Server:
    """A `kaiyuan serve` process on 127.0.0.1 with a port the OS picked (`--port 0`)."""

    def __init__(self, *args, ready=True):
        self.log_path = tempfile.NamedTemporaryFile(
            prefix="kaiyuan-e2e-", suffix=".log", delete=False
        ).name
        self._log = open(self.log_path, "wb")
        cmd = [BIN, "serve", "--host", "127.0.0.1", "--port", "0", *args]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT)
        match = wait_for(
            lambda: self._exited_early() or re.search(r"listening on http://([\d.]+):(\d+)", self.log()),
            START_TIMEOUT,
            "the server to listen",
        )
        self.host, self.port = match.group(1), int(match.group(2))
        self.url = f"http://{self.host}:{self.port}"
        if ready:
            wait_for(lambda: self.get("/health")[0] == 200, START_TIMEOUT, "GET /health = 200")

    def _exited_early(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"kaiyuan serve exited with {self.proc.returncode}:\n{self.log()}")
        return None

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def connection(self, timeout=REQUEST_TIMEOUT):
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None):
        """Sends one request; returns (status, headers, body bytes)."""
        conn = self.connection()
        try:
            data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
            hdrs = {"Content-Type": "application/json"} if data is not None else {}
            hdrs.update(headers or {})
            conn.request(method, path, body=data, headers=hdrs)
            resp = conn.getresponse()
            return resp.status, dict(resp.getheaders()), resp.read()
        finally:
            conn.close()

    def get(self, path, headers=None):
        return self.request("GET", path, headers=headers)

    def post(self, path, body, headers=None):
        return self.request("POST", path, body, headers)

    def open_stream(self, path, body, headers=None):
        """Starts a streamed request; returns (connection, response) to read from."""
        conn = self.connection()
        hdrs = {"Content-Type": "application/json"}
        hdrs.update(headers or {})
        conn.request("POST", path, body=json.dumps(body).encode(), headers=hdrs)
        return conn, conn.getresponse()

    def metrics(self):
        """/metrics as {(name, frozenset(labels)): value}."""
        status, headers, body = self.get("/metrics")
        assert status == 200
        assert headers["content-type"].startswith("text/plain; version=0.0.4")
        return parse_metrics(body.decode())

    def metric(self, name, **labels):
        """The sum of the series of `name` whose labels include `labels`."""
        want = set(labels.items())
        found = [v for (n, ls), v in self.metrics().items() if n == name and want <= ls]
        assert found, f"no series {name} {labels}"
        return sum(found)

    def terminate(self, timeout=120):
        """SIGTERM, then waits; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self._close()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._close()

    def _close(self):
        """Closes the log; keeps it (and says where) unless the server exited cleanly."""
        self._log.close()
        if self.proc.returncode == 0:
            os.unlink(self.log_path)
        else:
            print(f"kaiyuan serve log kept: {self.log_path}")


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """Parses the Prometheus text format strictly (every line a comment or a sample)."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("# HELP ") or line.startswith("# TYPE "):
            continue
        m = _SAMPLE.match(line)
        assert m, f"not a Prometheus sample line: {line!r}"
        labels = frozenset(_LABEL.findall(m.group(3) or ""))
        out[(m.group(1), labels)] = float(m.group(4))
    return out


class SseError(AssertionError):
    pass


def read_events(resp):
    """Reads a whole SSE response strictly: every event is one `data: ` line followed by a
    blank line; the payload is JSON or `[DONE]`; `[DONE]` comes last and only once; there is
    nothing else. Returns the JSON payloads (without `[DONE]`)."""
    assert resp.status == 200, f"{resp.status}: {resp.read()!r}"
    assert resp.getheader("Content-Type", "").startswith("text/event-stream")
    text = resp.read().decode("utf-8")
    return parse_sse(text)


def parse_sse(text):
    if not text.endswith("\n\n"):
        raise SseError(f"stream does not end with a blank line: {text[-200:]!r}")
    events = text[:-2].split("\n\n")
    payloads = []
    for i, event in enumerate(events):
        if not event.startswith("data: ") or "\n" in event:
            raise SseError(f"event {i} is not a single data line: {event!r}")
        payloads.append(event[len("data: "):])
    if payloads[-1] != "[DONE]":
        raise SseError(f"last event is not [DONE]: {payloads[-1]!r}")
    if "[DONE]" in payloads[:-1]:
        raise SseError("[DONE] before the end")
    return [json.loads(p) for p in payloads[:-1]]


def read_event(resp):
    """Reads the next SSE event incrementally: returns its payload (JSON or '[DONE]')."""
    line = resp.readline().decode("utf-8")
    if not line.startswith("data: ") or not line.endswith("\n"):
        raise SseError(f"not a data line: {line!r}")
    blank = resp.readline()
    if blank != b"\n":
        raise SseError(f"data line not followed by a blank line: {blank!r}")
    payload = line[len("data: "):-1]
    return payload if payload == "[DONE]" else json.loads(payload)


def error_of(body):
    """The OpenAI error object of a body, checked for shape."""
    doc = json.loads(body)
    err = doc["error"]
    assert set(err) >= {"message", "type", "param", "code"}, doc
    assert isinstance(err["message"], str) and err["message"]
    return err



def make_client(server, api_key="unused"):
    """The official OpenAI client for `server`, without retries."""
    return openai.OpenAI(
        base_url=server.url + "/v1", api_key=api_key, max_retries=0, timeout=REQUEST_TIMEOUT
    )
