//! DeepSeek-V2, V2-Lite, V3 and R1 (and other `deepseek2` conversions such as Kimi K2):
//! multi-head latent attention ([`crate::mla`]: the query through `attn_q` or the low-rank
//! `attn_q_a` → `attn_q_a_norm` → `attn_q_b`; one compressed KV latent of
//! `attention.kv_lora_rank` values plus one shared RoPE key per token, `attn_kv_a_mqa` →
//! `attn_kv_a_norm`; the per-head key and value up-projections `attn_k_b` / `attn_v_b`
//! absorbed into the query and the output), RoPE on adjacent pairs of the `rope` part
//! only, and DeepSeek's mixture of experts after `leading_dense_block_count` dense layers:
//! shared experts always added, softmax router unless the file says sigmoid
//! (`expert_gating_func`, V3), no renormalization unless `expert_weights_norm`, the
//! routed scaling factor `expert_weights_scale`, grouped top-k and the score-correction
//! bias `exp_probs_b` when present (V3). These defaults are llama.cpp's for the
//! architecture (`src/models/deepseek2.cpp`), matching Hugging Face's DeepseekV2/V3 code.

use super::{Activation, ArchSpec, MoeSpec, Presence, SlidingPattern};
use crate::router::Gating;
use kaiyuan_kernels::ops::RopeStyle;

pub const SPEC: ArchSpec = ArchSpec {
    name: "deepseek2",
    rope_style: RopeStyle::Normal,
    activation: Activation::Silu,
    qkv_bias: Presence::Absent,
    qk_norm: Presence::Absent,
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
        normalize: false,
    }),
    mla: true,
};
