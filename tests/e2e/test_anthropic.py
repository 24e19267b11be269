"""Anthropic's Messages API through the official `anthropic` SDK (and raw HTTP for the exact
SSE event order): whole and streamed replies, system prompt, stop sequences, tool use with a
tool_result turn, thinking blocks on a template that thinks (and on a Hy3-style one:
test_reasoning_effort.py), token counting, auth headers, and
bad input in Anthropic's error shape."""

import json
import pathlib

import anthropic
import jsonschema
import pytest

from kaiyuan_e2e import Server

MODEL = "SmolLM2-135M-Instruct.Q4_1"
HERE = pathlib.Path(__file__).resolve().parent
THINKING = HERE / "templates" / "thinking-chatml.jinja"
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]
# This SDK version has no sampling parameters (Kaiyuan still reads temperature, top_p, top_k).
GREEDY = {"temperature": 0}
WEATHER = {"type": "object", "properties": {"city": {"type": "string", "maxLength": 40}},
           "required": ["city"]}
TOOLS = [{"name": "get_weather", "description": "Current weather of a city", "input_schema": WEATHER}]


def client(server, **kw):
    return anthropic.Anthropic(base_url=server.url, api_key=kw.pop("api_key", "unused"),
                               max_retries=0, **kw)


@pytest.fixture(scope="module")
def thinking():
    s = Server("-t", "1", "--chat-template-file", str(THINKING))
    yield s
    assert s.terminate() == 0, f"log kept at {s.log_path}"


@pytest.fixture(scope="module")
def keyed():
    s = Server("-t", "1", "--api-key", "sk-test")
    yield s
    assert s.terminate() == 0, f"log kept at {s.log_path}"


def test_whole_and_streamed_replies_agree(server):
    c = client(server)
    args = dict(model=MODEL, max_tokens=30, extra_body=GREEDY, system="Answer in one sentence.",
                messages=QUESTION)
    whole = c.messages.create(**args)
    assert whole.id.startswith("msg_") and whole.type == "message" and whole.role == "assistant"
    assert [b.type for b in whole.content] == ["text"]
    assert whole.stop_reason in ("end_turn", "max_tokens")
    assert whole.usage.output_tokens > 0 and whole.usage.input_tokens > 0
    with c.messages.stream(**args) as stream:
        streamed = stream.get_final_message()
    assert streamed.content[0].text == whole.content[0].text
    assert streamed.stop_reason == whole.stop_reason
    assert streamed.usage.output_tokens == whole.usage.output_tokens
    # The same prompt again: the prefix cache serves it, and usage says so.
    again = c.messages.create(**args)
    assert again.usage.cache_read_input_tokens > 0
    total = again.usage.input_tokens + again.usage.cache_read_input_tokens
    assert total == whole.usage.input_tokens + whole.usage.cache_read_input_tokens
    counted = c.messages.count_tokens(model=MODEL, system=args["system"], messages=QUESTION)
    assert counted.input_tokens == total


def test_a_stop_sequence_is_reported(server):
    c = client(server)
    free = c.messages.create(model=MODEL, max_tokens=30, extra_body=GREEDY, messages=QUESTION)
    words = free.content[0].text.split()
    assert len(words) > 3, free
    stop = words[2]
    r = c.messages.create(model=MODEL, max_tokens=30, extra_body=GREEDY, messages=QUESTION,
                          stop_sequences=["never-appears", stop])
    assert r.stop_reason == "stop_sequence"
    assert r.stop_sequence == stop
    assert stop not in r.content[0].text


def test_tool_use_then_a_tool_result_turn(server):
    c = client(server)
    r = c.messages.create(model=MODEL, max_tokens=80, extra_body=GREEDY, tools=TOOLS,
                          # One call: this small model repeats parallel calls until max_tokens.
                          tool_choice={"type": "any", "disable_parallel_tool_use": True},
                          messages=[{"role": "user", "content": "What is the weather in Paris?"}])
    assert r.stop_reason == "tool_use"
    uses = [b for b in r.content if b.type == "tool_use"]
    assert uses and uses[0].id.startswith("toolu_") and uses[0].name == "get_weather"
    jsonschema.validate(uses[0].input, WEATHER)
    follow = c.messages.create(
        model=MODEL, max_tokens=40, extra_body=GREEDY, tools=TOOLS, tool_choice={"type": "none"},
        messages=[
            {"role": "user", "content": "What is the weather in Paris?"},
            {"role": "assistant", "content": r.content},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": uses[0].id, "content": "Sunny, 22 C"}]},
        ])
    assert follow.stop_reason in ("end_turn", "max_tokens")
    assert follow.content[0].type == "text" and follow.content[0].text
    # Streamed tool use: input_json_delta fragments reassemble to the same input.
    with c.messages.stream(model=MODEL, max_tokens=80, extra_body=GREEDY, tools=TOOLS,
                           tool_choice={"type": "tool", "name": "get_weather",
                                        "disable_parallel_tool_use": True},
                           messages=[{"role": "user", "content": "Weather in Rome?"}]) as s:
        final = s.get_final_message()
    use = [b for b in final.content if b.type == "tool_use"][0]
    jsonschema.validate(use.input, WEATHER)
    assert final.stop_reason == "tool_use"


