"""Faults (issue #18): a client that hangs up at every phase of its request (queued,
prefilling, decoding, in the middle of an SSE write the server is blocked on), a slow
reader beside a normal client, SIGTERM under load (requests that fit in the grace period
finish normally, those that do not are ended at its deadline), a KV pool too small for the
load (preemption, never a crash), and a model file that is truncated or changed.

After each fault the engine's gauges return to zero (no KV block, sequence or queue place
leaked) and the server still answers. Each test starts its own server with the flags the
fault needs; nothing asserts speed except the grace period, with generous slack."""

import concurrent.futures
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
import uuid

import pytest

from kaiyuan_e2e import BIN, ROOT, Server, make_client, read_event, read_events, wait_for

MODEL = "SmolLM2-135M-Instruct.Q4_1"
MODEL_FILE = ROOT / "models" / f"{MODEL}.gguf"
GAUGES = ("kaiyuan_kv_blocks_used", "kaiyuan_running_sequences", "kaiyuan_queue_length")


def idle(s):
    """Every gauge of work in progress is zero."""
    return all(s.metric(g) == 0 for g in GAUGES)


def assert_back_to_idle(s):
    wait_for(lambda: idle(s), 120, "KV blocks, sequences and queue back to zero")
    assert s.get("/health")[0] == 200
    r = make_client(s).completions.create(model=MODEL, prompt="One, two,", max_tokens=2)
    assert r.choices[0].finish_reason in ("stop", "length")
    wait_for(lambda: idle(s), 120, "idle after the check request")


def raw_request(s, path, body, rcvbuf=None):
    """Sends a request on a plain socket (so that the test controls reading and closing);
    with `rcvbuf`, the receive buffer is made that small before connecting."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.connect((s.host, s.port))
    data = json.dumps(body).encode()
    sock.sendall(
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(data)}\r\n\r\n".encode() + data
    )
    return sock


def hang_up(sock):
    """Closes with a reset (SO_LINGER 0), as a client that dies does."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


@pytest.fixture(scope="module")
def small():
    """One sequence at a time (so a second request queues) and 8-token steps (so a long
    prompt takes many steps to prefill)."""
    s = Server("-t", "1", "--max-seqs", "1", "--max-batch-tokens", "8")
    yield s
    code = s.terminate()
    assert code == 0, f"exit code {code}; log kept at {s.log_path}"


def test_hang_up_while_queued(small):
    s = small
    cancelled = s.metric("kaiyuan_requests_total", outcome="cancelled")
    conn, resp = s.open_stream(
        "/v1/completions", {"prompt": "Count:", "max_tokens": 2000, "ignore_eos": True, "stream": True}
    )
    read_event(resp)
    waiting = raw_request(s, "/v1/completions", {"prompt": "Hello", "max_tokens": 8})
    wait_for(lambda: s.metric("kaiyuan_queue_length") == 1, 120, "the second request queued")
    hang_up(waiting)
    wait_for(lambda: s.metric("kaiyuan_queue_length") == 0, 120, "the queue place released")
    # The running stream is untouched and keeps streaming.
    for _ in range(3):
        assert "choices" in read_event(resp)
    conn.sock.close()
    conn.close()
    # Both hang-ups count as cancelled: the stream's, and the queued request's, whether it had
    # reached the engine's queue or still held the queue place reserved for its prompt work.
    wait_for(
        lambda: s.metric("kaiyuan_requests_total", outcome="cancelled") >= cancelled + 2,
        120, "both hang-ups counted as cancelled",
    )
    assert_back_to_idle(s)


def test_hang_up_while_prefilling(small):
    s = small
    # A long prompt nothing has cached (unique words), prefilled 8 tokens a step.
    tag = uuid.uuid4().hex[:8]
    prompt = " ".join(f"{tag}{i}" for i in range(300))
    status, _, body = s.post("/tokenize", {"content": prompt})
    n_prompt = len(json.loads(body)["tokens"])
    assert 1000 < n_prompt < 4000, n_prompt
    computed = s.metric("kaiyuan_computed_tokens_total")
    generated = s.metric("kaiyuan_generated_tokens_total")
    cancelled = s.metric("kaiyuan_requests_total", outcome="cancelled")
    sock = raw_request(s, "/v1/completions", {"prompt": prompt, "max_tokens": 16})
    wait_for(lambda: s.metric("kaiyuan_computed_tokens_total") - computed >= 16, 120, "prefill under way")
    hang_up(sock)
    wait_for(lambda: s.metric("kaiyuan_running_sequences") == 0, 120, "running = 0")
    # Prefill stopped part-way: the prompt was never computed in full, nothing generated.
    assert s.metric("kaiyuan_computed_tokens_total") - computed < n_prompt
    assert s.metric("kaiyuan_generated_tokens_total") == generated
    assert s.metric("kaiyuan_requests_total", outcome="cancelled") == cancelled + 1
    assert_back_to_idle(s)


