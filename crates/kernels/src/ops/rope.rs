//! Rotary position embeddings (Su et al., "RoFormer", 2021): each pair of dimensions
//! `(a, b)` of every head is rotated by the angle
//! `θ_i = pos · freq_scale · base^(−2i/n_rot) / factor_i`, i.e.
//! `a' = a·cos θ − b·sin θ`, `b' = a·sin θ + b·cos θ`.
//!
//! Pairing follows the two conventions GGUF models use: [`RopeStyle::Normal`] pairs
//! adjacent dimensions `(2i, 2i+1)` (the original GPT-J/Llama layout, GGML rope mode 0);
//! [`RopeStyle::Neox`] pairs `(i, i + n_rot/2)` (GPT-NeoX layout, GGML mode 2, used by
//! Qwen2, Gemma, ...). Only the first `n_rot` dimensions of each head rotate. `factor_i`
//! are optional per-pair frequency divisors (Llama 3.1 `rope_freqs`), `freq_scale` is
//! linear position interpolation (`1 / scaling factor`). Angles are computed in f64.

/// How dimensions are paired for rotation.
use std::cell::RefCell;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RopeStyle {
    /// Pairs `(2i, 2i+1)`.
    Normal,
    /// Pairs `(i, i + n_rot/2)`.
    Neox,
}

/// Parameters of a rotary embedding, fixed per model.
#[derive(Clone, Copy, Debug)]
pub struct RopeParams<'a> {
    pub style: RopeStyle,
    /// Dimensions rotated per head: even and at most the head size.
    pub n_rot: usize,
    /// Base of the frequency progression (10000 for Llama 2, 500000 for Llama 3...).
    pub theta_base: f32,
    /// Positions are multiplied by this (linear scaling; 1 = none).
    pub freq_scale: f32,
    /// `n_rot / 2` divisors of each pair's frequency, if the model has them.
    pub freq_factors: Option<&'a [f32]>,
}

impl RopeParams<'static> {
    /// Plain RoPE: no scaling, no frequency factors.
    pub fn new(style: RopeStyle, n_rot: usize, theta_base: f32) -> RopeParams<'static> {
        RopeParams {
            style,
            n_rot,
            theta_base,
            freq_scale: 1.0,
            freq_factors: None,
        }
    }
}

/// Rotates `x`, laid out as `[n_heads, head_dim]`, for position `pos`.
pub fn rope(x: &mut [f32], n_heads: usize, head_dim: usize, pos: usize, p: &RopeParams) {
    rope_qk(x, n_heads, &mut [], 0, head_dim, pos, p);
}

thread_local! {
    /// `base^(−2i/n_rot)` for every pair `i`, for the last `(base, n_rot)` seen on this
    /// thread: a model asks for the same few every row, and `powf` per pair per row was
    /// ~1% of a prefill.
    static INV_FREQ: RefCell<(f32, usize, Vec<f64>)> = const { RefCell::new((f32::NAN, 0, Vec::new())) };
}

/// [`rope`] of the query heads `q` (`[n_q_heads, head_dim]`) and the key heads `k`
/// (`[n_kv_heads, head_dim]`) of one row at once: each pair's angle, sine and cosine are
/// computed once for both (the same values `rope` computes for each).
pub fn rope_qk(
    q: &mut [f32],
    n_q_heads: usize,
    k: &mut [f32],
    n_kv_heads: usize,
    head_dim: usize,
    pos: usize,
    p: &RopeParams,
) {
    for (x, n_heads) in [(&*q, n_q_heads), (&*k, n_kv_heads)] {
        assert_eq!(
            x.len(),
            n_heads * head_dim,
            "rope: x has {} elements, expected {n_heads} heads of {head_dim}",
            x.len()
        );
    }
    assert!(
        p.n_rot.is_multiple_of(2) && p.n_rot <= head_dim,
        "rope: n_rot {} must be even and at most head_dim {head_dim}",
        p.n_rot
    );
    let half = p.n_rot / 2;
    if let Some(f) = p.freq_factors {
        assert_eq!(
            f.len(),
            half,
            "rope: {} frequency factors for {half} pairs",
            f.len()
        );
    }
    let position = pos as f64 * f64::from(p.freq_scale);
    // Offsets of the two members of pair i within a head.
    let (stride, partner) = match p.style {
        RopeStyle::Normal => (2, 1),
        RopeStyle::Neox => (1, half),
    };
    INV_FREQ.with_borrow_mut(|(base_seen, n_rot_seen, inv_freq)| {
        if base_seen.to_bits() != p.theta_base.to_bits() || *n_rot_seen != p.n_rot {
            let base = f64::from(p.theta_base);
            inv_freq.clear();
            inv_freq.extend((0..half).map(|i| base.powf(-2.0 * i as f64 / p.n_rot as f64)));
            (*base_seen, *n_rot_seen) = (p.theta_base, p.n_rot);
        }
        for (i, &inv) in inv_freq.iter().enumerate() {
            let mut theta = position * inv;
            if let Some(f) = p.freq_factors {
                theta /= f64::from(f[i]);
            }
            let (sin, cos) = theta.sin_cos();
            let (sin, cos) = (sin as f32, cos as f32);
            let first = i * stride;
            for head in q
                .chunks_exact_mut(head_dim)
                .chain(k.chunks_exact_mut(head_dim))
            {
                let a = head[first];
                let b = head[first + partner];
                head[first] = a * cos - b * sin;
                head[first + partner] = a * sin + b * cos;
            }
        }
    });
}
