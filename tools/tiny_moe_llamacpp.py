#!/usr/bin/env python3
"""llama.cpp's view of the tiny mixture-of-experts models (testdata/tiny/<arch>.{f32,q8_0}.gguf,
made by tools/tiny_moe_models.py): writes testdata/tiny/<arch>.llamacpp.json with, for each
file and for a few prompts cut from the golden token sequence (token ids, no tokenizer):

  prompt_tokens   the ids fed to llama.cpp as one batch (prefill)
  prompt_logits   llama.cpp's logits at every prompt position, rounded to 1e-4
  generated       a greedy continuation (argmax in numpy of the raw logits), each step
                  decoded one token at a time
  top2            per step: [best id, its logit, runner-up id, its logit] (for near-tie rules)

The reference is llama.cpp itself through llama-cpp-python (tools/setup-llamacpp builds it
into .venv); nothing here calls Kaiyuan's code.

One file is not given to llama.cpp as is: llama.cpp requires `deepseek2.attention.q_lora_rank`
unless a deepseek2 model has DeepSeek-V2-Lite's 26 or 27 layers, so for the 3-layer
V2-Lite-style model (no query compression, so the converter writes no q_lora_rank) it runs
on a temporary copy made by gguf-py's own gguf_new_metadata with `q_lora_rank = 0` added,
which llama.cpp reads as "no query compression" (it then loads `attn_q`). Tensors and every
other key are copied unchanged.

Run from the repository root: .venv/bin/python tools/tiny_moe_llamacpp.py [ARCH...]
"""
import json
import os
import sys
import tempfile

import numpy as np
import gguf
import llama_cpp
from llama_cpp import Llama

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
TINY = os.path.join(ROOT, "testdata", "tiny")
N_CTX = 128
N_GENERATE = 24
PROMPTS = [(0, 8), (10, 30), (4, 40)]  # slices of the golden tokens


def golden_tokens(arch):
    r = gguf.GGUFReader(os.path.join(TINY, f"{arch}.golden.gguf"))
    f = r.fields["golden.tokens"]
    return [int(f.parts[i][0]) for i in f.data]


def top2(logits):
    order = np.argsort(-logits, kind="stable")
    a, b = int(order[0]), int(order[1])
    return [a, float(logits[a]), b, float(logits[b])]


def for_llamacpp(path, work):
    """`path`, or a copy that llama.cpp accepts (see the module docs)."""
    from gguf.scripts.gguf_new_metadata import MetadataDetails, copy_with_new_metadata
    r = gguf.GGUFReader(path)
    arch = r.get_field("general.architecture").contents()
    key = f"{arch}.attention.q_lora_rank"
    if arch != "deepseek2" or r.get_field(key) is not None:
        return path
    out = os.path.join(work, os.path.basename(path))
    w = gguf.GGUFWriter(out, arch=arch, endianess=r.endianess)
    copy_with_new_metadata(r, w, {key: MetadataDetails(gguf.GGUFValueType.UINT32, 0)}, [])
    return out


def run_file(path, tokens):
    llm = Llama(model_path=path, n_ctx=N_CTX, n_batch=N_CTX, n_ubatch=N_CTX, n_threads=2,
                n_threads_batch=2, logits_all=True, flash_attn=False, verbose=False)
    out = []
    for lo, hi in PROMPTS:
        prompt = tokens[lo:hi]
        llm.reset()
        llm.eval(prompt)
        prompt_logits = [[round(float(v), 4) for v in llm.scores[p]] for p in range(len(prompt))]
        generated, steps = [], []
        logits = np.array(llm.scores[len(prompt) - 1])
        for step in range(N_GENERATE):
            t = top2(logits)
            generated.append(t[0])
            steps.append(t)
            if step + 1 < N_GENERATE:
                llm.eval([t[0]])
                logits = np.array(llm.scores[llm.n_tokens - 1])
        out.append({"prompt_tokens": prompt, "prompt_logits": prompt_logits,
                    "generated": generated, "top2": steps})
    llm.close()
    return out


def main():
    archs = sys.argv[1:] or ["qwen3moe"]
    for arch in archs:
        tokens = golden_tokens(arch)
        doc = {"source": f"llama-cpp-python {llama_cpp.__version__}, n_threads 2, f16 KV cache, "
                         "no flash attention; tools/tiny_moe_llamacpp.py",
               "n_generate": N_GENERATE, "files": {}}
        for weights in ("f32", "q8_0"):
            with tempfile.TemporaryDirectory() as work:
                path = for_llamacpp(os.path.join(TINY, f"{arch}.{weights}.gguf"), work)
                doc["files"][weights] = run_file(path, tokens)
        path = os.path.join(TINY, f"{arch}.llamacpp.json")
        with open(path, "w") as f:
            json.dump(doc, f, separators=(",", ":"))
            f.write("\n")
        print(f"wrote {path} ({os.path.getsize(path)} bytes)")


if __name__ == "__main__":
    main()
