//! The exponentials of attention's softmax: [`exp_shifted`] turns scores into
//! `exp(x - shift)` in place and returns their sum, and [`scale_max`] scales scores and
//! finds their maximum (with optional soft-capping).
//!
//! The scalar functions are the reference (`f32::exp`, sequential sums). The AVX2
//! exponential is the textbook range reduction (Cody & Waite): `x = n·ln2 + r` with
//! `n = round(x/ln2)` and `|r| ≤ ln2/2` (ln2 split in a high part exact in f32 and a low
//! correction), then `e^r` by its degree-7 Taylor polynomial in Horner form (truncation
//! error below 6e-9 relative on that interval) and `2^n` put into the exponent bits.
//! Results stay within a few ulp of `f32::exp`; arguments below −87.3 (where `e^x` leaves
//! the normal range) give 0, which is what a softmax weight that small rounds to anyway.
//! The SIMD sum adds in eight lanes, so it differs from the reference by reassociation.

#[cfg(target_arch = "x86_64")]
use crate::dispatch::runs_avx2;

/// `x[i] = exp(x[i] − shift)` for every element; returns `Σ x[i]` after the update.
/// Meant for `shift ≥ max x` (softmax), so no result overflows.
pub fn exp_shifted(x: &mut [f32], shift: f32) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if runs_avx2() {
        // SAFETY: the level check guarantees AVX2, FMA and F16C.
        return unsafe { avx2::exp_shifted(x, shift) };
    }
    exp_shifted_scalar(x, shift)
}

/// Reference of [`exp_shifted`].
pub fn exp_shifted_scalar(x: &mut [f32], shift: f32) -> f32 {
    let mut sum = 0f32;
    for v in x.iter_mut() {
        *v = (*v - shift).exp();
        sum += *v;
    }
    sum
}

/// `x[i] = cap·tanh(x[i]·scale / cap)` with a soft cap, else `x[i]·scale`; returns the
/// maximum after the update (−∞ for an empty slice). Plain loops the compiler
/// vectorises; `tanh` stays scalar (only Gemma-2-style models cap scores).
pub fn scale_max(x: &mut [f32], scale: f32, softcap: Option<f32>) -> f32 {
    match softcap {
        Some(cap) => {
            for v in x.iter_mut() {
                *v = cap * (*v * scale / cap).tanh();
            }
        }
        None => {
            for v in x.iter_mut() {
                *v *= scale;
            }
        }
    }
    x.iter().copied().fold(f32::NEG_INFINITY, f32::max)
}

#[cfg(target_arch = "x86_64")]
pub(super) mod avx2 {
    use crate::quant::x86::hsum_ps;
    use std::arch::x86_64::*;

    const LOG2_E: f32 = std::f32::consts::LOG2_E;
    /// ln 2 in two parts: `LN2_HI` has few enough significant bits that `n·LN2_HI` is
    /// exact for |n| ≤ 128, `LN2_LO` is the remainder.
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    /// Below this, `e^x` is under the smallest normal f32: the result is flushed to 0.
    const MIN_ARG: f32 = -87.336_55;

