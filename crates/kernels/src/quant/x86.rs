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

/// How far ahead of the block being multiplied the dot-product kernels prefetch weights.
/// Streaming a matrix from DRAM, one core's hardware prefetchers keep too few cache-line
/// misses in flight; on SmolLM2 decode (1 thread, AMD EPYC) prefetching 2048 bytes ahead
/// cut the CPU time per token by about a quarter (256: −12%, 1024: −20%, 4096: −23%).
pub(crate) const PREFETCH_AHEAD: usize = 2048;

/// Prefetches the cache lines of `[p + PREFETCH_AHEAD, p + PREFETCH_AHEAD + bytes)` into
/// L1. Only a hint: the address may lie past the end of the matrix (nothing is read).
#[inline(always)]
pub(crate) fn prefetch_ahead(p: *const u8, bytes: usize) {
    let mut off = 0;
    while off < bytes {
        prefetch_at(p, PREFETCH_AHEAD + off);
        off += 64;
    }
}

/// Prefetches the cache line at `p + offset` into L1. Only a hint: the address may lie
/// past the end of the data (nothing is read).
#[inline(always)]
pub(crate) fn prefetch_at(p: *const u8, offset: usize) {
    // SAFETY: a prefetch never faults and reads nothing architecturally; the address is
    // computed with wrapping arithmetic, so no out-of-bounds pointer is formed by `add`.
    // SSE is part of x86-64.
    unsafe { _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(offset) as *const i8) };
}
