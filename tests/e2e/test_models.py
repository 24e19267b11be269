"""Many models behind one server (issue 19): SmolLM2 and Gemma 3 from one models file, loaded
on first request, listed by GET /v1/models, unloaded after the keep-alive or to stay within
--max-loaded-bytes (least recently used first), unknown names 404 in both APIs' shapes, and
each model tokenizing with its own vocabulary (checked against the GGUF files' token lists,
read here by a small reader of our own, not through the server)."""

import concurrent.futures
import json
import os
import pathlib
import struct
import tempfile

import openai
import pytest

from kaiyuan_e2e import Server, error_of, make_client, wait_for

HERE = pathlib.Path(__file__).resolve().parent
MODELS = pathlib.Path(os.environ.get("KAIYUAN_MODELS", HERE.parent.parent / "models"))
SMOL_FILE = MODELS / "SmolLM2-135M-Instruct.Q4_1.gguf"
GEMMA_FILE = MODELS / "gemma-3-270m-q4_k_m.gguf"
TEXT = "Hello world, the two models differ"


def models_file(smol_pinned=True, gemma_pinned=False, extra=""):
    for p in (SMOL_FILE, GEMMA_FILE):
        assert p.exists(), f"{p} is missing: run scripts/fetch-models"
    f = tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False)
    f.write(f"""
[[models]]
name = "smol"
path = "{SMOL_FILE}"
aliases = ["smollm2"]
pinned = {str(smol_pinned).lower()}
context = 1024

[[models]]
name = "gemma"
path = "{GEMMA_FILE}"
aliases = ["gemma3"]
pinned = {str(gemma_pinned).lower()}
context = 512
{extra}
""")
    f.close()
    return f.name


def cards(server):
    status, _, body = server.get("/v1/models")
    assert status == 200
    return {m["id"]: m for m in json.loads(body)["data"]}


def loaded(server):
    return {name: card["loaded"] for name, card in cards(server).items()}


def chat(server, model, max_tokens=4):
    body = {"model": model, "messages": [{"role": "user", "content": "Say hi"}],
            "max_tokens": max_tokens, "temperature": 0}
    status, _, data = server.post("/v1/chat/completions", body)
    return status, json.loads(data)


@pytest.fixture(scope="module")
def two():
    s = Server("-t", "2", "--models", models_file(), "--keep-alive", "-1")
    yield s
    assert s.terminate() == 0, f"log kept at {s.log_path}"


def test_requests_during_a_load_wait_and_succeed(two):
    assert loaded(two) == {"smol": True, "gemma": False}, "only the pinned model at start"
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        waiting = [pool.submit(chat, two, "gemma") for _ in range(3)]
        # The other model keeps answering while Gemma loads.
        assert chat(two, "smol")[0] == 200
        results = [w.result() for w in waiting]
    for status, body in results:
        assert status == 200, body
        assert body["model"] == "gemma"
    assert loaded(two) == {"smol": True, "gemma": True}
    assert two.log().count("loaded model gemma on request") == 1, "one load for all three"


def test_the_model_list_describes_every_configured_model(two):
    chat(two, "gemma")
    c = cards(two)
    assert list(c) == ["smol", "gemma"]
    smol, gemma = c["smol"], c["gemma"]
    assert smol["object"] == "model" and smol["owned_by"] == "kaiyuan"
    assert smol["aliases"] == ["smollm2"] and gemma["aliases"] == ["gemma3"]
    assert (smol["pinned"], gemma["pinned"]) == (True, False)
    assert (smol["context_length"], gemma["context_length"]) == (1024, 512)
    assert smol["size_bytes"] == SMOL_FILE.stat().st_size
    # Neither template has tool-call markup (the generic JSON format) nor a thinking block.
    for card in (smol, gemma):
        assert card["capabilities"]["tool_format"] == "generic", card
        assert card["capabilities"]["reasoning"] is False, card
    one = json.loads(two.get("/v1/models/gemma3")[2])
    assert one["id"] == "gemma" and one["loaded"] is True
    ids = [m.id for m in make_client(two).models.list().data]
    assert ids == ["smol", "gemma"]


def test_unknown_models_are_404_in_both_api_shapes(two):
    client = make_client(two)
    with pytest.raises(openai.NotFoundError) as e:
        client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "x"}], max_tokens=1)
    err = e.value.body
    assert err["code"] == "model_not_found" and err["param"] == "model", err
    assert "gpt-4o" in err["message"] and "smol" in err["message"] and "gemma" in err["message"]
    status, _, body = two.post("/v1/completions", {"model": "nope", "prompt": "x"})
    assert status == 404 and error_of(body)["code"] == "model_not_found"
    status, _, body = two.get("/v1/models/nope")
    assert status == 404 and error_of(body)["code"] == "model_not_found"
    status, _, body = two.post("/v1/messages", {
        "model": "claude-x", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]})
    doc = json.loads(body)
    assert status == 404, doc
    assert doc["type"] == "error" and doc["error"]["type"] == "not_found_error", doc
    assert "claude-x" in doc["error"]["message"]
    # Aliases resolve.
    assert chat(two, "smollm2")[1]["model"] == "smol"
    assert chat(two, "gemma3")[1]["model"] == "gemma"


