"""Reasoning through the official OpenAI client: `reasoning_content`, streamed reasoning deltas,
`reasoning_tokens`, DeepSeek's cache usage fields, the thinking switches and
`--reasoning-format none`.

The test models never think, so SmolLM2 is served with a fixture template
(templates/thinking-chatml.jinja, Qwen3-style `enable_thinking` logic) whose generation prompt
leaves `<think>` open; a regex grammar then makes the model write a short reasoning, the close
tag and an answer, so the shape of the split is known while the words are the model's."""

import json
import pathlib
import re

import pytest

from kaiyuan_e2e import Server, error_of, make_client

MODEL = "SmolLM2-135M-Instruct.Q4_1"
TEMPLATE = pathlib.Path(__file__).resolve().parent / "templates" / "thinking-chatml.jinja"
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]
REASONING = r"(hmm|well|ok), (yes|no|maybe)"
ANSWER = r"(Paris|London|Rome)\."
# Output: reasoning, the close tag, the answer (the prompt already opened <think>).
SHAPED = {"grammar": {"type": "regex", "value": REASONING + "</think>\n\n" + ANSWER}}


def extra(obj, name):
    """A non-OpenAI field of a response object (the client keeps them as extras)."""
    return getattr(obj, name, None)


@pytest.fixture(scope="module")
def thinking():
    s = Server("-t", "1", "--chat-template-file", str(TEMPLATE))
    yield s
    assert s.terminate() == 0, f"log kept at {s.log_path}"


@pytest.fixture(scope="module")
def raw():
    s = Server(
        "-t", "1", "--chat-template-file", str(TEMPLATE),
        "--reasoning-format", "none", "--thinking", "off",
    )
    yield s
    assert s.terminate() == 0, f"log kept at {s.log_path}"


def ask(server, messages=QUESTION, **kwargs):
    args = {"model": MODEL, "messages": messages, "max_tokens": 40, "temperature": 0}
    args.update(kwargs)
    return make_client(server).chat.completions.create(**args)


def test_reasoning_content_whole_and_streamed(thinking):
    # Sampled with a seed: the stream must split exactly as the whole response.
    sampled = {"temperature": 1.0, "seed": 11}
    whole = ask(thinking, extra_body=SHAPED, **sampled)
    msg = whole.choices[0].message
    assert re.fullmatch(REASONING, extra(msg, "reasoning_content")), msg
    assert re.fullmatch(ANSWER, msg.content), msg
    assert whole.choices[0].finish_reason == "stop"
    u = whole.usage
    reasoning_tokens = u.completion_tokens_details.reasoning_tokens
    # The reasoning words and the close tag are reasoning; the answer is not.
    assert 0 < reasoning_tokens < u.completion_tokens, u

    chunks = list(ask(thinking, extra_body=SHAPED, stream=True,
                      stream_options={"include_usage": True}, **sampled))
    *body, usage_chunk = chunks
    kinds = []
    reasoning, content = "", ""
    for c in body:
        d = c.choices[0].delta
        r = extra(d, "reasoning_content")
        if r:
            kinds.append("r")
            reasoning += r
        if d.content:
            kinds.append("c")
            content += d.content
        assert not (r and d.content), "a chunk carries one kind of text"
    assert kinds == sorted(kinds, key=lambda k: k == "c"), kinds  # all r before any c
    assert "r" in kinds and "c" in kinds
    assert (reasoning, content) == (extra(msg, "reasoning_content"), msg.content)
    assert usage_chunk.usage.completion_tokens_details.reasoning_tokens == reasoning_tokens
    assert usage_chunk.usage.completion_tokens == u.completion_tokens


def test_unclosed_reasoning_is_all_reasoning(thinking):
    r = ask(thinking, max_tokens=6)
    msg = r.choices[0].message
    assert msg.content == "" and extra(msg, "reasoning_content"), msg
    assert "<think>" not in extra(msg, "reasoning_content")
    u = r.usage
    assert u.completion_tokens_details.reasoning_tokens <= u.completion_tokens
    if r.choices[0].finish_reason == "length":
        assert u.completion_tokens_details.reasoning_tokens == u.completion_tokens == 6


def test_deepseek_cache_usage_fields(thinking, client):
    for _ in range(2):  # the second time the prefix cache has the prompt
        u = ask(thinking, max_tokens=2).usage
        hit, miss = extra(u, "prompt_cache_hit_tokens"), extra(u, "prompt_cache_miss_tokens")
        assert hit + miss == u.prompt_tokens
        assert hit == u.prompt_tokens_details.cached_tokens
    assert hit > 0
    c = client.completions.create(model=MODEL, prompt="The capital of France is", max_tokens=2)
    u = c.usage
    assert extra(u, "prompt_cache_hit_tokens") + extra(u, "prompt_cache_miss_tokens") == u.prompt_tokens


