#!/usr/bin/env python3
"""Writes the llama.cpp reference goldens under testdata/golden/llamacpp/.

The reference is llama.cpp itself, driven through `llama-cpp-python` (built by
tools/setup-llamacpp into .venv). Nothing here calls Kaiyuan's code. For each model it writes:

  <model>.greedy.json  for every prompt: llama.cpp's tokenization, the logit summary at every
                       prompt position, and a 64-token greedy continuation with the top-2 raw
                       logits of every step (argmax taken here, in numpy, from the raw logits)
  <model>.ppl.json     perplexity of testdata/text/ppl.txt by the method of llama.cpp's
                       `llama-perplexity` tool (non-overlapping n_ctx windows, BOS at the start of
                       each window when the model adds BOS, second half of each window scored)

Every field is described in testdata/golden/llamacpp/README.md.

Usage: .venv/bin/python tools/llamacpp_golden.py [--models PATH...] [--text PATH] [--out DIR]
                                                 [--threads N] [--only greedy|ppl]
       .venv/bin/python tools/llamacpp_golden.py --measure-paths   (prints how far llama.cpp's
       own kernel paths disagree, the basis of the tests' margins; writes nothing)
The output is deterministic: the same models, text and llama.cpp build give identical files.
"""

from __future__ import annotations

import argparse
import ctypes
import hashlib
import json
import math
import os
import sys

import numpy as np

import llama_cpp
from llama_cpp import Llama

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

DEFAULT_MODELS = [
    "models/SmolLM2-135M-Instruct.Q4_1.gguf",
    "models/gemma-3-270m-q4_k_m.gguf",
]
SEED = 0x4B41_4959  # "KAIY": llama.cpp's sampler seed (unused by plain argmax) and the subset
N_GENERATE = 64  # greedy tokens per prompt
N_TOP = 16  # (id, logit) pairs kept at each prompt position
N_SUBSET = 256  # fixed seeded vocab ids whose logits are kept at each prompt position
GREEDY_CTX = 512  # context of the greedy runs (longest prompt + 64 fits)
PPL_CTX = 512  # llama-perplexity's -c

# Same prompts for every model; "chat" is filled in per model with its own turn markup.
# The long prompt is original prose written for this file.
LONG_PROMPT = (
    "Bread is one of the oldest prepared foods. A simple loaf needs only flour, water, salt and "
    "a leavening agent, yet the way these few ingredients interact is surprisingly complex. "
    "When flour is mixed with water, two proteins, glutenin and gliadin, bond to form gluten, "
    "an elastic network that traps the gas produced by yeast. The yeast feeds on sugars released "
    "from the starch by enzymes in the flour, and it gives off carbon dioxide and a little "
    "alcohol. During a long, cool rise, bacteria in the dough also produce acids that deepen the "
    "flavour. In the oven, the trapped gas expands, the starch sets, and the surface browns as "
    "sugars and proteins react with each other. A baker who understands these steps can adjust"
)
CHAT_QUESTION = "What are three tips for staying focused while studying?"
CHAT_TEMPLATES = {
    # SmolLM2's ChatML markup with its default system prompt (tokenizer.chat_template).
    "llama": (
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
        "Face<|im_end|>\n<|im_start|>user\n" + CHAT_QUESTION + "<|im_end|>\n"
        "<|im_start|>assistant\n"
    ),
    # Gemma 3's turn markup (BOS comes from add_special, as in its chat template).
    "gemma3": (
        "<start_of_turn>user\n" + CHAT_QUESTION + "<end_of_turn>\n<start_of_turn>model\n"
    ),
}
PROMPTS: list[tuple[str, str | None]] = [
    ("plain", "Once upon a time, in a small village at the edge of the forest,"),
    ("question", "Question: What causes the seasons on Earth?\nAnswer: The seasons are caused by"),
    ("quiz", "Q: How many legs does a spider have?\nA:"),
    ("code", 'def fibonacci(n):\n    """Return the n-th Fibonacci number."""\n'),
    ("list", "Here is a shopping list for a week of healthy meals:\n1."),
    ("chat", None),
    ("numbers", "The first twenty prime numbers are 2, 3, 5, 7,"),
    ("french", "La ville de Paris est connue dans le monde entier pour"),
    ("chinese", "北京是中国的首都，也是一座历史悠久的城市。"),
    ("markdown", "# Installation\n\nTo install the package, run:\n\n```bash\n"),
    ("long", LONG_PROMPT),
]


