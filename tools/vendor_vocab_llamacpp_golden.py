#!/usr/bin/env python3
"""Writes testdata/golden/tokenizer/vendor_vocab.llamacpp.json: the ids llama.cpp's own tokenizer
(through `llama-cpp-python`, the issue's reference) gives for the whole tokenizer corpus with
some of llama.cpp's test vocabularies (models/ggml-vocab-*.gguf, extracted by
scripts/fetch-templates into .cache/vendor-vocab/; third-party files, not committed: the golden
records each one's file name and sha256).

llama.cpp's own cases for these vocabularies (test-tokenizer-0, checked by
crates/tokenizer/tests/vendor_vocab.rs) are 46 short strings each; this runs the 868 strings of
smollm2.llamacpp.json (the same corpus, in order) plus PROBES through:

- the vocabularies whose pre-tokenizers only these files exercise: deepseek-llm,
  deepseek-coder, qwen35, falcon;
- vocabularies relabelled with another `tokenizer.ggml.pre` (the GGUF copied with only that
  string changed; the files hold no tensors), for pre-tokenizer names llama.cpp has no test
  vocabulary for: `deepseek-v3` (DeepSeek-V3/R1) and `hunyuan-dense` (same regexes) on
  DeepSeek LLM's vocabulary, `hunyuan` on Qwen2's, `glm4` and `chatglm-bpe` on Llama 3's.

For each string: `ids` = `tokenize(text, add_bos=False, special=False)` and, only where it
differs, `ids_special` (`special=True`); `decoded`, only where it is not the text:
`llama_detokenize(ids, remove_special=False, unparse_special=False)`. An entry whose ids equal an earlier entry's (the same
vocabulary under a name llama.cpp splits the same way) says `same_ids_as` that entry instead. Also `add_bos=True, special=True` for BOS_SAMPLES, to
record whether llama.cpp adds BOS for the name. Loaded with `vocab_only=True`; nothing of
Kaiyuan is imported.

    tools/setup-llamacpp && scripts/fetch-templates
    .venv/bin/python tools/vendor_vocab_llamacpp_golden.py

Deterministic: rerunning with the same build and sdist reproduces the file byte for byte.
"""

import ctypes
import hashlib
import json
import pathlib
import struct
import sys
import tempfile

import llama_cpp

ROOT = pathlib.Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "testdata" / "golden" / "tokenizer"
VOCABS = ROOT / ".cache" / "vendor-vocab"
# (key in the golden, vocabulary NAME of ggml-vocab-NAME.gguf, tokenizer.ggml.pre or None to keep)
CONFIGS = [
    ("deepseek-llm", "deepseek-llm", None),
    ("deepseek-coder", "deepseek-coder", None),
    ("qwen35", "qwen35", None),
    ("falcon", "falcon", None),
    ("deepseek-llm as deepseek-v3", "deepseek-llm", "deepseek-v3"),
    ("deepseek-llm as hunyuan-dense", "deepseek-llm", "hunyuan-dense"),
    ("qwen2 as hunyuan", "qwen2", "hunyuan"),
    ("llama-bpe as glm4", "llama-bpe", "glm4"),
    ("llama-bpe as chatglm-bpe", "llama-bpe", "chatglm-bpe"),
]
# DeepSeek's markup and FIM tokens in text (control in these files, or user-defined look-alikes),
# the byte-level characters DeepSeek's files type user-defined, control bytes Falcon has no token
# for, and digit runs against the splitters' digit rules.
PROBES = [
    "<\uff5cbegin\u2581of\u2581sentence\uff5c>Hello<\uff5cend\u2581of\u2581sentence\uff5c>",
    "<\uff5cUser\uff5c>hi<\uff5cAssistant\uff5c>",
    "<|User|>hi<|Assistant|>ok<|EOT|>",
    "<\uff5cfim\u2581begin\uff5c>def f(<\uff5cfim\u2581hole\uff5c>)<\uff5cfim\u2581end\uff5c>",
    "\u00f8\u00f6\u00fa\u00ff \u00c0\u00c1 s\u00f8ster", "a\x03b", "x\x0by", "hello\x1d world",
    "1234567890 12 345 6789", "\u0661\u0662\u0663\u0664 \u00bd\u00bd", "[gMASK]<sop>hi",
    "<|endoftext|><|im_start|>x<|im_end|>", "<|begin_of_text|><|eot_id|>",
]
BOS_SAMPLES = ["hello", " leading space"]