def test_hang_up_while_decoding(small):
    s = small
    generated = s.metric("kaiyuan_generated_tokens_total")
    cancelled = s.metric("kaiyuan_requests_total", outcome="cancelled")
    sock = raw_request(s, "/v1/chat/completions", {
        "messages": [{"role": "user", "content": "Tell a story."}], "max_tokens": 2000,
        "ignore_eos": True, "stream": True,
    })
    wait_for(lambda: s.metric("kaiyuan_generated_tokens_total") - generated >= 5, 120, "decoding")
    hang_up(sock)
    wait_for(lambda: s.metric("kaiyuan_running_sequences") == 0, 120, "running = 0")
    assert s.metric("kaiyuan_generated_tokens_total") - generated < 2000
    assert s.metric("kaiyuan_requests_total", outcome="cancelled") == cancelled + 1
    assert_back_to_idle(s)


def test_hang_up_in_the_middle_of_a_blocked_sse_write(small):
    """The client reads nothing with a tiny receive buffer, so the server's writes block
    with SSE bytes pending (part of an event written, the rest waiting); then it resets
    the connection. The blocked write fails, the stream is dropped, the request cancelled."""
    s = small
    generated = s.metric("kaiyuan_generated_tokens_total")
    cancelled = s.metric("kaiyuan_requests_total", outcome="cancelled")
    sock = raw_request(s, "/v1/chat/completions", {
        "messages": [{"role": "user", "content": "Tell a story."}], "max_tokens": 3000,
        "ignore_eos": True, "stream": True, "logprobs": True, "top_logprobs": 5,
    }, rcvbuf=1024)
    # With logprobs each event is about 1 KB. Wait until the server's send queue for this
    # connection is full: it holds unsent bytes and stops growing while tokens keep coming
    # (so the server's writer is blocked with more to write).
    client_port = sock.getsockname()[1]

    def blocked():
        q1, g1 = send_queue(s.port, client_port), s.metric("kaiyuan_generated_tokens_total")
        time.sleep(1.0)
        q2, g2 = send_queue(s.port, client_port), s.metric("kaiyuan_generated_tokens_total")
        return q1 > 0 and q1 == q2 and g2 > g1

    wait_for(blocked, 300, "the server's writes to block")
    hang_up(sock)
    wait_for(lambda: s.metric("kaiyuan_running_sequences") == 0, 120, "running = 0")
    assert s.metric("kaiyuan_generated_tokens_total") - generated < 3000
    assert s.metric("kaiyuan_requests_total", outcome="cancelled") == cancelled + 1
    assert_back_to_idle(s)


def send_queue(local_port, remote_port):
    """Bytes the kernel holds unsent on the loopback TCP connection local -> remote
    (/proc/net/tcp's tx_queue)."""
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            local, remote = fields[1], fields[2]
            if int(local.split(":")[1], 16) == local_port and int(remote.split(":")[1], 16) == remote_port:
                return int(fields[4].split(":")[0], 16)
    return 0


def test_a_slow_reader_does_not_stall_others():
    """One client reads its stream a line every 0.2 s through a tiny receive buffer; the
    engine still finishes its generation at full speed (the events wait in the server),
    another client's requests complete meanwhile, and the slow client finally gets the
    whole stream, valid to its [DONE]."""
    s = Server("-t", "1", "--max-seqs", "2")
    try:
        slow = raw_request(s, "/v1/completions", {
            "prompt": "Count:", "max_tokens": 64, "ignore_eos": True, "stream": True,
            "logprobs": 5,
        }, rcvbuf=1024)
        slow.settimeout(300)
        received = bytearray()
        done = threading.Event()

        def read_slowly():
            while not received.endswith(b"\r\n0\r\n\r\n"):  # the chunked body's end
                chunk = slow.recv(256)
                if not chunk:
                    break
                received.extend(chunk)
                time.sleep(0.2)
            done.set()

        reader = threading.Thread(target=read_slowly)
        reader.start()
        client = make_client(s)
        for i in range(3):
            r = client.completions.create(model=MODEL, prompt=f"Fast {i}:", max_tokens=4)
            assert r.choices[0].finish_reason in ("stop", "length")
        # The engine is done with the slow stream while its reader is still behind.
        wait_for(lambda: s.metric("kaiyuan_running_sequences") == 0, 300, "running = 0")
        assert not done.is_set(), "the slow reader finished first: the test proves nothing"
        reader.join(timeout=600)
        slow.close()
        head, _, body = bytes(received).partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head
        assert b"chunked" in head.lower()
        events = parse_chunked_sse(body)
        finals = [c for e in events for c in e["choices"] if c.get("finish_reason")]
        assert [c["finish_reason"] for c in finals] == ["length"]
        assert_back_to_idle(s)
    finally:
        assert s.terminate() == 0, f"log kept at {s.log_path}"


