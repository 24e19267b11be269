"""Tool calling through the official OpenAI client.

- SmolLM2 and Gemma 3 have no tool support in their templates: Kaiyuan's generic format
  describes the tools in the system prompt and constrains the reply to a call object or an
  answer object.
- SmolLM2 served with a Hermes-format fixture template (templates/hermes-tools-chatml.jinja,
  the format Qwen2.5/Qwen3 document) exercises a family format: `<tool_call>` markup forced by
  the grammar and read back by the Hermes parser.

Every call's arguments are checked with `jsonschema` against the tool's own schema: the
independent check that the constraint held. Stream deltas must follow OpenAI's shape and
reassemble to the same calls."""

import json
import os
import pathlib
import subprocess
import sys

import jsonschema
import pytest

from kaiyuan_e2e import Server, error_of, make_client

SMOL = "SmolLM2-135M-Instruct.Q4_1"
GEMMA = "gemma-3-270m-q4_k_m"
HERE = pathlib.Path(__file__).resolve().parent
HERMES = HERE / "templates" / "hermes-tools-chatml.jinja"

WEATHER = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "maxLength": 40},
        "unit": {"type": "string", "enum": ["C", "F"]},
    },
    "required": ["city"],
}
TIME = {
    "type": "object",
    "properties": {"zone": {"type": "string", "maxLength": 40}},
    "required": ["zone"],
}
TOOLS = [
    {"type": "function", "function": {
        "name": "get_weather", "description": "Current weather of a city", "parameters": WEATHER}},
    {"type": "function", "function": {
        "name": "get_time", "description": "Current time in a time zone", "parameters": TIME}},
]
SCHEMAS = {"get_weather": WEATHER, "get_time": TIME}
QUESTION = [{"role": "user", "content": "What is the weather in Paris?"}]


@pytest.fixture(scope="module")
def hermes():
    s = Server("-t", "1", "--chat-template-file", str(HERMES))
    yield s
    assert s.terminate() == 0, f"log kept at {s.log_path}"


@pytest.fixture(scope="module")
def gemma():
    models = pathlib.Path(os.environ.get("KAIYUAN_MODELS", HERE.parent.parent / "models"))
    path = models / f"{GEMMA}.gguf"
    assert path.exists(), f"{path} is missing: run scripts/fetch-models"
    s = Server("-m", str(path), "-t", "1")
    yield s
    assert s.terminate() == 0, f"log kept at {s.log_path}"


def ask(server, model=SMOL, messages=QUESTION, **kwargs):
    args = {"model": model, "messages": messages, "max_tokens": 120, "temperature": 0,
            "tools": TOOLS}
    args.update(kwargs)
    return make_client(server).chat.completions.create(**args)


def check_calls(calls, names=SCHEMAS):
    assert calls, "no tool calls"
    for call in calls:
        assert call.type == "function"
        assert call.id.startswith("call_"), call.id
        assert call.function.name in names, call.function.name
        args = json.loads(call.function.arguments)
        jsonschema.validate(args, SCHEMAS[call.function.name])
    assert len({c.id for c in calls}) == len(calls)


@pytest.mark.parametrize("which", ["generic", "hermes"])
def test_required_makes_valid_calls(server, hermes, which):
    s = server if which == "generic" else hermes
    r = ask(s, tool_choice="required")
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls", choice
    assert choice.message.content is None
    check_calls(choice.message.tool_calls)


@pytest.mark.parametrize("which", ["generic", "hermes"])
def test_a_named_tool_is_the_only_one_called(server, hermes, which):
    s = server if which == "generic" else hermes
    named = {"type": "function", "function": {"name": "get_time"}}
    r = ask(s, tool_choice=named, parallel_tool_calls=False)
    calls = r.choices[0].message.tool_calls
    check_calls(calls, names={"get_time"})
    assert len(calls) == 1, "parallel_tool_calls: false"


def test_none_neither_prompts_nor_parses(server):
    r = ask(server, tool_choice="none", max_tokens=30)
    choice = r.choices[0]
    assert choice.message.tool_calls is None
    assert choice.finish_reason in ("stop", "length")
    assert choice.message.content
    # The tool description is not in the prompt: the same prompt as without tools.
    plain = make_client(server).chat.completions.create(
        model=SMOL, messages=QUESTION, max_tokens=1, temperature=0)
    assert r.usage.prompt_tokens == plain.usage.prompt_tokens


