//! Qwen2 / Qwen2.5 (and DeepSeek-R1-Distill-Qwen): Llama's layout with biases on the
//! Q, K and V projections and NeoX-style RoPE (pairs `(i, i + d/2)`, GGML rope mode 2).

use super::{Activation, ArchSpec, Presence, SlidingPattern};
use kaiyuan_kernels::ops::RopeStyle;

pub const SPEC: ArchSpec = ArchSpec {
    name: "qwen2",
    rope_style: RopeStyle::Neox,
    activation: Activation::Silu,
    qkv_bias: Presence::Required,
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
