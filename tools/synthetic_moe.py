#!/usr/bin/env python3
"""Synthetic mixture-of-experts models for speed benchmarks (not for tests): random weights at
a size where decode reads its weights from memory, not from cache.

Writes, into models/synthetic/ (gitignored, like every model file; never commit them):

  synthetic-qwen3moe.Q4_K_M.gguf   Qwen3-30B-A3B scaled down
  synthetic-deepseek2.Q4_K_M.gguf  DeepSeek-V2-Lite scaled down (MLA + MoE)

Each file is first written as F16 (1-D tensors, norms and the router in F32, as
convert_hf_to_gguf.py's `--outtype f16` does), with metadata keys, key order, tensor names and
GGML dimensions as llama.cpp's converter writes them for these architectures (the tiny
testdata/tiny/{qwen3moe,deepseek2}.f32.gguf were made by that converter and were the pattern),
then quantized to Q4_K_M by llama.cpp's own quantizer (`llama_model_quantize` of
llama-cpp-python, tools/setup-llamacpp). The tokenizer is a real one, so llama.cpp loads the
file: every `tokenizer.*` key of llama.cpp's vocabulary test file (.cache/vendor-vocab/,
ggml-vocab-qwen2.gguf — Qwen3 uses Qwen2's tokenizer; ggml-vocab-deepseek-llm.gguf — the
102,400-token vocabulary of DeepSeek-V2-Lite) is copied in.

Shapes (why: half the width of the real model, the real per-head dimensions, the real expert
fan-out where it fits, layers cut so the total is 1-2 B parameters):

  qwen3moe   Qwen3-30B-A3B: hidden 2048, 48 layers, 32/4 heads of 128, 128 experts of 768,
             8 used. Here: hidden 1024, 16 layers, 16/2 heads of 128 (the same 8:1 GQA and
             head size), 64 experts of 512, 8 used (the same top-8), untied output.
  deepseek2  DeepSeek-V2-Lite: hidden 2048, 27 layers (first dense), 16 heads, no q_lora,
             kv_lora_rank 512, rope 64, nope 128, v 128, 64 experts of 1408, 6 used, 2 shared,
             softmax routing, YaRN x40. Here: hidden 1024, 16 layers (first dense, FFN 5632),
             the same attention dimensions and heads, 64 experts of 512, 6 used, 2 shared,
             the same routing and YaRN; but with a query compression (q_lora_rank 256, about
             V3's 1536/7168 of the width), because llama.cpp takes a deepseek2 file without
             q_lora_rank only at V2-Lite's own 26 or 27 layers (it decides "lite" by the layer
             count) and its quantizer refuses the file otherwise.

Weights are uniform with standard deviation 0.02 (transformers' usual initializer range), norm
weights 1, from the raw bits of numpy's PCG64 seeded by (seed, tensor index): the same seed
gives the same bytes. The script
prints total and active parameters (active: what one decoded token reads — the layers with
only `used` routed experts, plus the output matrix and one embedding row) and file bytes.

Usage (from the repository root; .venv has gguf and numpy, and llama_cpp for the quantizing):

  .venv/bin/python tools/synthetic_moe.py [--arch qwen3moe|deepseek2 ...] [--out DIR]
      [--seed 1] [--f16-only] [--keep-f16] [--force] [--no-check] [--threads 2]

An existing output file is kept (printed, not remade) unless --force. After quantizing, the
file is loaded with llama.cpp and a few tokens are generated greedily (--no-check skips it).
"""

import argparse
import ctypes
import functools
import os
import sys
from dataclasses import dataclass, field

import numpy as np
import gguf

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
VOCABS = os.path.join(ROOT, ".cache", "vendor-vocab")
F32, F16 = gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.F16
STD = 0.02


@dataclass
class Shape:
    arch: str
    name: str
    vocab_file: str
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    ffn: int  # dense FFN rows (feed_forward_length)
    experts: int
    used: int
    expert_ffn: int
    context: int
    freq_base: float
    # deepseek2 only
    leading_dense: int = 0
    shared: int = 0
    kv_lora: int = 0
    q_lora: int = 0
    rope: int = 0
    nope: int = 0
    v_dim: int = 0
    head_dim: int = 0  # qwen3moe
    yarn: dict = field(default_factory=dict)


