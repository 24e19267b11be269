//! Hunyuan MoE (`HunYuanMoEV1ForCausalLM`: Hunyuan-A13B, GGUF `hunyuan-moe`): Hunyuan
//! dense's attention (see `hunyuan_dense.rs`: NeoX RoPE, per-head Q/K RMS norms *after*
//! RoPE, the NTK alpha folded into `rope.freq_base` by the converter) with a mixture of
//! experts in every layer: a softmax router over `expert_count` experts, the
//! `expert_used_count` best per token (`moe_topk`), their weights renormalized to sum to 1,
//! plus one shared expert (Hugging Face's `shared_mlp`, of `intermediate_size` rows, written
//! as `expert_shared_feed_forward_length`) added to every token. llama.cpp's graph for the
//! architecture always softmaxes and normalizes (the converter writes neither key).
//!
//! The released config's per-layer lists (`moe_topk`, `num_shared_expert`,
//! `moe_intermediate_size`) hold one value repeated, which the converter asserts and writes
//! once; cross-layer attention (`use_cla`) is off in it and neither Hugging Face's class
//! nor llama.cpp implements it.

use super::{Activation, ArchSpec, MoeSpec, Presence, SlidingPattern};
use crate::router::Gating;
use kaiyuan_kernels::ops::RopeStyle;

pub const SPEC: ArchSpec = ArchSpec {
    name: "hunyuan-moe",
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
    moe: Some(MoeSpec {
        gating: Gating::Softmax,
        normalize: true,
    }),
    mla: false,
};
