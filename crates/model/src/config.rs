//! [`ModelConfig`]: the hyper-parameters of a model, read from GGUF metadata with the
//! keys llama.cpp's converter writes (`{arch}.embedding_length`, `{arch}.block_count`,
//! ...; see the GGUF specification's "LLM" key list), combined with the architecture's
//! [`ArchSpec`] and the presence of optional tensors.
//!
//! RoPE scaling: NTK alpha (`rope.scaling.alpha`, a larger base), linear
//! (`rope.scaling.type = linear`, or the older `rope.scale_linear`),
//! Llama 3 frequency factors (`rope_freqs.weight`), and YaRN expressed as per-pair
//! frequency divisors plus an attention-scale factor (method of Peng et al., "YaRN", 2023,
//! with GGML's ramp between the `beta_fast`/`beta_slow` correction dimensions).

use crate::arch::{Activation, ArchSpec, Presence, SlidingPattern};
use crate::error::ModelError;
use crate::mla::MlaConfig;
use crate::moe::MoeConfig;
use kaiyuan_gguf::GgufFile;
use kaiyuan_kernels::ops::RopeStyle;

/// How RoPE positions are stretched beyond the training context.
#[derive(Clone, Debug, PartialEq)]
pub enum RopeScaling {
    None,
    /// Positions are divided by `factor`.
    Linear {
        factor: f32,
    },
    /// YaRN with GGML's defaults for unspecified parameters.
    Yarn {
        factor: f32,
        original_context: usize,
        beta_fast: f32,
        beta_slow: f32,
        ext_factor: f32,
        attn_factor: f32,
    },
}

/// Per-layer attention settings.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerConfig {
    /// Keys further back than `window - 1` positions are masked; `None`: global attention.
    pub sliding_window: Option<usize>,
    /// RoPE base for this layer.
    pub rope_theta: f32,
}

/// Hyper-parameters of a decoder-only model.
#[derive(Clone, Debug)]
pub struct ModelConfig {
    pub architecture: &'static str,
    pub hidden_size: usize,
    pub num_layers: usize,
    pub num_heads: usize,
    pub num_kv_heads: usize,
    pub head_dim: usize,
    pub ffn_size: usize,
    pub vocab_size: usize,
    /// Training context length (`{arch}.context_length`).
    pub context_length: usize,
    pub rms_eps: f32,
    pub rope_style: RopeStyle,
    /// Dimensions of each head that rotate.
    pub n_rot: usize,
    /// Global RoPE base (`{arch}.rope.freq_base`).
    pub theta_base: f32,
    pub rope_scaling: RopeScaling,
    /// The file has `rope_freqs.weight` (Llama 3.1 frequency factors).
    pub has_rope_freqs: bool,
    pub layers: Vec<LayerConfig>,
    /// `s · tanh(score / s)` on attention scores, if set.
    pub attn_logit_softcap: Option<f32>,
    /// `s · tanh(logit / s)` on output logits, if set.
    pub final_logit_softcap: Option<f32>,
    /// Multiplier of attention scores (before softcap and softmax).
    pub attention_scale: f32,
    /// Multiplier of token embeddings.
    pub embedding_scale: f32,
    pub activation: Activation,
    /// No `output.weight`: the output matrix is `token_embd.weight`.
    pub tied_embeddings: bool,
    pub qkv_bias: bool,
    pub qk_norm: bool,
    /// Q/K norms after RoPE rather than before.
    pub qk_norm_after_rope: bool,
    /// Name of each layer's FFN input norm tensor (`blk.{i}.<name>.weight`).
    pub ffn_norm: &'static str,
    pub sandwich_norms: bool,
    /// `ffn_up` holds the gate rows then the up rows; there is no `ffn_gate`.
    pub fused_gate_up: bool,
    /// Added to stored RMS-norm weights at load.
    pub norm_weight_offset: f32,
    /// Mixture of experts, for MoE architectures.
    pub moe: Option<MoeConfig>,
    /// Multi-head latent attention, for MLA architectures: then `num_kv_heads` is 1 and
    /// `head_dim` is the width of one cached latent (`kv_lora_rank + rope`), and the cache
    /// holds no separate values (see [`crate::mla`]).
    pub mla: Option<MlaConfig>,
}