SHAPES = {
    "qwen3moe": Shape(
        arch="qwen3moe", name="Qwen3Moe synthetic", vocab_file="ggml-vocab-qwen2.gguf",
        hidden=1024, layers=16, heads=16, kv_heads=2, head_dim=128, ffn=3072,
        experts=64, used=8, expert_ffn=512, context=40960, freq_base=1_000_000.0,
    ),
    "deepseek2": Shape(
        arch="deepseek2", name="Deepseek2 synthetic", vocab_file="ggml-vocab-deepseek-llm.gguf",
        hidden=1024, layers=16, heads=16, kv_heads=16, ffn=5632,
        experts=64, used=6, expert_ffn=512, context=163840, freq_base=10000.0,
        leading_dense=1, shared=2, kv_lora=512, q_lora=256, rope=64, nope=128, v_dim=128,
        yarn=dict(factor=40.0, original=4096, beta_fast=32.0, beta_slow=1.0,
                  log_multiplier=0.0707),
    ),
}


def tensors(s: Shape, vocab: int):
    """(name, numpy shape (GGML dims reversed), dtype, kind, active fraction) in file order;
    kind: "normal" random, "ones" norm weights."""
    out = [("token_embd.weight", (vocab, s.hidden), F16, "normal", 1.0 / vocab)]
    h = s.hidden
    for i in range(s.layers):
        b = f"blk.{i}."
        out.append((b + "attn_norm.weight", (h,), F32, "ones", 1.0))
        if s.arch == "qwen3moe":
            d = s.head_dim
            out += [
                (b + "attn_q.weight", (s.heads * d, h), F16, "normal", 1.0),
                (b + "attn_k.weight", (s.kv_heads * d, h), F16, "normal", 1.0),
                (b + "attn_v.weight", (s.kv_heads * d, h), F16, "normal", 1.0),
                (b + "attn_output.weight", (h, s.heads * d), F16, "normal", 1.0),
                (b + "attn_q_norm.weight", (d,), F32, "ones", 1.0),
                (b + "attn_k_norm.weight", (d,), F32, "ones", 1.0),
            ]
        else:
            q_rows = s.heads * (s.nope + s.rope)
            out += [
                (b + "attn_q_a.weight", (s.q_lora, h), F16, "normal", 1.0),
                (b + "attn_q_a_norm.weight", (s.q_lora,), F32, "ones", 1.0),
                (b + "attn_q_b.weight", (q_rows, s.q_lora), F16, "normal", 1.0),
                (b + "attn_kv_a_mqa.weight", (s.kv_lora + s.rope, h), F16, "normal", 1.0),
                (b + "attn_kv_a_norm.weight", (s.kv_lora,), F32, "ones", 1.0),
                (b + "attn_k_b.weight", (s.heads, s.kv_lora, s.nope), F16, "normal", 1.0),
                (b + "attn_v_b.weight", (s.heads, s.v_dim, s.kv_lora), F16, "normal", 1.0),
                (b + "attn_output.weight", (h, s.heads * s.v_dim), F16, "normal", 1.0),
            ]
        out.append((b + "ffn_norm.weight", (h,), F32, "ones", 1.0))
        if i < s.leading_dense:
            out += [
                (b + "ffn_gate.weight", (s.ffn, h), F16, "normal", 1.0),
                (b + "ffn_up.weight", (s.ffn, h), F16, "normal", 1.0),
                (b + "ffn_down.weight", (h, s.ffn), F16, "normal", 1.0),
            ]
            continue
        frac = s.used / s.experts
        out += [
            (b + "ffn_gate_inp.weight", (s.experts, h), F32, "normal", 1.0),
            (b + "ffn_gate_exps.weight", (s.experts, s.expert_ffn, h), F16, "normal", frac),
            (b + "ffn_up_exps.weight", (s.experts, s.expert_ffn, h), F16, "normal", frac),
            (b + "ffn_down_exps.weight", (s.experts, h, s.expert_ffn), F16, "normal", frac),
        ]
        if s.shared:
            rows = s.shared * s.expert_ffn
            out += [
                (b + "ffn_gate_shexp.weight", (rows, h), F16, "normal", 1.0),
                (b + "ffn_up_shexp.weight", (rows, h), F16, "normal", 1.0),
                (b + "ffn_down_shexp.weight", (h, rows), F16, "normal", 1.0),
            ]
    out.append(("output_norm.weight", (h,), F32, "ones", 1.0))
    out.append(("output.weight", (vocab, h), F16, "normal", 1.0))
    return out


