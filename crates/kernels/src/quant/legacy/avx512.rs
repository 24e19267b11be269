//! AVX-512 (F/BW/VL/DQ + VNNI) dot products for the legacy formats (`SimdLevel::Avx512`):
//! one row (`vec_dot`), one weight row against four or eight activation rows (`x4`/`x8`,
//! the prefill mat-mat) and four weight rows against one activation row (`rows4`, the
//! decode mat-vec), all instances of one generic kernel ([`dots`]), so that every
//! multi-row result is bit-identical to the one-row kernel on the same pair of rows.
//!
//! Technique (written from the layouts in `legacy`): a 512-bit vector holds a block pair,
//! blocks `i` and `i + 1` (128-bit lanes 0–1 and 2–3). The weight quants are unpacked to
//! unsigned bytes (nibbles by a per-lane variable shift, 5th bits by a byte shuffle and a
//! bit-test mask, Q8_0 as `x + 128`) once per pair and row, the activation quants are
//! loaded once per pair and row, and `vpdpbusd` forms 16 exact i32 sums of four products
//! for every (weight row, activation row) combination. Signed Q8_0 weights subtract
//! `128·Σy` exactly in integers; the `_0` offsets are applied in float as `(−offset·d_w)·s_a`
//! (as the AVX2 kernels do, see `avx2::offset_term`), the `_1` mins as `m_w·s_a`, both
//! with `s_a = d_a·Σy` from the Q8_1 block.
//!
//! The scales cost no shuffle per block: each pair's factors sit in alternating lanes,
//! `[d_w, m_w]` for the `_1` formats or `[d_w, d_w]` (weights: one broadcast of the f16
//! fields per block, one conversion) times `[d_a, s_a]` (the Q8_1 block's two adjacent f32,
//! one 64-bit broadcast per block). The integer sums are folded into the even lanes
//! (`v + (v >> 32)` per 64 bits) and the odd lanes are replaced by a constant that is
//! nonzero once per block ([`odd_lanes`]: 1 for the mins, `−offset` for the offsets), so
//! one FMA adds `d_w·d_a·Σqy` in four even lanes and the min or offset term in one odd
//! lane. Per combination and block pair that is four loads (two merged), `vpdpbusd`,
//! shift, masked add, convert, multiply and FMA, the same sequence in every kernel here, accumulated in one vector per
//! combination and summed at the end in a fixed order. An odd last block is paired with
//! itself and only the lower eight lanes are accumulated. Float results differ from the
//! scalar reference only by reassociation and the offset rounding.

use super::{check_dot_args, Q4_0_SIZE, Q4_1_SIZE, Q5_0_SIZE, Q5_1_SIZE, Q8_0_SIZE, Q8_1_SIZE};
use crate::quant::x86::{hsum_ps, prefetch_ahead};
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

/// The f16 pairs `[lo, hi]` of the u32s `f0` (block `i`) and `f1` (`i + 1`) as f32 lanes
/// `[lo0, hi0] × 4, [lo1, hi1] × 4`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
fn f16_pairs(f0: u32, f1: u32) -> __m512 {
    let v = _mm256_set_m128i(_mm_set1_epi32(f1 as i32), _mm_set1_epi32(f0 as i32));
    _mm512_cvtph_ps(v)
}

/// Weight factors `[d, d] × 4` per block of a `_0` format pair whose f16 `d` are the
/// first two bytes at `b0` and `b1` (the offset enters through [`odd_lanes`]).
///
/// # Safety
/// Four bytes at `b0` and at `b1` are readable.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
unsafe fn d_factors(b0: *const u8, b1: *const u8) -> __m512 {
    // SAFETY: the caller guarantees four readable bytes at each pointer.
    unsafe { _mm512_moveldup_ps(f16_pairs(u32_at(b0), u32_at(b1))) }
}

/// The weight formats, as the const parameter `FMT` of the kernels below.
pub(super) const Q4_0: u8 = 0;
pub(super) const Q4_1: u8 = 1;
pub(super) const Q5_0: u8 = 2;
pub(super) const Q5_1: u8 = 3;
pub(super) const Q8_0: u8 = 4;

/// Bytes per block of format `FMT`.
const fn size(fmt: u8) -> usize {
    match fmt {
        Q4_0 => Q4_0_SIZE,
        Q4_1 => Q4_1_SIZE,
        Q5_0 => Q5_0_SIZE,
        Q5_1 => Q5_1_SIZE,
        _ => Q8_0_SIZE,
    }
}

