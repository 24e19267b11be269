#!/usr/bin/env python3
"""Tiny random-weight models of the ERNIE 4.5, GLM-4 and Hunyuan families for the decoder
tests (testdata/tiny/), made the way tools/tiny_moe_models.py makes qwen3moe (whose helpers
this reuses, so its own output stays as it is): the family's own `transformers` class with
a small config and seeded random weights, transformers' forward pass as the reference, and
llama.cpp's own convert_hf_to_gguf.py (from the pinned llama-cpp-python source) writing the
F32 and Q8_0 GGUF files.

Architectures (GGUF name: transformers class):
  ernie4_5       Ernie4_5ForCausalLM         2 layers, tied embeddings
  ernie4_5-moe   Ernie4_5_MoeForCausalLM     3 layers: 1 dense, then MoE (8 experts, 2 used,
                                             score-correction bias, 2 shared experts)
  glm4           Glm4ForCausalLM             2 layers, Q/K/V biases, partial rotary (half),
                                             fused gate_up, post-attention/post-MLP norms
  hunyuan-dense  HunYuanDenseV1ForCausalLM   2 layers, Q/K norms after RoPE, NTK alpha RoPE
  glm4moe        Glm4MoeForCausalLM          3 layers: 1 dense, then MoE (8 experts, 2 used,
                                             sigmoid + score-correction bias, renormalized,
                                             scale 2.5, 1 shared expert); Q/K/V biases, Q/K
                                             norms, NeoX RoPE on half of each head; plus 1
                                             multi-token-prediction (NextN) block
  hunyuan-moe    HunYuanMoEV1ForCausalLM     2 MoE layers (8 experts, 2 used, softmax,
                                             renormalized, 1 shared expert); Q/K norms after
                                             RoPE, NTK alpha RoPE at the released values

Tokenizers: ERNIE's converter reads a SentencePiece `tokenizer.model`, so ERNIE gets a tiny
SentencePiece BPE model trained (`sentencepiece`) on the same fixed text; the others get the
byte-level BPE of tools/tiny_moe_models.py (GLM-4's converter also looks up `<|user|>` among
the added tokens, so GLM-4's has it). The converter patch is tiny_moe_models.py's (the
made-up BPE's pre-tokenizer is reported as "qwen2"); GLM-4-MoE's converter also looks up
`[gMASK]` and `<|observation|>`, so its tokenizer has those too. Hunyuan-MoE's converter reads
only a tiktoken-style tokenizer (`mergeable_ranks`, loaded with trust_remote_code), so for it
the converter's own vocabulary writer of Hunyuan dense (`HunYuanModel.set_vocab`, which reads
`tokenizer.json`) stands in for `HunYuanMoEModel.set_vocab`: only the tokenizer metadata
comes from that path; tensors and hyper-parameters are the MoE converter's. Nothing else in
the converter changes.

GLM-4-MoE's checkpoints end with `num_nextn_predict_layers` multi-token-prediction blocks
(`model.layers.N.*` after the decoder's N layers, with `eh_proj`, `enorm`, `hnorm`,
`shared_head.norm`); transformers' class neither builds nor runs them (its logits are the
decoder's), the converter writes them as extra blocks and `glm4moe.nextn_predict_layers`, and
llama.cpp's main graph skips them. The tiny checkpoint gets one such block (random weights,
the layer made by transformers' own class for a 4-layer config, plus those four tensors) in
a second safetensors file, so the GGUF files hold it as users' files do.

For ernie4_5-moe the weight seed is the one of seeds 1..199 with the widest smallest gap
between the 2nd and 3rd selection score (softmax + bias) over the sequence and layers, so
Q8_0's rounding does not flip an expert choice; it is printed and kept in the golden file's
`golden.source`. For glm4moe and hunyuan-moe the seed (MOE_WEIGHT_SEEDS) was chosen with
`tools/tiny_moe_seeds.py --activations ARCH 1 600`: routing unchanged by Q8_0 rounding of the
weights and of the activations at every position of the golden sequence and of
tiny_moe_llamacpp.py's prompts, then the widest router gap among those (hunyuan-moe: 406,
gap 0.0116 in router logits). For glm4moe the widest such seed (146) still chose another
expert at one position of the Q8_0 file in Kaiyuan (the f16 KV cache is not simulated), so
the next one (221, gap 0.0035 in sigmoid + bias selection scores) is used.

Writes testdata/tiny/<arch>.{f32,q8_0}.gguf and <arch>.golden.gguf (`golden.tokens`, tensor
`logits` [n_tokens, vocab]). Then run tools/tiny_moe_llamacpp.py <arch> for llama.cpp's view.

Run from the repository root: python3 tools/tiny_family_models.py [ARCH...]
"""
import os
import sys
import tempfile

