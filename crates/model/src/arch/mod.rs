//! Architecture specs: what distinguishes one decoder-only architecture from another,
//! as data. The forward pass ([`crate::decoder`]) reads these fields; adding an
//! architecture means adding one small file here and one entry in [`ALL`].
//!
//! Facts per architecture come from llama.cpp's model graphs (`src/models/*.cpp`,
//! `llama-model.cpp` hyper-parameter loading) and Hugging Face's `modeling_*.py`.

mod deepseek2;
mod ernie4_5;
mod ernie4_5_moe;
mod gemma3;
mod glm4;
mod glm4moe;
mod hunyuan_dense;
mod hunyuan_moe;
mod llama;
mod qwen2;
mod qwen3;
mod qwen3moe;

use crate::error::ModelError;
use crate::router::Gating;
use kaiyuan_kernels::ops::RopeStyle;

/// The feed-forward activation of a gated FFN: `act(gate) · up`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// SiLU gate (SwiGLU): Llama, Qwen.
    Silu,
    /// Tanh-approximated GELU gate (GeGLU): Gemma.
    GeluTanh,
}

/// Whether an optional group of tensors is expected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Presence {
    /// Never present for this architecture (ignored if found).
    Absent,
    /// Used if the file has it.
    Optional,
    /// The file must have it.
    Required,
}

/// How an architecture's layers alternate sliding-window and global attention when the
/// file does not say (`{arch}.attention.sliding_window_pattern` overrides it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlidingPattern {
    /// Every layer attends globally.
    None,
    /// In every group of `n` layers the last is global, the others use the window.
    LastOfEvery(usize),
}

/// Everything the shared decoder needs to know about an architecture.
#[derive(Clone, Copy, Debug)]
pub struct ArchSpec {
    /// `general.architecture` value, also the metadata key prefix.
    pub name: &'static str,
    pub rope_style: RopeStyle,
    pub activation: Activation,
    /// `blk.{i}.attn_{q,k,v}.bias`.
    pub qkv_bias: Presence,
    /// `blk.{i}.attn_{q,k}_norm.weight`: per-head RMS norm of Q and K before RoPE.
    pub qk_norm: Presence,
    /// The Q/K norms come after RoPE instead (Hunyuan).
    pub qk_norm_after_rope: bool,
    /// Name of the FFN input norm, `blk.{i}.<ffn_norm>.weight`: `ffn_norm` for most, but
    /// GLM-4-MoE's converter names it `post_attention_norm` (Hugging Face's
    /// `post_attention_layernorm`, before the FFN).
    pub ffn_norm: &'static str,
    /// `blk.{i}.post_attention_norm.weight` / `blk.{i}.post_ffw_norm.weight`: RMS norms of
    /// the attention and FFN outputs before the residual add (Gemma's sandwich norms).
    pub sandwich_norms: bool,
    /// `blk.{i}.ffn_up.weight` holds the gate rows then the up rows (`2·ffn` rows) and there
    /// is no `ffn_gate.weight` (GLM-4's fused `gate_up_proj`).
    pub fused_gate_up: bool,
    /// Token embeddings are multiplied by `sqrt(hidden_size)`.
    pub scale_embeddings_by_sqrt_hidden: bool,
    /// Added to every stored RMS-norm weight (0 when the converter already folded it in).
    pub norm_weight_offset: f32,
    pub sliding_pattern: SlidingPattern,
    /// RoPE base of sliding-window layers when the file gives none
    /// (`{arch}.rope.local.freq_base` overrides it); `None`: same as global layers.
    pub local_rope_base: Option<f32>,
    /// Mixture of experts: `None` for dense models.
    pub moe: Option<MoeSpec>,
    /// Multi-head latent attention (`attn_kv_a_mqa`, `attn_k_b`, `attn_v_b`; see
    /// [`crate::mla`]) instead of separate Q/K/V projections.
    pub mla: bool,
}

/// Routing defaults of a MoE architecture, used where the file has no key for them
/// (`{arch}.expert_gating_func`, `{arch}.expert_weights_norm`), as llama.cpp's graph for the
/// architecture assumes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MoeSpec {
    pub gating: Gating,
    /// Chosen experts' weights are divided by their sum.
    pub normalize: bool,
}

/// Every supported architecture.
pub const ALL: [&ArchSpec; 12] = [
    &llama::SPEC,
    &qwen2::SPEC,
    &qwen3::SPEC,
    &gemma3::SPEC,
    &qwen3moe::SPEC,
    &ernie4_5::SPEC,
    &ernie4_5_moe::SPEC,
    &glm4::SPEC,
    &glm4moe::SPEC,
    &hunyuan_dense::SPEC,
    &hunyuan_moe::SPEC,
    &deepseek2::SPEC,
];

/// Architectures Kaiyuan recognises but cannot run yet, with what they need: loading one
/// is refused by name rather than run through a decoder that would compute it wrongly.
pub const RECOGNISED_UNSUPPORTED: [(&str, &str); 6] = [
    (
        "deepseek",
        "DeepSeek-MoE's spec (shared experts over a Llama layout)",
    ),
    (
        "deepseek32",
        "multi-head latent attention with sparse indexing",
    ),
    ("qwen2moe", "a sigmoid-gated shared expert"),
    ("llama4", "Llama 4's interleaved attention and MoE"),
    ("olmoe", "OLMoE's spec"),
    ("gpt-oss", "gpt-oss's attention sinks and MoE"),
];

/// Names of the supported architectures, for error messages.
pub fn supported_names() -> Vec<&'static str> {
    ALL.iter().map(|s| s.name).collect()
}

/// The spec for `general.architecture == name`.
pub fn lookup(name: &str) -> Result<&'static ArchSpec, ModelError> {
    if let Some((_, needs)) = RECOGNISED_UNSUPPORTED.iter().find(|(n, _)| *n == name) {
        return Err(ModelError::RecognisedUnsupported {
            name: name.to_owned(),
            needs,
            supported: supported_names(),
        });
    }
    ALL.iter().copied().find(|s| s.name == name).ok_or_else(|| {
        ModelError::UnsupportedArchitecture {
            found: name.to_owned(),
            supported: supported_names(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_architecture_lists_the_supported_ones() {
        let err = lookup("mamba").unwrap_err().to_string();
        assert!(err.contains("\"mamba\""), "{err}");
        for name in ["llama", "qwen2", "qwen3", "gemma3", "qwen3moe", "deepseek2"] {
            assert!(err.contains(name), "{err}");
        }
    }

    #[test]
    fn recognised_architectures_are_refused_by_name() {
        for (name, _) in RECOGNISED_UNSUPPORTED {
            let err = lookup(name).unwrap_err();
            assert!(
                matches!(err, ModelError::RecognisedUnsupported { .. }),
                "{name}: {err}"
            );
            let msg = err.to_string();
            assert!(msg.contains(&format!("{name:?}")), "{msg}");
            assert!(msg.contains("not supported yet"), "{msg}");
        }
        for name in [
            "qwen3moe",
            "ernie4_5",
            "ernie4_5-moe",
            "glm4",
            "glm4moe",
            "hunyuan-dense",
            "hunyuan-moe",
            "deepseek2",
        ] {
            assert!(lookup(name).is_ok(), "{name}");
        }
    }
}
