"""Structured output through the official OpenAI client: a table of JSON schemas on SmolLM2
(a 135M model that does not write valid JSON unprompted, so the constraint is what makes the
output valid), each output validated by the `jsonschema` package; JSON mode on a prose
prompt; streaming equal to the whole response; the grammar extensions; every bad input a 400
naming its field, the server healthy after each; and Gemma 3's 262k vocabulary."""

import json
import os
import pathlib

import jsonschema
import pytest

from kaiyuan_e2e import Server, error_of, make_client, read_events

MODEL = "SmolLM2-135M-Instruct.Q4_1"
ROOT = pathlib.Path(__file__).resolve().parents[2]
SCHEMAS = json.loads((pathlib.Path(__file__).parent / "schemas.json").read_text())
PROSE = [{"role": "user", "content": "Write a short poem about autumn leaves."}]


def fmt(name, schema, strict=True):
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": strict}}


def check(schema, text):
    value = json.loads(text)
    jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    ).validate(value)
    return value


@pytest.mark.parametrize("case", SCHEMAS, ids=[c["name"] for c in SCHEMAS])
def test_schema_table(client, case):
    r = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": case["prompt"]}],
        max_tokens=300,
        temperature=0,
        response_format=fmt(case["name"], case["schema"]),
    )
    choice = r.choices[0]
    assert choice.finish_reason == "stop", choice.message.content
    check(case["schema"], choice.message.content)


def test_schema_table_sampled(client):
    """The same table at temperature 1 with a seed: still valid, whatever is drawn."""
    for case in SCHEMAS:
        r = client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": case["prompt"]}],
            max_tokens=300,
            temperature=1.0,
            seed=11,
            response_format=fmt(case["name"], case["schema"]),
        )
        assert r.choices[0].finish_reason == "stop", (case["name"], r.choices[0].message.content)
        check(case["schema"], r.choices[0].message.content)


def test_unconstrained_answer_is_not_json(client):
    """The premise of the table: unprompted, the model writes prose."""
    r = client.chat.completions.create(model=MODEL, messages=PROSE, max_tokens=40, temperature=0)
    with pytest.raises(ValueError):
        json.loads(r.choices[0].message.content)


def test_json_object_mode_on_a_prose_prompt(client):
    # (Asked for a poem, greedy SmolLM2 writes it into one ever-repeating key: valid JSON
    # until max_tokens cuts it. A one-sentence request ends.)
    r = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Write one sentence about the sea."}],
        max_tokens=300,
        temperature=0,
        response_format={"type": "json_object"},
    )
    assert r.choices[0].finish_reason == "stop"
    assert isinstance(json.loads(r.choices[0].message.content), dict)


def test_text_format_is_unconstrained(client):
    a = client.chat.completions.create(model=MODEL, messages=PROSE, max_tokens=12, temperature=0)
    b = client.chat.completions.create(
        model=MODEL, messages=PROSE, max_tokens=12, temperature=0, response_format={"type": "text"}
    )
    assert a.choices[0].message.content == b.choices[0].message.content


def test_stream_equals_whole_response(client):
    case = SCHEMAS[0]
    kwargs = dict(
        model=MODEL,
        messages=[{"role": "user", "content": case["prompt"]}],
        max_tokens=300,
        temperature=0.9,
        seed=5,
        response_format=fmt(case["name"], case["schema"]),
    )
    whole = client.chat.completions.create(**kwargs).choices[0].message.content
    parts, reasons = [], []
    for chunk in client.chat.completions.create(stream=True, **kwargs):
        for c in chunk.choices:
            parts.append(c.delta.content or "")
            if c.finish_reason:
                reasons.append(c.finish_reason)
    assert "".join(parts) == whole
    assert reasons == ["stop"]
    check(case["schema"], whole)


def test_n_choices_each_valid(client):
    case = SCHEMAS[2]
    r = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": case["prompt"]}],
        max_tokens=300,
        temperature=1.0,
        seed=3,
        n=3,
        response_format=fmt(case["name"], case["schema"]),
    )
    assert len(r.choices) == 3
    for c in r.choices:
        assert c.finish_reason == "stop"
        check(case["schema"], c.message.content)


def test_completions_endpoint_takes_a_schema(client):
    schema = SCHEMAS[1]["schema"]
    r = client.completions.create(
        model=MODEL,
        prompt="My favourite colour is",
        max_tokens=100,
        temperature=0,
        extra_body={"response_format": fmt("c", schema)},
    )
    assert r.choices[0].finish_reason == "stop"
    check(schema, r.choices[0].text)


