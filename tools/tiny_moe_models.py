#!/usr/bin/env python3
"""Tiny random-weight mixture-of-experts models for the decoder tests (testdata/tiny/).

Unlike tools/tiny_models.py (which writes its GGUF files itself), these are converted by
llama.cpp's own convert_hf_to_gguf.py, taken from the pinned llama-cpp-python source
archive (tools/setup-llamacpp-native leaves it in .cache/llamacpp-native/), so the tensor
layout and metadata of the 3-D expert tensors are exactly what users' files have.

For each architecture (today: qwen3moe) this
  1. trains a tiny byte-level BPE tokenizer (`tokenizers`) on a fixed text, so the model
     directory is a complete Hugging Face checkpoint the converter accepts;
  2. builds the `transformers` model (Qwen3MoeForCausalLM) with a small config and seeded
     random weights, saves it with save_pretrained;
  3. runs transformers' own forward pass (eager attention, float32) on a fixed token
     sequence: the independent reference;
  4. converts the checkpoint with convert_hf_to_gguf.py `--outtype f32` and `--outtype q8_0`;
and writes
  testdata/tiny/<arch>.f32.gguf, <arch>.q8_0.gguf   the converter's output
  testdata/tiny/<arch>.golden.gguf                  metadata `golden.tokens` (u32 array) and
                                                    tensor `logits` [n_tokens, vocab] (F32)

One thing is patched in the converter: its check that the tokenizer's pre-tokenizer is a
known one (a hash of the tokenization of a test text) cannot know this made-up tokenizer,
so `get_vocab_base_pre` answers "qwen2" (the byte-level pre-tokenizer of the Qwen family,
which this tokenizer uses). Nothing else in the converter is changed.

It also prints, per layer, the smallest gap between the k-th and (k+1)-th router logit
over the sequence: a near-tie there lets Q8_0's rounding pick another expert than
transformers' float32 does (and then that position and the later ones differ by far more
than any tolerance). So the weight seed is the one of seeds 1..299 with the widest smallest
gap (WEIGHT_SEED = 78: 0.037); the token sequence keeps seed 1234 like tools/tiny_models.py.

Run from the repository root: python3 tools/tiny_moe_models.py
(needs torch, transformers, tokenizers, gguf, numpy; tools/requirements.txt pins them).
"""
import os
import subprocess
import sys
import tarfile
import tempfile

import numpy as np
import torch
import gguf
import transformers as tf
from tokenizers import Tokenizer, models, pre_tokenizers, decoders, trainers

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "testdata", "tiny")
LLAMACPP_VERSION = "0.3.36"
ARCHIVE = os.path.join(ROOT, ".cache", "llamacpp-native", f"llama_cpp_python-{LLAMACPP_VERSION}.tar.gz")
SEED = 1234
WEIGHT_SEED = 78
N_TOKENS = 40
VOCAB = 320

TEXT = (
    "The quick brown fox jumps over the lazy dog. Mixture of experts models route each "
    "token to a few experts chosen by a small router. 0123456789 the and of to in is that "
    "it for was on are as with his they at be this from have or by one had not but what all "
)


def make_tokenizer(path):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB - 1, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator([TEXT] * 20, trainer)
    fast = tf.PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>",
                                      bos_token="<|endoftext|>")
    fast.save_pretrained(path)
    return len(fast)


def make_config(arch, vocab):
    if arch == "qwen3moe":
        return tf.Qwen3MoeConfig(
            vocab_size=vocab, hidden_size=64, intermediate_size=128, moe_intermediate_size=32,
            num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=32,
            num_experts=8, num_experts_per_tok=2, norm_topk_prob=True, decoder_sparse_step=1,
            mlp_only_layers=[], max_position_embeddings=256, rope_theta=1000000.0,
            rms_norm_eps=1e-6, tie_word_embeddings=False, use_sliding_window=False,
            bos_token_id=0, eos_token_id=0)
    raise ValueError(arch)