def f32_exact(x: float) -> float:
    """The f32 value as the shortest decimal that parses back to the same f32 (JSON number)."""
    return float(np.format_float_positional(np.float32(x), unique=True, trim="-"))


def r3(x: float) -> float:
    """Bulk logits: rounded to 0.001 absolute (far below the 2%-of-std test tolerance)."""
    return round(float(x), 3)


def top_k(logits: np.ndarray, k: int) -> list[int]:
    """Ids of the k largest logits, largest first; equal logits ordered by id."""
    part = np.argpartition(-logits, k)[:k]
    return sorted(part.tolist(), key=lambda i: (-float(logits[i]), i))


def sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def piece(llm: Llama, token: int) -> bytes:
    """llama.cpp's text for one token (special tokens rendered), with a buffer large enough."""
    buf = ctypes.create_string_buffer(256)
    n = llama_cpp.llama_token_to_piece(llm._model.vocab, token, buf, 256, 0, True)
    if n < 0:
        raise RuntimeError(f"token {token}: piece longer than 256 bytes")
    return buf.raw[:n]


def detokenize(llm: Llama, tokens: list[int]) -> str:
    return b"".join(piece(llm, t) for t in tokens).decode("utf-8", errors="replace")


def open_model(path: str, n_ctx: int, threads: int, flash_attn: bool = False) -> Llama:
    return Llama(
        model_path=path,
        n_ctx=n_ctx,
        n_batch=n_ctx,
        n_ubatch=n_ctx,
        n_threads=threads,
        n_threads_batch=threads,
        seed=SEED,
        logits_all=True,
        flash_attn=flash_attn,
        verbose=False,
    )


def architecture(llm: Llama) -> str:
    return llm.metadata["general.architecture"]


def model_info(path: str, llm: Llama) -> dict:
    return {
        "file": os.path.basename(path),
        "sha256": sha256(path),
        "architecture": architecture(llm),
        "n_vocab": llm.n_vocab(),
        "add_bos": bool(llama_cpp.llama_vocab_get_add_bos(llm._model.vocab)),
        "bos": int(llm.token_bos()),
        "eos": int(llm.token_eos()),
    }


def reference_info(threads: int) -> dict:
    return {
        "llama_cpp_python": llama_cpp.__version__,
        "system_info": llama_cpp.llama_print_system_info().decode().strip(),
        "n_threads": threads,
        "kv_cache": "f16 (llama.cpp default)",
        "flash_attn": False,
    }


def position_summary(logits: np.ndarray, subset: np.ndarray) -> dict:
    wide = logits.astype(np.float64)
    top = top_k(logits, N_TOP)
    return {
        "mean": round(float(wide.mean()), 5),
        "std": round(float(wide.std()), 5),
        "top_ids": top,
        "top_logits": [f32_exact(logits[i]) for i in top],
        "subset_logits": [r3(v) for v in logits[subset]],
    }


def greedy_prompt(llm: Llama, name: str, text: str, subset: np.ndarray) -> dict:
    parse_special = name == "chat"
    tokens = llm.tokenize(text.encode(), add_bos=True, special=parse_special)
    if len(tokens) + N_GENERATE > GREEDY_CTX:
        raise SystemExit(f"prompt {name}: {len(tokens)} tokens do not fit")
    llm.reset()
    llm.eval(tokens)  # one batch: prefill
    prompt_logits = [position_summary(llm.scores[p], subset) for p in range(len(tokens))]

    vocab = llm._model.vocab
    generated: list[int] = []
    top2: list[list] = []
    stopped_at_eog = False
    logits = llm.scores[len(tokens) - 1]
    for step in range(N_GENERATE):
        a, b = top_k(logits, 2)
        generated.append(a)
        top2.append([a, f32_exact(logits[a]), b, f32_exact(logits[b])])
        if llama_cpp.llama_vocab_is_eog(vocab, a):
            stopped_at_eog = True
            break
        if step + 1 < N_GENERATE:
            llm.eval([a])  # decode: one token at a time
            logits = llm.scores[llm.n_tokens - 1]
    return {
        "name": name,
        "text": text,
        "tokenize": {"add_special": True, "parse_special": parse_special},
        "prompt_tokens": tokens,
        "generated": generated,
        "stopped_at_eog": stopped_at_eog,
        "top2": top2,
        "generated_text": detokenize(llm, generated),
        "prompt_logits": prompt_logits,
    }