def test_regex_and_lark_extensions(client):
    r = client.chat.completions.create(
        model=MODEL,
        messages=PROSE,
        max_tokens=30,
        temperature=0,
        extra_body={"grammar": {"type": "regex", "value": "[A-Z][a-z]{2,8} [0-9]{4}"}},
    )
    text = r.choices[0].message.content
    assert r.choices[0].finish_reason == "stop"
    word, year = text.split(" ")
    assert word[0].isupper() and word[1:].islower() and 3 <= len(word) <= 9 and len(year) == 4
    lark = 'start: "Answer: " ("yes" | "no")'
    r = client.chat.completions.create(
        model=MODEL,
        messages=PROSE,
        max_tokens=30,
        temperature=0,
        extra_body={"grammar": {"type": "lark", "value": lark}},
    )
    assert r.choices[0].message.content in ("Answer: yes", "Answer: no")


def test_llama_server_json_schema_alias(client):
    schema = SCHEMAS[3]["schema"]
    r = client.chat.completions.create(
        model=MODEL,
        messages=PROSE,
        max_tokens=300,
        temperature=0,
        extra_body={"json_schema": schema},
    )
    check(schema, r.choices[0].message.content)


BIG = {"type": "object", "properties": {f"p{i}": {"type": "string", "description": "x" * 200} for i in range(400)}}
BAD = [
    ({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": "object"}}},
     "response_format.json_schema.schema"),
    ({"response_format": fmt("x", {"type": 123})}, "response_format.json_schema.schema"),
    ({"response_format": fmt("x", {"type": "object", "properties": {"a": {"type": "string"}}, "required": "a"})},
     "response_format.json_schema.schema"),
    ({"response_format": fmt("x", {"$ref": "#/$defs/nowhere"})}, "response_format.json_schema.schema"),
    ({"response_format": fmt("x", {"type": "array", "uniqueItems": True}, strict=True)},
     "response_format.json_schema.schema"),
    ({"response_format": fmt("x", BIG)}, "response_format.json_schema.schema"),
    ({"response_format": {"type": "json_schema"}}, "response_format.json_schema"),
    ({"response_format": {"type": "yaml"}}, "response_format.type"),
    ({"response_format": "json"}, "response_format"),
    ({"grammar": {"type": "lark", "value": "start: missing_rule"}}, "grammar.value"),
    ({"grammar": {"type": "regex", "value": "(unclosed"}}, "grammar.value"),
    ({"grammar": {"type": "ebnf", "value": "x"}}, "grammar.type"),
    ({"response_format": {"type": "json_object"}, "json_schema": {"type": "object"}}, "json_schema"),
]


@pytest.mark.parametrize("extra,param", BAD, ids=[p for _, p in BAD])
def test_bad_grammars_are_400_naming_the_field(server, extra, param):
    body = {"messages": PROSE, "max_tokens": 10, **extra}
    status, _, raw = server.post("/v1/chat/completions", body)
    assert status == 400, raw
    err = error_of(raw)
    assert err["param"] == param, err
    assert err["type"] == "invalid_request_error"
    # Still healthy, and still serving.
    assert server.get("/health")[0] == 200
    status, _, _ = server.post("/v1/chat/completions", {"messages": PROSE, "max_tokens": 2})
    assert status == 200


def test_lenient_schema_ignores_what_it_cannot_enforce(client):
    schema = {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 9},
              "minItems": 2, "maxItems": 4, "uniqueItems": True}
    r = client.chat.completions.create(
        model=MODEL, messages=PROSE, max_tokens=60, temperature=0,
        response_format=fmt("lenient", schema, strict=False),
    )
    value = json.loads(r.choices[0].message.content)
    assert isinstance(value, list) and 2 <= len(value) <= 4


def gemma_path():
    d = pathlib.Path(os.environ.get("KAIYUAN_MODELS", ROOT / "models"))
    p = d / "gemma-3-270m-q4_k_m.gguf"
    assert p.exists(), f"{p} is missing: run scripts/fetch-models"
    return p


def test_gemma_vocabulary():
    s = Server("-t", "2", "-m", f"{gemma_path()}=gemma")
    try:
        c = make_client(s)
        for case in SCHEMAS[:4]:
            r = c.chat.completions.create(
                model="gemma",
                messages=[{"role": "user", "content": case["prompt"]}],
                max_tokens=300,
                temperature=0,
                response_format=fmt(case["name"], case["schema"]),
            )
            assert r.choices[0].finish_reason == "stop", r.choices[0].message.content
            check(case["schema"], r.choices[0].message.content)
    finally:
        assert s.terminate() == 0
