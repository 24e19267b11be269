//! Hunyuan dense (`HunYuanDenseV1ForCausalLM`: Hunyuan-0.5B/1.8B/4B/7B): a Llama-shaped
//! decoder with NeoX RoPE and per-head RMS norms of Q and K applied *after* RoPE (Hugging
//! Face's `query_layernorm` / `key_layernorm`, as llama.cpp's graph does), optional Q/K/V
//! biases. Its NTK "alpha" RoPE scaling is a larger base, `θ·α^(d/(d−2))`: llama.cpp's
//! converter writes the scaled base as `rope.freq_base`; a file that gives
//! `rope.scaling.alpha` instead is scaled at load (see `config.rs`).

use super::{Activation, ArchSpec, Presence, SlidingPattern};
use kaiyuan_kernels::ops::RopeStyle;

pub const SPEC: ArchSpec = ArchSpec {
    name: "hunyuan-dense",
    rope_style: RopeStyle::Neox,
    activation: Activation::Silu,
    qkv_bias: Presence::Optional,
    qk_norm: Presence::Required,
    qk_norm_after_rope: true,
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