import numpy as np
import torch
import gguf
import transformers as tf
from tokenizers import Tokenizer, models, pre_tokenizers, decoders, trainers

from tiny_moe_models import (LLAMACPP_VERSION, N_TOKENS, OUT, SEED, TEXT, VOCAB, convert,
                             llama_cpp_dir, randomize, router_margins)

ARCHS = ["ernie4_5", "ernie4_5-moe", "glm4", "hunyuan-dense", "glm4moe", "hunyuan-moe"]
DENSE_WEIGHT_SEED = 1234
MOE_SEEDS = range(1, 200)
# Chosen with tools/tiny_moe_seeds.py --activations (see the module docs).
MOE_WEIGHT_SEEDS = {"glm4moe": 221, "hunyuan-moe": 406}


# Experts used per token, for the router gaps.
TOP_K = {"glm4moe": 2, "hunyuan-moe": 2}
# Hunyuan-MoE's vocabulary writer needs a tiktoken tokenizer (see the module docs).
CONVERT_PATCH = {"hunyuan-moe": (
    "import conversion.hunyuan\n"
    "conversion.hunyuan.HunYuanMoEModel.set_vocab = conversion.hunyuan.HunYuanModel.set_vocab\n")}


def bpe_tokenizer(path, specials):
    """tiny_moe_models.py's byte-level BPE, with `specials` as its special tokens."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB - 1, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator([TEXT] * 20, trainer)
    fast = tf.PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>",
                                      bos_token="<|endoftext|>")
    fast.save_pretrained(path)
    return len(fast)


def spm_tokenizer(path):
    """A SentencePiece BPE model (`tokenizer.model`), as ERNIE's converter reads."""
    import sentencepiece as spm
    os.makedirs(path, exist_ok=True)
    text = os.path.join(path, "text.txt")
    with open(text, "w") as f:
        f.write((TEXT + "\n") * 20)
    spm.SentencePieceTrainer.train(
        input=text, model_prefix=os.path.join(path, "tokenizer"), model_type="bpe",
        vocab_size=256, character_coverage=1.0, byte_fallback=False, bos_id=1, eos_id=2,
        unk_id=0, pad_id=-1, minloglevel=2)
    os.remove(text)
    os.remove(os.path.join(path, "tokenizer.vocab"))
    sp = spm.SentencePieceProcessor(model_file=os.path.join(path, "tokenizer.model"))
    return sp.vocab_size()


def make_tokenizer(arch, path):
    if arch.startswith("ernie4_5"):
        return spm_tokenizer(path)
    if arch == "glm4":
        return bpe_tokenizer(path, ["<|endoftext|>", "<|user|>"])
    if arch == "glm4moe":
        return bpe_tokenizer(path, ["<|endoftext|>", "[gMASK]", "<|user|>", "<|observation|>"])
    return bpe_tokenizer(path, ["<|endoftext|>"])


