//! ERNIE 4.5 dense (ERNIE-4.5-0.3B): a Llama-shaped decoder. Its own RoPE rotates adjacent
//! pairs `(x₂ᵢ, x₂ᵢ₊₁)` (Hugging Face's `Ernie4_5` interleaves cos/sin with
//! `repeat_interleave`), which is GGML's normal RoPE, so llama.cpp's converter writes Q and
//! K unpermuted; SwiGLU FFN (the converter splits a fused `up_gate_proj` into `ffn_gate` /
//! `ffn_up`); no Q/K norms; tied embeddings in the released 0.3B model. Q/K/V biases are
//! used when the file has them (`use_bias`; none of the released models do).

use super::{Activation, ArchSpec, Presence, SlidingPattern};
use kaiyuan_kernels::ops::RopeStyle;

pub const SPEC: ArchSpec = ArchSpec {
    name: "ernie4_5",
    rope_style: RopeStyle::Normal,
    activation: Activation::Silu,
    qkv_bias: Presence::Optional,
    qk_norm: Presence::Absent,
    qk_norm_after_rope: false,
    ffn_norm: "ffn_norm",
    sandwich_norms: false,
    fused_gate_up: false,
    scale_embeddings_by_sqrt_hidden: false,
    norm_weight_offset: 0.0,
    sliding_pattern: SlidingPattern::None,
    local_rope_base: None,
    moe: None,
    mla: false,
};