/// A block pair of format `FMT` unpacked: unsigned byte quants (Q8_0's as `x + 128`) and
/// the `[d, m]` factors of the module docs.
///
/// # Safety
/// A whole block of the format is readable at `b0` and at `b1`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
unsafe fn unpack<const FMT: u8>(b0: *const u8, b1: *const u8) -> (__m512i, __m512) {
    // SAFETY: whole blocks are readable (caller contract), and every field read below lies
    // inside its block (layouts in `legacy`): d (and m) at 0; qh at 2 (Q5_0) or 4 (Q5_1);
    // qs at 2 (Q4_0, Q8_0), 4 (Q4_1), 6 (Q5_0) or 8 (Q5_1).
    unsafe {
        match FMT {
            Q4_0 => (nibbles_pair(b0.add(2), b1.add(2)), d_factors(b0, b1)),
            Q4_1 => (
                nibbles_pair(b0.add(4), b1.add(4)),
                f16_pairs(u32_at(b0), u32_at(b1)),
            ),
            Q5_0 => {
                let hb = fifth_bits_pair(u32_at(b0.add(2)), u32_at(b1.add(2)));
                let q = _mm512_or_si512(nibbles_pair(b0.add(6), b1.add(6)), hb);
                (q, d_factors(b0, b1))
            }
            Q5_1 => {
                let hb = fifth_bits_pair(u32_at(b0.add(4)), u32_at(b1.add(4)));
                let q = _mm512_or_si512(nibbles_pair(b0.add(8), b1.add(8)), hb);
                (q, f16_pairs(u32_at(b0), u32_at(b1)))
            }
            _ => {
                // x ^ 0x80 is x + 128 read as unsigned; 128·Σy is removed in `combine`.
                let x = load_pair(b0.add(2), b1.add(2));
                let q = _mm512_xor_si512(x, _mm512_set1_epi8(-128));
                (q, d_factors(b0, b1))
            }
        }
    }
}

/// The integer the odd lanes of a combination's sums are replaced by (see [`combine`]):
/// at lanes 1 and 9 (one per block) the `_1` formats' 1 (`m_w·s_a` once), the `_0` formats'
/// `−offset` (`d_w·s_a·(−offset)`, the same bits as `(−offset·d_w)·s_a` since `offset` is a
/// power of two), 0 for Q8_0 (offset removed in integers); 0 in the other odd lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
fn odd_lanes(fmt: u8) -> __m512i {
    let c = match fmt {
        Q4_1 | Q5_1 => 1,
        Q4_0 => -8,
        Q5_0 => -16,
        _ => 0,
    };
    _mm512_setr_epi32(0, c, 0, 0, 0, 0, 0, 0, 0, c, 0, 0, 0, 0, 0, 0)
}

/// One combination's contribution of a block pair: `acc` plus, in the lanes of `mask`,
/// `[d_w·d_a, d_w·s_a or m_w·s_a] × [fold of Σq·y, odd_lanes]` (module docs).
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
fn combine(
    signed: bool,
    odd: __m512i,
    acc: __m512,
    (wq, wf): (__m512i, __m512),
    (aq, af): (__m512i, __m512),
    mask: __mmask16,
) -> __m512 {
    let mut v = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wq, aq);
    if signed {
        let bias = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8(-128), aq);
        v = _mm512_sub_epi32(v, bias);
    }
    let v = _mm512_mask_add_epi32(odd, 0x5555, v, _mm512_srli_epi64::<32>(v));
    _mm512_mask3_fmadd_ps(_mm512_mul_ps(wf, af), _mm512_cvtepi32_ps(v), acc, mask)
}

/// Quants and `[d, s]` factors of the Q8_1 activation blocks at `a0` and `a1`.
///
/// # Safety
/// A whole Q8_1 block is readable at `a0` and at `a1`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
unsafe fn act_pair(a0: *const u8, a1: *const u8) -> (__m512i, __m512) {
    // SAFETY: caller contract; `d` and `s` are the first eight bytes, `qs` the last 32.
    unsafe {
        let lo = _mm512_set1_epi64((a0 as *const i64).read_unaligned());
        let hi = _mm512_set1_epi64((a1 as *const i64).read_unaligned());
        let f = _mm512_castsi512_ps(_mm512_mask_blend_epi64(0xf0, lo, hi));
        (load_pair(a0.add(8), a1.add(8)), f)
    }
}

/// Sum of the sixteen lanes, always in the same order.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
fn hsum512(v: __m512) -> f32 {
    hsum_ps(_mm256_add_ps(
        _mm512_castps512_ps256(v),
        _mm512_extractf32x8_ps::<1>(v),
    ))
}

