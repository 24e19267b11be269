#!/usr/bin/env python3
"""Tiny random-weight mixture-of-experts models for the decoder tests (testdata/tiny/).

Unlike tools/tiny_models.py (which writes its GGUF files itself), these are converted by
llama.cpp's own convert_hf_to_gguf.py, taken from the pinned llama-cpp-python source
archive (tools/setup-llamacpp-native leaves it in .cache/llamacpp-native/), so the tensor
layout and metadata of the 3-D expert tensors are exactly what users' files have.

For each architecture (qwen3moe; deepseek2, a DeepSeek-V2-Lite-style model; deepseek2v3, a
DeepSeek-V3-style one, both `general.architecture = deepseek2`) this
  1. trains a tiny byte-level BPE tokenizer (`tokenizers`) on a fixed text, so the model
     directory is a complete Hugging Face checkpoint the converter accepts;
  2. builds the `transformers` model (Qwen3MoeForCausalLM, DeepseekV2ForCausalLM,
     DeepseekV3ForCausalLM) with a small config and seeded random weights, saves it with
     save_pretrained;
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
than any tolerance). So qwen3moe's weight seed is the one of seeds 1..299 with the widest
smallest gap (78: 0.037). For DeepSeek's routers that gap was not enough (sigmoid scores and
expert groups are narrower), so tools/tiny_moe_seeds.py runs transformers' model a second
time with every matrix rounded through gguf's own Q8_0 as the converter quantizes it and
keeps the seeds whose expert choices do not change at any position of the golden sequence
or of tools/tiny_moe_llamacpp.py's prompts; then the files were made and checked against
llama.cpp's Q8_0 run too (deepseek2: seed 101, gap 0.022 in logits; deepseek2v3: seed 31,
gap 0.0027 in sigmoid + bias selection scores: its grouped sigmoid router has near-ties
everywhere, which is also why it has one MoE layer). The token sequence keeps seed 1234
like tools/tiny_models.py.

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
# Per architecture: the weight seed of 1..299 with the widest smallest router gap.
WEIGHT_SEEDS = {"qwen3moe": 78, "deepseek2": 101, "deepseek2v3": 31}
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


# DeepSeek's multi-head latent attention (llama.cpp's `deepseek2`), small but with every
# width distinct so a transposed or swapped tensor cannot go unnoticed, and every matrix
# row a multiple of 32 (so Q8_0 quantizes every 2-D tensor): 4 heads of 32 + 16 (nope +
# rope) query/key dims and 64 value dims, a KV latent of 96, 3 layers of which the first
# is dense, 8 routed experts (2 per token) of FFN 32 and one shared expert.
MLA = dict(hidden_size=64, intermediate_size=128, moe_intermediate_size=32, num_hidden_layers=3,
           num_attention_heads=4, num_key_value_heads=4, kv_lora_rank=96, qk_nope_head_dim=32,
           qk_rope_head_dim=16, v_head_dim=64, n_routed_experts=8, num_experts_per_tok=2,
           n_shared_experts=1, first_k_dense_replace=1, max_position_embeddings=256,
           rms_norm_eps=1e-6, tie_word_embeddings=False, bos_token_id=0, eos_token_id=0)


def make_config(arch, vocab):
    if arch == "deepseek2":
        # DeepSeek-V2-Lite's shape of model: no query compression, softmax router, plain
        # top-k without renormalization, routed scaling 1, plain RoPE.
        return tf.DeepseekV2Config(
            vocab_size=vocab, q_lora_rank=None, topk_method="greedy", n_group=None,
            topk_group=None, norm_topk_prob=False, routed_scaling_factor=1.0,
            scoring_func="softmax", rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
            **MLA)
    if arch == "deepseek2v3":
        # DeepSeek-V3/R1's: query compression, sigmoid router with the score-correction bias,
        # 2 of 4 expert groups, renormalized and scaled by 2.5, YaRN (factor 4 over an
        # original context of 64, V2-Lite's mscale = mscale_all_dim = 0.707). Two layers (one
        # dense, one MoE): the grouped sigmoid router has so many near-ties that with a second
        # MoE layer no seed kept Q8_0's routing (see tools/tiny_moe_seeds.py).
        return tf.DeepseekV3Config(
            vocab_size=vocab, q_lora_rank=32, n_group=4, topk_group=2, norm_topk_prob=True,
            routed_scaling_factor=2.5, scoring_func="sigmoid", topk_method="noaux_tc",
            num_mtp_layers=0, rope_interleave=True,
            rope_parameters={"rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0,
                             "original_max_position_embeddings": 64, "beta_fast": 32.0,
                             "beta_slow": 1.0, "mscale": 0.707, "mscale_all_dim": 0.707},
            **{**MLA, "num_hidden_layers": 2})
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
    """Weights large enough that every part of the network matters (as tiny_models.py);
    DeepSeek-V3's score-correction bias (a buffer) N(0, 0.1^2)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, b in model.named_buffers():
            if name.endswith("e_score_correction_bias"):
                b.copy_(0.1 * torch.randn(b.shape, generator=g))
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


