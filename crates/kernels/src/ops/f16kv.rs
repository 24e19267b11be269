//! Attention's inner loops over f16 (IEEE binary16) keys and values, read in place from the
//! KV cache: `dot_f16` (q · k) and `axpy_f16` (out += p · v). Converting while loading
//! (F16C `vcvtph2ps` on x86) avoids a separate f32 copy of the cache, whose size grows with
//! the context.
//!
//! The scalar functions are the reference. They accumulate in eight interleaved lanes, as
//! the AVX2 versions do, and every f16 value converts exactly, so the SIMD versions differ
//! from them only by FMA rounding.

#[cfg(target_arch = "x86_64")]
use crate::dispatch::{simd_level, SimdLevel};
use crate::half::f16_to_f32;

/// `Σ a[i] · b[i]` with `b` in f16 bits. Panics if the lengths differ.
pub fn dot_f16(a: &[f32], b: &[u16]) -> f32 {
    assert_eq!(a.len(), b.len(), "dot_f16: length mismatch");
    #[cfg(target_arch = "x86_64")]
    if simd_level() >= SimdLevel::Avx2 && simd_level() != SimdLevel::Neon {
        // SAFETY: the level check guarantees AVX2, FMA and F16C; lengths are equal.
        return unsafe { avx2::dot_f16(a, b) };
    }
    dot_f16_scalar(a, b)
}

/// `out[i] += alpha · v[i]` with `v` in f16 bits. Panics if the lengths differ.
pub fn axpy_f16(out: &mut [f32], alpha: f32, v: &[u16]) {
    assert_eq!(out.len(), v.len(), "axpy_f16: length mismatch");
    #[cfg(target_arch = "x86_64")]
    if simd_level() >= SimdLevel::Avx2 && simd_level() != SimdLevel::Neon {
        // SAFETY: the level check guarantees AVX2, FMA and F16C; lengths are equal.
        unsafe { avx2::axpy_f16(out, alpha, v) };
        return;
    }
    axpy_f16_scalar(out, alpha, v)
}

/// Reference of [`dot_f16`].
pub fn dot_f16_scalar(a: &[f32], b: &[u16]) -> f32 {
    const LANES: usize = 8;
    let mut acc = [0f32; LANES];
    let (ac, bc) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = ac
        .remainder()
        .iter()
        .zip(bc.remainder())
        .map(|(&x, &y)| x * f16_to_f32(y))
        .sum();
    for (x, y) in ac.zip(bc) {
        for i in 0..LANES {
            acc[i] += x[i] * f16_to_f32(y[i]);
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Reference of [`axpy_f16`].
pub fn axpy_f16_scalar(out: &mut [f32], alpha: f32, v: &[u16]) {
    for (o, &h) in out.iter_mut().zip(v) {
        *o += alpha * f16_to_f32(h);
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use crate::half::f16_to_f32;
    use crate::quant::x86::hsum_ps;
    use std::arch::x86_64::*;

    /// # Safety
    /// The CPU has AVX2, FMA and F16C; `a.len() == b.len()`.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn dot_f16(a: &[f32], b: &[u16]) -> f32 {
        let n = a.len() / 8 * 8;
        let mut acc = _mm256_setzero_ps();
        let mut i = 0;
        while i < n {
            // SAFETY: i + 8 <= n <= len of both slices.
            unsafe {
                let x = _mm256_loadu_ps(a.as_ptr().add(i));
                let y = _mm256_cvtph_ps(_mm_loadu_si128(b.as_ptr().add(i) as *const __m128i));
                acc = _mm256_fmadd_ps(x, y, acc);
            }
            i += 8;
        }
        let tail: f32 = a[n..]
            .iter()
            .zip(&b[n..])
            .map(|(&x, &y)| x * f16_to_f32(y))
            .sum();
        hsum_ps(acc) + tail
    }

    /// # Safety
    /// The CPU has AVX2, FMA and F16C; `out.len() == v.len()`.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn axpy_f16(out: &mut [f32], alpha: f32, v: &[u16]) {
        let n = out.len() / 8 * 8;
        let a = _mm256_set1_ps(alpha);
        let mut i = 0;
        while i < n {
            // SAFETY: i + 8 <= n <= len of both slices.
            unsafe {
                let o = out.as_mut_ptr().add(i);
                let y = _mm256_cvtph_ps(_mm_loadu_si128(v.as_ptr().add(i) as *const __m128i));
                _mm256_storeu_ps(o, _mm256_fmadd_ps(a, y, _mm256_loadu_ps(o)));
            }
            i += 8;
        }
        for (o, &h) in out[n..].iter_mut().zip(&v[n..]) {
            *o += alpha * f16_to_f32(h);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::half::f32_to_f16;
    use crate::quant::testing::Rng;

    fn data(n: usize, seed: u64) -> (Vec<f32>, Vec<u16>) {
        let mut r = Rng::new(seed);
        let a = (0..n).map(|_| r.uniform(-2.0, 2.0)).collect();
        let b = (0..n).map(|_| f32_to_f16(r.uniform(-2.0, 2.0))).collect();
        (a, b)
    }

    #[test]
    fn dispatched_dot_matches_the_reference() {
        for n in [0, 1, 7, 8, 9, 64, 100, 256] {
            let (a, b) = data(n, n as u64 + 1);
            let got = dot_f16(&a, &b);
            let want = dot_f16_scalar(&a, &b);
            // Plain sum for the tolerance: FMA rounding only.
            let mag: f32 = a
                .iter()
                .zip(&b)
                .map(|(x, &y)| (x * f16_to_f32(y)).abs())
                .sum();
            assert!(
                (got - want).abs() <= 1e-6 * mag.max(1.0),
                "n={n}: {got} vs {want}"
            );
        }
    }

    #[test]
    fn dispatched_axpy_matches_the_reference() {
        for n in [0, 1, 7, 8, 9, 64, 100] {
            let (a, v) = data(n, 40 + n as u64);
            let mut got = a.clone();
            let mut want = a.clone();
            axpy_f16(&mut got, 0.37, &v);
            axpy_f16_scalar(&mut want, 0.37, &v);
            for (g, w) in got.iter().zip(&want) {
                assert!(
                    (g - w).abs() <= 1e-6 * w.abs().max(1.0),
                    "n={n}: {g} vs {w}"
                );
            }
        }
    }

    #[test]
    fn reference_is_exact_on_small_integers() {
        let a: Vec<f32> = (0..19).map(|i| i as f32).collect();
        let b: Vec<u16> = (0..19).map(|i| f32_to_f16((i % 5) as f32 - 2.0)).collect();
        let want: f32 = (0..19).map(|i| i as f32 * ((i % 5) as f32 - 2.0)).sum();
        assert_eq!(dot_f16_scalar(&a, &b), want);
        assert_eq!(dot_f16(&a, &b), want);
    }
}