/// Typed metadata access that names the full key in errors (also used by the MoE and MLA
/// configurations).
pub(crate) struct Meta<'a> {
    pub(crate) file: &'a GgufFile,
    pub(crate) arch: &'a str,
}

impl Meta<'_> {
    pub(crate) fn key(&self, suffix: &str) -> String {
        format!("{}.{suffix}", self.arch)
    }

    pub(crate) fn usize_opt(&self, suffix: &str) -> Result<Option<usize>, ModelError> {
        let key = self.key(suffix);
        match self.file.get_u64(&key)? {
            None => Ok(None),
            Some(v) => usize::try_from(v)
                .map(Some)
                .map_err(|_| ModelError::BadValue {
                    key,
                    reason: format!("{v} does not fit in memory sizes"),
                }),
        }
    }

    fn usize_req(&self, suffix: &str) -> Result<usize, ModelError> {
        let v = self
            .usize_opt(suffix)?
            .ok_or_else(|| ModelError::MissingKey {
                key: self.key(suffix),
            })?;
        if v == 0 {
            return Err(ModelError::BadValue {
                key: self.key(suffix),
                reason: "must be positive".into(),
            });
        }
        Ok(v)
    }

    fn f32_opt(&self, suffix: &str) -> Result<Option<f32>, ModelError> {
        Ok(self.file.get_f32(&self.key(suffix))?)
    }

    fn positive_f32_opt(&self, suffix: &str) -> Result<Option<f32>, ModelError> {
        match self.f32_opt(suffix)? {
            Some(v) if !(v.is_finite() && v > 0.0) => Err(ModelError::BadValue {
                key: self.key(suffix),
                reason: format!("{v} is not a positive number"),
            }),
            other => Ok(other),
        }
    }
}

impl ModelConfig {
    /// The configuration of the model in `file`, whatever its (supported) architecture:
    /// what [`crate::Model::from_gguf`] would run, read without loading any weight.
    pub fn of_file(file: &GgufFile) -> Result<ModelConfig, ModelError> {
        let name =
            file.get_str("general.architecture")?
                .ok_or_else(|| ModelError::NoArchitecture {
                    supported: crate::arch::supported_names(),
                })?;
        ModelConfig::from_gguf(file, crate::arch::lookup(name)?)
    }