def greedy_golden(path: str, threads: int) -> dict:
    llm = open_model(path, GREEDY_CTX, threads)
    n_vocab = llm.n_vocab()
    rng = np.random.default_rng(SEED)
    subset = np.sort(rng.choice(n_vocab, size=N_SUBSET, replace=False))
    arch = architecture(llm)
    prompts = []
    for name, text in PROMPTS:
        if text is None:
            text = CHAT_TEMPLATES[arch]
        prompts.append(greedy_prompt(llm, name, text, subset))
        print(f"  {name}: {len(prompts[-1]['prompt_tokens'])} prompt tokens", file=sys.stderr)
    info = model_info(path, llm)
    llm.close()
    return {
        "model": info,
        "reference": reference_info(threads),
        "n_ctx": GREEDY_CTX,
        "n_generate": N_GENERATE,
        "subset_seed": SEED,
        "subset_ids": subset.tolist(),
        "prompts": prompts,
    }


def read_text_like_llama_perplexity(path: str) -> str:
    """`llama-perplexity -f`: the whole file, minus one trailing newline."""
    with open(path, "rb") as f:
        text = f.read().decode("utf-8")
    return text[:-1] if text.endswith("\n") else text


def ppl_golden(path: str, text_path: str, threads: int) -> dict:
    llm = open_model(path, PPL_CTX, threads)
    vocab = llm._model.vocab
    add_bos = bool(llama_cpp.llama_vocab_get_add_bos(vocab))
    text = read_text_like_llama_perplexity(text_path)
    tokens = llm.tokenize(text.encode(), add_bos=True, special=False)
    n_chunks = len(tokens) // PPL_CTX
    if n_chunks < 2:
        raise SystemExit(f"{path}: text gives {len(tokens)} tokens, need {2 * PPL_CTX}")
    first = PPL_CTX // 2
    chunks = []
    nll_total = 0.0
    count = 0
    for c in range(n_chunks):
        window = tokens[c * PPL_CTX : (c + 1) * PPL_CTX]
        if add_bos:
            window[0] = llm.token_bos()
        llm.reset()  # empty KV cache for every window
        llm.eval(window)
        token_nll = []
        for p in range(first, PPL_CTX - 1):
            logits = llm.scores[p]
            peak = float(logits.max())
            sum_exp = float(np.exp((logits - peak).astype(np.float64)).sum())
            token_nll.append(peak + math.log(sum_exp) - float(logits[window[p + 1]]))
        nll_total += sum(token_nll)
        count += len(token_nll)
        chunks.append(
            {
                "mean_nll": round(sum(token_nll) / len(token_nll), 6),
                "running_ppl": round(math.exp(nll_total / count), 6),
                "token_nll": [round(v, 4) for v in token_nll],
            }
        )
        print(f"  chunk {c + 1}/{n_chunks}: ppl so far {math.exp(nll_total / count):.4f}", file=sys.stderr)
    info = model_info(path, llm)
    llm.close()
    return {
        "model": info,
        "reference": reference_info(threads),
        "text_file": os.path.relpath(text_path, REPO),
        "text_sha256": sha256(text_path),
        "method": (
            "llama-perplexity's method (tools/perplexity/perplexity.cpp, function perplexity): "
            "the text file minus one trailing newline is tokenized whole with add_special=true, "
            "parse_special=false (so a BOS is prepended exactly when the model's add_bos is true). "
            "The tokens are cut into n_chunks = floor(len/n_ctx) non-overlapping windows of n_ctx "
            "tokens; leftover tokens are unused. If add_bos, the first token of every window is "
            "replaced by BOS. Each window is evaluated from an empty KV cache at positions "
            "0..n_ctx-1. The logits at positions p = n_ctx/2 .. n_ctx-2 are scored against the "
            "next token of the window: nll = log(sum(exp(logits - max))) + max - logits[next] "
            "(n_ctx/2 - 1 = 255 predictions per window). ppl = exp(total nll / total count); "
            "running_ppl is the value after each window, which is what the tool prints."
        ),
        "n_ctx": PPL_CTX,
        "first_scored_position": first,
        "add_bos": add_bos,
        "n_tokens": len(tokens),
        "n_chunks": n_chunks,
        "scored_per_chunk": PPL_CTX - 1 - first,
        "tokens": tokens,
        "chunks": chunks,
        "mean_nll": round(nll_total / count, 6),
        "ppl": round(math.exp(nll_total / count), 6),
    }