def selection_gap(mod, logits, k):
    """DeepSeek-V3's router: the smallest gap between the k-th and (k+1)-th selection score
    (sigmoid + bias) among the chosen groups, or between the last chosen group's score and
    the next one's, whichever is smaller."""
    sel = logits.sigmoid() + mod.e_score_correction_bias
    groups = sel.view(sel.shape[0], mod.num_group, -1)
    gscore = groups.topk(2, dim=-1).values.sum(-1)
    if mod.topk_group < mod.num_group:
        gtop = torch.topk(gscore, mod.topk_group + 1, dim=-1).values
        group_gap = gtop[:, mod.topk_group - 1] - gtop[:, mod.topk_group]
    else:  # every group kept (GLM-4-MoE's one group): no group choice to flip
        group_gap = torch.full_like(gscore[:, 0], float("inf"))
    chosen = torch.topk(gscore, mod.topk_group, dim=-1).indices
    keep = torch.zeros_like(gscore).scatter_(1, chosen, 1.0)
    masked = sel.masked_fill(~keep.repeat_interleave(groups.shape[-1], dim=1).bool(), -1e9)
    top = torch.topk(masked, k + 1, dim=-1).values
    return torch.minimum(top[:, k - 1] - top[:, k], group_gap).min()


def router_weight(gate):
    """The router matrix of a MoE block's gate (Hunyuan's is a Linear named `wg`)."""
    return gate.wg.weight if hasattr(gate, "wg") else gate.weight


def router_margins(model, tokens, k):
    """Per MoE layer: the smallest gap between the k-th and (k+1)-th router logit (for
    DeepSeek-V3's grouped sigmoid router, see selection_gap)."""
    gaps = {}
    hooks = []
    for i, layer in enumerate(model.model.layers):
        def hook(mod, inp, out, i=i):
            x = inp[0].reshape(-1, inp[0].shape[-1]).float()
            w = router_weight(mod)
            if hasattr(mod, "e_score_correction_bias"):
                gaps[i] = float(selection_gap(mod, x @ w.T, k))
                return
            top = torch.topk(x @ w.T, k + 1, dim=-1).values
            gaps[i] = float((top[:, k - 1] - top[:, k]).min())
        if hasattr(layer.mlp, "gate"):  # not DeepSeek's leading dense layers
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
{patch}import convert_hf_to_gguf
convert_hf_to_gguf.main()
"""


def convert(lcpp, model_dir, outtype, out, patch=""):
    """Runs the converter; `patch` is Python run before it (see tiny_family_models.py)."""
    code = CONVERT.format(lcpp=lcpp, model=model_dir, outtype=outtype, out=out, patch=patch)
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
            seed = WEIGHT_SEEDS[arch]
            torch.manual_seed(seed)
            model = tf.AutoModelForCausalLM.from_config(cfg, attn_implementation="eager")
            model = model.float().eval()
            randomize(model, seed)
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