def test_auto_answers_or_calls_validly(server):
    r = ask(server, tool_choice="auto")
    choice = r.choices[0]
    if choice.message.tool_calls:
        assert choice.finish_reason == "tool_calls"
        check_calls(choice.message.tool_calls)
    else:
        assert choice.finish_reason == "stop"
        assert choice.message.content and "tool_calls" not in choice.message.content


@pytest.mark.parametrize("which", ["generic", "hermes"])
def test_streamed_calls_reassemble(server, hermes, which):
    s = server if which == "generic" else hermes
    question = [{"role": "user", "content": "What is the weather and the time in Paris?"}]
    whole = ask(s, messages=question, tool_choice="required", max_tokens=200)
    stream = ask(s, messages=question, tool_choice="required", max_tokens=200, stream=True)
    calls = {}
    finish = None
    for chunk in stream:
        for choice in chunk.choices:
            finish = choice.finish_reason or finish
            for d in choice.delta.tool_calls or []:
                if d.index not in calls:
                    # The first delta of a call: id, type, name and empty arguments.
                    assert d.id and d.id.startswith("call_") and d.type == "function", d
                    assert d.function.name and d.function.arguments == "", d
                    calls[d.index] = {"name": d.function.name, "arguments": ""}
                else:
                    assert d.id is None and d.function.name is None, d
                    calls[d.index]["arguments"] += d.function.arguments
    assert finish == "tool_calls"
    assert sorted(calls) == list(range(len(calls)))
    got = [(c["name"], json.loads(c["arguments"])) for _, c in sorted(calls.items())]
    want = [(c.function.name, json.loads(c.function.arguments))
            for c in whole.choices[0].message.tool_calls]
    assert got == want
    for name, args in got:
        jsonschema.validate(args, SCHEMAS[name])


@pytest.mark.parametrize("which", ["generic", "hermes"])
def test_a_tool_result_turn_is_answered(server, hermes, which):
    s = server if which == "generic" else hermes
    first = ask(s, tool_choice={"type": "function", "function": {"name": "get_weather"}},
                parallel_tool_calls=False)
    call = first.choices[0].message.tool_calls[0]
    history = QUESTION + [
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": "Sunny, 22 C"},
    ]
    r = ask(s, messages=history, tool_choice="none", max_tokens=40)
    assert r.choices[0].message.content
    assert r.choices[0].message.tool_calls is None
    # Ids may be missing in history, and auto may answer or call again; either is valid.
    history[1]["tool_calls"][0].pop("id")
    r = ask(s, messages=history, tool_choice="auto", max_tokens=120)
    m = r.choices[0].message
    assert m.content or m.tool_calls
    if m.tool_calls:
        check_calls(m.tool_calls)


def test_gemma_makes_a_valid_call(gemma):
    # One call: this small model repeats parallel calls until max_tokens.
    r = ask(gemma, model=GEMMA, tool_choice="required", parallel_tool_calls=False)
    assert r.choices[0].finish_reason == "tool_calls"
    check_calls(r.choices[0].message.tool_calls)


BAD = [
    ({"tools": [{"type": "function", "function": {"description": "x"}}]}, "tools[0].function.name"),
    ({"tools": [{"type": "function", "function": {"name": "f", "parameters": "x"}}]},
     "tools[0].function.parameters"),
    ({"tools": TOOLS, "tool_choice": {"type": "function", "function": {"name": "nope"}}},
     "tool_choice.function.name"),
    ({"tool_choice": "required"}, "tool_choice"),
    ({"tools": TOOLS, "response_format": {"type": "json_object"}}, "response_format"),
    ({"messages": [{"role": "assistant", "content": None,
                    "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": "[1]"}}]}]},
     "messages[0].tool_calls[0].function.arguments"),
]


@pytest.mark.parametrize("body,param", BAD, ids=[p for _, p in BAD])
def test_bad_tool_requests_name_the_field(server, body, param):
    req = {"model": SMOL, "messages": QUESTION, "max_tokens": 5}
    req.update(body)
    status, _, data = server.request("POST", "/v1/chat/completions", req)
    assert status == 400, data
    assert error_of(data)["param"] == param


def test_agent_example_answers_with_a_local_function(server):
    example = HERE.parent.parent / "examples" / "agent.py"
    env = dict(os.environ, KAIYUAN_URL=server.url + "/v1", KAIYUAN_MODEL=SMOL)
    out = subprocess.run([sys.executable, str(example)], env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "get_weather(" in out.stdout and "answer:" in out.stdout, out.stdout