def make_config(arch, vocab):
    common = dict(vocab_size=vocab, hidden_size=64, num_attention_heads=4,
                  num_key_value_heads=2, max_position_embeddings=256, bos_token_id=1,
                  eos_token_id=2)
    if arch == "ernie4_5":
        return tf.Ernie4_5Config(
            **common, intermediate_size=128, num_hidden_layers=2, head_dim=32,
            rope_parameters={"rope_type": "default", "rope_theta": 500000.0},
            rms_norm_eps=1e-5, use_bias=False, tie_word_embeddings=True)
    if arch == "ernie4_5-moe":
        # The converter writes the shared experts' size as intermediate_size // KV heads
        # (true of the released models): 128 // 2 = 2 shared experts of 32.
        return tf.Ernie4_5_MoeConfig(
            **common, intermediate_size=128, num_hidden_layers=3,
            rope_parameters={"rope_type": "default", "rope_theta": 500000.0},
            rms_norm_eps=1e-5, use_bias=False, tie_word_embeddings=False,
            moe_num_experts=8, moe_k=2, moe_intermediate_size=32, moe_num_shared_experts=2,
            moe_layer_start_index=1, moe_layer_end_index=2, moe_layer_interval=1)
    if arch == "glm4":
        return tf.Glm4Config(
            **common, intermediate_size=128, num_hidden_layers=2, head_dim=32,
            rope_parameters={"rope_type": "default", "rope_theta": 10000.0,
                             "partial_rotary_factor": 0.5},
            attention_bias=True, rms_norm_eps=1e-5, tie_word_embeddings=False, pad_token_id=0)
    if arch == "hunyuan-dense":
        # NTK alpha RoPE as the released models have it ("dynamic" with a fixed alpha); the
        # converter accepts it only with base 1e4 and a 32K (or 256K) context.
        return tf.HunYuanDenseV1Config(
            **{**common, "max_position_embeddings": 32768}, intermediate_size=128,
            num_hidden_layers=2, head_dim=32, attention_bias=False, rms_norm_eps=1e-5,
            tie_word_embeddings=False,
            rope_parameters={"rope_type": "dynamic", "rope_theta": 10000.0, "alpha": 50.0,
                             "factor": 1.0})
    if arch == "glm4moe":
        # GLM-4.5's shape of model: head 32 != hidden / heads, RoPE on half of it, Q/K/V
        # biases and Q/K norms (GLM-4.5 has both; Air has no Q/K norms), one dense layer, a
        # sigmoid router with the score-correction bias, renormalized and scaled by 2.5 as
        # released, one expert group (as released: the converter writes n_group), 1 shared
        # expert, and one NextN block (added to the checkpoint after saving, see main).
        return tf.Glm4MoeConfig(
            **common, intermediate_size=128, moe_intermediate_size=32, num_hidden_layers=3,
            head_dim=32, first_k_dense_replace=1, n_routed_experts=8, num_experts_per_tok=2,
            n_shared_experts=1, n_group=1, topk_group=1, norm_topk_prob=True,
            routed_scaling_factor=2.5, use_qk_norm=True, attention_bias=True,
            num_nextn_predict_layers=1,
            rope_parameters={"rope_type": "default", "rope_theta": 10000.0,
                             "partial_rotary_factor": 0.5},
            rms_norm_eps=1e-5, tie_word_embeddings=False, pad_token_id=0)
    if arch == "hunyuan-moe":
        # The converter accepts Hunyuan-A13B's NTK alpha RoPE only as released (alpha 1000
        # over base 1e4, hidden / heads = 128, a 32K or 256K context), so the tiny model has
        # one head of 128 (no GQA here: hunyuan-dense and the others cover it). llama.cpp sizes
        # the experts by `feed_forward_length` (transformers by `intermediate_size`), so the
        # per-layer `moe_intermediate_size` the converter also reads equals it, as released;
        # `moe_topk` and `num_shared_expert` are per-layer lists as in the released config.
        return tf.HunYuanMoEV1Config(
            **{**common, "hidden_size": 128, "num_attention_heads": 1,
               "num_key_value_heads": 1, "max_position_embeddings": 32768},
            head_dim=128, intermediate_size=32, num_hidden_layers=2, num_experts=8,
            moe_topk=[2, 2], moe_intermediate_size=[32, 32], num_shared_expert=[1, 1],
            attention_bias=False, rms_norm_eps=1e-5, tie_word_embeddings=False,
            rope_parameters={"rope_type": "dynamic", "rope_theta": 10000.0, "alpha": 1000.0,
                             "factor": 1.0})
    raise ValueError(arch)


def moe_gaps(model, tokens, k):
    """Per MoE layer: the smallest gap between the k-th and (k+1)-th selection score
    (softmax of the router logits plus the score-correction bias), and how many rows the
    bias changes the chosen set of."""
    gaps, changed, hooks = {}, {}, []
    for i, layer in enumerate(model.model.layers):
        gate = getattr(layer.mlp, "gate", None)
        if not hasattr(gate, "moe_statics"):
            continue
        bias = gate.moe_statics.e_score_correction_bias.detach().reshape(-1)

        def hook(mod, inp, out, i=i, bias=bias):
            x = inp[0].reshape(-1, inp[0].shape[-1]).float()
            probs = torch.softmax(x @ mod.weight.float().T, dim=-1)
            top = torch.topk(probs + bias, k + 1, dim=-1)
            gaps[i] = float((top.values[:, k - 1] - top.values[:, k]).min())
            plain = torch.topk(probs, k, dim=-1).indices.sort(dim=-1).values
            biased = top.indices[:, :k].sort(dim=-1).values
            changed[i] = int((plain != biased).any(dim=-1).sum())
        hooks.append(gate.register_forward_hook(hook))
    with torch.no_grad():
        model(torch.tensor(tokens[None, :]))
    for h in hooks:
        h.remove()
    return gaps, changed


def build(arch, cfg, seed):
    torch.manual_seed(seed)
    model = tf.AutoModelForCausalLM.from_config(cfg, attn_implementation="eager")
    model = model.float().eval()
    randomize(model, seed)
    if arch == "ernie4_5-moe":
        # A bias of the size of the softmax scores' differences (randomize's 0.2 would
        # decide every choice by itself).
        g = torch.Generator().manual_seed(seed + 1)
        with torch.no_grad():
            for layer in model.model.layers:
                if hasattr(getattr(layer.mlp, "gate", None), "moe_statics"):
                    b = layer.mlp.gate.moe_statics.e_score_correction_bias
                    b.copy_(0.05 * torch.randn(b.shape, generator=g))
    return model


