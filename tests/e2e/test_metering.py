"""Metering end to end: keys issued through the admin API, usage records checked against
each response's usage and against the price file (the expected cost is computed here from
the TOML with exact decimals, independently of the server), revocation and expiry (401), a
model a key may not use (403), a budget under 50 concurrent requests (429
insufficient_quota, never overspent), per-minute request and token limits (429 with
Retry-After and x-ratelimit-* headers), and an abandoned stream still recorded."""

import concurrent.futures
import decimal
import json
import re
import tempfile
import threading
import time
import tomllib

import openai
import pytest

from kaiyuan_e2e import Server, error_of, make_client, read_event, wait_for

MODEL = "SmolLM2-135M-Instruct.Q4_1"
ADMIN = "admin-e2e-0123456789abcdef"
PRICES = f"""
[default]
input_cache_hit = 9.999
input_cache_miss = 9.999
output = 9.999
[models."{MODEL}"]
input_cache_hit = 0.07
input_cache_miss = 0.27
output = 1.10
"""
LONG = " ".join(f"Fact {i}: the river flows north past the mill." for i in range(40))


@pytest.fixture(scope="module")
def metered():
    tmp = tempfile.mkdtemp(prefix="kaiyuan-meter-e2e-")
    prices = f"{tmp}/prices.toml"
    with open(prices, "w") as f:
        f.write(PRICES)
    s = Server("-t", "2", "--admin-key", ADMIN, "--db", f"sqlite://{tmp}/meter.db", "--prices", prices)
    yield s
    code = s.terminate()
    assert code == 0, f"exit code {code}; log kept at {s.log_path}"


def nano_prices():
    """The model's prices in nano-USD per token, from the TOML with exact decimals."""
    table = tomllib.loads(PRICES, parse_float=decimal.Decimal)["models"][MODEL]
    return {k: int(decimal.Decimal(v) * 1000) for k, v in table.items()}


def expected_cost(prompt, cached, completion):
    p = nano_prices()
    return cached * p["input_cache_hit"] + (prompt - cached) * p["input_cache_miss"] + completion * p["output"]


def admin(server, method, path, body=None, key=ADMIN):
    status, headers, raw = server.request(method, path, body, {"Authorization": f"Bearer {key}"})
    return status, headers, json.loads(raw) if raw else None


def new_key(server, **spec):
    status, _, body = admin(server, "POST", "/admin/keys", {"name": "e2e", **spec})
    assert status == 201, body
    assert body["key"].startswith("sk-kaiyuan-") and body["id"].startswith("key_")
    return body


def records(server, key_id):
    status, _, body = admin(server, "GET", f"/admin/usage?key_id={key_id}")
    assert status == 200, body
    return {r["id"]: r for r in body["data"]}


def test_records_match_each_response_and_the_price_table(metered):
    key = new_key(metered)
    assert key["key"] not in metered.log(), "an issued key appeared in the log"
    client = make_client(metered, key["key"])
    messages = [{"role": "user", "content": LONG + " Which way does the river flow?"}]
    first = client.chat.completions.create(model=MODEL, messages=messages, max_tokens=5)
    # The same long prompt again: the prefix cache serves most of it.
    second = client.chat.completions.create(model=MODEL, messages=messages, max_tokens=5)
    assert second.usage.prompt_tokens_details.cached_tokens > 0, second.usage
    stream = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=4,
        stream=True, stream_options={"include_usage": True},
    )
    chunks = list(stream)
    streamed_usage = chunks[-1].usage
    completion = client.completions.create(model=MODEL, prompt="Once upon a time", max_tokens=3)
    # Streams are recorded when they end: wait for all four.
    wait_for(lambda: len(records(metered, key["id"])) == 4, 30, "four usage records")
    recs = records(metered, key["id"])
    for rid, usage in [
        (first.id, first.usage),
        (second.id, second.usage),
        (chunks[0].id, streamed_usage),
        (completion.id, completion.usage),
    ]:
        r = recs[rid]
        cached = usage.prompt_tokens_details.cached_tokens if usage.prompt_tokens_details else 0
        assert (r["prompt_tokens"], r["cached_tokens"], r["completion_tokens"]) == (
            usage.prompt_tokens, cached, usage.completion_tokens,
        ), (r, usage)
        want = expected_cost(usage.prompt_tokens, cached, usage.completion_tokens)
        assert r["cost_nano"] == want, (r, want)
        assert abs(r["cost"] - want / 1e9) < 1e-15
        assert (r["key_id"], r["model"], r["status"]) == (key["id"], MODEL, "ok")
    assert recs[second.id]["cost_nano"] < recs[first.id]["cost_nano"]
    # The key holder sees its own usage and balance.
    status, _, own = admin(metered, "GET", "/v1/usage", key=key["key"])
    assert status == 200 and len(own["data"]) == 4 and own["key"]["id"] == key["id"]
    status, _, bal = admin(metered, "GET", "/user/balance", key=key["key"])
    assert status == 200 and bal == {"is_available": True, "balance_infos": []}
    status, _, summary = admin(metered, "GET", f"/admin/usage/summary?group_by=model&key_id={key['id']}")
    assert status == 200
    assert summary["data"][0]["requests"] == 4
    assert summary["data"][0]["cost_nano"] == sum(r["cost_nano"] for r in recs.values())
    # /metrics: the cost of every metered request so far, per model (no key labels).
    everything = admin(metered, "GET", "/admin/usage")[2]["data"]
    cost = metered.metric("kaiyuan_metered_cost_usd_total", model=MODEL)
    assert round(cost * 1e9) == sum(r["cost_nano"] for r in everything)
    assert metered.metric("kaiyuan_metered_requests_total", model=MODEL) == len(everything)
    assert metered.metric("kaiyuan_metered_cached_tokens_total", model=MODEL) == sum(
        r["cached_tokens"] for r in everything
    )