    /// Reads the configuration of an architecture described by `spec` from `file`.
    pub fn from_gguf(file: &GgufFile, spec: &'static ArchSpec) -> Result<ModelConfig, ModelError> {
        let m = Meta {
            file,
            arch: spec.name,
        };
        let hidden_size = m.usize_req("embedding_length")?;
        // Multi-token-prediction layers (`nextn_predict_layers`, e.g. GLM's) are appended
        // after the decoder's layers, as llama.cpp counts them; they are not run here.
        let num_layers = match m.usize_opt("nextn_predict_layers")? {
            Some(n) if n > 0 => m
                .usize_req("block_count")?
                .checked_sub(n)
                .filter(|&l| l > 0)
                .ok_or_else(|| ModelError::BadValue {
                    key: m.key("nextn_predict_layers"),
                    reason: format!("{n} leaves no decoder layers in {}", m.key("block_count")),
                })?,
            _ => m.usize_req("block_count")?,
        };
        let num_heads = m.usize_req("attention.head_count")?;
        let num_kv_heads = m.usize_opt("attention.head_count_kv")?.unwrap_or(num_heads);
        if num_kv_heads == 0 || !num_heads.is_multiple_of(num_kv_heads) {
            return Err(ModelError::BadValue {
                key: m.key("attention.head_count_kv"),
                reason: format!("{num_kv_heads} does not divide the {num_heads} query heads"),
            });
        }
        let mla = match spec.mla {
            true => Some(MlaConfig::from_gguf(file, spec.name)?),
            false => None,
        };
        // MLA caches one latent of `kv_lora_rank + rope` values per token, as one KV head.
        let (num_kv_heads, key_length) = match &mla {
            Some(mla) => (1, Some(mla.cache_width())),
            None => (num_kv_heads, m.usize_opt("attention.key_length")?),
        };
        let head_dim = match key_length {
            Some(d) => d,
            None if hidden_size.is_multiple_of(num_heads) => hidden_size / num_heads,
            None => {
                return Err(ModelError::MissingKey {
                    key: m.key("attention.key_length"),
                })
            }
        };
        if let (None, Some(dv)) = (&mla, m.usize_opt("attention.value_length")?) {
            if dv != head_dim {
                return Err(ModelError::Unsupported(format!(
                    "value head size {dv} differs from key head size {head_dim}"
                )));
            }
        }
        let ffn_size = m.usize_req("feed_forward_length")?;
        let vocab_size = match m.usize_opt("vocab_size")? {
            Some(v) => v,
            None => token_rows(file)?,
        };
        let context_length = m.usize_req("context_length")?;
        let rms_eps = m
            .positive_f32_opt("attention.layer_norm_rms_epsilon")?
            .ok_or_else(|| ModelError::MissingKey {
                key: m.key("attention.layer_norm_rms_epsilon"),
            })?;
        let n_rot = m.usize_opt("rope.dimension_count")?.unwrap_or(head_dim);
        if n_rot % 2 != 0 || n_rot > head_dim {
            return Err(ModelError::BadValue {
                key: m.key("rope.dimension_count"),
                reason: format!("{n_rot} must be even and at most the head size {head_dim}"),
            });
        }
        check_no_mrope(&m)?;
        let mut theta_base = m.positive_f32_opt("rope.freq_base")?.unwrap_or(10_000.0);
        // NTK "alpha" scaling (Hunyuan): a larger base, `θ·α^(d/(d−2))` over the head size,
        // as llama.cpp applies `rope.scaling.alpha` at load. (Its converter usually folds
        // alpha into `rope.freq_base` and writes no alpha.)
        if let Some(alpha) = m.positive_f32_opt("rope.scaling.alpha")? {
            if head_dim <= 2 {
                return Err(ModelError::BadValue {
                    key: m.key("rope.scaling.alpha"),
                    reason: format!("needs a head size above 2, not {head_dim}"),
                });
            }
            let d = head_dim as f64;
            theta_base = (f64::from(theta_base) * f64::from(alpha).powf(d / (d - 2.0))) as f32;
        }
        let rope_scaling = read_rope_scaling(&m, context_length)?;
        let layers = read_layers(&m, spec, num_layers, theta_base)?;
        let moe = match &spec.moe {
            Some(moe) => Some(MoeConfig::from_gguf(file, spec.name, moe, num_layers)?),
            // Mixtral is written as `llama` with experts: refuse it rather than fail on a
            // missing dense FFN tensor.
            None => match m.usize_opt("expert_count")? {
                Some(n) if n > 0 => {
                    return Err(ModelError::Unsupported(format!(
                        "{n} experts ({}): a mixture of experts on the {} architecture \
                         (Mixtral-style) is not supported yet",
                        m.key("expert_count"),
                        spec.name
                    )))
                }
                _ => None,
            },
        };

        let has = |name: &str| file.tensor(name).is_some();
        let present = |p: Presence, name: &str| match p {
            Presence::Absent => false,
            Presence::Optional => has(name),
            Presence::Required => true,
        };
        let attention_scale = match (&mla, m.positive_f32_opt("attention.scale")?) {
            (Some(mla), _) => mla.attention_scale(&rope_scaling)?,
            (None, Some(s)) => s,
            (None, None) => 1.0 / (head_dim as f32).sqrt(),
        };
        let embedding_scale = if spec.scale_embeddings_by_sqrt_hidden {
            (hidden_size as f32).sqrt()
        } else {
            1.0
        };
        Ok(ModelConfig {
            architecture: spec.name,
            hidden_size,
            num_layers,
            num_heads,
            num_kv_heads,
            head_dim,
            ffn_size,
            vocab_size,
            context_length,
            rms_eps,
            rope_style: spec.rope_style,
            n_rot,
            theta_base,
            rope_scaling,
            has_rope_freqs: has("rope_freqs.weight"),
            layers,
            attn_logit_softcap: m.positive_f32_opt("attn_logit_softcapping")?,
            final_logit_softcap: m.positive_f32_opt("final_logit_softcapping")?,
            attention_scale,
            embedding_scale,
            activation: spec.activation,
            tied_embeddings: !has("output.weight"),
            qkv_bias: present(spec.qkv_bias, "blk.0.attn_q.bias"),
            qk_norm: present(spec.qk_norm, "blk.0.attn_q_norm.weight"),
            qk_norm_after_rope: spec.qk_norm_after_rope,
            ffn_norm: spec.ffn_norm,
            sandwich_norms: spec.sandwich_norms,
            fused_gate_up: spec.fused_gate_up,
            norm_weight_offset: spec.norm_weight_offset,
            moe,
            mla,
        })
    }

