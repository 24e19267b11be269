//! AVX-512 (F/BW/VL/DQ + VNNI) dot products for the legacy formats (`SimdLevel::Avx512`):
//! two blocks per 512-bit vector, byte products summed by `vpdpbusd`.
//!
//! Layout of a block pair in one vector: 128-bit lanes 0 and 1 hold block `i`'s elements
//! 0..15 and 16..31, lanes 2 and 3 block `i + 1`'s, matching two consecutive 32-byte
//! activation quant fields. Nibbles are unpacked with a per-lane variable shift, 5th bits
//! with a byte shuffle and a bit-test mask. `vpdpbusd` multiplies unsigned by signed bytes
//! exactly into i32, so signed weights are handled as `Σ (x + o) y - o Σ y` with `x + o`
//! non-negative: exact for every input, no sign trick. Each pair's sixteen i32 partial
//! sums are converted to f32 and accumulated by one FMA with `[d_w*d_a of block i] x 8 ++
//! [of block i + 1] x 8`; pairs alternate between two accumulators. An odd last block is
//! paired with itself and its second copy given scale 0, which adds exactly nothing. The
//! `m_w * s_a` terms of the `_1` formats are summed in a scalar.

use crate::quant::legacy::check_dot_args;
use crate::quant::VecDotFn;
use crate::DType;
use std::arch::x86_64::*;

pub(super) fn vec_dot_fn(dtype: DType) -> Option<VecDotFn> {
    match dtype {
        DType::Q4_0 => Some(vec_dot_q4_0_q8_0),
        DType::Q4_1 => Some(vec_dot_q4_1_q8_1),
        DType::Q5_0 => Some(vec_dot_q5_0_q8_0),
        DType::Q5_1 => Some(vec_dot_q5_1_q8_1),
        DType::Q8_0 => Some(vec_dot_q8_0_q8_0),
        _ => None,
    }
}

/// f16 bits at `p` (unaligned) widened to f32, exactly.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
unsafe fn f16_at(p: *const u8) -> f32 {
    // SAFETY: the caller guarantees two readable bytes at `p`.
    let bits = unsafe { (p as *const u16).read_unaligned() };
    _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(bits as i32)))
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
unsafe fn f32_at(p: *const u8) -> f32 {
    // SAFETY: the caller guarantees four readable bytes at `p`.
    unsafe { (p as *const f32).read_unaligned() }
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
unsafe fn u32_at(p: *const u8) -> u32 {
    // SAFETY: the caller guarantees four readable bytes at `p`.
    unsafe { (p as *const u32).read_unaligned() }
}

/// The 32-byte fields at `p0` and `p1` as one vector.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
unsafe fn load_pair(p0: *const u8, p1: *const u8) -> __m512i {
    // SAFETY: the caller guarantees 32 readable bytes at each pointer.
    unsafe {
        let lo = _mm256_loadu_si256(p0 as *const __m256i);
        let hi = _mm256_loadu_si256(p1 as *const __m256i);
        _mm512_inserti64x4::<1>(_mm512_castsi256_si512(lo), hi)
    }
}

/// The nibbles of the 16-byte `qs` fields at `p0` and `p1`, one byte per element.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
unsafe fn nibbles_pair(p0: *const u8, p1: *const u8) -> __m512i {
    // SAFETY: the caller guarantees 16 readable bytes at each pointer.
    let q = unsafe {
        _mm256_set_m128i(
            _mm_loadu_si128(p1 as *const __m128i),
            _mm_loadu_si128(p0 as *const __m128i),
        )
    };
    // 64-bit words [q0, q0, q1, q1]: lanes 1 and 3 are shifted right by 4 below.
    let idx = _mm512_setr_epi64(0, 1, 0, 1, 2, 3, 2, 3);
    let v = _mm512_permutexvar_epi64(idx, _mm512_castsi256_si512(q));
    let four = 0x0004_0004_0004_0004;
    let shifts = _mm512_setr_epi64(0, 0, four, four, 0, 0, four, four);
    _mm512_and_si512(_mm512_srlv_epi16(v, shifts), _mm512_set1_epi8(0x0f))
}

/// 0x10 in each element's byte whose bit is set in `qh0` (block `i`) or `qh1` (`i + 1`).
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
fn fifth_bits_pair(qh0: u32, qh1: u32) -> __m512i {
    let v = _mm512_inserti64x4::<1>(
        _mm512_castsi256_si512(_mm256_set1_epi32(qh0 as i32)),
        _mm256_set1_epi32(qh1 as i32),
    );
    // Every 128-bit lane holds its block's qh bytes 0..3; byte j of a block takes byte j / 8.
    let one = 0x0101_0101_0101_0101;
    let idx = _mm512_setr_epi64(0, one, 2 * one, 3 * one, 0, one, 2 * one, 3 * one);
    let bytes = _mm512_shuffle_epi8(v, idx);
    let set = _mm512_test_epi8_mask(bytes, _mm512_set1_epi64(0x8040_2010_0804_0201u64 as i64));
    _mm512_maskz_mov_epi8(set, _mm512_set1_epi8(0x10))
}

/// Sixteen i32 sums of four `q[k] * y[k]` each, `q` unsigned; exact for all inputs.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
fn dot_u8_i8(q: __m512i, y: __m512i) -> __m512i {
    _mm512_dpbusd_epi32(_mm512_setzero_si512(), q, y)
}

/// Sums of `(q - offset) * y` for unsigned `q` and `0 <= offset <= 255` (exact).
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
fn dot_offset(q: __m512i, offset: u8, y: __m512i) -> __m512i {
    let o = _mm512_set1_epi8(offset as i8);
    _mm512_sub_epi32(dot_u8_i8(q, y), dot_u8_i8(o, y))
}

/// What one block pair contributes: per-half scales, i32 partial sums, and `m_w * s_a`.
struct Pair {
    d0: f32,
    d1: f32,
    isum: __m512i,
    ms: f32,
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
fn fma_pair(acc: __m512, p: &Pair) -> __m512 {
    let d = _mm512_insertf32x8::<1>(_mm512_set1_ps(p.d0), _mm256_set1_ps(p.d1));
    _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(p.isum), acc)
}

/// Calls `pair(i, j, second)` for blocks `(0, 1, true), (2, 3, true), ...` (and
/// `(nb-1, nb-1, false)` for an odd last block, whose second half must get scale 0) and adds everything up.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
fn sum_pairs(nb: usize, pair: impl Fn(usize, usize, bool) -> Pair) -> f32 {
    let mut acc0 = _mm512_setzero_ps();
    let mut acc1 = _mm512_setzero_ps();
    let mut summs = 0.0f32;
    let mut i = 0;
    while i + 4 <= nb {
        let p0 = pair(i, i + 1, true);
        let p1 = pair(i + 2, i + 3, true);
        acc0 = fma_pair(acc0, &p0);
        acc1 = fma_pair(acc1, &p1);
        summs += p0.ms + p1.ms;
        i += 4;
    }
    if i + 2 <= nb {
        let p = pair(i, i + 1, true);
        acc0 = fma_pair(acc0, &p);
        summs += p.ms;
        i += 2;
    }
    if i < nb {
        let p = pair(i, i, false);
        acc1 = fma_pair(acc1, &p);
        summs += p.ms;
    }
    _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1)) + summs
}

