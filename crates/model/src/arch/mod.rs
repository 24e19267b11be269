//! Architecture specs: what distinguishes one decoder-only architecture from another,
//! as data. The forward pass ([`crate::decoder`]) reads these fields; adding an
//! architecture means adding one small file here and one entry in [`ALL`].
//!
//! Facts per architecture come from llama.cpp's model graphs (`src/models/*.cpp`,
//! `llama-model.cpp` hyper-parameter loading) and Hugging Face's `modeling_*.py`.

mod gemma3;
mod llama;
mod qwen2;
mod qwen3;

use crate::error::ModelError;
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
    /// `blk.{i}.post_attention_norm.weight` / `blk.{i}.post_ffw_norm.weight`: RMS norms of
    /// the attention and FFN outputs before the residual add (Gemma's sandwich norms).
    pub sandwich_norms: bool,
    /// Token embeddings are multiplied by `sqrt(hidden_size)`.
    pub scale_embeddings_by_sqrt_hidden: bool,
    /// Added to every stored RMS-norm weight (0 when the converter already folded it in).
    pub norm_weight_offset: f32,
    pub sliding_pattern: SlidingPattern,
    /// RoPE base of sliding-window layers when the file gives none
    /// (`{arch}.rope.local.freq_base` overrides it); `None`: same as global layers.
    pub local_rope_base: Option<f32>,
}

/// Every supported architecture.
pub const ALL: [&ArchSpec; 4] = [&llama::SPEC, &qwen2::SPEC, &qwen3::SPEC, &gemma3::SPEC];

/// Names of the supported architectures, for error messages.
pub fn supported_names() -> Vec<&'static str> {
    ALL.iter().map(|s| s.name).collect()
}

/// The spec for `general.architecture == name`.
pub fn lookup(name: &str) -> Result<&'static ArchSpec, ModelError> {
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
        for name in ["llama", "qwen2", "qwen3", "gemma3"] {
            assert!(err.contains(name), "{err}");
        }
    }
}
