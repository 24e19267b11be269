//! Qwen3 (dense): no attention biases, per-head RMS norms of Q and K before RoPE
//! (`attn_q_norm`, `attn_k_norm`), NeoX-style RoPE, head size from
//! `qwen3.attention.key_length` (not `hidden / heads`).

use super::{Activation, ArchSpec, Presence, SlidingPattern};
use kaiyuan_kernels::ops::RopeStyle;

pub const SPEC: ArchSpec = ArchSpec {
    name: "qwen3",
    rope_style: RopeStyle::Neox,
    activation: Activation::Silu,
    qkv_bias: Presence::Absent,
    qk_norm: Presence::Required,
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
