//! AVX2 dot products of one weight row with four or eight activation rows at once, for
//! the mat-mat of prefill and batched decode: each weight block is loaded and unpacked
//! once and used four or eight times.
//!
//! Every result is bit-identical to the single-row kernel of [`super::avx2`] on the same
//! pair of rows: per activation row the same values are formed and accumulated in the
//! same order (one accumulator, block by block, the same final sum). Batched and
//! unbatched forward passes therefore agree exactly.

use super::avx2::{
    dot_i8_i8, dot_u8_i8, f16_at, f32_at, fifth_bits, load32, nibbles, sum_blocks_n,
};
use super::{check_dot_args, Q4_0_SIZE, Q4_1_SIZE, Q5_0_SIZE, Q8_0_SIZE, Q8_1_SIZE};
use crate::quant::x86::prefetch_ahead;
use std::arch::x86_64::*;

/// A weight block as the four activation rows need it.
#[derive(Clone, Copy)]
struct WeightBlock {
    /// 32 quants, one byte each (signed for Q8_0, unsigned for the 4- and 5-bit formats).
    q: __m256i,
    d: f32,
    /// What multiplies the activation block's `s`: the `_1` formats' min, or the `_0`
    /// formats' offset correction (see [`super::avx2::offset_term`]).
    m: f32,
}

/// `(d_w·d_a, i32 sums, m_w·s_a)` for weight block `wb` (unsigned quants) and block `i`
/// of the Q8_1 activation row at `a`.
///
/// # Safety
/// Block `i` lies inside the row at `a`; the CPU has AVX2/FMA/F16C.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn unsigned_pair(a: *const u8, wb: WeightBlock, i: usize) -> (f32, __m256i, f32) {
    // SAFETY: the caller guarantees block i of the row at `a` is readable.
    unsafe {
        let ba = a.add(i * Q8_1_SIZE);
        (
            wb.d * f32_at(ba),
            dot_u8_i8(wb.q, load32(ba.add(8))),
            wb.m * f32_at(ba.add(4)),
        )
    }
}

/// Block `i` of a `_0`-format weight row: `q` from the unpacker, the scale and the
/// offset correction's factor (the product [`super::avx2::offset_term`] forms, same bits).
///
/// # Safety
/// Eight bytes at `bw` are readable; the CPU has AVX2/FMA/F16C.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn offset_block(bw: *const u8, q: __m256i, offset: f32) -> WeightBlock {
    // SAFETY: the caller guarantees the scale's bytes are readable.
    let d = unsafe { f16_at(bw) };
    WeightBlock {
        q,
        d,
        m: -offset * d,
    }
}

/// # Safety
/// `w` holds `nb` Q4_0 blocks and each of `a` `nb` Q8_1 blocks; the CPU has AVX2/FMA/F16C.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q4_0_q8_1<const N: usize>(nb: usize, w: *const u8, a: [*const u8; N]) -> [f32; N] {
    sum_blocks_n(
        nb,
        |i| {
            // SAFETY: block i < nb lies inside the weight row (caller contract).
            unsafe {
                let bw = w.add(i * Q4_0_SIZE);
                prefetch_ahead(bw, 1);
                offset_block(bw, nibbles(bw.add(2)), 8.0)
            }
        },
        // SAFETY: block i < nb lies inside every activation row (caller contract).
        |wb, i, r| unsafe { unsigned_pair(a[r], wb, i) },
    )
}

/// # Safety
/// As [`q4_0_q8_1`], for Q5_0 weights.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q5_0_q8_1<const N: usize>(nb: usize, w: *const u8, a: [*const u8; N]) -> [f32; N] {
    sum_blocks_n(
        nb,
        |i| {
            // SAFETY: block i < nb lies inside the weight row (caller contract).
            unsafe {
                let bw = w.add(i * Q5_0_SIZE);
                prefetch_ahead(bw, 1);
                let q = _mm256_or_si256(nibbles(bw.add(6)), fifth_bits(bw.add(2)));
                offset_block(bw, q, 16.0)
            }
        },
        // SAFETY: block i < nb lies inside every activation row (caller contract).
        |wb, i, r| unsafe { unsigned_pair(a[r], wb, i) },
    )
}

/// # Safety
/// As [`q4_0_q8_1`], for Q8_0 weights.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q8_0_q8_1<const N: usize>(nb: usize, w: *const u8, a: [*const u8; N]) -> [f32; N] {
    sum_blocks_n(
        nb,
        |i| {
            // SAFETY: block i < nb lies inside the weight row (caller contract).
            unsafe {
                let bw = w.add(i * Q8_0_SIZE);
                prefetch_ahead(bw, 1);
                WeightBlock {
                    q: load32(bw.add(2)),
                    d: f16_at(bw),
                    m: 0.0,
                }
            }
        },
        |wb, i, r| {
            // SAFETY: block i < nb lies inside every activation row (caller contract).
            unsafe {
                let ba = a[r].add(i * Q8_1_SIZE);
                (wb.d * f32_at(ba), dot_i8_i8(wb.q, load32(ba.add(8))), 0.0)
            }
        },
    )
}

/// # Safety
/// `w` holds `nb` Q4_1 blocks and each of `a` `nb` Q8_1 blocks; the CPU has AVX2/FMA/F16C.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q4_1_q8_1<const N: usize>(nb: usize, w: *const u8, a: [*const u8; N]) -> [f32; N] {
    sum_blocks_n(
        nb,
        |i| {
            // SAFETY: block i < nb lies inside the weight row (caller contract).
            unsafe {
                let bw = w.add(i * Q4_1_SIZE);
                prefetch_ahead(bw, 1);
                WeightBlock {
                    q: nibbles(bw.add(4)),
                    d: f16_at(bw),
                    m: f16_at(bw.add(2)),
                }
            }
        },
        // SAFETY: block i < nb lies inside every activation row (caller contract).
        |wb, i, r| unsafe { unsigned_pair(a[r], wb, i) },
    )
}

macro_rules! safe_x4 {
    ($($name:ident => $kernel:ident, $w:expr, $a:expr;)*) => {$(
        /// `N` (four or eight) activation rows against one weight row.
        pub(super) fn $name<const N: usize>(n: usize, w: &[u8], a: [&[u8]; N]) -> [f32; N] {
            let mut nb = 0;
            for row in a {
                nb = check_dot_args(n, w, $w, row, $a);
            }
            // SAFETY: check_dot_args asserted that `w` and every activation row hold `nb`
            // blocks, all the kernel reads (with no rows, it reads nothing). This fn is only
            // handed out by `legacy::vec_dot_x4_fn`/`vec_dot_x8_fn` for `SimdLevel::Avx2`
            // after `quant::vec_dot_x4_fn`/`vec_dot_x8_fn` checked that the CPU supports it.
            unsafe { $kernel(nb, w.as_ptr(), a.map(|r| r.as_ptr())) }
        }
    )*};
}

safe_x4! {
    vec_dot_xn_q4_0_q8_1 => q4_0_q8_1, Q4_0_SIZE, Q8_1_SIZE;
    vec_dot_xn_q5_0_q8_1 => q5_0_q8_1, Q5_0_SIZE, Q8_1_SIZE;
    vec_dot_xn_q8_0_q8_1 => q8_0_q8_1, Q8_0_SIZE, Q8_1_SIZE;
    vec_dot_xn_q4_1_q8_1 => q4_1_q8_1, Q4_1_SIZE, Q8_1_SIZE;
}
