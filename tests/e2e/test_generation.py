"""Generation through the official OpenAI client and raw HTTP on the shared server: chat and
completions, whole and streamed, n > 1, stop strings, seeds, logprobs, usage, batching
invariance and the prefix cache."""

import concurrent.futures
import json
import random

import openai
import pytest

from kaiyuan_e2e import read_events, wait_for

MODEL = "SmolLM2-135M-Instruct.Q4_1"
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]
PROMPT = "The capital of France is"


def test_models_lists_the_default_model(client):
    ids = [m.id for m in client.models.list().data]
    assert ids == [MODEL]


def test_chat_whole_response(client):
    r = client.chat.completions.create(
        model=MODEL, messages=QUESTION, max_tokens=8, temperature=0
    )
    assert r.id.startswith("chatcmpl-")
    assert r.object == "chat.completion"
    assert r.model == MODEL
    assert r.system_fingerprint
    assert len(r.choices) == 1
    choice = r.choices[0]
    assert choice.index == 0
    assert choice.message.role == "assistant"
    assert choice.message.content
    assert choice.finish_reason in ("stop", "length")
    u = r.usage
    assert u.prompt_tokens > 0 and 0 < u.completion_tokens <= 8
    assert u.total_tokens == u.prompt_tokens + u.completion_tokens
    # Cached tokens are whole 16-token KV blocks and never the last prompt token (its logits
    # are computed); the same request again finds every such block of its prompt cached.
    cached = u.prompt_tokens_details.cached_tokens
    assert cached % 16 == 0 and 0 <= cached < u.prompt_tokens, cached
    again = client.chat.completions.create(
        model=MODEL, messages=QUESTION, max_tokens=8, temperature=0
    )
    assert again.usage.prompt_tokens_details.cached_tokens == (u.prompt_tokens - 1) // 16 * 16


def test_single_model_refuses_an_unknown_model_name(client):
    # Like OpenAI and vLLM (issue 19): an unknown `model` is 404 even with one model served,
    # and the error names the models there are.
    with pytest.raises(openai.NotFoundError) as e:
        client.chat.completions.create(
            model="gpt-4o", messages=QUESTION, max_tokens=2, temperature=0
        )
    err = e.value.body
    assert err["code"] == "model_not_found" and err["param"] == "model", err
    assert "gpt-4o" in err["message"] and MODEL in err["message"], err


