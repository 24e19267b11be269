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


# The HTTP half of the bad-input table (RELIABILITY.md, "Bad input"; the CLI half is
# crates/cli/tests/bad_input.rs): (path, body, extra headers, status, param). A body is sent
# as bytes when it is bytes, else as JSON; `param` is checked when it is not ANY.
ANY = object()
USER = [{"role": "user", "content": "hi"}]
CHAT = "/v1/chat/completions"
FUNC = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
BAD_INPUT = [
    # Not JSON, or not an object.
    (CHAT, b'{"messages": [', {}, 400, None),
    (CHAT, b"[1, 2, 3]", {}, 400, None),
    (CHAT, b"null", {}, 400, None),
    (CHAT, b"", {}, 400, None),
    (CHAT, b"[" * 100_000 + b"]" * 100_000, {}, 400, None),
    (CHAT, b'{"messages": [{"role": "user", "content": "\xff\xfe bad utf-8"}]}', {}, 400, None),
    (CHAT, b'{"messages": [{"role": "user", "content": "\\ud800 lone surrogate"}]}', {}, 400, None),
    # Wrong types and values.
    (CHAT, {"messages": USER, "temperature": "hot"}, {}, 400, "temperature"),
    (CHAT, {"messages": USER, "max_tokens": -1}, {}, 400, "max_tokens"),
    (CHAT, {"messages": USER, "max_tokens": 1e30}, {}, 400, "max_tokens"),
    (CHAT, b'{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 123456789012345678901234567890}', {}, 400, "max_tokens"),
    (CHAT, {"messages": USER, "max_tokens": 2.5}, {}, 400, "max_tokens"),
    (CHAT, {"messages": USER, "n": 1000}, {}, 400, "n"),
    (CHAT, {"messages": USER, "n": 0}, {}, 400, "n"),
    (CHAT, {"messages": USER, "top_p": 1.5}, {}, 400, "top_p"),
    (CHAT, {"messages": USER, "frequency_penalty": -3}, {}, 400, "frequency_penalty"),
    (CHAT, {"messages": USER, "seed": "abc"}, {}, 400, "seed"),
    (CHAT, {"messages": USER, "stream": True, "stream_options": {"include_usage": "yes"}}, {}, 400, ANY),
    (CHAT, {"messages": USER, "stop": [f"s{i}" for i in range(17)]}, {}, 400, "stop"),
    (CHAT, {"messages": USER, "stop": "x" * 1000}, {}, 400, "stop"),
    (CHAT, {"messages": USER, "stop": [1]}, {}, 400, "stop[0]"),
    (CHAT, {"messages": USER, "logit_bias": {str(i): 1 for i in range(301)}}, {}, 400, "logit_bias"),
    (CHAT, {"messages": USER, "logit_bias": {"5": "high"}}, {}, 400, "logit_bias.5"),
    (CHAT, {"messages": USER, "logit_bias": {"5": 1000}}, {}, 400, ANY),
    (CHAT, {"messages": USER, "logit_bias": [1, 2]}, {}, 400, ANY),
    (CHAT, {"messages": USER, "logprobs": True, "top_logprobs": -1}, {}, 400, "top_logprobs"),
    (CHAT, {"messages": USER, "temperature": -1}, {}, 400, "temperature"),
    # Messages.
    (CHAT, {"messages": []}, {}, 400, "messages"),
    (CHAT, {}, {}, 400, "messages"),
    (CHAT, {"messages": [{"content": "no role"}]}, {}, 400, ANY),
    (CHAT, {"messages": [{"role": "robot", "content": "x"}]}, {}, 400, "messages[0].role"),
    (CHAT, {"messages": [{"role": "user", "content": 5}]}, {}, 400, ANY),
    (CHAT, {"messages": [{"role": "user", "content": [{"type": "text"}]}]}, {}, 400, ANY),
    (CHAT, {"messages": [{"role": "user", "content": [{"type": "audio", "data": "x"}]}]}, {}, 400, ANY),
    (CHAT, {"messages": ["hi"]}, {}, 400, ANY),
    (CHAT, {"messages": USER, "n": "two"}, {}, 400, "n"),
    # Tools and structured output.
    (CHAT, {"messages": USER, "tools": [{"type": "function"}]}, {}, 400, ANY),
    (CHAT, {"messages": USER, "tools": [{"type": "retrieval"}]}, {}, 400, ANY),
    (CHAT, {"messages": USER, "tools": [{"type": "function", "function": {"name": "bad name!"}}]}, {}, 400, ANY),
    (CHAT, {"messages": USER, "tools": [{"type": "function", "function": {"name": "f", "parameters": "x"}}]}, {}, 400, ANY),
    (CHAT, {"messages": USER, "tools": [FUNC, FUNC]}, {}, 400, ANY),
    (CHAT, {"messages": USER, "tools": [FUNC], "tool_choice": {"type": "function", "function": {"name": "g"}}}, {}, 400, ANY),
    (CHAT, {"messages": USER, "tool_choice": "required"}, {}, 400, ANY),
    (CHAT, {"messages": USER, "tools": "f"}, {}, 400, "tools"),
    (CHAT, {"messages": USER, "response_format": {"type": "xml"}}, {}, 400, ANY),
    (CHAT, {"messages": USER, "response_format": {"type": "json_schema"}}, {}, 400, ANY),
    (CHAT, {"messages": USER, "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "nonsense"}}}}, {}, 400, ANY),
    (CHAT, {"messages": USER, "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"$ref": "http://example.com/s.json"}}}}, {}, 400, ANY),
    # Transport.
    (CHAT, b'{"messages": []}', {"Content-Type": "application/xml"}, 415, None),
    (CHAT, b'{"messages": []}', {"Content-Type": "multipart/form-data; boundary=x"}, 415, None),
    (CHAT, b"x" * (5 * 1024 * 1024), {}, 413, None),
    # Completions.
    ("/v1/completions", {}, {}, 400, "prompt"),
    ("/v1/completions", {"prompt": 5}, {}, 400, "prompt"),
    ("/v1/completions", {"prompt": [99999999]}, {}, 400, ANY),
    ("/v1/completions", {"prompt": [-1]}, {}, 400, ANY),
    ("/v1/completions", {"prompt": "a", "max_tokens": -5}, {}, 400, "max_tokens"),
    ("/v1/completions", {"prompt": "a", "logprobs": 100}, {}, 400, "logprobs"),
    ("/v1/completions", {"prompt": "a", "echo": "yes"}, {}, 400, ANY),
    # Tokenizer routes.
    ("/tokenize", {"content": 5}, {}, 400, ANY),
    ("/tokenize", {}, {}, 400, ANY),
    ("/detokenize", {"tokens": [-1]}, {}, 400, ANY),
    ("/detokenize", {"tokens": [99999999]}, {}, 400, ANY),
    ("/detokenize", {"tokens": "1 2"}, {}, 400, ANY),
]


@pytest.mark.parametrize(
    "path, body, headers, status, param", BAD_INPUT,
    ids=[f"{i}-{case[0].rsplit('/', 1)[-1]}-{case[3]}" for i, case in enumerate(BAD_INPUT)],
)
def test_bad_input_gets_a_clean_4xx_and_the_server_stays_healthy(server, path, body, headers, status, param):
    got, hdrs, raw = server.post(path, body, headers)
    assert got == status, raw[:300]
    assert hdrs["content-type"] == "application/json", hdrs
    err = error_of(raw)
    if param is not ANY:
        assert err["param"] == param, err
    assert server.get("/health")[0] == 200


ANTHROPIC_BAD_INPUT = [
    ({"messages": USER}, "max_tokens"),
    ({"max_tokens": 5, "messages": [{"role": "system", "content": "x"}]}, None),
    ({"max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "video"}]}]}, None),
    ({"max_tokens": -5, "messages": USER}, "max_tokens"),
    ({"max_tokens": 5, "messages": USER, "tools": [{"name": "f"}]}, None),
    ({"max_tokens": 5, "messages": USER, "tool_choice": {"type": "sometimes"}}, None),
    (b"{broken", None),
]


@pytest.mark.parametrize("body, field", ANTHROPIC_BAD_INPUT)
def test_anthropic_bad_input_gets_anthropics_error_shape(server, body, field):
    got, hdrs, raw = server.post("/v1/messages", body, {"anthropic-version": "2023-06-01"})
    assert got == 400, raw[:300]
    doc = json.loads(raw)
    assert doc["type"] == "error" and doc["error"]["type"] == "invalid_request_error", doc
    assert isinstance(doc["error"]["message"], str) and doc["error"]["message"]
    if field:
        assert field in doc["error"]["message"], doc
    assert server.get("/health")[0] == 200