def add_metadata(w: gguf.GGUFWriter, s: Shape, vocab: int, size_label: str):
    """The keys, in the order, convert_hf_to_gguf.py writes for the architecture."""
    a = s.arch
    w.add_type("model")
    w.add_name(s.name)
    w.add_size_label(size_label)
    w.add_uint32(f"{a}.block_count", s.layers)
    w.add_uint32(f"{a}.context_length", s.context)
    w.add_uint32(f"{a}.embedding_length", s.hidden)
    w.add_uint32(f"{a}.feed_forward_length", s.ffn)
    w.add_uint32(f"{a}.attention.head_count", s.heads)
    if a == "qwen3moe":
        w.add_uint32(f"{a}.attention.head_count_kv", s.kv_heads)
        w.add_float32(f"{a}.rope.freq_base", s.freq_base)
        w.add_float32(f"{a}.attention.layer_norm_rms_epsilon", 1e-6)
        w.add_uint32(f"{a}.expert_count", s.experts)
        w.add_uint32(f"{a}.expert_used_count", s.used)
        w.add_uint32(f"{a}.attention.key_length", s.head_dim)
        w.add_uint32(f"{a}.attention.value_length", s.head_dim)
        w.add_uint32("general.file_type", int(gguf.LlamaFileType.MOSTLY_F16))
        w.add_uint32(f"{a}.expert_feed_forward_length", s.expert_ffn)
    else:
        y = s.yarn
        # The converter sets head_count_kv 1 for MLA (one shared latent).
        w.add_uint32(f"{a}.attention.head_count_kv", 1)
        w.add_string(f"{a}.rope.scaling.type", "yarn")
        w.add_float32(f"{a}.rope.scaling.factor", y["factor"])
        w.add_uint32(f"{a}.rope.scaling.original_context_length", y["original"])
        w.add_float32(f"{a}.rope.scaling.yarn_beta_fast", y["beta_fast"])
        w.add_float32(f"{a}.rope.scaling.yarn_beta_slow", y["beta_slow"])
        w.add_float32(f"{a}.rope.freq_base", s.freq_base)
        w.add_float32(f"{a}.attention.layer_norm_rms_epsilon", 1e-6)
        w.add_uint32(f"{a}.expert_count", s.experts)
        w.add_uint32(f"{a}.expert_used_count", s.used)
        w.add_uint32(f"{a}.expert_gating_func", 1)  # softmax, as V2-Lite
        w.add_uint32(f"{a}.attention.key_length", s.kv_lora + s.rope)
        w.add_uint32(f"{a}.attention.value_length", s.kv_lora)
        w.add_uint32("general.file_type", int(gguf.LlamaFileType.MOSTLY_F16))
        w.add_uint32(f"{a}.leading_dense_block_count", s.leading_dense)
        w.add_uint32(f"{a}.vocab_size", vocab)
        w.add_uint32(f"{a}.attention.q_lora_rank", s.q_lora)
        w.add_uint32(f"{a}.attention.kv_lora_rank", s.kv_lora)
        w.add_uint32(f"{a}.attention.key_length_mla", s.nope + s.rope)
        w.add_uint32(f"{a}.attention.value_length_mla", s.v_dim)
        w.add_uint32(f"{a}.expert_feed_forward_length", s.expert_ffn)
        w.add_uint32(f"{a}.expert_shared_count", s.shared)
        w.add_float32(f"{a}.expert_weights_scale", 1.0)
        w.add_uint32(f"{a}.rope.dimension_count", s.rope)
        w.add_float32(f"{a}.rope.scaling.yarn_log_multiplier", y["log_multiplier"])
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)


@functools.cache
def reader(path: str) -> gguf.GGUFReader:
    """A vocabulary file's reader, parsed once (100,000+ tokens take a while)."""
    return gguf.GGUFReader(path)


def copy_tokenizer(w: gguf.GGUFWriter, vocab_path: str) -> int:
    """Copies every tokenizer.* key of a llama.cpp vocabulary file; returns its token count."""
    r = reader(vocab_path)
    n = None
    for key, f in r.fields.items():
        if not key.startswith("tokenizer."):
            continue
        vtype = f.types[0]
        sub = f.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
        value = f.contents()
        w.add_key_value(key, value, vtype, sub_type=sub)
        if key == "tokenizer.ggml.tokens":
            n = len(value)
    if n is None:
        sys.exit(f"{vocab_path} has no tokenizer.ggml.tokens")
    return n


def label(n: float) -> str:
    return f"{n / 1e9:.2f} B" if n >= 1e9 else f"{n / 1e6:.1f} M"


def vocab_of(s: Shape):
    """The vocabulary file's path and its token count."""
    path = os.path.join(VOCABS, s.vocab_file)
    if not os.path.exists(path):
        sys.exit(f"{path} is missing (tools/setup-llamacpp-native fetches the vocabularies)")
    return path, len(reader(path).fields["tokenizer.ggml.tokens"].data)


