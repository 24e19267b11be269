//! Portable, deterministic numeric helpers for sampling over whole vocabularies.
//!
//! - [`exp`]: e^x in `f32` from IEEE add/multiply only (Cody–Waite range reduction
//!   x = n·ln2 + r, |r| ≤ ln2/2, then the degree-7 Taylor polynomial of e^r, scaled by 2^n
//!   through the exponent bits). Unlike `f32::exp`, which calls the platform's libm, it
//!   gives bit-identical results on every target — part of the "same seed, same text
//!   everywhere" contract — and is branch-free, so loops over 262k logits vectorise.
//!   Relative error < 1e-6 (tested against `f64::exp`); `exp(0) == 1` exactly.
//! - [`max`], [`sum_f64`] and [`sum_exp_f64`]: reductions in 8 fixed lanes (so the compiler can use SIMD
//!   without changing the result: the summation order is fixed by this code, not by it).

/// Lanes of the fixed-order reductions.
const LANES: usize = 8;

/// e^x for x ≤ 88 (larger x gives e^88); 0 below −87 (and for −∞). Not for NaN.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2_E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split so that n·LN2_HI is exact for |n| < 2^9.
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // Adding 1.5·2^23 rounds to the nearest integer (ties to even) in the mantissa.
    const ROUND: f32 = 12_582_912.0;
    let xc = x.clamp(-87.0, 88.0);
    let t = xc * LOG2_E + ROUND;
    let n = t - ROUND;
    let r = xc - n * LN2_HI - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (1.0 / 2.0
                + r * (1.0 / 6.0
                    + r * (1.0 / 24.0
                        + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    // t lies in [2^23, 2^24), where one unit of the mantissa is 1.0, so the bit difference
    // is n exactly; n ∈ [−126, 127] keeps the biased exponent in 1..=254.
    let n_int = t.to_bits() as i32 - ROUND.to_bits() as i32;
    let scale = f32::from_bits(((n_int + 127) << 23) as u32);
    if x < -87.0 {
        0.0
    } else {
        p * scale
    }
}

/// The largest element (−∞ for an empty slice). Input must be NaN-free.
pub fn max(xs: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let chunks = xs.chunks_exact(LANES);
    let tail = chunks.remainder();
    for chunk in chunks {
        for (m, &x) in lanes.iter_mut().zip(chunk) {
            *m = if x > *m { x } else { *m };
        }
    }
    let mut m = f32::NEG_INFINITY;
    for &x in lanes.iter().chain(tail) {
        m = if x > m { x } else { m };
    }
    m
}

/// The sum in `f64`, accumulated in 8 lanes (element i goes to lane i mod 8, the tail
/// sequentially after), lanes added in order.
pub fn sum_f64(xs: &[f32]) -> f64 {
    let mut lanes = [0.0f64; LANES];
    let chunks = xs.chunks_exact(LANES);
    let tail = chunks.remainder();
    for chunk in chunks {
        for (s, &x) in lanes.iter_mut().zip(chunk) {
            *s += f64::from(x);
        }
    }
    let mut total: f64 = lanes.iter().sum();
    for &x in tail {
        total += f64::from(x);
    }
    total
}

/// Σ exp(x − shift) in `f64` with [`exp`], in the lanes of [`sum_f64`]. The exponentials
/// go through `scratch` (left holding them) so that the exp loop vectorises.
pub fn sum_exp_f64(xs: &[f32], shift: f32, scratch: &mut Vec<f32>) -> f64 {
    scratch.clear();
    scratch.extend(xs.iter().map(|&x| exp(x - shift)));
    sum_f64(scratch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_matches_f64_reference() {
        let mut worst = 0.0f64;
        let mut x = -87.0f32;
        while x <= 88.0 {
            let want = f64::from(x).exp();
            let got = f64::from(exp(x));
            worst = worst.max(((got - want) / want).abs());
            x += 0.000_731;
        }
        assert!(worst < 1e-6, "worst relative error {worst}");
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp(-100.0), 0.0);
    }

    #[test]
    fn reductions() {
        let xs: Vec<f32> = (0..37).map(|i| (i as f32 * 0.37).sin()).collect();
        let want_max = xs.iter().copied().fold(f32::MIN, f32::max);
        assert_eq!(max(&xs), want_max);
        assert_eq!(max(&[]), f32::NEG_INFINITY);
        let want_sum: f64 = xs.iter().map(|&x| f64::from(x)).sum();
        assert!((sum_f64(&xs) - want_sum).abs() < 1e-12);
        let want: f64 = xs.iter().map(|&x| (f64::from(x) - 0.5).exp()).sum();
        assert!((sum_exp_f64(&xs, 0.5, &mut Vec::new()) - want).abs() < 1e-5);
    }
}