def measure_paths(path: str, threads: int) -> None:
    """Prints how far llama.cpp's logits move between its own kernel paths (not stored).

    The greedy steps are decoded one token at a time (matrix-vector kernels); the same tokens
    are then evaluated as one batch (matrix-matrix kernels), and once more one at a time with
    a different thread count, and once more with flash attention. The differences show how
    large a near-tie can flip between two valid implementations.
    """
    runs = {}
    for label, n_threads, batched, fa in [("decode", threads, False, False),
                                          ("batch", threads, True, False),
                                          ("decode-1t", 1, False, False),
                                          ("decode-flash-attn", threads, False, True)]:
        llm = open_model(path, GREEDY_CTX, n_threads, fa)
        arch = architecture(llm)
        per_prompt = []
        for name, text in PROMPTS:
            text = CHAT_TEMPLATES[arch] if text is None else text
            tokens = llm.tokenize(text.encode(), add_bos=True, special=name == "chat")
            llm.reset()
            llm.eval(tokens)
            if label == "decode":
                steps = [llm.scores[len(tokens) - 1].copy()]
                for _ in range(N_GENERATE - 1):
                    a = int(np.argmax(steps[-1]))
                    if llama_cpp.llama_vocab_is_eog(llm._model.vocab, a):
                        break
                    llm.eval([a])
                    steps.append(llm.scores[llm.n_tokens - 1].copy())
                gen = [int(np.argmax(s)) for s in steps]
            else:
                gen = runs["decode"][len(per_prompt)][0]
                if batched:
                    llm.eval(gen[:-1])
                    steps = [llm.scores[len(tokens) - 1 + i].copy() for i in range(len(gen))]
                else:
                    steps = [llm.scores[len(tokens) - 1].copy()]
                    for a in gen[:-1]:
                        llm.eval([a])
                        steps.append(llm.scores[llm.n_tokens - 1].copy())
            per_prompt.append((gen, np.stack(steps)))
        runs[label] = per_prompt
        llm.close()
    ref = runs["decode"]
    for label in ("batch", "decode-1t", "decode-flash-attn"):
        worst_abs = worst_rel = worst_gap = first_flip_gap = 0.0
        flips = []
        n_full = 0
        for (gen, a), (_, b), (name, _) in zip(ref, runs[label], PROMPTS):
            diff = (a.astype(np.float64) - b)
            worst_abs = max(worst_abs, float(np.abs(diff).max()))
            rms = np.sqrt((diff**2).mean(axis=1)) / a.std(axis=1)
            worst_rel = max(worst_rel, float(rms.max()))
            flipped = False
            for i, tok in enumerate(gen):
                top = top_k(a[i], 2)
                gap_a = float(a[i][top[0]] - a[i][top[1]])
                gap_b = float(b[i][top[0]] - b[i][top[1]])
                worst_gap = max(worst_gap, abs(gap_a - gap_b))
                if int(np.argmax(b[i])) != tok:
                    flips.append(f"{name}@{i} (gap {gap_a:.4f})")
                    if not flipped:
                        first_flip_gap = max(first_flip_gap, gap_a)
                    flipped = True
            n_full += not flipped
        print(f"{os.path.basename(path)} decode vs {label}: max |dlogit| {worst_abs:.4f}, "
              f"max RMS/std {worst_rel:.5f}, max |dgap(top-2)| {worst_gap:.4f}, "
              f"prompts without a flip: {n_full}/{len(ref)}, largest gap at a first flip: "
              f"{first_flip_gap:.4f}, argmax flips (teacher-forced): {flips or 'none'}")


