#!/usr/bin/env python3
"""Tiny random-weight models for the decoder tests (testdata/tiny/).

For each architecture (llama, qwen2, qwen3, gemma3) this builds a small Hugging Face
`transformers` model with random weights, runs its own forward pass (the independent
reference) on a fixed token sequence, and writes:

  testdata/tiny/<arch>.f32.gguf   the weights in F32, named and laid out the way
                                  llama.cpp's convert_hf_to_gguf.py writes that architecture
  testdata/tiny/<arch>.q8_0.gguf  the same weights with every matrix in Q8_0
  testdata/tiny/<arch>.golden.gguf  metadata `golden.tokens` (u32 array) and tensor
                                  `logits` [n_tokens, vocab] (F32): transformers' logits at
                                  every position

Converter conventions reproduced (convert_hf_to_gguf.py):
  * llama: q_proj/k_proj rows are permuted so HF's "rotate half" RoPE becomes GGML's
    adjacent-pair RoPE (rope mode 0); other architectures use NeoX RoPE unpermuted.
  * gemma3: every `*norm.weight` is stored as 1 + w (HF's Gemma3RMSNorm multiplies by
    1 + w; llama.cpp multiplies by the stored weight).
  * tied embeddings: no output.weight (the runtime reuses token_embd.weight).

Run: python3 tools/tiny_models.py   (needs torch, transformers, gguf, numpy)
"""
import os
import sys

import numpy as np
import torch
import gguf
import transformers as tf

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "testdata", "tiny")
SEED = 1234
N_TOKENS = 40
VOCAB = 256


def common(arch_cfg):
    base = dict(vocab_size=VOCAB, hidden_size=64, intermediate_size=128,
                num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                rms_norm_eps=1e-5)
    base.update(arch_cfg)
    return base


def make_config(arch):
    if arch == "llama":
        return tf.LlamaConfig(**common(dict(num_hidden_layers=2, rope_theta=10000.0,
                                            tie_word_embeddings=False)))
    if arch == "qwen2":
        return tf.Qwen2Config(**common(dict(num_hidden_layers=2, rope_theta=1000000.0,
                                            tie_word_embeddings=True, use_sliding_window=False)))
    if arch == "qwen3":
        return tf.Qwen3Config(**common(dict(num_hidden_layers=2, rope_theta=1000000.0,
                                            head_dim=32, tie_word_embeddings=False,
                                            use_sliding_window=False, rms_norm_eps=1e-6)))
    if arch == "gemma3":
        # Six layers: the default pattern makes layers 0-4 sliding and layer 5 global.
        return tf.Gemma3TextConfig(**common(dict(num_hidden_layers=6, head_dim=32,
                                                 sliding_window=8, query_pre_attn_scalar=32,
                                                 rms_norm_eps=1e-6,
                                                 hidden_activation="gelu_pytorch_tanh",
                                                 tie_word_embeddings=True)))
    raise ValueError(arch)


def randomize(model, arch):
    """Weights large enough that every part of the network matters."""
    g = torch.Generator().manual_seed(SEED)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                if arch == "gemma3":
                    p.copy_(0.2 * torch.randn(p.shape, generator=g))  # HF uses 1 + w
                else:
                    p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
            elif name.endswith("bias"):
                p.copy_(0.2 * torch.randn(p.shape, generator=g))
            elif "embed_tokens" in name:
                p.copy_(torch.randn(p.shape, generator=g) * (0.125 if arch == "gemma3" else 1.0))
            else:
                fan_in = p.shape[-1]
                p.copy_(torch.randn(p.shape, generator=g) / fan_in ** 0.5)


def permute_rope(w, n_head):
    # HF pairs (i, i + d/2) within a head; GGML mode 0 pairs (2i, 2i+1).
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


