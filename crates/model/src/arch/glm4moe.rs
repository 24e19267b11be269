//! GLM-4.5, 4.6 and 4.7 (`Glm4MoeForCausalLM`, GGUF `glm4moe`): a pre-norm decoder with
//! optional Q/K/V biases (`attention_bias`, on in the released models), optional per-head
//! Q/K RMS norms before RoPE (`use_qk_norm`: GLM-4.5 has them, GLM-4.5-Air not), NeoX RoPE
//! over the first `rope.dimension_count` dimensions of each head only
//! (`partial_rotary_factor` 0.5; Hugging Face's `rotate_half` on the rotary part, the rest
//! passes through; the converter leaves Q and K unpermuted), and DeepSeek-V3's mixture of
//! experts after `leading_dense_block_count` dense layers (`first_k_dense_replace`): a
//! sigmoid router with the score-correction bias `exp_probs_b` used only to choose, expert
//! groups if the file has them (`n_group` 1 in the released models), the chosen weights
//! renormalized when `expert_weights_norm` and scaled by `expert_weights_scale`, and
//! `expert_shared_count` shared experts added to every token.
//!
//! Two things differ from the other specs. The FFN input norm is Hugging Face's
//! `post_attention_layernorm`, which llama.cpp's converter names `post_attention_norm` for
//! this architecture (there is no `ffn_norm`, and no norm after the FFN). And the file ends
//! with `nextn_predict_layers` multi-token-prediction blocks (GLM's MTP head, counted in
//! `block_count`): llama.cpp's main graph does not run them and neither does Kaiyuan
//! (`config.rs` leaves them out of `num_layers`, so their tensors are never loaded).
//! llama.cpp's defaults for keys a file lacks are sigmoid gating and no renormalization.

use super::{Activation, ArchSpec, MoeSpec, Presence, SlidingPattern};
use crate::router::Gating;
use kaiyuan_kernels::ops::RopeStyle;

pub const SPEC: ArchSpec = ArchSpec {
    name: "glm4moe",
    rope_style: RopeStyle::Neox,
    activation: Activation::Silu,
    qkv_bias: Presence::Optional,
    qk_norm: Presence::Optional,
    qk_norm_after_rope: false,
    ffn_norm: "post_attention_norm",
    sandwich_norms: false,
    fused_gate_up: false,
    scale_embeddings_by_sqrt_hidden: false,
    norm_weight_offset: 0.0,
    sliding_pattern: SlidingPattern::None,
    local_rope_base: None,
    moe: Some(MoeSpec {
        gating: Gating::Sigmoid,
        normalize: false,
    }),
    mla: false,
};
