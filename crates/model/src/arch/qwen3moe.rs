//! Qwen3-MoE (Qwen3-30B-A3B, 235B-A22B): Qwen3's attention (no biases, per-head Q/K RMS
//! norms, NeoX RoPE, `key_length` head size) with a mixture of experts in every layer:
//! softmax router over `expert_count` experts, the `expert_used_count` best per token,
//! their weights renormalized to sum to 1 (llama.cpp's graph always normalizes for this
//! architecture; Hugging Face's `norm_topk_prob`, true in the released models), no shared
//! experts, SwiGLU experts of `expert_feed_forward_length` rows.

use super::{Activation, ArchSpec, MoeSpec, Presence, SlidingPattern};
use crate::router::Gating;
use kaiyuan_kernels::ops::RopeStyle;

pub const SPEC: ArchSpec = ArchSpec {
    name: "qwen3moe",
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
    moe: Some(MoeSpec {
        gating: Gating::Softmax,
        normalize: true,
    }),
    mla: false,
};
