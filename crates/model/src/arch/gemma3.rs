//! Gemma 3 (text): embeddings scaled by `sqrt(hidden_size)`; Q/K RMS norms; sandwich
//! norms (`post_attention_norm`, `post_ffw_norm`) around attention and FFN; GeGLU with
//! the tanh GELU; NeoX RoPE; five sliding-window layers then one global layer
//! (`sliding_window_pattern = 6` in Hugging Face's config, hard-coded the same way in
//! llama.cpp), the sliding layers using RoPE base 10 000 and the global ones the file's
//! `gemma3.rope.freq_base` (1e6). Hugging Face's RMSNorm multiplies by `1 + w`; llama.cpp's
//! converter stores `1 + w` in the GGUF, so no offset is applied here. The output matrix
//! is the token embedding (tied). Attention scale is `1/sqrt(head_dim)`
//! (`query_pre_attn_scalar = head_dim` for every size but 27B).

use super::{Activation, ArchSpec, Presence, SlidingPattern};
use kaiyuan_kernels::ops::RopeStyle;

pub const SPEC: ArchSpec = ArchSpec {
    name: "gemma3",
    rope_style: RopeStyle::Neox,
    activation: Activation::GeluTanh,
    qkv_bias: Presence::Absent,
    qk_norm: Presence::Required,
    qk_norm_after_rope: false,
    ffn_norm: "ffn_norm",
    sandwich_norms: true,
    fused_gate_up: false,
    scale_embeddings_by_sqrt_hidden: true,
    norm_weight_offset: 0.0,
    sliding_pattern: SlidingPattern::LastOfEvery(6),
    local_rope_base: Some(10_000.0),
    moe: None,
    mla: false,
};
