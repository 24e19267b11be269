#!/usr/bin/env python3
"""Chooses weight seeds for tools/tiny_moe_models.py: for each seed of a range, builds the
tiny model exactly as that tool does, records its routers' chosen experts at every position
of the golden token sequence, then rounds every matrix through gguf's Q8_0 (as the
converter's `--outtype q8_0` does: the routers `mlp.gate` stay F32, and `kv_b_proj`'s key half
is rounded along the rows of llama.cpp's transposed `attn_k_b`) and runs it again. A seed is
usable when no position changes experts, over the golden sequence and over the prompts
tools/tiny_moe_llamacpp.py cuts from it (each run from position 0: other hidden states);
among those, the widest router gap over all of them is best
(tiny_moe_models.router_margins). Prints one
line per seed and the five best.

Everything here is transformers' and gguf's code; nothing calls Kaiyuan.

With `--activations` the second run also rounds the input of every quantized matrix product
(each Linear but the routers, and the experts' input) through Q8_0, as llama.cpp's CPU
kernels (and Kaiyuan's) quantize activations for a Q8_0 weight: a stricter test, used for
glm4moe and hunyuan-moe, whose first seeds kept transformers' routing under weight rounding
alone but not under the engines' activation rounding. (qwen3moe's and deepseek2's seeds were
chosen without it.)

The MoE architectures of tools/tiny_family_models.py (glm4moe, hunyuan-moe) are built with
that tool's tokenizer, config and weights instead.

Run from the repository root: python3 tools/tiny_moe_seeds.py [--activations] ARCH FIRST LAST
(or ARCH SEED,SEED,... for a list).
"""
import os
import sys
import tempfile

import numpy as np
import torch
import gguf
import transformers as tf

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tiny_moe_models as t  # noqa: E402
import tiny_family_models as fam  # noqa: E402

Q8 = gguf.GGMLQuantizationType.Q8_0
# tools/tiny_moe_llamacpp.py's PROMPTS (that module needs llama_cpp, so not imported).
PROMPTS = [(0, 8), (10, 30), (4, 40)]


def q8_round_trip(a):
    """`a` quantized to Q8_0 along its last axis and back."""
    a = a.detach().float().numpy()
    back = gguf.quants.dequantize(gguf.quants.quantize(a, Q8), Q8)
    return torch.from_numpy(back.reshape(a.shape).copy())


def quantize_like_converter(model, cfg):
    nope = getattr(cfg, "qk_nope_head_dim", None)
    with torch.no_grad():
        for name, p in model.named_parameters():
            # The routers stay F32 (Hunyuan's is `mlp.gate.wg`).
            if p.ndim < 2 or name.endswith(("mlp.gate.weight", "mlp.gate.wg.weight")):
                continue
            if name.endswith("kv_b_proj.weight"):
                w = p.view(cfg.num_attention_heads, nope + cfg.v_head_dim, -1)
                w[:, :nope, :] = q8_round_trip(w[:, :nope, :].transpose(1, 2)).transpose(1, 2)
                w[:, nope:, :] = q8_round_trip(w[:, nope:, :])
            else:
                p.copy_(q8_round_trip(p))


def quantize_activations(model):
    """Rounds the input of every quantized product through Q8_0 (see the module docs)."""
    def round_input(_mod, args):
        return (q8_round_trip(args[0]).to(args[0].dtype),) + tuple(args[1:])
    for name, mod in model.named_modules():
        is_router = name.endswith(("mlp.gate", "mlp.gate.wg"))
        if (isinstance(mod, torch.nn.Linear) and not is_router) or name.endswith("mlp.experts"):
            mod.register_forward_pre_hook(round_input)


def chosen_experts(model, tokens, k):
    """Per MoE layer: each position's chosen experts (sorted), as the router selects them."""
    out, hooks = {}, []
    for i, layer in enumerate(model.model.layers):
        if not hasattr(layer.mlp, "gate"):
            continue

        def hook(mod, inp, _out, i=i):
            x = inp[0].reshape(-1, inp[0].shape[-1]).float()
            sel = x @ t.router_weight(mod).T
            if hasattr(mod, "e_score_correction_bias"):
                sel = sel.sigmoid() + mod.e_score_correction_bias
                per = sel.shape[1] // mod.num_group
                groups = sel.view(sel.shape[0], mod.num_group, per).topk(2, dim=-1).values.sum(-1)
                best = torch.topk(groups, mod.topk_group, dim=-1).indices
                keep = torch.zeros_like(groups).scatter_(1, best, 1.0)
                sel = sel.masked_fill(~keep.repeat_interleave(per, dim=1).bool(), float("-inf"))
            out[i] = torch.topk(sel, k, dim=-1).indices.sort(-1).values
        hooks.append(layer.mlp.gate.register_forward_hook(hook))
    with torch.no_grad():
        model(torch.tensor(tokens[None, :]))
    for h in hooks:
        h.remove()
    return out


def main():
    args = [a for a in sys.argv[1:] if a != "--activations"]
    activations = len(args) < len(sys.argv) - 1
    arch = args[0]
    if len(args) == 2:  # ARCH SEED,SEED,...
        seeds = [int(x) for x in args[1].split(",")]
    else:  # ARCH FIRST LAST
        seeds = range(int(args[1]), int(args[2]) + 1)
    family = arch in fam.ARCHS
    with tempfile.TemporaryDirectory() as work:
        path = os.path.join(work, "tokenizer")
        vocab = fam.make_tokenizer(arch, path) if family else t.make_tokenizer(path)
    tokens = np.random.default_rng(t.SEED).integers(0, vocab, t.N_TOKENS)
    cfg = fam.make_config(arch, vocab) if family else t.make_config(arch, vocab)
    k = fam.TOP_K[arch] if family else cfg.num_experts_per_tok
    results = []
    for seed in seeds:
        if family:
            model = fam.build(arch, cfg, seed)
        else:
            torch.manual_seed(seed)
            model = tf.AutoModelForCausalLM.from_config(cfg, attn_implementation="eager")
            model = model.float().eval()
            t.randomize(model, seed)
        runs = [tokens] + [tokens[lo:hi] for lo, hi in PROMPTS]
        gap = min(min(t.router_margins(model, run, k).values()) for run in runs)
        before = [chosen_experts(model, run, k) for run in runs]
        quantize_like_converter(model, cfg)
        if activations:
            quantize_activations(model)
        after = [chosen_experts(model, run, k) for run in runs]
        stable = all(torch.equal(b[i], a[i]) for b, a in zip(before, after) for i in b)
        results.append((stable, gap, seed))
        print(f"seed {seed}: routing unchanged by Q8_0 {stable}, smallest gap {gap:.4f}", flush=True)
    results.sort(reverse=True)
    print("best:", [(seed, round(gap, 4)) for stable, gap, seed in results[:5] if stable])


if __name__ == "__main__":
    main()