def test_chat_stream_matches_the_whole_response(client):
    whole = client.chat.completions.create(
        model=MODEL, messages=QUESTION, max_tokens=10, temperature=0
    )
    chunks = list(
        client.chat.completions.create(
            model=MODEL,
            messages=QUESTION,
            max_tokens=10,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert len({c.id for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    *body, last_choice, usage_chunk = chunks
    text = "".join(c.choices[0].delta.content or "" for c in body + [last_choice])
    assert text == whole.choices[0].message.content
    assert all(c.choices[0].finish_reason is None for c in body)
    assert last_choice.choices[0].finish_reason == whole.choices[0].finish_reason
    assert usage_chunk.choices == []
    assert usage_chunk.usage.completion_tokens == whole.usage.completion_tokens
    assert usage_chunk.usage.prompt_tokens == whole.usage.prompt_tokens
    assert all(c.usage is None for c in chunks[:-1])


def test_completion_whole_and_streamed(client):
    whole = client.completions.create(
        model=MODEL, prompt=PROMPT, max_tokens=8, temperature=0
    )
    assert whole.id.startswith("cmpl-") and whole.object == "text_completion"
    text = whole.choices[0].text
    assert text and whole.choices[0].finish_reason == "length"
    assert whole.usage.completion_tokens == 8
    streamed = list(
        client.completions.create(
            model=MODEL, prompt=PROMPT, max_tokens=8, temperature=0, stream=True
        )
    )
    assert "".join(c.choices[0].text for c in streamed) == text
    assert streamed[-1].choices[0].finish_reason == "length"


def test_prompt_tokens_match_tokenize(server, client):
    status, _, body = server.post("/tokenize", {"content": PROMPT, "add_special": True})
    assert status == 200
    n = len(json.loads(body)["tokens"])
    r = client.completions.create(model=MODEL, prompt=PROMPT, max_tokens=1, temperature=0)
    assert r.usage.prompt_tokens == n
    ids = json.loads(body)["tokens"]
    by_ids = client.completions.create(model=MODEL, prompt=ids, max_tokens=3, temperature=0)
    by_text = client.completions.create(model=MODEL, prompt=PROMPT, max_tokens=3, temperature=0)
    assert by_ids.choices[0].text == by_text.choices[0].text


def test_echo_prepends_the_prompt(client):
    r = client.completions.create(
        model=MODEL, prompt=PROMPT, max_tokens=3, temperature=0, echo=True
    )
    assert r.choices[0].text.startswith(PROMPT)
    assert len(r.choices[0].text) > len(PROMPT)


def test_n_choices_and_several_prompts(client):
    r = client.chat.completions.create(
        model=MODEL, messages=QUESTION, max_tokens=4, temperature=1.0, n=3, seed=5
    )
    assert [c.index for c in r.choices] == [0, 1, 2]
    assert 3 <= r.usage.completion_tokens <= 12
    r = client.completions.create(
        model=MODEL, prompt=["One, two,", "Red, green,"], max_tokens=3, temperature=0, n=2
    )
    assert [c.index for c in r.choices] == [0, 1, 2, 3]
    # Greedy: the two choices of a prompt agree; the prompts differ.
    assert r.choices[0].text == r.choices[1].text
    assert r.choices[2].text == r.choices[3].text
    assert r.choices[0].text != r.choices[2].text


def test_n_streamed_has_every_choice_end(client):
    chunks = list(
        client.chat.completions.create(
            model=MODEL, messages=QUESTION, max_tokens=4, temperature=1.0, n=2, stream=True
        )
    )
    finished = sorted(
        ch.index for c in chunks for ch in c.choices if ch.finish_reason is not None
    )
    assert finished == [0, 1]
    roles = sorted(ch.index for c in chunks for ch in c.choices if ch.delta.role == "assistant")
    assert roles == [0, 1]


def test_stop_strings(client):
    free = client.completions.create(
        model=MODEL, prompt=PROMPT, max_tokens=12, temperature=0
    ).choices[0].text
    assert "." in free, free
    stopped = client.completions.create(
        model=MODEL, prompt=PROMPT, max_tokens=12, temperature=0, stop=["."]
    ).choices[0]
    assert stopped.finish_reason == "stop"
    assert stopped.text == free[: free.index(".")]
    streamed = list(
        client.completions.create(
            model=MODEL, prompt=PROMPT, max_tokens=12, temperature=0, stop=["."], stream=True
        )
    )
    assert "".join(c.choices[0].text for c in streamed) == stopped.text
    assert streamed[-1].choices[0].finish_reason == "stop"


def test_seed_reproducibility(client):
    def sample(seed, n=1):
        r = client.completions.create(
            model=MODEL, prompt="Once upon a time", max_tokens=10, temperature=1.0, seed=seed, n=n
        )
        return [c.text for c in r.choices]

    first = sample(1234)
    assert sample(1234) == first
    # Choice i of a seeded request uses seed + i.
    pair = sample(1234, n=2)
    assert pair[0] == first[0]
    assert pair[1] == sample(1235)[0]


def test_chat_logprobs(client):
    r = client.chat.completions.create(
        model=MODEL, messages=QUESTION, max_tokens=5, temperature=0, logprobs=True, top_logprobs=3
    )
    content = r.choices[0].logprobs.content
    assert len(content) == r.usage.completion_tokens
    for entry in content:
        assert entry.logprob <= 0
        assert bytes(entry.bytes).decode("utf-8", "replace") == entry.token
        assert len(entry.top_logprobs) == 3
        # Greedy: the chosen token is the most likely one.
        assert entry.top_logprobs[0].token == entry.token
        assert entry.top_logprobs[0].logprob == pytest.approx(entry.logprob)
        lps = [t.logprob for t in entry.top_logprobs]
        assert lps == sorted(lps, reverse=True)
    joined = "".join(e.token for e in content)
    assert joined.startswith(r.choices[0].message.content)


def test_completion_logprobs(client):
    r = client.completions.create(
        model=MODEL, prompt=PROMPT, max_tokens=5, temperature=0, logprobs=2
    )
    lp = r.choices[0].logprobs
    assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) == 5
    assert "".join(lp.tokens) == r.choices[0].text
    assert lp.text_offset == sorted(lp.text_offset) and lp.text_offset[0] == 0
    for token, top in zip(lp.tokens, lp.top_logprobs):
        assert 1 <= len(top) <= 2 and token in top


def test_raw_stream_is_strict_sse(server):
    for path, body in [
        ("/v1/chat/completions", {"messages": QUESTION, "max_tokens": 5, "stream": True,
                                  "stream_options": {"include_usage": True}}),
        ("/v1/completions", {"prompt": PROMPT, "max_tokens": 5, "stream": True, "n": 2}),
    ]:
        conn, resp = server.open_stream(path, body)
        events = read_events(resp)
        conn.close()
        assert events, path
        for e in events:
            assert "error" not in e, e


def test_batching_invariance(client):
    """Eight greedy requests at once give the same text as one at a time."""
    prompts = [
        "The sun rises in the",
        "A list of colours: red,",
        "def fibonacci(n):",
        "The largest ocean on Earth is",
        "In 1492, Columbus",
        "Water boils at",
        "My favourite fruit is",
        "The quick brown fox",
    ]

    def run(prompt):
        r = client.completions.create(model=MODEL, prompt=prompt, max_tokens=8, temperature=0)
        return r.choices[0].text

    alone = [run(p) for p in prompts]
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        together = list(pool.map(run, prompts))
    assert together == alone


def test_prefix_cache(server, client):
    """A second request sharing a long prefix reuses cached KV blocks: it reports cached
    tokens, and the engine computes fewer positions for it."""
    rng = random.Random(99)
    words = "river stone cloud lamp tiger seven orange piano window garden".split()
    prefix = " ".join(rng.choice(words) for _ in range(120))

    def ask(question):
        before = server.metric("kaiyuan_computed_tokens_total")
        r = client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "system", "content": prefix}, {"role": "user", "content": question}],
            max_tokens=2,
            temperature=0,
        )
        return r, server.metric("kaiyuan_computed_tokens_total") - before

    first, first_work = ask("Which word comes first?")
    second, second_work = ask("Which word comes last?")
    assert first.usage.prompt_tokens > 100
    # At least the whole 16-token blocks of the system prompt (some of them).
    assert second.usage.prompt_tokens_details.cached_tokens >= 64
    assert second_work < first_work
    assert server.metric("kaiyuan_cached_prompt_tokens_total") >= 64