def parse_chunked_sse(body):
    """Decodes an HTTP/1.1 chunked body, then parses its SSE strictly."""
    from kaiyuan_e2e import parse_sse

    out = bytearray()
    while True:
        size_line, _, body = body.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            break
        out += body[:size]
        body = body[size + 2:]
    return parse_sse(out.decode())


def test_sigterm_lets_requests_that_fit_in_the_grace_period_finish():
    """Requests in flight when SIGTERM comes finish normally (no error event, their full
    max_tokens) when they fit in the grace period; new connections are then refused or
    answered 503; the process exits 0 as soon as they are done, not at the deadline."""
    s = Server("-t", "1", "--grace-period", "60")
    try:
        streams = []
        for i in range(3):
            conn, resp = s.open_stream("/v1/completions", {
                "prompt": f"List {i}:", "max_tokens": 24, "ignore_eos": True, "stream": True,
            })
            assert resp.status == 200
            streams.append((conn, resp, [read_event(resp)]))
        whole = concurrent.futures.ThreadPoolExecutor(1).submit(
            s.post, "/v1/completions", {"prompt": "Whole:", "max_tokens": 24, "ignore_eos": True})
        wait_for(lambda: s.metric("kaiyuan_running_sequences") == 4, 120, "four running")
        signalled = time.monotonic()
        s.proc.send_signal(signal.SIGTERM)
        # A new request is refused once the signal is seen (503, or the listener closed).
        wait_for(lambda: refused(s), 60, "new requests refused")
        for conn, resp, seen in streams:
            events = seen + read_events(resp)
            assert not [e for e in events if "error" in e], events[-2:]
            text = [c for e in events for c in e["choices"]]
            assert text[-1]["finish_reason"] == "length"
            conn.close()
        status, _, body = whole.result(timeout=300)
        assert status == 200, body
        code = s.proc.wait(timeout=120)
        assert code == 0
        assert time.monotonic() - signalled < 50, "waited for the deadline, not for the requests"
    finally:
        s.kill()


def refused(s):
    try:
        status, _, body = s.post("/v1/completions", {"prompt": "Late", "max_tokens": 1})
    except OSError:
        return True
    if status == 503:
        assert json.loads(body)["error"]["code"] == "shutting_down", body
        return True
    assert status == 200, body  # before the signal was handled: served normally
    return False


def test_sigterm_ends_long_streams_at_the_grace_deadline():
    s = Server("-t", "1", "--grace-period", "2")
    try:
        conn, resp = s.open_stream("/v1/completions", {
            "prompt": "Once", "max_tokens": 3000, "ignore_eos": True, "stream": True,
        })
        seen = [read_event(resp), read_event(resp)]
        signalled = time.monotonic()
        s.proc.send_signal(signal.SIGTERM)
        events = seen + read_events(resp)
        assert events[-1]["error"]["code"] == "shutting_down"
        assert s.proc.wait(timeout=120) == 0
        # 3000 tokens take minutes here; the grace period is 2 s (slack for a loaded machine).
        assert time.monotonic() - signalled < 2 + 20
        conn.close()
    finally:
        s.kill()


def test_a_kv_pool_too_small_for_the_load_preempts_and_every_request_completes():
    """A pool of 256 positions (the flag is --kv-tokens; it is never smaller than one
    context, here --ctx 256) for six requests of about 110 positions each: they cannot all
    hold their blocks at once, so the engine preempts and recomputes; every request still
    ends with its full max_tokens, and nothing is left held."""
    s = Server("-t", "1", "--ctx", "256", "--kv-tokens", "256", "--max-seqs", "6")
    try:
        client = make_client(s)

        def one(i):
            return client.completions.create(
                model=MODEL, prompt=f"Story {i}:", max_tokens=100, extra_body={"ignore_eos": True})

        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            results = list(pool.map(one, range(6)))
        for r in results:
            assert r.choices[0].finish_reason == "length"
            assert r.usage.completion_tokens == 100
        assert s.metric("kaiyuan_preemptions_total") > 0, "the pool was not too small: no preemption"
        assert s.metric("kaiyuan_requests_total", outcome="failed") == 0
        assert_back_to_idle(s)
    finally:
        assert s.terminate() == 0, f"log kept at {s.log_path}"


