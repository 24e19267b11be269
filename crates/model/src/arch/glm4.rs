//! GLM-4-0414 and GLM-Z1 (`Glm4ForCausalLM`): Q/K/V biases (`attention_bias`), RoPE on
//! adjacent pairs over only the first `rope.dimension_count` dimensions of each head
//! (`partial_rotary_factor` 0.5: GGML's normal RoPE with `n_rot = head_dim / 2`, the rest
//! passes through), sandwich norms around attention and FFN (Hugging Face's
//! `post_self_attn_layernorm` and `post_mlp_layernorm`, GGUF `post_attention_norm` and
//! `post_ffw_norm`), and a SwiGLU FFN whose gate and up projections are one fused
//! `gate_up_proj`, kept fused by llama.cpp's converter as `ffn_up` of `2·ffn` rows (gate
//! first).

use super::{Activation, ArchSpec, Presence, SlidingPattern};
use kaiyuan_kernels::ops::RopeStyle;

pub const SPEC: ArchSpec = ArchSpec {
    name: "glm4",
    rope_style: RopeStyle::Normal,
    activation: Activation::Silu,
    qkv_bias: Presence::Optional,
    qk_norm: Presence::Absent,
    qk_norm_after_rope: false,
    ffn_norm: "ffn_norm",
    sandwich_norms: true,
    fused_gate_up: true,
    scale_embeddings_by_sqrt_hidden: false,
    norm_weight_offset: 0.0,
    sliding_pattern: SlidingPattern::None,
    local_rope_base: None,
    moe: None,
    mla: false,
};