/// # Safety
/// `w` and `a` hold `nb` Q4_0 and Q8_0 blocks; the CPU has this module's features.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
unsafe fn q4_0_q8_0(nb: usize, w: *const u8, a: *const u8) -> f32 {
    sum_pairs(nb, |i, j, second| {
        // SAFETY: blocks i, j < nb lie inside both rows (caller contract).
        unsafe {
            let (w0, w1, a0, a1) = (w.add(i * 18), w.add(j * 18), a.add(i * 34), a.add(j * 34));
            let q = nibbles_pair(w0.add(2), w1.add(2));
            Pair {
                d0: f16_at(w0) * f16_at(a0),
                d1: if second { f16_at(w1) * f16_at(a1) } else { 0.0 },
                isum: dot_offset(q, 8, load_pair(a0.add(2), a1.add(2))),
                ms: 0.0,
            }
        }
    })
}

/// # Safety
/// `w` and `a` hold `nb` Q5_0 and Q8_0 blocks; the CPU has this module's features.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
unsafe fn q5_0_q8_0(nb: usize, w: *const u8, a: *const u8) -> f32 {
    sum_pairs(nb, |i, j, second| {
        // SAFETY: blocks i, j < nb lie inside both rows (caller contract).
        unsafe {
            let (w0, w1, a0, a1) = (w.add(i * 22), w.add(j * 22), a.add(i * 34), a.add(j * 34));
            let hb = fifth_bits_pair(u32_at(w0.add(2)), u32_at(w1.add(2)));
            let q = _mm512_or_si512(nibbles_pair(w0.add(6), w1.add(6)), hb);
            Pair {
                d0: f16_at(w0) * f16_at(a0),
                d1: if second { f16_at(w1) * f16_at(a1) } else { 0.0 },
                isum: dot_offset(q, 16, load_pair(a0.add(2), a1.add(2))),
                ms: 0.0,
            }
        }
    })
}