    /// Dimensions of the concatenated query heads.
    pub fn q_dim(&self) -> usize {
        self.num_heads * self.head_dim
    }

    /// Dimensions of the concatenated key (or value) heads.
    pub fn kv_dim(&self) -> usize {
        self.num_kv_heads * self.head_dim
    }
}

/// Refuses multimodal rotary sections (`rope.dimension_sections`, M-RoPE: GLM-4.5V and
/// Qwen-VL files), which the decoder does not implement. llama.cpp uses M-RoPE when the
/// first two sections are positive; zeros (as some converters write) mean plain RoPE.
fn check_no_mrope(m: &Meta) -> Result<(), ModelError> {
    let key = m.key("rope.dimension_sections");
    let sections: Vec<i64> = match (m.file.get_i32_array(&key), m.file.get_u32_array(&key)) {
        (Ok(Some(s)), _) => s.iter().map(|&v| i64::from(v)).collect(),
        (_, Ok(Some(s))) => s.iter().map(|&v| i64::from(v)).collect(),
        (Ok(None), _) => return Ok(()),
        (Err(e), _) => return Err(e.into()),
    };
    match sections.as_slice() {
        [a, b, ..] if *a > 0 && *b > 0 => Err(ModelError::Unsupported(format!(
            "multimodal rotary sections {sections:?} ({key}, M-RoPE) are not supported yet"
        ))),
        _ => Ok(()),
    }
}

/// Vocabulary size from the embedding matrix when `{arch}.vocab_size` is absent.
fn token_rows(file: &GgufFile) -> Result<usize, ModelError> {
    let t = file
        .tensor("token_embd.weight")
        .ok_or_else(|| ModelError::MissingTensor {
            name: "token_embd.weight".into(),
        })?;
    match t.dims.as_slice() {
        [_, rows] => usize::try_from(*rows).map_err(|_| ModelError::TensorShape {
            name: t.name.clone(),
            found: t.dims.clone(),
            expected: vec![],
        }),
        _ => Err(ModelError::TensorShape {
            name: t.name.clone(),
            found: t.dims.clone(),
            expected: vec![0, 0],
        }),
    }
}