def randomize(model, seed):
    """Weights large enough that every part of the network matters (as tiny_models.py)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
            elif name.endswith("bias"):
                p.copy_(0.2 * torch.randn(p.shape, generator=g))
            elif "embed_tokens" in name:
                p.copy_(torch.randn(p.shape, generator=g))
            else:
                fan_in = p.shape[-1]
                p.copy_(torch.randn(p.shape, generator=g) / fan_in ** 0.5)


def router_margins(model, tokens, k):
    """Per MoE layer: the smallest gap between the k-th and (k+1)-th router logit."""
    gaps = {}
    hooks = []
    for i, layer in enumerate(model.model.layers):
        def hook(mod, inp, out, i=i):
            x = inp[0].reshape(-1, inp[0].shape[-1])
            top = torch.topk(x @ mod.weight.T, k + 1, dim=-1).values
            gaps[i] = float((top[:, k - 1] - top[:, k]).min())
        hooks.append(layer.mlp.gate.register_forward_hook(hook))
    with torch.no_grad():
        model(torch.tensor(tokens[None, :]))
    for h in hooks:
        h.remove()
    return gaps


def llama_cpp_dir(work):
    prefix = f"llama_cpp_python-{LLAMACPP_VERSION}/vendor/llama.cpp/"
    if not os.path.exists(ARCHIVE):
        sys.exit(f"{ARCHIVE} is missing: run tools/setup-llamacpp-native (it downloads the sdist)")
    with tarfile.open(ARCHIVE) as t:
        members = [m for m in t.getmembers() if m.name.startswith(prefix) and (
            m.name == prefix + "convert_hf_to_gguf.py"
            or m.name.startswith(prefix + "conversion/")
            or m.name.startswith(prefix + "gguf-py/"))]
        t.extractall(work, members=members, filter="data")
    return os.path.join(work, prefix)


CONVERT = """
import sys
sys.path.insert(0, {lcpp!r})
sys.argv = ["convert_hf_to_gguf.py", {model!r}, "--outtype", {outtype!r}, "--outfile", {out!r}]
import conversion.base
conversion.base.TextModel.get_vocab_base_pre = lambda self, tokenizer: "qwen2"
import convert_hf_to_gguf
convert_hf_to_gguf.main()
"""


def convert(lcpp, model_dir, outtype, out):
    code = CONVERT.format(lcpp=lcpp, model=model_dir, outtype=outtype, out=out)
    subprocess.run([sys.executable, "-c", code], check=True, cwd=lcpp,
                   stdout=subprocess.DEVNULL)


def write_golden(path, tokens, logits, k_gaps):
    w = gguf.GGUFWriter(path, "golden")
    w.add_array("golden.tokens", [int(t) for t in tokens])
    w.add_string("golden.source", f"transformers {tf.__version__} / torch {torch.__version__}, "
                 f"eager attention, float32; converted by llama.cpp's convert_hf_to_gguf.py "
                 f"(llama-cpp-python {LLAMACPP_VERSION}); smallest router top-k logit gap per "
                 f"layer {k_gaps}")
    w.add_tensor("logits", np.ascontiguousarray(logits, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main():
    os.makedirs(OUT, exist_ok=True)
    archs = sys.argv[1:] or ["qwen3moe"]
    with tempfile.TemporaryDirectory() as work:
        lcpp = llama_cpp_dir(work)
        for arch in archs:
            model_dir = os.path.join(work, arch)
            vocab = make_tokenizer(model_dir)
            tokens = np.random.default_rng(SEED).integers(0, vocab, N_TOKENS)
            cfg = make_config(arch, vocab)
            torch.manual_seed(WEIGHT_SEED)
            model = tf.AutoModelForCausalLM.from_config(cfg, attn_implementation="eager")
            model = model.float().eval()
            randomize(model, WEIGHT_SEED)
            gaps = router_margins(model, tokens, cfg.num_experts_per_tok)
            with torch.no_grad():
                logits = model(torch.tensor(tokens[None, :])).logits[0].float().numpy()
            model.save_pretrained(model_dir)
            for outtype in ("f32", "q8_0"):
                convert(lcpp, model_dir, outtype, os.path.join(OUT, f"{arch}.{outtype}.gguf"))
            write_golden(os.path.join(OUT, f"{arch}.golden.gguf"), tokens, logits,
                         {i: round(g, 4) for i, g in gaps.items()})
            print(f"{arch}: vocab {vocab}, logits range {logits.min():.3f}..{logits.max():.3f}, "
                  f"std {logits.std():.3f}, smallest router top-k gap per layer {gaps}")


if __name__ == "__main__":
    main()