def test_thinking_blocks_on_a_template_that_thinks(thinking):
    c = client(thinking)
    r = c.messages.create(model=MODEL, max_tokens=20, extra_body=GREEDY, messages=QUESTION,
                          thinking={"type": "enabled", "budget_tokens": 1024})
    assert r.content[0].type == "thinking"
    assert r.content[0].thinking and r.content[0].signature
    with c.messages.stream(model=MODEL, max_tokens=20, extra_body=GREEDY, messages=QUESTION,
                           thinking={"type": "enabled", "budget_tokens": 1024}) as s:
        final = s.get_final_message()
    assert final.content[0].type == "thinking"
    assert final.content[0].thinking == r.content[0].thinking
    assert final.content[0].signature


def events(server, body):
    """The (event name, data) pairs of a raw streamed request."""
    conn, resp = server.open_stream("/v1/messages", body)
    assert resp.status == 200
    assert resp.getheader("content-type") == "text/event-stream"
    raw = resp.read().decode()
    conn.close()
    out = []
    for frame in raw.strip().split("\n\n"):
        lines = frame.split("\n")
        assert lines[0].startswith("event: ") and lines[1].startswith("data: "), frame
        name, data = lines[0][7:], json.loads(lines[1][6:])
        assert data["type"] == name, frame
        out.append((name, data))
    return out


def test_raw_sse_event_order(server):
    ev = events(server, {"model": MODEL, "max_tokens": 12, "stream": True, "temperature": 0,
                         "messages": QUESTION})
    names = [n for n, _ in ev if n != "ping"]
    assert names[0] == "message_start"
    assert names[1] == "content_block_start" and names[-3] == "content_block_stop"
    assert set(names[2:-3]) == {"content_block_delta"}
    assert names[-2:] == ["message_delta", "message_stop"]
    delta = dict(ev)["message_delta"]
    assert delta["delta"]["stop_reason"] == "max_tokens"
    assert delta["usage"]["output_tokens"] == 12


def test_x_api_key_and_bearer_authenticate(keyed):
    ok = client(keyed, api_key="sk-test").messages.create(
        model=MODEL, max_tokens=3, messages=QUESTION)
    assert ok.content
    with pytest.raises(anthropic.AuthenticationError) as e:
        client(keyed, api_key="wrong").messages.create(model=MODEL, max_tokens=3, messages=QUESTION)
    assert e.value.body["type"] == "error"
    assert e.value.body["error"]["type"] == "authentication_error"
    status, headers, _ = keyed.request("POST", "/v1/messages",
                                       {"model": MODEL, "max_tokens": 3, "messages": QUESTION},
                                       {"Authorization": "Bearer sk-test",
                                        "anthropic-version": "2023-06-01"})
    assert status == 200 and headers.get("request-id", "").startswith("req_")


BAD = [
    ({"messages": QUESTION}, "max_tokens"),
    ({"max_tokens": 5, "messages": "hi"}, "messages"),
    ({"max_tokens": 5, "messages": []}, "messages"),
    ({"max_tokens": 5, "messages": [{"role": "assistant", "content": "hi"}]}, "first message"),
    ({"max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "video"}]}]}, "video"),
    ({"max_tokens": 5, "messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": ""}}]}]},
     "image"),
    ({"max_tokens": 5, "messages": [{"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_x", "content": "x"}]}]}, "toolu_x"),
]


@pytest.mark.parametrize("body,mentions", BAD, ids=[m for _, m in BAD])
def test_bad_input_gets_anthropic_errors(server, body, mentions):
    body = dict(body, model=MODEL)
    status, headers, data = server.request("POST", "/v1/messages", body)
    assert status == 400
    doc = json.loads(data)
    assert doc["type"] == "error" and doc["error"]["type"] == "invalid_request_error", doc
    assert mentions in doc["error"]["message"], doc
    assert headers.get("request-id", "").startswith("req_")
