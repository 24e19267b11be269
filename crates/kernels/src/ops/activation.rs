//! Activation functions and gated feed-forward products, in place on `f32` slices.
//!
//! Formulas: SiLU `x·σ(x)` (Elfwing et al. 2017; Ramachandran et al. "Swish" 2017);
//! GELU `x·Φ(x)` (Hendrycks & Gimpel 2016) exactly via `erf`, and in its tanh
//! approximation `0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))` from the same paper, which
//! is what GGML and Gemma (`gelu_pytorch_tanh`) use. SwiGLU/GeGLU `act(gate)·up`
//! (Shazeer, "GLU Variants Improve Transformer", 2020). `erfc` is the Chebyshev fit from
//! Press et al., *Numerical Recipes* 2nd ed. §6.2 (fractional error < 1.2e-7 everywhere).

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
    for v in x.iter_mut() {
        *v = silu_one(*v);
    }
}

/// `x = gelu(x)`, tanh approximation (GGML's and Gemma's GELU).
pub fn gelu(x: &mut [f32]) {
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
    for (g, &u) in gate.iter_mut().zip(up) {
        *g = silu_one(*g) * u;
    }
}

/// GeGLU with the tanh GELU: `gate = gelu(gate) · up` (Gemma's feed-forward).
pub fn geglu(gate: &mut [f32], up: &[f32]) {
    check_len("geglu", gate, up);
    for (g, &u) in gate.iter_mut().zip(up) {
        *g = gelu_tanh_one(*g) * u;
    }
}