def run_serve(*args, timeout=300):
    """Runs `kaiyuan serve` to its exit (it fails at load); returns (code, output)."""
    out = subprocess.run([BIN, "serve", "--host", "127.0.0.1", "--port", "0", *args],
                         capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    return out.returncode, out.stdout + out.stderr


@pytest.mark.parametrize("keep", [16, 2_000_000, None])
def test_a_truncated_model_file_is_a_clear_error_at_load(keep):
    """Cut in the header, in the metadata, or just short of its last tensor's end."""
    size = MODEL_FILE.stat().st_size
    keep = size - 100 if keep is None else keep
    tmp = tempfile.mkdtemp(prefix="kaiyuan-trunc-")
    path = os.path.join(tmp, "cut.gguf")
    with open(MODEL_FILE, "rb") as src, open(path, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
        dst.truncate(keep)
    try:
        for extra in ([], ["--mmap"]):
            code, out = run_serve("-m", path, *extra)
            assert code != 0, out
            assert path in out and "error" in out.lower(), out
            assert "panicked" not in out and "RUST_BACKTRACE" not in out, out
    finally:
        shutil.rmtree(tmp)


def copy_of_model(tmp):
    path = os.path.join(tmp, "model.gguf")
    shutil.copyfile(MODEL_FILE, path)
    return path


def test_a_mapped_model_file_changed_in_place_stops_the_server_with_a_clear_error():
    """With --mmap the weights are the file's current bytes. Rewriting the file in place
    (same size) is noticed within a fraction of a second: the server says so and exits 1,
    rather than serving from weights that are no longer the ones it loaded."""
    tmp = tempfile.mkdtemp(prefix="kaiyuan-mmap-")
    path = copy_of_model(tmp)
    s = Server("-t", "1", "-m", path, "--mmap")
    try:
        client = make_client(s)
        assert client.completions.create(model="model", prompt="One,", max_tokens=2).choices
        with open(path, "r+b") as f:
            f.seek(os.path.getsize(path) // 2)
            f.write(b"\0" * 4096)
        code = s.proc.wait(timeout=60)
        assert code == 1, s.log()
        assert "rewritten in place while mapped" in s.log() and path in s.log()
    finally:
        s.kill()
        shutil.rmtree(tmp)


def test_a_mapped_model_file_truncated_in_place_is_a_clear_error():
    """Truncating a mapped file makes reads of the lost pages fault (SIGBUS): the process
    ends with status 1 and a message saying what happened, whichever notices first."""
    tmp = tempfile.mkdtemp(prefix="kaiyuan-mmap-")
    path = copy_of_model(tmp)
    s = Server("-t", "1", "-m", path, "--mmap")
    try:
        os.truncate(path, os.path.getsize(path) // 2)
        try:
            s.post("/v1/completions", {"prompt": "One,", "max_tokens": 2})
        except OSError:
            pass  # the process died under the request
        code = s.proc.wait(timeout=60)
        log = s.log()
        assert code == 1, log
        assert ("changed size while mapped" in log) or ("truncated or became unreadable" in log), log
        assert "panicked" not in log
    finally:
        s.kill()
        shutil.rmtree(tmp)


def test_a_mapped_model_file_replaced_by_rename_keeps_serving():
    """The documented way to update a model file under a running server: write a new file
    and rename it over the old one. The mapping keeps the old file; nothing changes."""
    tmp = tempfile.mkdtemp(prefix="kaiyuan-mmap-")
    path = copy_of_model(tmp)
    s = Server("-t", "1", "-m", path, "--mmap")
    try:
        client = make_client(s)
        ask = dict(model="model", prompt="One, two,", max_tokens=4, temperature=0)
        before = client.completions.create(**ask).choices[0].text
        with open(path + ".new", "wb") as f:
            f.write(b"GGUF but not really")
        os.rename(path + ".new", path)
        time.sleep(1)  # several of the server's checks
        assert client.completions.create(**ask).choices[0].text == before
        assert s.get("/health")[0] == 200
    finally:
        assert s.terminate() == 0, f"log kept at {s.log_path}"
        shutil.rmtree(tmp)
