//! Llama 2/3 (and SmolLM2, DeepSeek-R1-Distill-Llama): pre-norm decoder, SwiGLU FFN,
//! RoPE on adjacent pairs (llama.cpp's converter permutes Q/K rows so GGML rope mode 0
//! reproduces Hugging Face's rotate-half), optional attention biases, output matrix tied
//! to the embeddings when `output.weight` is absent.

use super::{Activation, ArchSpec, Presence, SlidingPattern};
use kaiyuan_kernels::ops::RopeStyle;

pub const SPEC: ArchSpec = ArchSpec {
    name: "llama",
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