def gguf_metadata(path):
    """The key/value pairs of a GGUF file (v3 layout: header, then key/value pairs)."""
    scalar = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
              10: "<Q", 11: "<q", 12: "<d"}
    with open(path, "rb") as f:
        def read(fmt):
            return struct.unpack(fmt, f.read(struct.calcsize(fmt)))[0]

        def string():
            return f.read(read("<Q")).decode("utf-8", "replace")

        def value(kind):
            if kind == 8:
                return string()
            if kind == 9:
                item, n = read("<I"), read("<Q")
                return [value(item) for _ in range(n)]
            return read(scalar[kind])

        assert f.read(4) == b"GGUF" and read("<I") == 3
        read("<Q")  # tensors
        meta = {}
        for _ in range(read("<Q")):
            key, kind = string(), read("<I")
            meta[key] = value(kind)
        return meta


def gguf_tokens(path):
    """`tokenizer.ggml.tokens` of a GGUF file."""
    return gguf_metadata(path)["tokenizer.ggml.tokens"]


def kv_bytes_per_position(path):
    """Bytes one position of an f16 KV cache takes over all layers: keys and values of every
    KV head (GGUF's `attention.key_length`/`value_length`, else embedding ÷ heads)."""
    meta = gguf_metadata(path)
    arch = meta["general.architecture"]
    heads = meta[f"{arch}.attention.head_count"]
    kv_heads = meta.get(f"{arch}.attention.head_count_kv", heads)
    k = meta.get(f"{arch}.attention.key_length", meta[f"{arch}.embedding_length"] // heads)
    v = meta.get(f"{arch}.attention.value_length", k)
    return meta[f"{arch}.block_count"] * kv_heads * (k + v) * 2


def test_memory_bytes_are_the_weights_plus_the_full_kv_pool(two):
    chat(two, "gemma")
    c = cards(two)
    # SmolLM2: 30 layers × 3 KV heads × (64 + 64) × 2 bytes; Gemma 3 270M: 18 × 1 × 512 × 2.
    per_position = {"smol": 23040, "gemma": 18432}
    for name, path in (("smol", SMOL_FILE), ("gemma", GEMMA_FILE)):
        assert kv_bytes_per_position(path) == per_position[name], name
        card = c[name]
        assert card["size_bytes"] == path.stat().st_size
        positions = 16 * two.metric("kaiyuan_kv_blocks_total", model=name)
        assert positions >= card["context_length"], card
        assert card["memory_bytes"] == card["size_bytes"] + positions * per_position[name], card


def test_each_model_tokenizes_with_its_own_vocabulary(two):
    ids = {}
    for name, path, space in (("smol", SMOL_FILE, "\u0120"), ("gemma", GEMMA_FILE, "\u2581")):
        status, _, body = two.post("/tokenize", {"model": name, "content": TEXT})
        assert status == 200, body
        ids[name] = [t if isinstance(t, int) else t["id"] for t in json.loads(body)["tokens"]]
        vocab = gguf_tokens(path)
        text = "".join(vocab[i] for i in ids[name]).replace(space, " ")
        assert text == TEXT, (name, text)
        # prompt_tokens of a completion counts the same tokens (plus any BOS the model adds).
        status, _, body = two.post(
            "/v1/completions", {"model": name, "prompt": TEXT, "max_tokens": 1})
        assert status == 200, body
        assert json.loads(body)["usage"]["prompt_tokens"] - len(ids[name]) in (0, 1)
    assert ids["smol"] != ids["gemma"]


def test_idle_models_unload_after_the_keep_alive():
    s = Server("-t", "2", "--models", models_file(), "--keep-alive", "1s")
    try:
        assert chat(s, "gemma")[0] == 200
        wait_for(lambda: loaded(s) == {"smol": True, "gemma": False}, 60, "gemma to unload")
        assert "unloading model gemma (idle" in s.log()
        # It comes back on the next request; the pinned model never left.
        assert chat(s, "gemma")[0] == 200
        assert loaded(s)["smol"] is True
    finally:
        assert s.terminate() == 0, f"log kept at {s.log_path}"


def test_the_memory_budget_unloads_the_least_recently_used_model():
    # Room for either model with its KV pool, not both (`memory_bytes`, checked above). The
    # files alone would fit: the KV pools are what does not.
    smol_kv, gemma_kv = 16384 * 23040, 16384 * 18432
    budget = SMOL_FILE.stat().st_size + GEMMA_FILE.stat().st_size + smol_kv + gemma_kv - 1
    s = Server("-t", "2", "--models", models_file(smol_pinned=False), "--keep-alive", "-1",
               "--max-loaded-bytes", str(budget))
    try:
        assert loaded(s) == {"smol": False, "gemma": False}
        assert {n: c["memory_bytes"] for n, c in cards(s).items()} == {
            "smol": SMOL_FILE.stat().st_size + smol_kv,
            "gemma": GEMMA_FILE.stat().st_size + gemma_kv}
        assert chat(s, "smol")[0] == 200
        assert chat(s, "gemma")[0] == 200
        assert loaded(s) == {"smol": False, "gemma": True}
        assert "unloading model smol (to make room" in s.log()
        assert chat(s, "smol")[0] == 200
        assert loaded(s) == {"smol": True, "gemma": False}
    finally:
        assert s.terminate() == 0, f"log kept at {s.log_path}"


@pytest.mark.parametrize("extra,mentions", [
    ('pinnned = true', "pinnned"),
    ('[[models]]\nname = "other"\npath = "x.gguf"\naliases = ["smollm2"]', "smollm2"),
])
def test_a_bad_models_file_is_refused_at_start(extra, mentions):
    import subprocess
    from kaiyuan_e2e import BIN, ROOT
    r = subprocess.run([BIN, "serve", "--port", "0", "--models", models_file(extra=extra)],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    assert mentions in r.stderr, r.stderr


def test_admin_loads_and_unloads_models_only_with_the_admin_key():
    admin_key = "admin-models-0123456789abcdef"
    tmp = tempfile.mkdtemp(prefix="kaiyuan-models-e2e-")
    s = Server("-t", "2", "--models", models_file(), "--keep-alive", "-1",
               "--admin-key", admin_key, "--db", f"sqlite://{tmp}/meter.db")
    auth = {"Authorization": f"Bearer {admin_key}"}
    try:
        status, _, body = s.request("POST", "/admin/models/gemma3/load", b"", auth)
        assert status == 200, body
        card = json.loads(body)
        assert card["id"] == "gemma" and card["loaded"] is True
        status, _, body = s.request("POST", "/admin/models/smol/unload", b"", auth)
        assert status == 200 and json.loads(body)["loaded"] is False, body
        assert loaded_with(s, auth) == {"smol": False, "gemma": True}
        # Without the admin key: refused, nothing unloaded.
        status, _, _ = s.request("POST", "/admin/models/gemma/unload", b"")
        assert status == 401
        status, _, body = s.request("POST", "/admin/models/nope/load", b"", auth)
        assert status == 404 and error_of(body)["code"] == "model_not_found"
        assert loaded_with(s, auth) == {"smol": False, "gemma": True}
        # A key that may not use a model is refused before the model is loaded for it.
        status, _, body = s.request("POST", "/admin/keys",
                                    json.dumps({"name": "gemma only", "models": ["gemma"]}).encode(),
                                    {**auth, "Content-Type": "application/json"})
        assert status == 201, body
        key = {"Authorization": f"Bearer {json.loads(body)['key']}"}
        body = json.dumps({"model": "smollm2", "prompt": "x", "max_tokens": 1}).encode()
        status, _, data = s.request("POST", "/v1/completions", body,
                                    {**key, "Content-Type": "application/json"})
        assert status == 403 and error_of(data)["code"] == "model_not_allowed", data
        assert loaded_with(s, auth) == {"smol": False, "gemma": True}
        assert "loaded model smol on request" not in s.log()
    finally:
        assert s.terminate() == 0, f"log kept at {s.log_path}"


def test_without_an_admin_key_the_model_admin_api_does_not_exist(two):
    status, _, body = two.request("POST", "/admin/models/gemma/unload", b"")
    assert status == 404, body
    assert loaded(two)["smol"] is True


def loaded_with(server, headers):
    """`loaded` per model, for a server whose API needs a key (the admin key works)."""
    status, _, body = server.request("GET", "/v1/models", None, headers)
    assert status == 200, body
    return {m["id"]: m["loaded"] for m in json.loads(body)["data"]}


def test_a_models_file_sampling_default_fills_what_requests_omit_in_both_apis():
    s = Server("-t", "2", "--models", models_file(extra="sampling = { temperature = 0.0 }"),
               "--keep-alive", "-1")
    msgs = [{"role": "user", "content": "Write a short poem about the sea."}]

    def openai_text(**fields):
        status, _, body = s.post("/v1/chat/completions",
                                 {"model": "gemma", "messages": msgs, "max_tokens": 16, **fields})
        assert status == 200, body
        return json.loads(body)["choices"][0]["message"]["content"]

    def anthropic_text(**fields):
        status, _, body = s.post("/v1/messages",
                                 {"model": "gemma", "messages": msgs, "max_tokens": 16, **fields})
        assert status == 200, body
        return "".join(b["text"] for b in json.loads(body)["content"] if b["type"] == "text")

    try:
        greedy = openai_text(temperature=0)
        assert anthropic_text(temperature=0) == greedy
        # The control: sampling at temperature 1 gives another text for some seed.
        assert any(openai_text(temperature=1.0, seed=k) != greedy for k in range(4))
        assert any(anthropic_text(temperature=1.0) != greedy for _ in range(4))
        # Left out, the temperature is the models file's 0: greedy whatever the seed.
        assert all(openai_text(seed=k) == greedy for k in range(3))
        assert all(anthropic_text() == greedy for _ in range(3))
    finally:
        assert s.terminate() == 0, f"log kept at {s.log_path}"