def test_admin_api_refuses_other_keys_and_bad_bodies(metered):
    key = new_key(metered)
    assert metered.get("/admin/keys")[0] == 401
    status, _, body = admin(metered, "GET", "/admin/keys", key=key["key"])
    assert status == 403 and body["error"]["code"] == "admin_key_required"
    assert admin(metered, "GET", "/admin/keys", key="sk-kaiyuan-" + "0" * 48)[0] == 401
    before = len(admin(metered, "GET", "/admin/keys")[2]["data"])
    for bad, param in [
        ({"name": "x", "budget_usd": -5}, "budget_usd"),
        ({"name": "x" * 10000}, "name"),
        ({}, "name"),
        ({"name": "x", "rpm": "many"}, "rpm"),
        ({"name": "x", "models": [1]}, "models"),
        ({"name": "x", "budget_period": "forever"}, "budget_period"),
        ({"name": "x", "admin": True}, "admin"),
    ]:
        status, _, body = admin(metered, "POST", "/admin/keys", bad)
        assert status == 400 and error_of(json.dumps(body))["param"] == param, (bad, body)
    assert admin(metered, "POST", "/admin/keys", b"{nope")[0] == 400
    assert len(admin(metered, "GET", "/admin/keys")[2]["data"]) == before, "a refused body stored a key"
    for method in ["GET", "PATCH", "DELETE"]:
        status, _, body = admin(metered, method, "/admin/keys/key_nope", {} if method == "PATCH" else None)
        assert status == 404 and body["error"]["code"] == "not_found", (method, body)
    sql = "robert'); DROP TABLE api_keys; --"
    stored = new_key(metered, name=sql)
    assert admin(metered, "GET", f"/admin/keys/{stored['id']}")[2]["name"] == sql
    status, _, body = admin(metered, "GET", "/admin/usage/summary?group_by=week")
    assert status == 400 and body["error"]["param"] == "group_by"


def test_revoked_and_expired_keys_get_401(metered):
    key = new_key(metered)
    client = make_client(metered, key["key"])
    client.completions.create(model=MODEL, prompt="a", max_tokens=1)
    status, _, body = admin(metered, "DELETE", f"/admin/keys/{key['id']}")
    assert status == 200 and body["revoked_at"]
    with pytest.raises(openai.AuthenticationError):
        client.completions.create(model=MODEL, prompt="a", max_tokens=1)
    soon = new_key(metered, expires_at=int(time.time()) + 2)
    client = make_client(metered, soon["key"])
    client.completions.create(model=MODEL, prompt="a", max_tokens=1)
    time.sleep(3.1)
    with pytest.raises(openai.AuthenticationError):
        client.completions.create(model=MODEL, prompt="a", max_tokens=1)