def test_disconnect_mid_stream_frees_the_sequence(server):
    cancelled = server.metric("kaiyuan_requests_total", outcome="cancelled")
    conn, resp = server.open_stream(
        "/v1/completions",
        {"prompt": PROMPT, "max_tokens": 2000, "ignore_eos": True, "stream": True},
    )
    got = 0
    while got < 3:
        line = resp.readline()
        if line.startswith(b"data: "):
            got += 1
    assert server.metric("kaiyuan_running_sequences") >= 1
    conn.sock.close()
    conn.close()
    wait_for(lambda: server.metric("kaiyuan_running_sequences") == 0, 120, "running = 0")
    wait_for(
        lambda: server.metric("kaiyuan_requests_total", outcome="cancelled") > cancelled,
        120,
        "a cancelled request",
    )


def test_disconnect_mid_request_frees_the_sequence(server):
    """A client that hangs up on a whole (non-streamed) request cancels it too: the engine
    counts it as cancelled, not finished, and stops generating long before max_tokens."""
    cancelled = server.metric("kaiyuan_requests_total", outcome="cancelled")
    finished = server.metric("kaiyuan_requests_total", outcome="finished")
    generated = server.metric("kaiyuan_generated_tokens_total")
    conn = server.connection()
    conn.request(
        "POST",
        "/v1/completions",
        body=b'{"prompt": "Hello", "max_tokens": 2000, "ignore_eos": true}',
        headers={"Content-Type": "application/json"},
    )
    wait_for(lambda: server.metric("kaiyuan_running_sequences") >= 1, 120, "running >= 1")
    conn.sock.close()
    conn.close()
    wait_for(lambda: server.metric("kaiyuan_running_sequences") == 0, 120, "running = 0")
    # Without cancellation the request would run to max_tokens and end as `finished`.
    assert server.metric("kaiyuan_requests_total", outcome="cancelled") == cancelled + 1
    assert server.metric("kaiyuan_requests_total", outcome="finished") == finished
    assert server.metric("kaiyuan_generated_tokens_total") - generated < 2000

