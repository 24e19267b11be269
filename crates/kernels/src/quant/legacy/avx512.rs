//! AVX-512 (F/BW/VL/DQ + VNNI) dot products for the legacy formats (`SimdLevel::Avx512`):
//! two blocks per 512-bit vector, byte products summed by `vpdpbusd`, scales 16 blocks at
//! a time.
//!
//! Layout of a block pair in one vector: 128-bit lanes 0 and 1 hold block `i`'s elements
//! 0..15 and 16..31, lanes 2 and 3 block `j`'s, matching two 32-byte activation quant
//! fields. Nibbles are unpacked with a per-lane variable shift, 5th bits with a byte
//! shuffle and a bit-test mask. `vpdpbusd` multiplies unsigned by signed bytes exactly into
//! i32, so signed weights are handled as `Σ (x + o) y - o Σ y` with `x + o` non-negative:
//! exact for every input, no sign trick. The f16 scale fields are not converted one by
//! one (that costs several shuffle-port uops per block): each chunk of up to 16 blocks
//! gathers its `d_w`, `d_a` (and `m_w`, `s_a`) fields into vectors, converts and multiplies
//! them once, and each pair then picks its two scales with one lane permute. See
//! [`sum_blocks`]. Float results differ from the scalar reference only by reassociation.

use super::{Q4_0_SIZE, Q4_1_SIZE, Q5_0_SIZE, Q5_1_SIZE, Q8_0_SIZE, Q8_1_SIZE};
use crate::quant::legacy::check_dot_args;
use std::arch::x86_64::*;

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

/// Loads the little-endian u32 at `base + k * stride` into lane `k` for `k < count`
/// (at most 16); other lanes are 0 and their addresses are not read.
///
/// # Safety
/// The four bytes at every `base + k * stride`, `k < count`, are readable.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
unsafe fn gather_u32(base: *const u8, stride: i32, count: usize) -> __m512i {
    let lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    let offsets = _mm512_mullo_epi32(lanes, _mm512_set1_epi32(stride));
    let mask: __mmask16 = if count >= 16 { !0 } else { (1u16 << count) - 1 };
    // SAFETY: masked-off lanes are not accessed; the others are readable (caller contract).
    unsafe { _mm512_mask_i32gather_epi32::<1>(_mm512_setzero_si512(), mask, offsets, base as _) }
}

/// The f16 values in the low (`HIGH = false`) or high halves of each u32 lane, as f32.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
fn f16_lanes<const HIGH: bool>(v: __m512i) -> __m512 {
    let v = if HIGH { _mm512_srli_epi32::<16>(v) } else { v };
    _mm512_cvtph_ps(_mm512_cvtepi32_epi16(v))
}

/// How a format's per-block float factors are found: byte offsets of `d` and `m` in a
/// weight block, and of `d` and `s` in an activation block (`s` only for Q8_1).
struct Scales {
    w_size: i32,
    a_size: i32,
    /// Activation `d` (and `s` at +4) are f32 (Q8_1) rather than f16 (Q8_0).
    act_f32: bool,
    /// Weight has a min `m` right after `d` (Q4_1, Q5_1).
    has_min: bool,
}

/// Runs the dot product over `nb` blocks. Blocks go in chunks of up to 16: the chunk's
/// `d_w * d_a` (and `m_w * s_a`) are computed 16 lanes at a time from gathered scale
/// fields, then `isum(i, j)` gives the i32 partial sums of the block pair `(i, j)` (lanes
/// 0..8 for block `i`, 8..16 for `j`) and one FMA adds them with the pair's two scales
/// picked out of the chunk's scale vector. An odd last block is paired with itself, and
/// its second copy takes the scale of an empty lane, which is 0.
///
/// # Safety
/// `w` and `a` hold `nb` blocks of the sizes in `fmt`; `isum` reads only blocks `< nb`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
unsafe fn sum_blocks(
    nb: usize,
    w: *const u8,
    a: *const u8,
    fmt: Scales,
    isum: impl Fn(usize, usize) -> __m512i,
) -> f32 {
    let mut acc = [_mm512_setzero_ps(); 2];
    let mut acc_min = _mm512_setzero_ps();
    let first_pair = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
    let mut c = 0;
    while c < nb {
        let count = (nb - c).min(16);
        // SAFETY: blocks c..c + count are inside both rows; every field read lies within
        // its block (4 bytes from offset 0 of an 18..40-byte block, or from offset 4 of a
        // 40-byte Q8_1 block).
        let (dw, da) = unsafe {
            (
                gather_u32(w.add(c * fmt.w_size as usize), fmt.w_size, count),
                gather_u32(a.add(c * fmt.a_size as usize), fmt.a_size, count),
            )
        };
        let da_f = if fmt.act_f32 {
            _mm512_castsi512_ps(da)
        } else {
            f16_lanes::<false>(da)
        };
        let scales = _mm512_mul_ps(f16_lanes::<false>(dw), da_f);
        if fmt.has_min {
            // SAFETY: as above (Q8_1's `s` is at offset 4 of its 40-byte block).
            let s = unsafe { gather_u32(a.add(c * fmt.a_size as usize + 4), fmt.a_size, count) };
            acc_min = _mm512_fmadd_ps(f16_lanes::<true>(dw), _mm512_castsi512_ps(s), acc_min);
        }
        let two = _mm512_set1_epi32(2);
        let mut pick = first_pair;
        let mut k = 0;
        while k + 4 <= count {
            let d0 = _mm512_permutexvar_ps(pick, scales);
            let d1 = _mm512_permutexvar_ps(_mm512_add_epi32(pick, two), scales);
            acc[0] = _mm512_fmadd_ps(d0, _mm512_cvtepi32_ps(isum(c + k, c + k + 1)), acc[0]);
            acc[1] = _mm512_fmadd_ps(d1, _mm512_cvtepi32_ps(isum(c + k + 2, c + k + 3)), acc[1]);
            pick = _mm512_add_epi32(pick, _mm512_add_epi32(two, two));
            k += 4;
        }
        while k < count {
            let j = if k + 1 < count { c + k + 1 } else { c + k };
            let d = _mm512_permutexvar_ps(pick, scales);
            acc[0] = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(isum(c + k, j)), acc[0]);
            pick = _mm512_add_epi32(pick, two);
            k += 2;
        }
        c += 16;
    }
    _mm512_reduce_add_ps(_mm512_add_ps(acc[0], acc[1])) + _mm512_reduce_add_ps(acc_min)
}