def test_a_model_the_key_may_not_use_is_403(metered):
    key = new_key(metered, models=["some-other-model"])
    with pytest.raises(openai.PermissionDeniedError) as e:
        make_client(metered, key["key"]).completions.create(model=MODEL, prompt="a", max_tokens=1)
    assert e.value.body["code"] == "model_not_allowed"
    status, _, _ = admin(metered, "PATCH", f"/admin/keys/{key['id']}", {"models": [MODEL]})
    assert status == 200
    make_client(metered, key["key"]).completions.create(model=MODEL, prompt="a", max_tokens=1)


def test_fifty_concurrent_requests_never_overspend_a_budget_for_five(metered):
    prompt, max_tokens = "Count: one two three", 8
    # The prompt's size, asked with the admin key (unmetered).
    probe = make_client(metered, ADMIN).completions.create(model=MODEL, prompt=prompt, max_tokens=1)
    p = nano_prices()
    worst = probe.usage.prompt_tokens * p["input_cache_miss"] + max_tokens * p["output"]
    budget_nano = 5 * worst
    key = new_key(metered, budget_usd=budget_nano / 1e9)
    client = make_client(metered, key["key"])
    start = threading.Barrier(50)

    def one(_):
        start.wait()
        try:
            client.completions.create(
                model=MODEL, prompt=prompt, max_tokens=max_tokens, extra_body={"ignore_eos": True}
            )
            return "ok"
        except openai.RateLimitError as e:
            return e.body["code"]

    with concurrent.futures.ThreadPoolExecutor(50) as pool:
        outcomes = list(pool.map(one, range(50)))
    ok = outcomes.count("ok")
    assert set(outcomes) <= {"ok", "insufficient_quota"}, outcomes
    assert ok >= 5 and outcomes.count("insufficient_quota") >= 1, outcomes
    recs = wait_for(lambda: (r := records(metered, key["id"])) and len(r) == ok and r, 30, "records")
    spent = sum(r["cost_nano"] for r in recs.values())
    assert spent <= budget_nano, (spent, budget_nano)
    info = admin(metered, "GET", f"/admin/keys/{key['id']}")[2]
    assert round(info["spent_usd"] * 1e9) == spent and info["reserved_usd"] == 0
    status, _, bal = admin(metered, "GET", "/user/balance", key=key["key"])
    left = decimal.Decimal(bal["balance_infos"][0]["total_balance"])
    assert abs(left * 10**9 - (budget_nano - spent)) < 1000


def test_requests_per_minute_429_with_retry_after_and_headers(metered):
    key = new_key(metered, rpm=2)
    auth = {"Authorization": f"Bearer {key['key']}"}
    body = {"model": MODEL, "prompt": "a", "max_tokens": 1}
    for _ in range(3):  # a minute boundary may reset the window once mid-test
        s1, h1, _ = metered.post("/v1/completions", body, auth)
        s2, h2, _ = metered.post("/v1/completions", body, auth)
        s3, h3, raw = metered.post("/v1/completions", body, auth)
        if s3 == 429:
            break
    assert (s1, s2, s3) == (200, 200, 429), (s1, s2, s3, raw)
    assert h1["x-ratelimit-limit-requests"] == "2" and h1["x-ratelimit-remaining-requests"] == "1"
    assert h2["x-ratelimit-remaining-requests"] == "0"
    err = error_of(raw)
    assert err["code"] == "rate_limit_exceeded" and err["type"] == "requests"
    assert 1 <= int(h3["retry-after"]) <= 60
    assert h3["x-ratelimit-remaining-requests"] == "0" and h3["x-ratelimit-reset-requests"].endswith("s")