/// # Safety
/// `w` and `a` hold `nb` Q8_0 blocks each; the CPU has this module's features.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
unsafe fn q8_0_q8_0(nb: usize, w: *const u8, a: *const u8) -> f32 {
    sum_pairs(nb, |i, j, second| {
        // SAFETY: blocks i, j < nb lie inside both rows (caller contract).
        unsafe {
            let (w0, w1, a0, a1) = (w.add(i * 34), w.add(j * 34), a.add(i * 34), a.add(j * 34));
            // x ^ 0x80 is x + 128 read as unsigned.
            let q = _mm512_xor_si512(load_pair(w0.add(2), w1.add(2)), _mm512_set1_epi8(-128));
            Pair {
                d0: f16_at(w0) * f16_at(a0),
                d1: if second { f16_at(w1) * f16_at(a1) } else { 0.0 },
                isum: dot_offset(q, 128, load_pair(a0.add(2), a1.add(2))),
                ms: 0.0,
            }
        }
    })
}

/// # Safety
/// `w` and `a` hold `nb` Q4_1 and Q8_1 blocks; the CPU has this module's features.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
unsafe fn q4_1_q8_1(nb: usize, w: *const u8, a: *const u8) -> f32 {
    sum_pairs(nb, |i, j, second| {
        // SAFETY: blocks i, j < nb lie inside both rows (caller contract).
        unsafe {
            let (w0, w1, a0, a1) = (w.add(i * 20), w.add(j * 20), a.add(i * 40), a.add(j * 40));
            let q = nibbles_pair(w0.add(4), w1.add(4));
            let ms0 = f16_at(w0.add(2)) * f32_at(a0.add(4));
            let ms1 = f16_at(w1.add(2)) * f32_at(a1.add(4));
            Pair {
                d0: f16_at(w0) * f32_at(a0),
                d1: if second { f16_at(w1) * f32_at(a1) } else { 0.0 },
                isum: dot_u8_i8(q, load_pair(a0.add(8), a1.add(8))),
                ms: if second { ms0 + ms1 } else { ms0 },
            }
        }
    })
}

/// # Safety
/// `w` and `a` hold `nb` Q5_1 and Q8_1 blocks; the CPU has this module's features.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
unsafe fn q5_1_q8_1(nb: usize, w: *const u8, a: *const u8) -> f32 {
    sum_pairs(nb, |i, j, second| {
        // SAFETY: blocks i, j < nb lie inside both rows (caller contract).
        unsafe {
            let (w0, w1, a0, a1) = (w.add(i * 24), w.add(j * 24), a.add(i * 40), a.add(j * 40));
            let hb = fifth_bits_pair(u32_at(w0.add(4)), u32_at(w1.add(4)));
            let q = _mm512_or_si512(nibbles_pair(w0.add(8), w1.add(8)), hb);
            let ms0 = f16_at(w0.add(2)) * f32_at(a0.add(4));
            let ms1 = f16_at(w1.add(2)) * f32_at(a1.add(4));
            Pair {
                d0: f16_at(w0) * f32_at(a0),
                d1: if second { f16_at(w1) * f32_at(a1) } else { 0.0 },
                isum: dot_u8_i8(q, load_pair(a0.add(8), a1.add(8))),
                ms: if second { ms0 + ms1 } else { ms0 },
            }
        }
    })
}

/// A safe [`VecDotFn`] around one kernel: checks the lengths, then calls it.
macro_rules! avx512_wrapper {
    ($name:ident, $kernel:ident, $w_size:literal, $a_size:literal) => {
        fn $name(n: usize, w: &[u8], a: &[u8]) -> f32 {
            let nb = check_dot_args(n, w, $w_size, a, $a_size);
            // SAFETY: check_dot_args asserted that both slices hold `nb` blocks. This fn is
            // only handed out by `vec_dot_fn` above, which `quant::vec_dot_fn` calls only
            // after checking that the CPU supports AVX-512 F/BW/VL/DQ/VNNI (+ AVX2/FMA/F16C).
            unsafe { $kernel(nb, w.as_ptr(), a.as_ptr()) }
        }
    };
}

avx512_wrapper!(vec_dot_q4_0_q8_0, q4_0_q8_0, 18, 34);
avx512_wrapper!(vec_dot_q5_0_q8_0, q5_0_q8_0, 22, 34);
avx512_wrapper!(vec_dot_q8_0_q8_0, q8_0_q8_0, 34, 34);
avx512_wrapper!(vec_dot_q4_1_q8_1, q4_1_q8_1, 20, 40);
avx512_wrapper!(vec_dot_q5_1_q8_1, q5_1_q8_1, 24, 40);
