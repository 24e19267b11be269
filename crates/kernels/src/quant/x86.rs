//! x86-64 SIMD helpers shared by the AVX2 kernels of every family (and reused by the
//! AVX-512 K-quant kernels for their final eight-lane sum).

use std::arch::x86_64::*;

/// Sum of the eight f32 lanes of `v`, always in the same order: low half + high half,
/// then the two pairs of that, then the last pair.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) fn hsum_ps(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)))
}