def test_tokens_per_minute_429_with_retry_after_and_headers(metered):
    """`tpm` counts a window's prompt tokens at admission (and the completion tokens when a
    request settles): a request is admitted while the window is under the limit, and the
    x-ratelimit-*-tokens headers are OpenAI's (limit, remaining = limit - used, reset as a
    duration such as "17s" or "1m0s")."""
    key = new_key(metered, tpm=100)
    auth = {"Authorization": f"Bearer {key['key']}"}
    # About 60 prompt tokens: one request fits under 100, two do not.
    body = {"model": MODEL, "prompt": " ".join(f"word{i}" for i in range(20)), "max_tokens": 1}
    for _ in range(3):  # a minute boundary may reset the window once mid-test
        s1, h1, r1 = metered.post("/v1/completions", body, auth)
        s2, h2, _ = metered.post("/v1/completions", body, auth)
        s3, h3, raw = metered.post("/v1/completions", body, auth)
        if s3 == 429:
            break
    assert (s1, s2, s3) == (200, 200, 429), (s1, s2, s3, raw)
    prompt = json.loads(r1)["usage"]["prompt_tokens"]
    assert 50 <= prompt < 100, prompt  # the premise of the test
    assert h1["x-ratelimit-limit-tokens"] == "100"
    assert h1["x-ratelimit-remaining-tokens"] == str(100 - prompt)
    assert h2["x-ratelimit-remaining-tokens"] == "0"
    # No rpm on this key: no request headers.
    assert "x-ratelimit-limit-requests" not in h1
    err = error_of(raw)
    assert err["code"] == "rate_limit_exceeded" and err["type"] == "tokens", err
    assert "tokens per minute" in err["message"], err
    assert 1 <= int(h3["retry-after"]) <= 60
    assert h3["x-ratelimit-limit-tokens"] == "100" and h3["x-ratelimit-remaining-tokens"] == "0"
    assert re.fullmatch(r"([1-9]|[1-5]\d)s|1m0s", h3["x-ratelimit-reset-tokens"]), h3
    assert int(h3["retry-after"]) == go_seconds(h3["x-ratelimit-reset-tokens"])


def go_seconds(duration):
    """Seconds of a Go-style duration of whole seconds ("45s", "1m0s")."""
    m = re.fullmatch(r"(?:(\d+)m)?(\d+)s", duration)
    assert m, duration
    return int(m.group(1) or 0) * 60 + int(m.group(2))


def test_an_abandoned_stream_is_recorded_as_cancelled(metered):
    key = new_key(metered)
    conn, resp = metered.open_stream(
        "/v1/chat/completions",
        {"model": MODEL, "messages": [{"role": "user", "content": "Tell a long story."}],
         "max_tokens": 200, "stream": True, "extra": 1},
        {"Authorization": f"Bearer {key['key']}"},
    )
    for _ in range(3):
        read_event(resp)
    conn.close()
    recs = wait_for(lambda: records(metered, key["id"]), 60, "the abandoned stream's record")
    (r,) = recs.values()
    assert r["status"] == "cancelled" and r["prompt_tokens"] > 0, r
    # It is billed for what it got: at least the two tokens read before hanging up.
    assert r["completion_tokens"] >= 2, r
    assert r["cost_nano"] == expected_cost(r["prompt_tokens"], r["cached_tokens"], r["completion_tokens"])
    info = admin(metered, "GET", f"/admin/keys/{key['id']}")[2]
    assert info["in_flight"] == 0 and info["reserved_usd"] == 0


def test_reasoning_tokens_are_recorded():
    """On a template that thinks, each record's reasoning_tokens equals the response's
    completion_tokens_details.reasoning_tokens, whole and streamed (OpenAI), and Anthropic's."""
    import pathlib

    template = pathlib.Path(__file__).resolve().parent / "templates" / "thinking-chatml.jinja"
    tmp = tempfile.mkdtemp(prefix="kaiyuan-meter-think-")
    s = Server("-t", "1", "--admin-key", ADMIN, "--db", f"sqlite://{tmp}/meter.db",
               "--chat-template-file", str(template))
    try:
        key = new_key(s)
        client = make_client(s, key["key"])
        shaped = {"grammar": {"type": "regex", "value": r"(hmm|well), (yes|no)</think>\n\nParis\."}}
        ask = dict(model=MODEL, messages=[{"role": "user", "content": "Capital of France?"}],
                   max_tokens=30, temperature=0, extra_body=shaped)
        whole = client.chat.completions.create(**ask)
        want = whole.usage.completion_tokens_details.reasoning_tokens
        assert want > 0
        stream = client.chat.completions.create(**ask, stream=True,
                                                stream_options={"include_usage": True})
        chunks = list(stream)
        streamed_id = chunks[0].id
        assert chunks[-1].usage.completion_tokens_details.reasoning_tokens == want
        recs = wait_for(lambda: (r := records(s, key["id"])) and len(r) >= 2 and r, 30, "records")
        assert recs[whole.id]["reasoning_tokens"] == want
        assert recs[streamed_id]["reasoning_tokens"] == want
    finally:
        assert s.terminate() == 0, f"log kept at {s.log_path}"