fn read_rope_scaling(m: &Meta, context_length: usize) -> Result<RopeScaling, ModelError> {
    let kind = m.file.get_str(&m.key("rope.scaling.type"))?;
    let factor = m.positive_f32_opt("rope.scaling.factor")?;
    let legacy_linear = m.positive_f32_opt("rope.scale_linear")?;
    let factor_for = |kind: &str| {
        factor.ok_or_else(|| ModelError::MissingKey {
            key: format!("{}.rope.scaling.factor (needed by {kind} scaling)", m.arch),
        })
    };
    Ok(match kind {
        None | Some("none") => match legacy_linear {
            Some(f) if f != 1.0 => RopeScaling::Linear { factor: f },
            _ => RopeScaling::None,
        },
        Some("linear") => RopeScaling::Linear {
            factor: factor_for("linear")?,
        },
        Some("yarn") => RopeScaling::Yarn {
            factor: factor_for("yarn")?,
            original_context: m
                .usize_opt("rope.scaling.original_context_length")?
                .unwrap_or(context_length),
            beta_fast: m.f32_opt("rope.scaling.yarn_beta_fast")?.unwrap_or(32.0),
            beta_slow: m.f32_opt("rope.scaling.yarn_beta_slow")?.unwrap_or(1.0),
            ext_factor: m.f32_opt("rope.scaling.yarn_ext_factor")?.unwrap_or(1.0),
            attn_factor: m.f32_opt("rope.scaling.yarn_attn_factor")?.unwrap_or(1.0),
        },
        Some(other) => {
            return Err(ModelError::Unsupported(format!(
                "RoPE scaling type {other:?} ({}.rope.scaling.type); supported: none, linear, yarn",
                m.arch
            )))
        }
    })
}

fn read_layers(
    m: &Meta,
    spec: &ArchSpec,
    num_layers: usize,
    theta_base: f32,
) -> Result<Vec<LayerConfig>, ModelError> {
    let window = m.usize_opt("attention.sliding_window")?;
    let pattern_key = m.key("attention.sliding_window_pattern");
    // Which layers slide: from the file's pattern if present, else the spec's rule.
    let sliding: Vec<bool> = match m.file.get(&pattern_key) {
        Some(v) => {
            if let Some(n) = v.as_integer() {
                let n = usize::try_from(n).ok().filter(|&n| n > 0).ok_or_else(|| {
                    ModelError::BadValue {
                        key: pattern_key.clone(),
                        reason: format!("{n} is not a positive layer count"),
                    }
                })?;
                (0..num_layers).map(|i| i % n < n - 1).collect()
            } else if let Some(flags) = v.as_array().and_then(|a| a.to_integers()) {
                if flags.len() != num_layers {
                    return Err(ModelError::BadValue {
                        key: pattern_key,
                        reason: format!("{} entries for {num_layers} layers", flags.len()),
                    });
                }
                flags.iter().map(|&f| f != 0).collect()
            } else {
                return Err(ModelError::BadValue {
                    key: pattern_key,
                    reason: format!(
                        "expected an integer or array, found {}",
                        v.type_description()
                    ),
                });
            }
        }
        None => match spec.sliding_pattern {
            SlidingPattern::None => vec![false; num_layers],
            SlidingPattern::LastOfEvery(n) => (0..num_layers).map(|i| i % n < n - 1).collect(),
        },
    };
    let any_sliding = sliding.iter().any(|&s| s);
    let window = match (any_sliding, window) {
        (true, Some(w)) if w > 0 => Some(w),
        (true, _) => {
            return Err(ModelError::MissingKey {
                key: m.key("attention.sliding_window"),
            })
        }
        (false, _) => None,
    };
    let local_base = m
        .positive_f32_opt("rope.local.freq_base")?
        .or(spec.local_rope_base)
        .unwrap_or(theta_base);
    Ok(sliding
        .into_iter()
        .map(|s| LayerConfig {
            sliding_window: if s { window } else { None },
            rope_theta: if s { local_base } else { theta_base },
        })
        .collect())
}