def sizes(s: Shape):
    """(total parameters, parameters one decoded token reads)."""
    specs = tensors(s, vocab_of(s)[1])
    total = sum(int(np.prod(shape)) for _, shape, *_ in specs)
    active = sum(int(np.prod(shape)) * frac for _, shape, _, _, frac in specs)
    return total, active


def write_f16(s: Shape, path: str, seed: int):
    vocab_path, vocab = vocab_of(s)
    specs = tensors(s, vocab)
    per_expert = 3 * s.expert_ffn * s.hidden
    size_label = f"{s.experts}x{per_expert / 1e6:.1f}M"

    tmp = path + ".part"
    w = gguf.GGUFWriter(tmp, s.arch)
    add_metadata(w, s, vocab, size_label)
    n_tok = copy_tokenizer(w, vocab_path)
    assert n_tok == vocab
    for name, shape, dtype, _, _ in specs:
        np_dtype = np.float16 if dtype == F16 else np.float32
        nbytes = int(np.prod(shape)) * np.dtype(np_dtype).itemsize
        w.add_tensor_info(name, shape, np.dtype(np_dtype), nbytes)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    for index, (name, shape, dtype, kind, _) in enumerate(specs):
        if kind == "ones":
            data = np.ones(shape, dtype=np.float32)
        else:
            # Uniform on [-a, a] with standard deviation STD, from raw random bits (far
            # faster than normal draws, which matters at 2 B values).
            rng = np.random.Generator(np.random.PCG64([seed, index]))
            n = int(np.prod(shape))
            bits = np.frombuffer(rng.bytes(2 * n), dtype="<i2").reshape(shape)
            data = bits.astype(np.float32)
            data *= STD * np.sqrt(3.0) / 32768.0
        w.write_tensor_data(data.astype(np.float16) if dtype == F16 else data)
    w.close()
    os.replace(tmp, path)


def quantize(src: str, dst: str, threads: int):
    import llama_cpp as L

    p = L.llama_model_quantize_default_params()
    p.ftype = L.LLAMA_FTYPE_MOSTLY_Q4_K_M
    p.nthread = threads
    tmp = dst + ".part"
    rc = L.llama_model_quantize(src.encode(), tmp.encode(), ctypes.byref(p))
    if rc != 0:
        sys.exit(f"llama_model_quantize failed ({rc}) on {src}")
    os.replace(tmp, dst)


def check_llamacpp(path: str, threads: int):
    """Loads the file with llama.cpp and generates 8 tokens greedily."""
    import llama_cpp as L

    llm = L.Llama(model_path=path, n_ctx=128, n_threads=threads, verbose=False, seed=1)
    out = llm.create_completion("The capital of France is", max_tokens=8, temperature=0.0)
    text = out["choices"][0]["text"]
    print(f"  llama.cpp loads it; 8 greedy tokens: {text!r}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--arch", nargs="+", choices=sorted(SHAPES), default=sorted(SHAPES))
    ap.add_argument("--out", default=os.path.join(ROOT, "models", "synthetic"))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--f16-only", action="store_true", help="write the F16 files, do not quantize")
    ap.add_argument("--keep-f16", action="store_true", help="keep the F16 source next to the Q4_K_M")
    ap.add_argument("--force", action="store_true", help="remake files that exist")
    ap.add_argument("--no-check", action="store_true", help="skip llama.cpp's load-and-generate check")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    if not args.f16_only:
        try:
            import llama_cpp  # noqa: F401
        except ImportError:
            sys.exit("llama_cpp is not importable: run tools/setup-llamacpp, or pass --f16-only")

    for arch in args.arch:
        s = SHAPES[arch]
        f16 = os.path.join(args.out, f"synthetic-{arch}.f16.gguf")
        q4 = os.path.join(args.out, f"synthetic-{arch}.Q4_K_M.gguf")
        final = f16 if args.f16_only else q4
        total, active = sizes(s)
        print(f"{arch}: {label(total)} parameters, {label(active)} active per decoded token "
              f"(layers with {s.used} of {s.experts} experts, output, one embedding row)")
        if os.path.exists(final) and not args.force:
            print(f"{final}: exists, kept ({os.path.getsize(final):,} bytes; --force remakes it)")
            continue
        if not os.path.exists(f16) or args.force:
            write_f16(s, f16, args.seed)
            print(f"{f16}: {os.path.getsize(f16):,} bytes")
        if args.f16_only:
            continue
        quantize(f16, q4, args.threads)
        print(f"{q4}: {os.path.getsize(q4):,} bytes")
        if not args.keep_f16:
            os.remove(f16)
        if not args.no_check:
            check_llamacpp(q4, args.threads)


if __name__ == "__main__":
    main()