def measure_prompt_paths(path: str, threads: int) -> None:
    """Prints how far llama.cpp's prompt logits move between its own paths (not stored).

    The goldens' prompt logits come from one batch without flash attention. Here the same
    prompts are also run one token at a time, and as one batch with flash attention; printed
    is the RMS difference of the full logit vectors relative to their standard deviation (the
    metric of the prompt-logit test), median and maximum over all prompt positions.
    """
    ways = [("batch", False, True), ("one-at-a-time", False, False), ("batch-flash-attn", True, True)]
    logits: dict[str, list[np.ndarray]] = {}
    for label, fa, batched in ways:
        llm = open_model(path, GREEDY_CTX, threads, fa)
        arch = architecture(llm)
        rows = []
        for name, text in PROMPTS:
            text = CHAT_TEMPLATES[arch] if text is None else text
            tokens = llm.tokenize(text.encode(), add_bos=True, special=name == "chat")
            llm.reset()
            if batched:
                llm.eval(tokens)
            else:
                for t in tokens:
                    llm.eval([t])
            rows.append(llm.scores[: len(tokens)].copy())
        logits[label] = rows
        llm.close()
    ref = np.concatenate(logits["batch"]).astype(np.float64)
    for label in ("one-at-a-time", "batch-flash-attn"):
        other = np.concatenate(logits[label]).astype(np.float64)
        rel = np.sqrt(((ref - other) ** 2).mean(axis=1)) / ref.std(axis=1)
        top1 = float((ref.argmax(axis=1) == other.argmax(axis=1)).mean())
        print(f"{os.path.basename(path)} prompt logits, batch vs {label}: RMS/std median "
              f"{np.median(rel):.4f}, 90% {np.quantile(rel, 0.9):.4f}, max {rel.max():.4f}; "
              f"top-1 agreement {top1:.3f} over {len(rel)} positions")


def dump(obj, indent: int = 0) -> str:
    """JSON with dicts and lists of containers spread over lines, flat lists on one line."""
    pad = " " * indent
    inner = " " * (indent + 1)
    if isinstance(obj, dict):
        items = [f"{inner}{json.dumps(k)}: {dump(v, indent + 1)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, list) and any(isinstance(v, (dict, list)) for v in obj):
        if all(isinstance(v, list) and not any(isinstance(w, (dict, list)) for w in v) for v in obj):
            # list of flat lists (top2): one per line
            rows = [inner + json.dumps(v, separators=(",", ":"), ensure_ascii=False) for v in obj]
        else:
            rows = [inner + dump(v, indent + 1) for v in obj]
        return "[\n" + ",\n".join(rows) + "\n" + pad + "]"
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def write(path: str, obj: dict) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(dump(obj) + "\n")
    print(f"wrote {os.path.relpath(path, REPO)} ({os.path.getsize(path)} bytes)", file=sys.stderr)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=[os.path.join(REPO, m) for m in DEFAULT_MODELS])
    ap.add_argument("--text", default=os.path.join(REPO, "testdata/text/ppl.txt"))
    ap.add_argument("--out", default=os.path.join(REPO, "testdata/golden/llamacpp"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", choices=["greedy", "ppl"])
    ap.add_argument("--measure-paths", action="store_true",
                    help="print logit differences between llama.cpp's kernel paths; write nothing")
    args = ap.parse_args()
    if llama_cpp.__version__ != "0.3.36":
        print(f"warning: llama-cpp-python {llama_cpp.__version__} != 0.3.36", file=sys.stderr)
    os.makedirs(args.out, exist_ok=True)
    llama_cpp.llama_backend_init()
    for path in args.models:
        stem = os.path.basename(path).removesuffix(".gguf")
        print(f"{stem}:", file=sys.stderr)
        if args.measure_paths:
            measure_prompt_paths(path, args.threads)
            measure_paths(path, args.threads)
            continue
        if args.only in (None, "greedy"):
            write(os.path.join(args.out, f"{stem}.greedy.json"), greedy_golden(path, args.threads))
        if args.only in (None, "ppl"):
            write(os.path.join(args.out, f"{stem}.ppl.json"), ppl_golden(path, args.text, args.threads))


if __name__ == "__main__":
    main()
