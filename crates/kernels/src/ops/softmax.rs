//! Numerically stable softmax, `y_i = exp(x_i - max x) / Σ_j exp(x_j - max x)`
//! (subtracting the maximum is the standard overflow guard; Goodfellow et al., "Deep
//! Learning", §4.1).

/// Softmax of `x` in place. `-inf` entries (masked positions) get exactly 0. A row that
/// is entirely `-inf` (everything masked) becomes all zeros rather than NaN. NaN inputs
/// propagate.
pub fn softmax(x: &mut [f32]) {
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if max == f32::NEG_INFINITY {
        x.fill(0.0);
        return;
    }
    let mut sum = 0f64;
    for v in x.iter_mut() {
        // exp(-inf - max) = 0 for masked entries.
        *v = (*v - max).exp();
        sum += f64::from(*v);
    }
    // sum >= 1: the maximum contributes exp(0) = 1.
    let inv = (1.0 / sum) as f32;
    for v in x.iter_mut() {
        *v *= inv;
    }
}