    /// `e^x` on eight lanes (`x ≤ 88`).
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(in crate::ops) fn exp8(x: __m256) -> __m256 {
        let n = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
            _mm256_mul_ps(x, _mm256_set1_ps(LOG2_E)),
        );
        let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_HI), x);
        let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_LO), r);
        // e^r = 1 + r + r²/2! + … + r⁷/7!, Horner.
        let mut p = _mm256_set1_ps(1.0 / 5040.0);
        for c in [
            1.0 / 720.0,
            1.0 / 120.0,
            1.0 / 24.0,
            1.0 / 6.0,
            0.5,
            1.0,
            1.0,
        ] {
            p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(c));
        }
        // 2^n: n + 127 in the exponent field (n ≥ −126 here, so the field stays ≥ 1).
        let n = _mm256_max_ps(n, _mm256_set1_ps(-126.0));
        let pow2 = _mm256_slli_epi32::<23>(_mm256_add_epi32(
            _mm256_cvtps_epi32(n),
            _mm256_set1_epi32(127),
        ));
        let y = _mm256_mul_ps(p, _mm256_castsi256_ps(pow2));
        // Flush arguments past the normal range to 0 (NaN compares false: stays NaN).
        let tiny = _mm256_cmp_ps::<_CMP_LT_OQ>(x, _mm256_set1_ps(MIN_ARG));
        _mm256_andnot_ps(tiny, y)
    }

    /// # Safety
    /// The CPU has AVX2, FMA and F16C.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn exp_shifted(x: &mut [f32], shift: f32) -> f32 {
        let s = _mm256_set1_ps(shift);
        let mut acc = _mm256_setzero_ps();
        let mut chunks = x.chunks_exact_mut(8);
        for c in &mut chunks {
            // SAFETY: `c` holds exactly eight f32.
            unsafe {
                let v = exp8(_mm256_sub_ps(_mm256_loadu_ps(c.as_ptr()), s));
                _mm256_storeu_ps(c.as_mut_ptr(), v);
                acc = _mm256_add_ps(acc, v);
            }
        }
        let rest = chunks.into_remainder();
        if rest.is_empty() {
            return hsum_ps(acc);
        }
        let mut buf = [f32::NEG_INFINITY; 8];
        buf[..rest.len()].copy_from_slice(rest);
        // SAFETY: `buf` holds eight f32; −∞ lanes give exactly 0.
        unsafe {
            let v = exp8(_mm256_sub_ps(_mm256_loadu_ps(buf.as_ptr()), s));
            _mm256_storeu_ps(buf.as_mut_ptr(), v);
            acc = _mm256_add_ps(acc, v);
        }
        rest.copy_from_slice(&buf[..rest.len()]);
        hsum_ps(acc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::testing::Rng;

    #[test]
    fn dispatched_exp_matches_f32_exp() {
        let mut r = Rng::new(5);
        for n in [0usize, 1, 7, 8, 9, 100, 1000] {
            let x: Vec<f32> = (0..n).map(|_| r.uniform(-100.0, 0.0)).collect();
            let (mut got, mut want) = (x.clone(), x.clone());
            let gs = exp_shifted(&mut got, 0.0);
            let ws = exp_shifted_scalar(&mut want, 0.0);
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                if x[i] < -87.33 {
                    // Below the normal range: flushed to 0 or a subnormal.
                    assert!(*g <= f32::MIN_POSITIVE && *w <= f32::MIN_POSITIVE);
                } else {
                    assert!((g - w).abs() <= 4e-7 * w, "exp({}) = {g}, want {w}", x[i]);
                }
            }
            assert!(
                (gs - ws).abs() <= 1e-6 * ws.max(f32::MIN_POSITIVE),
                "{gs} vs {ws}"
            );
        }
    }

    #[test]
    fn exp_is_exact_at_zero_shift_points_and_handles_infinities() {
        let mut x = [
            3.0,
            3.0,
            f32::NEG_INFINITY,
            3.0 - std::f32::consts::LN_2 * 4.0,
        ];
        let sum = exp_shifted(&mut x, 3.0);
        assert_eq!(x[0], 1.0);
        assert_eq!(x[2], 0.0);
        assert!((x[3] - 0.0625).abs() <= 1e-7, "{}", x[3]);
        assert!((sum - 2.0625).abs() <= 1e-6);
        // Dense sweep over the whole useful range, against the reference.
        let xs: Vec<f32> = (0..=90_000).map(|i| -(i as f32) * 0.001).collect();
        let (mut got, mut want) = (xs.clone(), xs.clone());
        exp_shifted(&mut got, 0.0);
        exp_shifted_scalar(&mut want, 0.0);
        for ((g, w), x) in got.iter().zip(&want).zip(&xs) {
            if *x >= -87.33 {
                assert!((g - w).abs() <= 4e-7 * w, "exp({x}) = {g}, want {w}");
            }
        }
    }

    #[test]
    fn scale_max_scales_caps_and_finds_the_maximum() {
        let mut x = [1.0, -2.0, 4.0];
        assert_eq!(scale_max(&mut x, 0.5, None), 2.0);
        assert_eq!(x, [0.5, -1.0, 2.0]);
        let mut x = [100.0, 0.0];
        let m = scale_max(&mut x, 1.0, Some(10.0));
        assert!((m - 10.0 * 10f32.tanh()).abs() < 1e-5 && x[1] == 0.0);
        assert_eq!(scale_max(&mut [], 1.0, None), f32::NEG_INFINITY);
    }
}
