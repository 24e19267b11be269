//! ERNIE 4.5 MoE (ERNIE-4.5-21B-A3B, 300B-A47B; text part): ERNIE 4.5's attention (see
//! `ernie4_5.rs`) with a mixture of experts. Hugging Face's `Ernie4_5_MoeTopKRouter`: softmax
//! over the router logits, the `moe_k` best chosen by softmax score plus the score-correction
//! bias (`moe_statics`, GGUF `exp_probs_b`), their unbiased scores renormalized to sum to 1;
//! shared experts (`moe_num_shared_experts` of `moe_intermediate_size` rows, one dense FFN in
//! the file) added to every token; the first `moe_layer_start_index` layers dense
//! (`leading_dense_block_count`), then every `moe_layer_interval`-th layer a MoE layer
//! (`interleave_moe_layer_step`). llama.cpp's graph for the architecture always softmaxes and
//! normalizes.

use super::{Activation, ArchSpec, MoeSpec, Presence, SlidingPattern};
use crate::router::Gating;
use kaiyuan_kernels::ops::RopeStyle;

pub const SPEC: ArchSpec = ArchSpec {
    name: "ernie4_5-moe",
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
    moe: Some(MoeSpec {
        gating: Gating::Softmax,
        normalize: true,
    }),
    mla: false,
};