/// The dot products of `K` weight rows `w` with `R` activation rows `a` (`out[k][r]`),
/// `nb` blocks each: every weight block pair is unpacked once per weight row and every
/// activation pair loaded once per activation row, and each combination is accumulated
/// by [`combine`] in its own vector. The arithmetic per combination does not depend on
/// `K` or `R`, which is what makes the `x4`, `x8` and `rows4` kernels bit-identical to
/// `vec_dot` (`K = R = 1`).
///
/// # Safety
/// Every row of `w` holds `nb` blocks of format `FMT`, every row of `a` `nb` Q8_1 blocks; the CPU
/// has this module's target features.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
unsafe fn dots<const FMT: u8, const K: usize, const R: usize>(
    nb: usize,
    w: [*const u8; K],
    a: [*const u8; R],
) -> [[f32; R]; K] {
    let mut acc = [[_mm512_setzero_ps(); R]; K];
    let odd = odd_lanes(FMT);
    let mut i = 0;
    while i < nb {
        // An odd last block pairs with itself; its copy's lanes are left out.
        let (j, mask) = if i + 1 < nb { (i + 1, !0) } else { (i, 0x00ff) };
        let mut wb = [(_mm512_setzero_si512(), _mm512_setzero_ps()); K];
        for k in 0..K {
            // SAFETY: blocks i, j < nb lie inside every weight row (caller contract).
            unsafe {
                let (b0, b1) = (w[k].add(i * size(FMT)), w[k].add(j * size(FMT)));
                prefetch_ahead(b0, 2 * size(FMT));
                wb[k] = unpack::<FMT>(b0, b1);
            }
        }
        for r in 0..R {
            // SAFETY: blocks i, j < nb lie inside every activation row (caller contract).
            let ab = unsafe { act_pair(a[r].add(i * Q8_1_SIZE), a[r].add(j * Q8_1_SIZE)) };
            for k in 0..K {
                acc[k][r] = combine(FMT == Q8_0, odd, acc[k][r], wb[k], ab, mask);
            }
        }
        i += 2;
    }
    acc.map(|row| row.map(|v| hsum512(v)))
}

/// `vec_dot` for weight format `FMT`.
pub(super) fn vec_dot<const FMT: u8>(n: usize, w: &[u8], a: &[u8]) -> f32 {
    let nb = check_dot_args(n, w, size(FMT), a, Q8_1_SIZE);
    // SAFETY: check_dot_args asserted that both rows hold `nb` blocks, all `dots` reads.
    // This fn is only handed out by `legacy::vec_dot_fn` for `SimdLevel::Avx512`, after
    // `quant::vec_dot_fn` checked that the CPU supports that level.
    unsafe { dots::<FMT, 1, 1>(nb, [w.as_ptr()], [a.as_ptr()])[0][0] }
}

/// `N` (four or eight) activation rows against one weight row of format `FMT`.
pub(super) fn vec_dot_xn<const FMT: u8, const N: usize>(
    n: usize,
    w: &[u8],
    a: [&[u8]; N],
) -> [f32; N] {
    let mut nb = check_dot_args(n, w, size(FMT), &[], 0);
    for row in a {
        nb = check_dot_args(n, w, size(FMT), row, Q8_1_SIZE);
    }
    // SAFETY: check_dot_args asserted that `w` and every activation row hold `nb` blocks,
    // all `dots` reads. This fn is only handed out by `legacy::vec_dot_x4_fn`/`x8_fn` for
    // `SimdLevel::Avx512` after `quant::vec_dot_x4_fn`/`x8_fn` checked the CPU supports it.
    unsafe { dots::<FMT, 1, N>(nb, [w.as_ptr()], a.map(|r| r.as_ptr()))[0] }
}

/// Four streams of weight rows of format `FMT` against one activation row (see
/// [`crate::quant::VecDotRows4Fn`]).
pub(super) fn vec_dot_rows4<const FMT: u8>(n: usize, w: [&[u8]; 4], a: &[u8], out: &mut [f32]) {
    assert!(
        out.len().is_multiple_of(4),
        "rows4 dot: {} outputs are not whole groups of four",
        out.len()
    );
    let groups = out.len() / 4;
    // Checks `n` and the activation row; the streams are checked below.
    let nb = check_dot_args(n, &[], 0, a, Q8_1_SIZE);
    let row_bytes = nb * size(FMT);
    for stream in w {
        assert!(
            stream.len() >= groups * row_bytes,
            "rows4 dot: a stream of {} bytes holds fewer than {groups} rows of {row_bytes}",
            stream.len()
        );
    }
    for (i, o) in out.chunks_exact_mut(4).enumerate() {
        let rows = w.map(|s| s[i * row_bytes..].as_ptr());
        // SAFETY: row i < groups of every stream holds `nb` blocks and `a` holds `nb`
        // blocks (checked above), all `dots` reads. This fn is only handed out by
        // `legacy::vec_dot_rows4_fn` for `SimdLevel::Avx512` after
        // `quant::vec_dot_rows4_fn` checked that the CPU supports it.
        let got = unsafe { dots::<FMT, 4, 1>(nb, rows, [a.as_ptr()]) };
        o.copy_from_slice(&got.map(|r| r[0]));
    }
}
