//! RMS normalisation, `out_i = x_i / sqrt(mean(x²) + eps) * weight_i`, as defined in
//! Zhang & Sennrich, "Root Mean Square Layer Normalization" (2019), and used by
//! Llama-family models (eps inside the square root).

/// Lanes of independent partial sums (lets the compiler keep them in vector registers).
const LANES: usize = 16;

/// Sum of squares with `LANES` f32 partial sums, combined in f64.
fn sum_of_squares(x: &[f32]) -> f64 {
    let mut acc = [0f32; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for (a, v) in acc.iter_mut().zip(c) {
            *a += v * v;
        }
    }
    let tail_sum: f64 = tail.iter().map(|&v| f64::from(v * v)).sum();
    acc.iter().map(|&a| f64::from(a)).sum::<f64>() + tail_sum
}

/// `1 / sqrt(mean(x²) + eps)`; `x` must not be empty.
fn inverse_rms(x: &[f32], eps: f32) -> f32 {
    let mean = sum_of_squares(x) / x.len() as f64;
    (1.0 / (mean + f64::from(eps)).sqrt()) as f32
}

/// `out = x / rms(x) * weight`. All three slices have the same length (not zero).
pub fn rms_norm(x: &[f32], weight: &[f32], eps: f32, out: &mut [f32]) {
    assert!(!x.is_empty(), "rms_norm: empty input");
    assert_eq!(
        x.len(),
        weight.len(),
        "rms_norm: x and weight lengths differ"
    );
    assert_eq!(x.len(), out.len(), "rms_norm: x and out lengths differ");
    let inv = inverse_rms(x, eps);
    for ((o, &v), &g) in out.iter_mut().zip(x).zip(weight) {
        *o = v * inv * g;
    }
}

/// [`rms_norm`] writing back into `x`.
pub fn rms_norm_in_place(x: &mut [f32], weight: &[f32], eps: f32) {
    assert!(!x.is_empty(), "rms_norm: empty input");
    assert_eq!(
        x.len(),
        weight.len(),
        "rms_norm: x and weight lengths differ"
    );
    let inv = inverse_rms(x, eps);
    for (v, &g) in x.iter_mut().zip(weight) {
        *v = *v * inv * g;
    }
}