def test_thinking_switches_change_the_prompt(thinking, raw):
    on = ask(thinking, max_tokens=1).usage.prompt_tokens
    off = ask(thinking, max_tokens=1,
              extra_body={"chat_template_kwargs": {"enable_thinking": False}}).usage.prompt_tokens
    # `<think>\n\n</think>\n\n` instead of `<think>\n`.
    assert off > on
    ds_off = ask(thinking, max_tokens=1, extra_body={"thinking": {"type": "disabled"}})
    assert ds_off.usage.prompt_tokens == off
    # With thinking off the block is closed in the prompt: the output is all answer.
    assert extra(ds_off.choices[0].message, "reasoning_content") is None
    assert ds_off.usage.completion_tokens_details.reasoning_tokens == 0
    effort = ask(thinking, max_tokens=1, reasoning_effort="low")
    assert effort.usage.prompt_tokens == on  # this template does not read reasoning_effort
    # The server default (--thinking off), and a request overriding it.
    assert ask(raw, max_tokens=1).usage.prompt_tokens == off
    enabled = ask(raw, max_tokens=1, extra_body={"thinking": {"type": "enabled"}})
    assert enabled.usage.prompt_tokens == on


def test_reasoning_format_none_keeps_the_tags(raw):
    on = {"thinking": {"type": "enabled"}, **SHAPED}
    whole = ask(raw, extra_body=on)
    msg = whole.choices[0].message
    assert extra(msg, "reasoning_content") is None
    assert re.fullmatch(REASONING + "</think>\n\n" + ANSWER, msg.content), msg
    assert whole.usage.completion_tokens_details.reasoning_tokens > 0
    chunks = list(ask(raw, extra_body=on, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == msg.content
    assert all(extra(c.choices[0].delta, "reasoning_content") is None for c in chunks)


def test_history_reasoning_reaches_the_template(thinking):
    said = {"role": "assistant", "content": "Paris."}
    thought = {**said, "reasoning_content": "The user asks about France; its capital is Paris."}
    follow = {"role": "user", "content": "And of Italy?"}

    def prompt_tokens(messages):
        return ask(thinking, messages=messages, max_tokens=1).usage.prompt_tokens

    # The template shows the reasoning of an assistant turn after the last user message...
    assert prompt_tokens(QUESTION + [thought]) > prompt_tokens(QUESTION + [said])
    # ...and drops it from earlier turns (Qwen3's rule).
    assert prompt_tokens(QUESTION + [thought, follow]) == prompt_tokens(QUESTION + [said, follow])


@pytest.mark.parametrize(
    "fields, param",
    [
        ({"thinking": {"type": "sometimes"}}, "thinking.type"),
        ({"thinking": "enabled"}, "thinking"),
        ({"reasoning_effort": "ultra"}, "reasoning_effort"),
        ({"chat_template_kwargs": ["enable_thinking"]}, "chat_template_kwargs"),
        ({"chat_template_kwargs": {"enable_thinking": "no"}}, "chat_template_kwargs.enable_thinking"),
        ({"messages": QUESTION + [{"role": "assistant", "content": "x", "reasoning_content": 7}]},
         "messages[1].reasoning_content"),
    ],
)
def test_bad_reasoning_fields_are_400(thinking, fields, param):
    body = {"model": MODEL, "messages": QUESTION, "max_tokens": 1, **fields}
    status, _, data = thinking.post("/v1/chat/completions", body)
    assert status == 400, data
    assert error_of(data)["param"] == param, json.loads(data)



CITY = {"type": "object", "properties": {"city": {"enum": ["Paris", "Rome"]}},
        "required": ["city"], "additionalProperties": False}
CITY_FORMAT = {"type": "json_schema", "json_schema": {"name": "city", "schema": CITY}}


def test_response_format_answers_after_budgeted_reasoning(thinking):
    """After a prompt that left <think> open, a response format lets the model reason first
    (here at most 6 tokens, then `</think>` is forced) and constrains only the answer, whole
    and streamed alike."""
    kwargs = dict(max_tokens=40, temperature=1.0, seed=3, response_format=CITY_FORMAT,
                  extra_body={"thinking": {"type": "enabled", "budget_tokens": 6}})
    r = ask(thinking, **kwargs)
    msg = r.choices[0].message
    assert r.choices[0].finish_reason == "stop"
    assert json.loads(msg.content)["city"] in ("Paris", "Rome")
    assert extra(msg, "reasoning_content")
    details = r.usage.completion_tokens_details
    assert 6 <= details.reasoning_tokens < r.usage.completion_tokens
    reasoning, content = [], []
    for chunk in make_client(thinking).chat.completions.create(
        model=MODEL, messages=QUESTION, stream=True, **kwargs
    ):
        for c in chunk.choices:
            reasoning.append(extra(c.delta, "reasoning_content") or "")
            content.append(c.delta.content or "")
    assert "".join(reasoning) == extra(msg, "reasoning_content")
    assert "".join(content) == msg.content


def test_response_format_leaves_the_reasoning_free(thinking):
    """Without a budget the reasoning is the model's own (SmolLM2 never closes it), except
    that it cannot end the turn before answering: max_tokens ends it, the grammar unstarted."""
    r = ask(thinking, max_tokens=12, response_format=CITY_FORMAT)
    assert r.choices[0].finish_reason == "length"
    assert extra(r.choices[0].message, "reasoning_content")
    assert not r.choices[0].message.content


@pytest.mark.parametrize("thinking_field", [
    {"type": "disabled", "budget_tokens": 5},
    {"type": "enabled", "budget_tokens": 0},
    {"type": "enabled", "budget_tokens": "5"},
])
def test_bad_budget_is_400(thinking, thinking_field):
    status, _, body = thinking.post("/v1/chat/completions", {
        "messages": QUESTION, "max_tokens": 5, "thinking": thinking_field})
    assert status == 400, body
    assert error_of(body)["param"] == "thinking.budget_tokens"
