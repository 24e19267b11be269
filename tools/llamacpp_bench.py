#!/usr/bin/env python3
"""llama.cpp's speed by llama-bench's method, through llama-cpp-python's low-level API.

llama-cpp-python ships no llama-bench binary, so this reproduces its method (written for
Kaiyuan from llama-bench's documented behaviour, no code copied) and prints the same JSON
records as `kaiyuan bench --json`, for scripts/bench-vs-llamacpp:

- one context per test, n_ctx = depth + test size, n_batch = n_ubatch = P (the -p value),
  n_threads = n_threads_batch = T, f16 KV cache, flash attention off (llama-bench defaults;
  `--flash-attn` turns it on);
- ppP: clear the memory (KV cache), restore the DEPTH-token state if -d was given (computed
  once per test, as llama-bench caches it), then time one llama_decode of P tokens (logits of
  the last only, llama_batch_get_one's default) and llama_synchronize;
- tgN: same start, then time N llama_decode calls of one token each;
- one warm-up run before R timed runs; tokens/s mean and sample standard deviation.

Tokens are random ids of normal (not control) tokens, like `kaiyuan bench`; llama-bench itself
draws any id and starts with BOS. Usage:

  tools/llamacpp_bench.py -m MODEL [-p 512] [-n 128] [-d 0] [-t 2] [-r 5] [--only pp|tg] [--flash-attn]

Needs llama-cpp-python (tools/setup-llamacpp).
"""

import argparse
import ctypes
import json
import random
import statistics
import sys
import time

import llama_cpp as L


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-m", "--model", required=True)
    ap.add_argument("-p", "--n-prompt", type=int, default=512)
    ap.add_argument("-n", "--n-gen", type=int, default=128)
    ap.add_argument("-d", "--n-depth", type=int, default=0)
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("-r", "--repetitions", type=int, default=5)
    ap.add_argument("--only", choices=["pp", "tg"])
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--flash-attn", action="store_true", help="flash attention on")
    args = ap.parse_args()
    for name in ("n_prompt", "n_gen", "threads", "repetitions"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.n_depth < 0:
        ap.error("--n-depth must be >= 0")
    return args


@L.llama_log_callback
def _quiet(level, text, user_data):
    pass


def decode(ctx, tokens):
    arr = (L.llama_token * len(tokens))(*tokens)
    rc = L.llama_decode(ctx, L.llama_batch_get_one(arr, len(tokens)))
    if rc != 0:
        sys.exit(f"llama_decode failed: {rc}")


def run_test(model, normal, rng, args, kind, size):
    depth = args.n_depth
    cp = L.llama_context_default_params()
    cp.n_ctx = depth + size
    cp.n_batch = args.n_prompt
    cp.n_ubatch = args.n_prompt
    cp.n_threads = args.threads
    cp.n_threads_batch = args.threads
    cp.flash_attn_type = (
        L.LLAMA_FLASH_ATTN_TYPE_ENABLED if args.flash_attn else L.LLAMA_FLASH_ATTN_TYPE_DISABLED
    )
    cp.no_perf = True
    ctx = L.llama_init_from_model(model, cp)
    if not ctx:
        sys.exit("cannot create a llama.cpp context")
    mem = L.llama_get_memory(ctx)
    draw = lambda n: [normal[rng.randrange(len(normal))] for _ in range(n)]

    state = None
    if depth:
        L.llama_memory_clear(mem, False)
        context = draw(depth)
        for i in range(0, depth, args.n_prompt):
            decode(ctx, context[i : i + args.n_prompt])
        L.llama_synchronize(ctx)
        size_bytes = L.llama_state_seq_get_size(ctx, 0)
        state = (ctypes.c_uint8 * size_bytes)()
        L.llama_state_seq_get_data(ctx, state, size_bytes, 0)

    samples = []
    for run in range(args.repetitions + 1):  # run 0 is the warm-up
        L.llama_memory_clear(mem, False)
        if state is not None:
            if L.llama_state_seq_set_data(ctx, state, len(state), 0) == 0:
                sys.exit("cannot restore the depth state")
        tokens = draw(size)
        if kind == "pp":
            arr = (L.llama_token * size)(*tokens)
            batch = L.llama_batch_get_one(arr, size)
            start = time.perf_counter_ns()
            if L.llama_decode(ctx, batch) != 0:
                sys.exit("llama_decode failed")
            L.llama_synchronize(ctx)
        else:
            singles = [(L.llama_token * 1)(t) for t in tokens]
            batches = [L.llama_batch_get_one(a, 1) for a in singles]
            start = time.perf_counter_ns()
            for b in batches:
                if L.llama_decode(ctx, b) != 0:
                    sys.exit("llama_decode failed")
                L.llama_synchronize(ctx)
        elapsed = max(time.perf_counter_ns() - start, 1)
        if run > 0:
            samples.append(elapsed)
    L.llama_free(ctx)
    return samples


def main():
    args = parse_args()
    L.llama_log_set(_quiet, None)
    L.llama_backend_init()
    mp = L.llama_model_default_params()
    mp.n_gpu_layers = 0
    model = L.llama_model_load_from_file(args.model.encode(), mp)
    if not model:
        sys.exit(f"cannot load {args.model}")
    vocab = L.llama_model_get_vocab(model)
    normal = [
        i
        for i in range(L.llama_vocab_n_tokens(vocab))
        if L.llama_vocab_get_attr(vocab, i) & L.LLAMA_TOKEN_ATTR_NORMAL
    ]
    desc = ctypes.create_string_buffer(256)
    L.llama_model_desc(model, desc, len(desc))
    rng = random.Random(args.seed)

    tests = []
    if args.only != "tg":
        tests.append(("pp", args.n_prompt))
    if args.only != "pp":
        tests.append(("tg", args.n_gen))
    records = []
    for kind, size in tests:
        ns = run_test(model, normal, rng, args, kind, size)
        ts = [size * 1e9 / x for x in ns]
        name = f"{kind}{size}" + (f" @ d{args.n_depth}" if args.n_depth else "")
        records.append(
            {
                "model_filename": args.model,
                "model_type": desc.value.decode(errors="replace"),
                "model_size": L.llama_model_size(model),
                "model_n_params": L.llama_model_n_params(model),
                "backend": "CPU",
                "build": f"llama-cpp-python {L.__version__}",
                "system_info": L.llama_print_system_info().decode(errors="replace").strip(),
                "n_threads": args.threads,
                "test": name,
                "n_prompt": size if kind == "pp" else 0,
                "n_gen": size if kind == "tg" else 0,
                "n_depth": args.n_depth,
                "reps": len(ns),
                "avg_ns": statistics.fmean(ns),
                "stddev_ns": statistics.stdev(ns) if len(ns) > 1 else 0.0,
                "avg_ts": statistics.fmean(ts),
                "stddev_ts": statistics.stdev(ts) if len(ts) > 1 else 0.0,
                "samples_ns": ns,
                "samples_ts": ts,
            }
        )
    L.llama_model_free(model)
    print(json.dumps(records, indent=2))


if __name__ == "__main__":
    main()