def gguf_tensors(model, arch, cfg):
    sd = {k: v.detach().float().numpy() for k, v in model.state_dict().items()}
    out = {}
    out["token_embd.weight"] = sd["model.embed_tokens.weight"]
    out["output_norm.weight"] = sd["model.norm.weight"]
    if not cfg.tie_word_embeddings:
        out["output.weight"] = sd["lm_head.weight"]
    names = {
        "input_layernorm.weight": "attn_norm.weight",
        "self_attn.q_proj.weight": "attn_q.weight",
        "self_attn.k_proj.weight": "attn_k.weight",
        "self_attn.v_proj.weight": "attn_v.weight",
        "self_attn.o_proj.weight": "attn_output.weight",
        "self_attn.q_proj.bias": "attn_q.bias",
        "self_attn.k_proj.bias": "attn_k.bias",
        "self_attn.v_proj.bias": "attn_v.bias",
        "self_attn.q_norm.weight": "attn_q_norm.weight",
        "self_attn.k_norm.weight": "attn_k_norm.weight",
        "mlp.gate_proj.weight": "ffn_gate.weight",
        "mlp.up_proj.weight": "ffn_up.weight",
        "mlp.down_proj.weight": "ffn_down.weight",
    }
    if arch == "gemma3":
        names.update({
            "post_attention_layernorm.weight": "post_attention_norm.weight",
            "pre_feedforward_layernorm.weight": "ffn_norm.weight",
            "post_feedforward_layernorm.weight": "post_ffw_norm.weight",
        })
    else:
        names["post_attention_layernorm.weight"] = "ffn_norm.weight"
    for i in range(cfg.num_hidden_layers):
        prefix = f"model.layers.{i}."
        for hf, gg in names.items():
            if prefix + hf in sd:
                out[f"blk.{i}.{gg}"] = sd[prefix + hf]
        if arch == "llama":
            q, k = f"blk.{i}.attn_q.weight", f"blk.{i}.attn_k.weight"
            out[q] = permute_rope(out[q], cfg.num_attention_heads)
            out[k] = permute_rope(out[k], cfg.num_key_value_heads)
    if arch == "gemma3":
        for k in out:
            if k.endswith("norm.weight"):
                out[k] = out[k] + 1.0
    unused = [k for k in sd if not any(k == "model.embed_tokens.weight" or k.endswith(h)
                                       for h in list(names) + ["model.norm.weight", "lm_head.weight"])]
    assert not unused, f"unmapped tensors: {unused}"
    return out


def write_model(path, arch, cfg, tensors, q8):
    w = gguf.GGUFWriter(path, arch)
    w.add_name(f"tiny random {arch}")
    w.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0 if q8 else gguf.LlamaFileType.ALL_F32)
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_block_count(cfg.num_hidden_layers)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_head_count(cfg.num_attention_heads)
    w.add_head_count_kv(cfg.num_key_value_heads)
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    if arch == "llama":
        w.add_vocab_size(cfg.vocab_size)
        w.add_rope_dimension_count(cfg.hidden_size // cfg.num_attention_heads)
    if arch in ("qwen3", "gemma3"):
        w.add_key_length(cfg.head_dim)
        w.add_value_length(cfg.head_dim)
    if arch == "gemma3":
        w.add_sliding_window(cfg.sliding_window)
        w.add_rope_freq_base(cfg.rope_parameters["full_attention"]["rope_theta"])
    else:
        rp = getattr(cfg, "rope_parameters", None)
        w.add_rope_freq_base(rp["rope_theta"] if rp else cfg.rope_theta)
    for name, data in tensors.items():
        data = np.ascontiguousarray(data, dtype=np.float32)
        if q8 and data.ndim == 2:
            qd = gguf.quants.quantize(data, gguf.GGMLQuantizationType.Q8_0)
            w.add_tensor(name, qd, raw_shape=qd.shape, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
        else:
            w.add_tensor(name, data)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def write_golden(path, arch, tokens, logits):
    w = gguf.GGUFWriter(path, "golden")
    w.add_array("golden.tokens", [int(t) for t in tokens])
    w.add_string("golden.source", f"transformers {tf.__version__} / torch {torch.__version__}, eager attention, float32")
    w.add_tensor("logits", np.ascontiguousarray(logits, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(SEED)
    archs = sys.argv[1:] or ["llama", "qwen2", "qwen3", "gemma3"]
    tokens = np.random.default_rng(SEED).integers(0, VOCAB, N_TOKENS)
    for arch in archs:
        cfg = make_config(arch)
        cfg._attn_implementation = "eager"
        cls = tf.Gemma3ForCausalLM if arch == "gemma3" else tf.AutoModelForCausalLM.from_config
        model = cls(cfg) if arch == "gemma3" else cls(cfg, attn_implementation="eager")
        model = model.float().eval()
        randomize(model, arch)
        if cfg.tie_word_embeddings:
            model.tie_weights()
        with torch.no_grad():
            logits = model(torch.tensor(tokens[None, :])).logits[0].float().numpy()
        tensors = gguf_tensors(model, arch, cfg)
        for q8 in (False, True):
            write_model(os.path.join(OUT, f"{arch}.{'q8_0' if q8 else 'f32'}.gguf"), arch, cfg, tensors, q8)
        write_golden(os.path.join(OUT, f"{arch}.golden.gguf"), arch, tokens, logits)
        print(f"{arch}: logits range {logits.min():.3f}..{logits.max():.3f}, std {logits.std():.3f}")


if __name__ == "__main__":
    main()