def relabel(src: pathlib.Path, pre: str, dst: pathlib.Path) -> None:
    """Copies a tensor-less GGUF with its `tokenizer.ggml.pre` string replaced."""
    data = src.read_bytes()
    key = b"tokenizer.ggml.pre"
    at = data.find(struct.pack("<Q", len(key)) + key)
    assert at > 0 and data.count(key) == 1, f"{src}: no single {key!r}"
    vtype_at = at + 8 + len(key)
    assert struct.unpack_from("<I", data, vtype_at)[0] == 8, "pre is not a string"
    (n,) = struct.unpack_from("<Q", data, vtype_at + 4)
    start = vtype_at + 12
    n_tensors = struct.unpack_from("<Q", data, 8)[0]
    assert n_tensors == 0, f"{src}: {n_tensors} tensors (only vocab-only files can be relabelled)"
    new = pre.encode()
    dst.write_bytes(data[:vtype_at + 4] + struct.pack("<Q", len(new)) + new + data[start + n:])


def detokenize(llm, ids) -> str:
    """llama.cpp's `llama_detokenize(remove_special=False, unparse_special=False)`, called
    directly (llama-cpp-python's `Llama.detokenize` truncates pieces over 32 bytes)."""
    arr = (llama_cpp.llama_token * max(1, len(ids)))(*ids)
    size = 64 + 8 * len(ids)
    while True:
        buf = ctypes.create_string_buffer(size)
        n = llama_cpp.llama_detokenize(llm._model.vocab, arr, len(ids), buf, size, False, False)
        if n >= 0:
            return buf.raw[:n].decode("utf-8", "replace")
        size = -n


def main() -> int:
    if not VOCABS.is_dir():
        print(f"{VOCABS} is missing: run scripts/fetch-templates", file=sys.stderr)
        return 1
    corpus = [c["text"] for c in json.loads((GOLDEN / "smollm2.llamacpp.json").read_text())["cases"]]
    texts = corpus + PROBES
    vocabs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for key, name, pre in CONFIGS:
            src = VOCABS / f"ggml-vocab-{name}.gguf"
            path = src
            if pre is not None:
                path = pathlib.Path(tmp) / f"{name}-as-{pre}.gguf"
                relabel(src, pre, path)
            llm = llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)
            ids, special, decoded = [], {}, {}
            for i, text in enumerate(texts):
                raw = text.encode("utf-8")
                plain = llm.tokenize(raw, add_bos=False, special=False)
                ids.append(plain)
                back = detokenize(llm, plain)
                if back != text:
                    decoded[str(i)] = back
                with_special = llm.tokenize(raw, add_bos=False, special=True)
                if with_special != plain:
                    special[str(i)] = with_special
            entry = {
                "file": src.name,
                "sha256": hashlib.sha256(src.read_bytes()).hexdigest(),
                "pre": pre,
                "bos": {t: llm.tokenize(t.encode(), add_bos=True, special=True) for t in BOS_SAMPLES},
            }
            # Ids identical to an earlier entry's (the same vocabulary under a name llama.cpp
            # splits the same way) are stored once.
            same = [k for k, v in vocabs.items()
                    if v.get("ids") == ids and v["ids_special"] == special and v["decoded"] == decoded]
            if same:
                entry["same_ids_as"] = same[0]
            else:
                entry["ids"] = ids
            entry["ids_special"] = special
            entry["decoded"] = decoded
            vocabs[key] = entry
            del llm
            print(f"{key}: {len(ids)} strings, {len(special)} differ with special=True", file=sys.stderr)
    out = GOLDEN / "vendor_vocab.llamacpp.json"
    with out.open("w", encoding="utf-8") as f:
        f.write("{\n")
        f.write('  "generator": "tools/vendor_vocab_llamacpp_golden.py",\n')
        f.write(f'  "reference": "llama.cpp via llama-cpp-python {llama_cpp.__version__} '
                '(Llama(vocab_only=True).tokenize)",\n')
        f.write('  "flags": "ids: add_bos=False, special=False; ids_special (by string index, only '
                'where different): add_bos=False, special=True; bos: add_bos=True, special=True",\n')
        f.write(f'  "corpus": "the {len(corpus)} texts of smollm2.llamacpp.json, in order, then probes",\n')
        f.write(f'  "probes": {json.dumps(PROBES, ensure_ascii=True)},\n')
        f.write('  "vocabularies": {\n')
        for k, (key, v) in enumerate(vocabs.items()):
            f.write(f"    {json.dumps(key)}: {{\n")
            fields = [k for k in ("file", "sha256", "pre", "bos", "ids_special", "decoded", "same_ids_as") if k in v]
            f.write(",\n".join(f'      "{k}": {json.dumps(v[k], separators=(",", ":"))}' for k in fields))
            if "ids" in v:
                f.write(',\n      "ids": [\n')
                f.write(",\n".join("        " + json.dumps(r, separators=(",", ":")) for r in v["ids"]))
                f.write("\n      ]")
            f.write("\n")
            f.write("    }" + ("," if k + 1 < len(vocabs) else "") + "\n")
        f.write("  }\n}\n")
    print(f"{out.relative_to(ROOT)}: {len(vocabs)} vocabularies x {len(texts)} strings", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
