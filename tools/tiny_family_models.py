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

Tokenizers: ERNIE's converter reads a SentencePiece `tokenizer.model`, so ERNIE gets a tiny
SentencePiece BPE model trained (`sentencepiece`) on the same fixed text; the others get the
byte-level BPE of tools/tiny_moe_models.py (GLM-4's converter also looks up `<|user|>` among
the added tokens, so GLM-4's has it). The converter patch is tiny_moe_models.py's (the
made-up BPE's pre-tokenizer is reported as "qwen2"); nothing else in the converter changes.

For the MoE model the weight seed is the one of seeds 1..199 with the widest smallest gap
between the 2nd and 3rd selection score (softmax + bias) over the sequence and layers, so
Q8_0's rounding does not flip an expert choice; it is printed and kept in the golden file's
`golden.source`.

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
                             llama_cpp_dir, randomize)

ARCHS = ["ernie4_5", "ernie4_5-moe", "glm4", "hunyuan-dense"]
DENSE_WEIGHT_SEED = 1234
MOE_SEEDS = range(1, 200)


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
            else:
                seed = DENSE_WEIGHT_SEED
            model = build(arch, cfg, seed)
            with torch.no_grad():
                logits = model(torch.tensor(tokens[None, :])).logits[0].float().numpy()
            model.save_pretrained(model_dir)
            for outtype in ("f32", "q8_0"):
                convert(lcpp, model_dir, outtype, os.path.join(OUT, f"{arch}.{outtype}.gguf"))
            write_golden(os.path.join(OUT, f"{arch}.golden.gguf"), tokens, logits, note)
            print(f"{arch}: vocab {vocab}, logits range {logits.min():.3f}..{logits.max():.3f}, "
                  f"std {logits.std():.3f}{note}")


if __name__ == "__main__":
    main()
