//! Per-layer RoPE settings resolved at load: each layer's base, plus the file's scaling
//! (linear, Llama 3 frequency factors, YaRN) for the layers that use the global base.
//! (Split out of `decoder.rs`, unchanged but for multi-head latent attention's YaRN.)

use crate::config::{ModelConfig, RopeScaling};
use crate::error::ModelError;

/// RoPE settings of one layer, resolved at load.
pub(crate) struct LayerRope {
    pub theta_base: f32,
    pub freq_scale: f32,
    pub factors: Option<Vec<f32>>,
    /// Extra multiplier of attention scores (YaRN's magnitude correction, squared).
    pub score_mult: f32,
}

/// Per-layer RoPE parameters: the layer's base, plus the file's scaling for layers using
/// the global base (local sliding-window bases are not scaled, as in llama.cpp).
pub(crate) fn resolve_rope(
    c: &ModelConfig,
    rope_freqs: Option<&[f32]>,
) -> Result<Vec<LayerRope>, ModelError> {
    c.layers
        .iter()
        .map(|layer| {
            let scaled = layer.rope_theta == c.theta_base;
            let mut r = LayerRope {
                theta_base: layer.rope_theta,
                freq_scale: 1.0,
                factors: if scaled {
                    rope_freqs.map(<[f32]>::to_vec)
                } else {
                    None
                },
                score_mult: 1.0,
            };
            if !scaled {
                return Ok(r);
            }
            match &c.rope_scaling {
                RopeScaling::None => {}
                RopeScaling::Linear { factor } => r.freq_scale = 1.0 / factor,
                RopeScaling::Yarn { .. } if rope_freqs.is_some() => {
                    return Err(ModelError::Unsupported(
                        "YaRN scaling together with rope_freqs.weight".into(),
                    ))
                }
                RopeScaling::Yarn {
                    factor,
                    original_context,
                    beta_fast,
                    beta_slow,
                    ext_factor,
                    attn_factor,
                } => {
                    let (factors, mscale) = yarn_factors(
                        c.n_rot,
                        layer.rope_theta,
                        1.0 / factor,
                        *original_context,
                        *beta_fast,
                        *beta_slow,
                        *ext_factor,
                        *attn_factor,
                    );
                    r.factors = Some(factors);
                    if c.mla.is_some() {
                        // MLA keeps the rotation at unit magnitude; its correction is in
                        // `attention_scale` (see mla.rs), as llama.cpp does.
                        return Ok(r);
                    }
                    if c.n_rot != c.head_dim && mscale != 1.0 {
                        return Err(ModelError::Unsupported(
                            "YaRN with partial rotary dimensions".into(),
                        ));
                    }
                    r.score_mult = mscale * mscale;
                }
            }
            Ok(r)
        })
        .collect()
}

/// YaRN as per-pair frequency divisors: GGML's `rope_yarn` mixes the interpolated angle
/// `freq_scale·θ` and the original `θ` by a ramp over pair index between the correction
/// dimensions of `beta_fast` and `beta_slow`, and scales cos/sin by
/// `attn_factor·(1 + 0.1·ln(1/freq_scale))` (applied here to the scores, squared).
#[allow(clippy::too_many_arguments)]
fn yarn_factors(
    n_rot: usize,
    base: f32,
    freq_scale: f32,
    original_context: usize,
    beta_fast: f32,
    beta_slow: f32,
    ext_factor: f32,
    attn_factor: f32,
) -> (Vec<f32>, f32) {
    let (n, base) = (n_rot as f64, f64::from(base));
    let corr_dim = |beta: f32| {
        n * (original_context as f64 / (f64::from(beta) * 2.0 * std::f64::consts::PI)).ln()
            / (2.0 * base.ln())
    };
    let low = corr_dim(beta_fast).floor().max(0.0);
    let high = corr_dim(beta_slow).ceil().min(n - 1.0);
    let fs = f64::from(freq_scale);
    let factors = (0..n_rot / 2)
        .map(|i| {
            let y = (i as f64 - low) / (high - low).max(0.001);
            let ramp = 1.0 - y.clamp(0.0, 1.0);
            let mix = ramp * f64::from(ext_factor);
            (1.0 / ((1.0 - mix) * fs + mix)) as f32
        })
        .collect();
    let mscale = if ext_factor != 0.0 {
        attn_factor * (1.0 + 0.1 * (1.0 / fs).ln()) as f32
    } else {
        attn_factor
    };
    (factors, mscale)
}

#[cfg(test)]
mod tests {
    use super::yarn_factors;

    #[test]
    fn yarn_limits() {
        // No stretching (factor 1): every pair keeps its frequency, scale is attn_factor.
        let (f, m) = yarn_factors(64, 10_000.0, 1.0, 4096, 32.0, 1.0, 1.0, 1.0);
        assert!(f.iter().all(|&x| (x - 1.0).abs() < 1e-6), "{f:?}");
        assert_eq!(m, 1.0);
        // ext_factor 0: pure linear interpolation (every divisor = factor), no mscale.
        let (f, m) = yarn_factors(64, 10_000.0, 0.25, 4096, 32.0, 1.0, 0.0, 1.0);
        assert!(f.iter().all(|&x| (x - 4.0).abs() < 1e-5), "{f:?}");
        assert_eq!(m, 1.0);
        // Full YaRN, factor 4: high-frequency pairs (small i) keep their frequency,
        // low-frequency pairs are interpolated, and mscale = 1 + 0.1 ln 4.
        let (f, m) = yarn_factors(64, 10_000.0, 0.25, 4096, 32.0, 1.0, 1.0, 1.0);
        assert!(
            (f[0] - 1.0).abs() < 1e-6 && (f[31] - 4.0).abs() < 1e-5,
            "{f:?}"
        );
        assert!(f.windows(2).all(|w| w[0] <= w[1]), "{f:?}");
        assert!((m - (1.0 + 0.1 * 4f32.ln())).abs() < 1e-6);
    }
}
