//! Activation functions and gated feed-forward products, in place on `f32` slices.
//!
//! Formulas: SiLU `x·σ(x)` (Elfwing et al. 2017; Ramachandran et al. "Swish" 2017);
//! GELU `x·Φ(x)` (Hendrycks & Gimpel 2016) exactly via `erf`, and in its tanh
//! approximation `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))` from the same paper, which
//! is what GGML and Gemma (`gelu_pytorch_tanh`) use. SwiGLU/GeGLU `act(gate)·up`
//! (Shazeer, "GLU Variants Improve Transformer", 2020). `erfc` is the Chebyshev fit from
//! Press et al., *Numerical Recipes* 2nd ed. §6.2 (fractional error < 1.2e-7 everywhere).
//!
//! SiLU and the tanh GELU (and their gated products) have AVX2 versions: the same
//! formulas eight lanes at a time with the exponential of [`super::exp`] (within a few
//! ulp of `f32::exp`) and an exact division; the scalar loops are their reference. The
//! exponential's argument is capped at 88 (where `e^x` nears the f32 limit), so for
//! inputs below −88 the AVX2 SiLU gives a tiny negative number where the scalar one
//! gives −0.

#[cfg(target_arch = "x86_64")]
use crate::dispatch::runs_avx2;

/// √(2/π)
const SQRT_2_OVER_PI: f32 = 0.797_884_6;
/// Cubic coefficient of the tanh approximation.
const GELU_CUBIC: f32 = 0.044_715;

#[inline]
fn silu_one(x: f32) -> f32 {
    // For very negative x, exp(-x) overflows to inf and the result is -0: the limit.
    x / (1.0 + (-x).exp())
}

#[inline]
fn gelu_tanh_one(x: f32) -> f32 {
    // 0.5·(1 + tanh u) = 1 / (1 + exp(−2u)) exactly; the right side avoids the
    // cancellation of 1 + tanh u ≈ 0 for negative x, keeping tiny results accurate.
    let u = SQRT_2_OVER_PI * x * (1.0 + GELU_CUBIC * x * x);
    x / (1.0 + (-2.0 * u).exp())
}

/// Complementary error function for `z >= 0` (Numerical Recipes' `erfcc`).
#[inline]
fn erfc_nonneg(z: f32) -> f32 {
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -1.265_512_2
        + t * (1.000_023_7
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_204
                                + t * (1.488_515_9 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    t * (-z * z + poly).exp()
}

#[inline]
fn gelu_erf_one(x: f32) -> f32 {
    // Φ(x) = erfc(-x/√2)/2; evaluating erfc on the small side keeps relative accuracy
    // for negative x, where the result is tiny.
    let z = x.abs() * std::f32::consts::FRAC_1_SQRT_2;
    let e = erfc_nonneg(z);
    let phi = if x < 0.0 { 0.5 * e } else { 1.0 - 0.5 * e };
    x * phi
}

/// `x = silu(x) = x / (1 + exp(-x))`.
pub fn silu(x: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if runs_avx2() {
        // SAFETY: `runs_avx2` checked that the CPU has AVX2, FMA and F16C.
        return unsafe { avx2::map(x, None, avx2::Act::Silu) };
    }
    for v in x.iter_mut() {
        *v = silu_one(*v);
    }
}

/// `x = gelu(x)`, tanh approximation (GGML's and Gemma's GELU).
pub fn gelu(x: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if runs_avx2() {
        // SAFETY: as in `silu`.
        return unsafe { avx2::map(x, None, avx2::Act::GeluTanh) };
    }
    for v in x.iter_mut() {
        *v = gelu_tanh_one(*v);
    }
}

/// `x = x·Φ(x) = 0.5·x·(1 + erf(x/√2))`, the exact GELU.
pub fn gelu_erf(x: &mut [f32]) {
    for v in x.iter_mut() {
        *v = gelu_erf_one(*v);
    }
}

fn check_len(op: &str, gate: &[f32], up: &[f32]) {
    assert_eq!(
        gate.len(),
        up.len(),
        "{op}: gate has {} elements, up has {}",
        gate.len(),
        up.len()
    );
}

/// SwiGLU: `gate = silu(gate) · up`.
pub fn swiglu(gate: &mut [f32], up: &[f32]) {
    check_len("swiglu", gate, up);
    #[cfg(target_arch = "x86_64")]
    if runs_avx2() {
        // SAFETY: as in `silu`; the lengths are equal (checked above).
        return unsafe { avx2::map(gate, Some(up), avx2::Act::Silu) };
    }
    for (g, &u) in gate.iter_mut().zip(up) {
        *g = silu_one(*g) * u;
    }
}

/// GeGLU with the tanh GELU: `gate = gelu(gate) · up` (Gemma's feed-forward).
pub fn geglu(gate: &mut [f32], up: &[f32]) {
    check_len("geglu", gate, up);
    #[cfg(target_arch = "x86_64")]
    if runs_avx2() {
        // SAFETY: as in `swiglu`.
        return unsafe { avx2::map(gate, Some(up), avx2::Act::GeluTanh) };
    }
    for (g, &u) in gate.iter_mut().zip(up) {
        *g = gelu_tanh_one(*g) * u;
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::super::exp::avx2::exp8;
    use super::{gelu_tanh_one, silu_one, GELU_CUBIC, SQRT_2_OVER_PI};
    use std::arch::x86_64::*;

    /// Largest argument handed to `exp8` (its range ends near 88.7).
    const MAX_EXP_ARG: f32 = 88.0;

    #[derive(Clone, Copy)]
    pub(super) enum Act {
        Silu,
        GeluTanh,
    }

    /// `x / (1 + e^(−k))` for the activation's `k` (SiLU: `x`; tanh GELU: `2u`, see
    /// `gelu_tanh_one`), eight lanes.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn act8(x: __m256, act: Act) -> __m256 {
        let k = match act {
            Act::Silu => x,
            Act::GeluTanh => {
                let x2 = _mm256_mul_ps(x, x);
                let inner = _mm256_fmadd_ps(_mm256_set1_ps(GELU_CUBIC), x2, _mm256_set1_ps(1.0));
                _mm256_mul_ps(
                    _mm256_mul_ps(_mm256_set1_ps(2.0 * SQRT_2_OVER_PI), x),
                    inner,
                )
            }
        };
        let arg = _mm256_min_ps(
            _mm256_sub_ps(_mm256_setzero_ps(), k),
            _mm256_set1_ps(MAX_EXP_ARG),
        );
        _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0), exp8(arg)))
    }

    /// `x[i] = act(x[i])`, times `up[i]` if given (`up` as long as `x`).
    ///
    /// # Safety
    /// The CPU has AVX2, FMA and F16C; `up`, if given, has `x.len()` elements.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn map(x: &mut [f32], up: Option<&[f32]>, act: Act) {
        let full = x.len() / 8 * 8;
        let mut i = 0;
        while i < full {
            // SAFETY: i + 8 <= x.len() (= up.len()).
            unsafe {
                let p = x.as_mut_ptr().add(i);
                let mut v = act8(_mm256_loadu_ps(p), act);
                if let Some(u) = up {
                    v = _mm256_mul_ps(v, _mm256_loadu_ps(u.as_ptr().add(i)));
                }
                _mm256_storeu_ps(p, v);
            }
            i += 8;
        }
        for j in full..x.len() {
            let a = match act {
                Act::Silu => silu_one(x[j]),
                Act::GeluTanh => gelu_tanh_one(x[j]),
            };
            x[j] = up.map_or(a, |u| a * u[j]);
        }
    }
}
