"""A template whose reasoning tags and thinking switch are its own, as Hunyuan Hy3's are
(`<think:opensource>` built with `.format()`, thinking switched by `reasoning_effort`
no_think | low | high), through the official OpenAI client.

SmolLM2 is served with a fixture template (templates/effort-chatml.jinja) in that manner, with
`<think:x>` tags; a regex grammar makes the model write a short reasoning, the template's close
tag and an answer, so the split is known while the words are the model's."""

import json
import pathlib
import re

import pytest

from kaiyuan_e2e import Server, make_client
from test_reasoning import ANSWER, CITY_FORMAT, MODEL, QUESTION, REASONING

TEMPLATE = pathlib.Path(__file__).resolve().parent / "templates" / "effort-chatml.jinja"
SHAPED = {"grammar": {"type": "regex", "value": REASONING + "</think:x>\n\n" + ANSWER}}


@pytest.fixture(scope="module")
def effort():
    s = Server("-t", "1", "--chat-template-file", str(TEMPLATE))
    yield s
    assert s.terminate() == 0, f"log kept at {s.log_path}"


def ask(server, **kwargs):
    args = {"model": MODEL, "messages": QUESTION, "max_tokens": 40, "temperature": 0}
    args.update(kwargs)
    return make_client(server).chat.completions.create(**args)


def test_the_template_s_own_tags_are_split(effort):
    whole = ask(effort, temperature=1.0, seed=5, extra_body=SHAPED)
    msg = whole.choices[0].message
    assert re.fullmatch(REASONING, getattr(msg, "reasoning_content", None) or ""), msg
    assert re.fullmatch(ANSWER, msg.content), msg
    details = whole.usage.completion_tokens_details
    assert 0 < details.reasoning_tokens < whole.usage.completion_tokens
    reasoning, content = "", ""
    for chunk in ask(effort, temperature=1.0, seed=5, extra_body=SHAPED, stream=True):
        for c in chunk.choices:
            reasoning += getattr(c.delta, "reasoning_content", None) or ""
            content += c.delta.content or ""
    assert (reasoning, content) == (msg.reasoning_content, msg.content)


def test_thinking_and_effort_become_the_template_s_values(effort):
    def prompt_tokens(**kwargs):
        return ask(effort, max_tokens=1, **kwargs).usage.prompt_tokens

    high = prompt_tokens()  # the server's default is thinking on: `high`
    off = prompt_tokens(extra_body={"thinking": {"type": "disabled"}})
    low = prompt_tokens(reasoning_effort="low")
    # `medium` is not one of the template's values (it would raise): it is sent as `high`.
    assert prompt_tokens(reasoning_effort="medium") == high
    assert prompt_tokens(reasoning_effort="high") == high
    # `no_think` in the system line and a closed block after the assistant header.
    assert off > high and low != off
    # Thinking off: the block is closed in the prompt, the output is all answer.
    r = ask(effort, max_tokens=4, extra_body={"thinking": {"type": "disabled"}})
    assert getattr(r.choices[0].message, "reasoning_content", None) is None
    assert r.usage.completion_tokens_details.reasoning_tokens == 0
    # A value the request sets through chat_template_kwargs goes through as it is.
    raw = prompt_tokens(extra_body={"chat_template_kwargs": {"reasoning_effort": "no_think"}})
    assert raw == off


def test_the_answer_constraint_starts_after_the_template_s_close_tag(effort):
    kwargs = dict(max_tokens=40, temperature=1.0, seed=3, response_format=CITY_FORMAT,
                  extra_body={"thinking": {"type": "enabled", "budget_tokens": 5}})
    r = ask(effort, **kwargs)
    msg = r.choices[0].message
    assert r.choices[0].finish_reason == "stop"
    assert json.loads(msg.content)["city"] in ("Paris", "Rome")
    assert msg.reasoning_content
    assert "think" not in msg.reasoning_content
    assert 5 <= r.usage.completion_tokens_details.reasoning_tokens < r.usage.completion_tokens


def test_models_show_the_switch(effort):
    status, _, body = effort.get("/v1/models")
    assert status == 200, body
    caps = json.loads(body)["data"][0]["capabilities"]
    assert (caps["reasoning"], caps["thinking_switch"]) == (True, "reasoning_effort")


def test_anthropic_thinking_follows_the_template_s_switch(effort):
    import anthropic

    c = anthropic.Anthropic(base_url=effort.url, api_key="unused", max_retries=0)
    args = dict(model=MODEL, max_tokens=12, messages=QUESTION, extra_body={"temperature": 0})
    # Thinking on: `high`, so the prompt opened `<think:x>` (found with the template's own
    # tag) and SmolLM2 never closes it: the whole reply is one thinking block.
    on = c.messages.create(thinking={"type": "enabled", "budget_tokens": 1024}, **args)
    assert [b.type for b in on.content] == ["thinking"], on.content
    assert on.content[0].thinking and "think:x>" not in on.content[0].thinking
    # Off (no_think): the prompt closed the block, so the reply is all text.
    off = c.messages.create(thinking={"type": "disabled"}, **args)
    assert [b.type for b in off.content] == ["text"], off.content
    assert off.usage.input_tokens > on.usage.input_tokens
