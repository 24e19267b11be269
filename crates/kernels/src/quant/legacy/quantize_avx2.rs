//! AVX2 quantization of f32 activations to Q8_0 and Q8_1 (`SimdLevel::Avx2`; AVX-512 runs
//! use it through the fallback order), bit-identical to the scalar reference in
//! `scalar.rs` for finite inputs.
//!
//! Same arithmetic as the reference: `amax` is an exact maximum, `d = amax / 127` and
//! `id = 1 / d` are the same scalar f32 operations, each `x * id` is the same f32 product,
//! and rounding half away from zero is done exactly as `t = trunc(v)`, plus `sign(v)` when
//! `|v - t| >= 0.5` (`v - t` is exact in f32). Like the reference, NaN inputs are left out
//! of `amax`, NaN products give 0 and infinite ones clamp to ±127.

use super::QK;
use super::{Q8_0_SIZE, Q8_1_SIZE};
use crate::half::f32_to_f16;
use std::arch::x86_64::*;

/// One block: returns `(d, qs)` exactly as `scalar::quantize_block_i8` does.
///
/// # Safety
/// `x` points at 32 readable f32s; the CPU has AVX2, FMA and F16C.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn quantize_block(x: *const f32) -> (f32, __m256i, i32) {
    // SAFETY: 32 readable f32s (caller contract).
    let v = unsafe {
        [
            _mm256_loadu_ps(x),
            _mm256_loadu_ps(x.add(8)),
            _mm256_loadu_ps(x.add(16)),
            _mm256_loadu_ps(x.add(24)),
        ]
    };
    let abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fff_ffff));
    // |x| with NaN lanes zeroed (an ordered self-compare is false only for NaN).
    let abs = v.map(|x| {
        _mm256_and_ps(
            _mm256_and_ps(x, abs_mask),
            _mm256_cmp_ps::<_CMP_ORD_Q>(x, x),
        )
    });
    let m01 = _mm256_max_ps(abs[0], abs[1]);
    let m23 = _mm256_max_ps(abs[2], abs[3]);
    let m = _mm256_max_ps(m01, m23);
    let m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps::<1>(m));
    let m2 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    let amax = _mm_cvtss_f32(_mm_max_ss(m2, _mm_movehdup_ps(m2)));

    let d = amax / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    let idv = _mm256_set1_ps(id);
    let half = _mm256_set1_ps(0.5);
    let one = _mm256_set1_ps(1.0);
    let sign_mask = _mm256_set1_ps(-0.0);
    let q = v.map(|x| {
        let p = _mm256_mul_ps(x, idv);
        let t = _mm256_round_ps::<{ _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC }>(p);
        let frac = _mm256_and_ps(_mm256_sub_ps(p, t), abs_mask);
        let bump = _mm256_and_ps(_mm256_cmp_ps::<_CMP_GE_OQ>(frac, half), one);
        let r = _mm256_add_ps(t, _mm256_or_ps(bump, _mm256_and_ps(p, sign_mask)));
        let r = _mm256_and_ps(r, _mm256_cmp_ps::<_CMP_ORD_Q>(r, r));
        let r = _mm256_min_ps(
            _mm256_max_ps(r, _mm256_set1_ps(-127.0)),
            _mm256_set1_ps(127.0),
        );
        _mm256_cvtps_epi32(r)
    });
    let sum = _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
    let s4 = _mm_add_epi32(
        _mm256_castsi256_si128(sum),
        _mm256_extracti128_si256::<1>(sum),
    );
    let s2 = _mm_add_epi32(s4, _mm_shuffle_epi32::<0b01_00_11_10>(s4));
    let total = _mm_cvtsi128_si32(_mm_add_epi32(s2, _mm_shuffle_epi32::<0b10_11_00_01>(s2)));
    // packs work per 128-bit lane; the final permute puts the 32 bytes back in order.
    let w16 = [
        _mm256_packs_epi32(q[0], q[1]),
        _mm256_packs_epi32(q[2], q[3]),
    ];
    let b8 = _mm256_packs_epi16(w16[0], w16[1]);
    let order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    (d, _mm256_permutevar8x32_epi32(b8, order), total)
}

/// # Safety
/// `src.len() / 32` blocks fit `dst` (checked by the wrapper); the CPU has AVX2/FMA/F16C.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q8_0(src: &[f32], dst: &mut [u8]) {
    for (x, b) in src.chunks_exact(QK).zip(dst.chunks_exact_mut(Q8_0_SIZE)) {
        // SAFETY: `x` has 32 elements and `b` 34 bytes, so the store at b[2..34] fits.
        unsafe {
            let (d, qs, _) = quantize_block(x.as_ptr());
            _mm256_storeu_si256(b.as_mut_ptr().add(2) as *mut __m256i, qs);
            b[0..2].copy_from_slice(&f32_to_f16(d).to_le_bytes());
        }
    }
}

/// # Safety
/// As [`q8_0`].
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q8_1(src: &[f32], dst: &mut [u8]) {
    for (x, b) in src.chunks_exact(QK).zip(dst.chunks_exact_mut(Q8_1_SIZE)) {
        // SAFETY: `x` has 32 elements and `b` 40 bytes, so the store at b[8..40] fits.
        unsafe {
            let (d, qs, sum) = quantize_block(x.as_ptr());
            _mm256_storeu_si256(b.as_mut_ptr().add(8) as *mut __m256i, qs);
            b[0..4].copy_from_slice(&d.to_le_bytes());
            b[4..8].copy_from_slice(&(d * sum as f32).to_le_bytes());
        }
    }
}

/// Safe [`crate::quant::QuantizeFn`]: checks the lengths, then quantizes.
pub(super) fn quantize_q8_0(src: &[f32], dst: &mut [u8]) {
    super::scalar::check_quant(src, dst, Q8_0_SIZE, "Q8_0");
    // SAFETY: lengths checked above. This fn is only handed out by `legacy::quantize_fn`
    // for `SimdLevel::Avx2`/`Avx512`, which `quant::quantize_fn` passes on only after
    // checking the CPU supports that level (both include AVX2, FMA and F16C).
    unsafe { q8_0(src, dst) }
}

/// Safe [`crate::quant::QuantizeFn`]: checks the lengths, then quantizes.
pub(super) fn quantize_q8_1(src: &[f32], dst: &mut [u8]) {
    super::scalar::check_quant(src, dst, Q8_1_SIZE, "Q8_1");
    // SAFETY: as in `quantize_q8_0`.
    unsafe { q8_1(src, dst) }
}