/// # Safety
/// `w` and `a` hold `nb` Q4_0 and Q8_1 blocks; the CPU has this module's features.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
unsafe fn q4_0_q8_1(nb: usize, w: *const u8, a: *const u8) -> f32 {
    let fmt = Scales {
        w_size: 18,
        a_size: 40,
        act_f32: true,
        has_min: false,
    };
    // SAFETY: forwarded caller contract; the closure reads blocks i, j < nb only.
    unsafe {
        sum_blocks(nb, w, a, fmt, |i, j| {
            let q = nibbles_pair(w.add(i * 18 + 2), w.add(j * 18 + 2));
            dot_offset(q, 8, load_pair(a.add(i * 40 + 8), a.add(j * 40 + 8)))
        })
    }
}

/// # Safety
/// `w` and `a` hold `nb` Q5_0 and Q8_1 blocks; the CPU has this module's features.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
unsafe fn q5_0_q8_1(nb: usize, w: *const u8, a: *const u8) -> f32 {
    let fmt = Scales {
        w_size: 22,
        a_size: 40,
        act_f32: true,
        has_min: false,
    };
    // SAFETY: forwarded caller contract; the closure reads blocks i, j < nb only.
    unsafe {
        sum_blocks(nb, w, a, fmt, |i, j| {
            let (w0, w1) = (w.add(i * 22), w.add(j * 22));
            let hb = fifth_bits_pair(u32_at(w0.add(2)), u32_at(w1.add(2)));
            let q = _mm512_or_si512(nibbles_pair(w0.add(6), w1.add(6)), hb);
            dot_offset(q, 16, load_pair(a.add(i * 40 + 8), a.add(j * 40 + 8)))
        })
    }
}

/// # Safety
/// `w` and `a` hold `nb` Q8_0 and Q8_1 blocks; the CPU has this module's features.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
unsafe fn q8_0_q8_1(nb: usize, w: *const u8, a: *const u8) -> f32 {
    let fmt = Scales {
        w_size: 34,
        a_size: 40,
        act_f32: true,
        has_min: false,
    };
    // SAFETY: forwarded caller contract; the closure reads blocks i, j < nb only.
    unsafe {
        sum_blocks(nb, w, a, fmt, |i, j| {
            // x ^ 0x80 is x + 128 read as unsigned.
            let x = load_pair(w.add(i * 34 + 2), w.add(j * 34 + 2));
            let q = _mm512_xor_si512(x, _mm512_set1_epi8(-128));
            dot_offset(q, 128, load_pair(a.add(i * 40 + 8), a.add(j * 40 + 8)))
        })
    }
}

/// # Safety
/// `w` and `a` hold `nb` Q4_1 and Q8_1 blocks; the CPU has this module's features.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
unsafe fn q4_1_q8_1(nb: usize, w: *const u8, a: *const u8) -> f32 {
    let fmt = Scales {
        w_size: 20,
        a_size: 40,
        act_f32: true,
        has_min: true,
    };
    // SAFETY: forwarded caller contract; the closure reads blocks i, j < nb only.
    unsafe {
        sum_blocks(nb, w, a, fmt, |i, j| {
            let q = nibbles_pair(w.add(i * 20 + 4), w.add(j * 20 + 4));
            dot_u8_i8(q, load_pair(a.add(i * 40 + 8), a.add(j * 40 + 8)))
        })
    }
}

/// # Safety
/// `w` and `a` hold `nb` Q5_1 and Q8_1 blocks; the CPU has this module's features.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
unsafe fn q5_1_q8_1(nb: usize, w: *const u8, a: *const u8) -> f32 {
    let fmt = Scales {
        w_size: 24,
        a_size: 40,
        act_f32: true,
        has_min: true,
    };
    // SAFETY: forwarded caller contract; the closure reads blocks i, j < nb only.
    unsafe {
        sum_blocks(nb, w, a, fmt, |i, j| {
            let (w0, w1) = (w.add(i * 24), w.add(j * 24));
            let hb = fifth_bits_pair(u32_at(w0.add(4)), u32_at(w1.add(4)));
            let q = _mm512_or_si512(nibbles_pair(w0.add(8), w1.add(8)), hb);
            dot_u8_i8(q, load_pair(a.add(i * 40 + 8), a.add(j * 40 + 8)))
        })
    }
}

safe_vec_dots! {
    pointers:
    vec_dot_q4_0_q8_1 => q4_0_q8_1, Q4_0_SIZE, Q8_1_SIZE;
    vec_dot_q5_0_q8_1 => q5_0_q8_1, Q5_0_SIZE, Q8_1_SIZE;
    vec_dot_q8_0_q8_1 => q8_0_q8_1, Q8_0_SIZE, Q8_1_SIZE;
    vec_dot_q4_1_q8_1 => q4_1_q8_1, Q4_1_SIZE, Q8_1_SIZE;
    vec_dot_q5_1_q8_1 => q5_1_q8_1, Q5_1_SIZE, Q8_1_SIZE;
}
