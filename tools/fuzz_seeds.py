#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora (crates/*/fuzz/seeds/TARGET/) from the test suites.

Sources: tokenizer strings (testdata/golden/tokenizer/*.json), chat conversations
(testdata/golden/chat_template/*.json), request bodies (the `json!({...})` literals of
crates/server/src/api/*_tests.rs and the `json=` dicts of tests/e2e/*.py), schemas
(tests/e2e/schemas.json) and grammars from crates/grammar/tests. Deterministic; run from the
repository root: python3 tools/fuzz_seeds.py. Each file's name is its content's sha1, as
libFuzzer names corpus entries.
"""
import ast
import glob
import hashlib
import json
import os
import re
import shutil
import struct

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write(target_dir, seeds):
    shutil.rmtree(target_dir, ignore_errors=True)
    os.makedirs(target_dir)
    seen = set()
    for data in seeds:
        name = hashlib.sha1(data).hexdigest()
        if name in seen:
            continue
        seen.add(name)
        with open(os.path.join(target_dir, name), "wb") as f:
            f.write(data)
    print(f"{os.path.relpath(target_dir, ROOT)}: {len(seen)} seeds")


def spread(items, n):
    """At most n items, evenly spread over the list (keeps variety, stays small)."""
    if len(items) <= n:
        return items
    step = len(items) / n
    return [items[int(i * step)] for i in range(n)]


def tokenizer_seeds():
    seeds = []
    for mode, name in ((0, "smollm2"), (1, "gemma3")):
        with open(os.path.join(ROOT, f"testdata/golden/tokenizer/{name}.json")) as f:
            cases = json.load(f)["cases"]
        for c in spread(cases, 60):
            seeds.append(bytes([mode]) + c["text"].encode())
        # Decode seeds: the reference ids (mode bit 2), some rendered with specials (bit 4).
        for i, c in enumerate(spread(cases, 10)):
            ids = c["ids"][:64] + [0xFFFFFFFF if i % 2 else 0x80000000 | 70000]
            seeds.append(bytes([mode | 2 | (4 * (i % 2))]) + struct.pack(f"<{len(ids)}I", *ids))
    seeds.append(bytes([0]) + "<|im_start|>user\nhi<|im_end|>".encode())
    seeds.append(bytes([1]) + "<start_of_turn>user\nhi<end_of_turn>".encode())
    return seeds


def chat_seeds():
    seeds = []
    for file in ("cases.json", "vendor_tools.json"):
        with open(os.path.join(ROOT, "testdata/golden/chat_template", file)) as f:
            cases = json.load(f)["cases"]
        for i, c in enumerate(spread(cases, 30)):
            req = {"messages": c["messages"], "add_generation_prompt": c.get("add_generation_prompt", True)}
            if c.get("tools"):
                req["tools"] = c["tools"]
            if c.get("extra"):
                req["chat_template_kwargs"] = c["extra"]
            seeds.append(bytes([i % 256]) + json.dumps(req).encode())
    # Raw mode: NUL-separated messages, first character picks the role.
    seeds.append(bytes([0x40]) + "\x00hello <|im_end|>\x00\x01<|im_start|>system\n".encode())
    seeds.append(bytes([0xC1]) + "\x00<end_of_turn>\x00\x01</think>x\x00\x03{\"a\":1}".encode())
    return seeds


def rust_json_literals(text):
    """The `json!(...)` literals that are plain JSON (no Rust expressions inside)."""
    out = []
    for m in re.finditer(r"json!\(", text):
        depth, i = 0, m.end()
        start = i
        while i < len(text):
            ch = text[i]
            if ch == '"':
                i += 1
                while i < len(text) and text[i] != '"':
                    i += 2 if text[i] == "\\" else 1
            elif ch in "([{":
                depth += 1
            elif ch in ")]}":
                if depth == 0:
                    break
                depth -= 1
            i += 1
        lit = re.sub(r",(\s*[}\]])", r"\1", text[start:i])
        try:
            value = json.loads(lit)
        except ValueError:
            continue
        if isinstance(value, dict):
            out.append(value)
    return out


def python_json_dicts(text):
    out = []
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Dict):
            try:
                value = ast.literal_eval(node)
            except (ValueError, SyntaxError, TypeError):
                continue
            if isinstance(value, dict) and ("messages" in value or "prompt" in value):
                out.append(value)
    return out


def server_seeds():
    bodies = []
    for path in sorted(glob.glob(os.path.join(ROOT, "crates/server/src/api/*_tests.rs"))):
        with open(path) as f:
            bodies += rust_json_literals(f.read())
    for path in sorted(glob.glob(os.path.join(ROOT, "tests/e2e/*.py"))):
        with open(path) as f:
            bodies += python_json_dicts(f.read())
    bodies = [b for b in bodies if any(k in b for k in ("messages", "prompt", "tools", "model"))]
    seeds = [json.dumps(b).encode() for b in spread(bodies, 150)]
    seeds += [b"{}", b"[]", b'{"messages": null}', b"\xff\xfe"]
    return seeds


def grammar_seeds():
    picks = bytes(range(8))
    seeds = []
    with open(os.path.join(ROOT, "tests/e2e/schemas.json")) as f:
        for i, s in enumerate(json.load(f)):
            seeds.append(bytes([i % 2]) + json.dumps(s["schema"]).encode() + picks)
    for path in sorted(glob.glob(os.path.join(ROOT, "crates/grammar/tests/*.rs"))):
        with open(path) as f:
            text = f.read()
        for m in re.finditer(r'GrammarSpec::(Lark|Regex)\((r#*)?"((?:[^"\\]|\\.)*)"', text):
            kind, raw, src = m.group(1), m.group(2), m.group(3)
            if not raw:
                src = src.encode().decode("unicode_escape")
            seeds.append(bytes([2 if kind == "Lark" else 3]) + src.encode() + picks)
        for schema in rust_json_literals(text):
            seeds.append(bytes([1]) + json.dumps(schema).encode() + picks)
    seeds.append(bytes([4]) + picks)
    return seeds


def gguf_seeds():
    # The base file the GGUF malformed-input tests write (tests/malformed.rs), if built.
    seeds = []
    for path in glob.glob(os.path.join(ROOT, "target/tmp/*.gguf")):
        with open(path, "rb") as f:
            seeds.append(f.read())
    return seeds


def main():
    write(os.path.join(ROOT, "crates/tokenizer/fuzz/seeds/tokenizer"), tokenizer_seeds())
    write(os.path.join(ROOT, "crates/chat/fuzz/seeds/chat_template"), chat_seeds())
    write(os.path.join(ROOT, "crates/server/fuzz/seeds/api_request"), server_seeds())
    write(os.path.join(ROOT, "crates/grammar/fuzz/seeds/grammar_compile"), grammar_seeds())
    gguf = gguf_seeds()
    if gguf:
        write(os.path.join(ROOT, "crates/gguf/fuzz/seeds/gguf_parse"), gguf)


if __name__ == "__main__":
    main()