def add_nextn_block(arch, cfg, seed, model_dir):
    """GLM-4-MoE's multi-token-prediction block (see the module docs): layer N of a model
    made by transformers' class with N + 1 layers (seed + 1), plus `eh_proj` [hidden,
    2·hidden], `enorm`, `hnorm` and `shared_head.norm`, written to `model-nextn.safetensors`
    beside the decoder's `model.safetensors`."""
    from safetensors.torch import load_file, save_file
    n = cfg.num_hidden_layers
    bigger = type(cfg)(**{**cfg.to_dict(), "num_hidden_layers": n + 1})
    with tempfile.TemporaryDirectory() as tmp:
        build(arch, bigger, seed + 1).save_pretrained(tmp)
        saved = load_file(os.path.join(tmp, "model.safetensors"))
    prefix = f"model.layers.{n}."
    block = {k: v.contiguous() for k, v in saved.items() if k.startswith(prefix)}
    g = torch.Generator().manual_seed(seed + 2)
    hidden = cfg.hidden_size
    block[prefix + "eh_proj.weight"] = torch.randn(hidden, 2 * hidden, generator=g) / (2 * hidden) ** 0.5
    for name in ("enorm", "hnorm", "shared_head.norm"):
        block[prefix + f"{name}.weight"] = 1.0 + 0.2 * torch.randn(hidden, generator=g)
    assert not os.path.exists(os.path.join(model_dir, "model.safetensors.index.json"))
    save_file(block, os.path.join(model_dir, "model-nextn.safetensors"), metadata={"format": "pt"})


def write_golden(path, tokens, logits, note):
    w = gguf.GGUFWriter(path, "golden")
    w.add_array("golden.tokens", [int(t) for t in tokens])
    w.add_string("golden.source", f"transformers {tf.__version__} / torch {torch.__version__}, "
                 f"eager attention, float32; converted by llama.cpp's convert_hf_to_gguf.py "
                 f"(llama-cpp-python {LLAMACPP_VERSION}){note}")
    w.add_tensor("logits", np.ascontiguousarray(logits, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main():
    os.makedirs(OUT, exist_ok=True)
    archs = sys.argv[1:] or ARCHS
    with tempfile.TemporaryDirectory() as work:
        lcpp = llama_cpp_dir(work)
        for arch in archs:
            model_dir = os.path.join(work, arch)
            vocab = make_tokenizer(arch, model_dir)
            tokens = np.random.default_rng(SEED).integers(0, vocab, N_TOKENS)
            cfg = make_config(arch, vocab)
            note = ""
            if arch == "ernie4_5-moe":
                best = None
                for seed in MOE_SEEDS:
                    gaps, changed = moe_gaps(build(arch, cfg, seed), tokens, cfg.moe_k)
                    if best is None or min(gaps.values()) > min(best[1].values()):
                        best = (seed, gaps, changed)
                seed, gaps, changed = best
                note = (f"; weight seed {seed}: smallest top-2/top-3 selection-score gap per "
                        f"MoE layer {({i: round(g, 4) for i, g in gaps.items()})}, rows whose "
                        f"choice the bias changes {changed}")
            elif arch in MOE_WEIGHT_SEEDS:
                seed = MOE_WEIGHT_SEEDS[arch]
                gaps = router_margins(build(arch, cfg, seed), tokens, TOP_K[arch])
                note = (f"; weight seed {seed} (tools/tiny_moe_seeds.py): smallest router "
                        f"top-2/top-3 gap per MoE layer {({i: round(g, 4) for i, g in gaps.items()})}")
            else:
                seed = DENSE_WEIGHT_SEED
            model = build(arch, cfg, seed)
            with torch.no_grad():
                logits = model(torch.tensor(tokens[None, :])).logits[0].float().numpy()
            model.save_pretrained(model_dir)
            if arch == "glm4moe":
                add_nextn_block(arch, cfg, seed, model_dir)
                note += "; plus 1 NextN block that transformers does not run"
            for outtype in ("f32", "q8_0"):
                convert(lcpp, model_dir, outtype, os.path.join(OUT, f"{arch}.{outtype}.gguf"),
                        patch=CONVERT_PATCH.get(arch, ""))
            write_golden(os.path.join(OUT, f"{arch}.golden.gguf"), tokens, logits, note)
            print(f"{arch}: vocab {vocab}, logits range {logits.min():.3f}..{logits.max():.3f}, "
                  f"std {logits.std():.3f}{note}")


if __name__ == "__main__":
    main()
