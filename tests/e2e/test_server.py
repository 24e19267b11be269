"""The server around generation: errors in OpenAI's shape naming the field, limits, API
keys, a flood beyond the queue, and shutdown on SIGTERM while streams run. Tests that need
special flags start their own server."""

import concurrent.futures
import json
import os
import tempfile
import threading

import openai
import pytest

from kaiyuan_e2e import Server, error_of, make_client, read_event, read_events, wait_for

MODEL = "SmolLM2-135M-Instruct.Q4_1"
HI = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(
    "kwargs, param",
    [
        ({"temperature": 7}, "temperature"),
        ({"top_p": 0}, "top_p"),
        ({"n": 17}, "n"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": 100000}, "max_tokens"),
        ({"presence_penalty": 9}, "presence_penalty"),
        ({"logit_bias": {"abc": 1}}, "logit_bias.abc"),
        ({"logit_bias": {"99999999": 1}}, "logit_bias"),
        ({"logprobs": True, "top_logprobs": 50}, "top_logprobs"),
        ({"stop": [""]}, "stop"),
        ({"messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
        (
            {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
            "messages[0].content[0].type",
        ),
    ],
)
def test_client_errors_name_the_field(client, kwargs, param):
    args = {"model": MODEL, "messages": HI, "max_tokens": 2, **kwargs}
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(**args)
    assert e.value.status_code == 400
    assert e.value.param == param
    assert e.value.body["type"] == "invalid_request_error"


def test_context_overflow_says_both_numbers(client):
    with pytest.raises(openai.BadRequestError) as e:
        client.completions.create(model=MODEL, prompt="hello " * 50, max_tokens=4090)
    message = e.value.body["message"]
    assert e.value.param == "max_tokens"
    assert "4090" in message and "4096" in message and "tokens" in message


def test_raw_errors_are_json(server):
    cases = [
        (b"{not json", {}, 400, None),
        (b'{"messages": "hi"}', {}, 400, "messages"),
        (b'{"messages": [{"role": "user", "content": "hi"}], "stream": "yes"}', {}, 400, "stream"),
        (b'{"messages": []}', {"Content-Type": "text/plain"}, 415, None),
        (b'{"prompt": "' + b"a" * (5 * 1024 * 1024) + b'"}', {}, 413, None),
    ]
    for body, headers, status, param in cases:
        got, hdrs, raw = server.post("/v1/chat/completions", body, headers)
        assert got == status, raw[:300]
        assert hdrs["content-type"] == "application/json"
        assert error_of(raw)["param"] == param
    got, _, raw = server.get("/v1/nope")
    assert got == 404 and error_of(raw)["code"] == "not_found"


def test_tokenize_roundtrip(server):
    status, _, body = server.post("/tokenize", {"content": "Hello world", "with_pieces": True})
    assert status == 200
    tokens = json.loads(body)["tokens"]
    assert "".join(t["piece"] for t in tokens) == "Hello world"
    status, _, body = server.post("/detokenize", {"tokens": [t["id"] for t in tokens]})
    assert status == 200 and json.loads(body) == {"content": "Hello world"}


def test_api_keys():
    keys = tempfile.NamedTemporaryFile("w", suffix=".keys", delete=False)
    keys.write("first-key\n\nsecond-key\n")
    keys.close()
    s = Server("-t", "1", "--api-key-file", keys.name)
    try:
        with pytest.raises(openai.AuthenticationError) as e:
            make_client(s, api_key="wrong").models.list()
        assert e.value.status_code == 401
        status, _, body = s.post("/v1/chat/completions", {"messages": HI})
        assert status == 401 and error_of(body)["type"] == "authentication_error"
        status, _, _ = s.post("/tokenize", {"content": "x"})
        assert status == 401
        assert [m.id for m in make_client(s, api_key="second-key").models.list().data] == [MODEL]
        # Probes and scrapers need no key.
        assert s.get("/health")[0] == 200
        assert s.get("/metrics")[0] == 200
    finally:
        assert s.terminate() == 0
        os.unlink(keys.name)


def test_flood_beyond_the_queue_gets_429_and_health_stays_up():
    s = Server("-t", "1", "--max-seqs", "1", "--max-queue", "2")
    try:
        body = {"prompt": "Count: one, two,", "max_tokens": 24, "ignore_eos": True, "stream": True}
        start = threading.Barrier(10)

        def one(_):
            start.wait()
            conn, resp = s.open_stream("/v1/completions", body)
            try:
                if resp.status == 200:
                    events = read_events(resp)
                    assert events[-1]["choices"][0]["finish_reason"] == "length"
                    return 200, None
                raw = resp.read()
                return resp.status, (resp.getheader("Retry-After"), error_of(raw))
            finally:
                conn.close()

        with concurrent.futures.ThreadPoolExecutor(max_workers=10) as pool:
            futures = [pool.submit(one, i) for i in range(10)]
            # While the flood runs, the server stays healthy.
            wait_for(lambda: s.metric("kaiyuan_running_sequences") >= 1, 120, "a running sequence")
            assert s.get("/health")[0] == 200
            results = [f.result() for f in futures]
        statuses = [r[0] for r in results]
        assert statuses.count(200) >= 1
        assert statuses.count(429) >= 1, statuses
        assert set(statuses) <= {200, 429}
        for status, extra in results:
            if status == 429:
                retry_after, err = extra
                assert retry_after is not None and int(retry_after) >= 1
                assert err["type"] == "rate_limit_error" and err["code"] == "queue_full"
        assert s.get("/health")[0] == 200
        assert s.metric("kaiyuan_requests_total", outcome="queue_full") == statuses.count(429)
        wait_for(lambda: s.metric("kaiyuan_running_sequences") == 0, 120, "running = 0")
    finally:
        assert s.terminate() == 0


def test_sigterm_ends_every_stream_with_a_final_chunk_and_done():
    s = Server("-t", "1", "--grace-period", "1")
    try:
        streams = []
        for path, body in [
            ("/v1/chat/completions", {"messages": HI, "max_tokens": 3000, "ignore_eos": True,
                                      "stream": True, "stream_options": {"include_usage": True}}),
            ("/v1/completions", {"prompt": "Once", "max_tokens": 3000, "ignore_eos": True,
                                 "stream": True, "n": 2}),
        ]:
            conn, resp = s.open_stream(path, body)
            assert resp.status == 200
            streams.append((conn, resp, [read_event(resp)]))
        # Wait until every stream has produced generated text, then signal.
        for conn, resp, seen in streams:
            while not any(
                (c.get("delta", {}).get("content") or c.get("text"))
                for e in seen if isinstance(e, dict) for c in e.get("choices", [])
            ):
                seen.append(read_event(resp))
        s.proc.send_signal(15)
        for conn, resp, seen in streams:
            rest = read_events(resp)  # strict: data lines only, [DONE] last
            events = seen + rest
            finals = [c for e in events for c in e.get("choices", []) if c.get("finish_reason")]
            n = len({c["index"] for e in events for c in e.get("choices", [])})
            assert len(finals) == n, events[-3:]
            assert all(c["finish_reason"] in ("stop", "length") for c in finals)
            errors = [e["error"] for e in events if "error" in e]
            assert len(errors) == 1 and errors[0]["code"] == "shutting_down"
            assert "error" in events[-1]
            conn.close()
        assert s.proc.wait(timeout=120) == 0
        assert "stopped" in s.log()
    finally:
        s.kill()
