//! AVX2 dot products of four weight rows with one activation row, for the mat-vec of
//! decoding: each activation block is loaded (and its scale converted) once for the four
//! rows, four independent weight streams keep more cache-line fills in flight, and the
//! per-row call and loop overhead is paid once per four rows. The rows need not be
//! neighbours: the mat-vec driver passes rows a quarter of its range apart, so that the
//! four streams are far apart in memory too.
//!
//! Every result is bit-identical to the single-row kernel of [`super::avx2`] on the same
//! pair of rows: per weight row the same values are formed and accumulated in the same
//! order (one accumulator, block by block, the same final sum), so decoding through
//! this kernel or through the single-row one gives the same bits.

use super::avx2::{
    dot_i8_i8, dot_u8_i8, f16_at, f32_at, fifth_bits, load32, nibbles, sum_blocks_n,
};
use super::{check_dot_args, Q4_0_SIZE, Q4_1_SIZE, Q5_0_SIZE, Q8_0_SIZE, Q8_1_SIZE};
use crate::quant::x86::{prefetch_at, PREFETCH_AHEAD};
use std::arch::x86_64::*;

/// A Q8_1 activation block as the four weight rows need it.
#[derive(Clone, Copy)]
struct ActBlock {
    /// 32 signed quants.
    q: __m256i,
    /// Scale, and the scaled sum of the quants.
    d: f32,
    s: f32,
}

/// Block `i` of the Q8_1 activation row at `a`.
///
/// # Safety
/// Block `i` lies inside the row at `a`; the CPU has AVX2/FMA/F16C.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q8_1_act(a: *const u8, i: usize) -> ActBlock {
    // SAFETY: the caller guarantees block i of the row at `a` is readable.
    unsafe {
        let ba = a.add(i * Q8_1_SIZE);
        ActBlock {
            q: load32(ba.add(8)),
            d: f32_at(ba),
            s: f32_at(ba.add(4)),
        }
    }
}

/// Block `i` of weight row `w`, `size` bytes per block, prefetching [`PREFETCH_AHEAD`]
/// bytes further: past the row's end that is the start of the row after it, which the
/// mat-vec driver hands this kernel next in the same position (each of the four rows is
/// its own stream through the matrix; see `ops::matmul`).
///
/// # Safety
/// Block `i` lies inside the row at `w`.
#[inline(always)]
unsafe fn weight_block(w: *const u8, i: usize, size: usize) -> *const u8 {
    // SAFETY: the caller guarantees block i of the row is in bounds.
    let bw = unsafe { w.add(i * size) };
    prefetch_at(bw, PREFETCH_AHEAD);
    bw
}

/// `(d_w·d_a, i32 sums, offset correction)` for a `_0`-format weight block at `bw` whose
/// unsigned quants are `q`, with `ms = −offset·s_a` formed once per activation block for
/// the four rows: `d_w·ms` has the same bits as [`super::avx2::offset_term`]'s `(−offset·d_w)·s_a`,
/// since multiplying by the power of two `−offset` is exact either way round.
///
/// # Safety
/// Eight bytes at `bw` are readable; the CPU has AVX2/FMA/F16C.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn offset_pair(bw: *const u8, q: __m256i, (ab, ms): (ActBlock, f32)) -> (f32, __m256i, f32) {
    // SAFETY: the caller guarantees the scale's bytes are readable.
    let d_w = unsafe { f16_at(bw) };
    (d_w * ab.d, dot_u8_i8(q, ab.q), d_w * ms)
}

/// Block `i` of the Q8_1 activation row at `a` with its `−offset·s` for [`offset_pair`].
///
/// # Safety
/// As [`q8_1_act`].
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q8_1_act_offset(a: *const u8, i: usize, offset: f32) -> (ActBlock, f32) {
    // SAFETY: forwarded caller contract.
    let ab = unsafe { q8_1_act(a, i) };
    (ab, -offset * ab.s)
}

/// # Safety
/// Each of `w` holds `nb` Q4_0 blocks and `a` `nb` Q8_1 blocks; the CPU has AVX2/FMA/F16C.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q4_0_q8_1(nb: usize, w: [*const u8; 4], a: *const u8) -> [f32; 4] {
    sum_blocks_n(
        nb,
        // SAFETY: block i < nb lies inside the activation row (caller contract).
        |i| unsafe { q8_1_act_offset(a, i, 8.0) },
        |act, i, r| {
            // SAFETY: block i < nb lies inside every weight row (caller contract).
            unsafe {
                let bw = weight_block(w[r], i, Q4_0_SIZE);
                offset_pair(bw, nibbles(bw.add(2)), act)
            }
        },
    )
}

/// # Safety
/// As [`q4_0_q8_1`], for Q5_0 weights.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q5_0_q8_1(nb: usize, w: [*const u8; 4], a: *const u8) -> [f32; 4] {
    sum_blocks_n(
        nb,
        // SAFETY: block i < nb lies inside the activation row (caller contract).
        |i| unsafe { q8_1_act_offset(a, i, 16.0) },
        |act, i, r| {
            // SAFETY: block i < nb lies inside every weight row (caller contract).
            unsafe {
                let bw = weight_block(w[r], i, Q5_0_SIZE);
                let q = _mm256_or_si256(nibbles(bw.add(6)), fifth_bits(bw.add(2)));
                offset_pair(bw, q, act)
            }
        },
    )
}

/// # Safety
/// As [`q4_0_q8_1`], for Q8_0 weights.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q8_0_q8_1(nb: usize, w: [*const u8; 4], a: *const u8) -> [f32; 4] {
    sum_blocks_n(
        nb,
        // SAFETY: block i < nb lies inside the activation row (caller contract).
        |i| unsafe { q8_1_act(a, i) },
        |ab, i, r| {
            // SAFETY: block i < nb lies inside every weight row (caller contract).
            unsafe {
                let bw = weight_block(w[r], i, Q8_0_SIZE);
                let isum = dot_i8_i8(load32(bw.add(2)), ab.q);
                (f16_at(bw) * ab.d, isum, 0.0)
            }
        },
    )
}

/// # Safety
/// Each of `w` holds `nb` Q4_1 blocks and `a` `nb` Q8_1 blocks; the CPU has AVX2/FMA/F16C.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q4_1_q8_1(nb: usize, w: [*const u8; 4], a: *const u8) -> [f32; 4] {
    sum_blocks_n(
        nb,
        // SAFETY: block i < nb lies inside the activation row (caller contract).
        |i| unsafe { q8_1_act(a, i) },
        |ab, i, r| {
            // SAFETY: block i < nb lies inside every weight row (caller contract).
            unsafe {
                let bw = weight_block(w[r], i, Q4_1_SIZE);
                (
                    f16_at(bw) * ab.d,
                    dot_u8_i8(nibbles(bw.add(4)), ab.q),
                    f16_at(bw.add(2)) * ab.s,
                )
            }
        },
    )
}

/// Runs `kernel` on group after group of four rows, one from each stream (`w[k]` plus
/// `i · row_bytes`), writing group `i`'s results to `out[4·i..4·i + 4]`.
///
/// # Safety
/// Each of `w` holds `out.len() / 4` rows of `row_bytes` bytes; `kernel` may read those
/// rows; the CPU has AVX2/FMA/F16C.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn each_group(
    row_bytes: usize,
    w: [*const u8; 4],
    out: &mut [f32],
    kernel: impl Fn([*const u8; 4]) -> [f32; 4],
) {
    for (i, o) in out.chunks_exact_mut(4).enumerate() {
        // SAFETY: row i < out.len() / 4 of every stream is in bounds (caller contract).
        let rows = unsafe {
            let off = i * row_bytes;
            [w[0].add(off), w[1].add(off), w[2].add(off), w[3].add(off)]
        };
        o.copy_from_slice(&kernel(rows));
    }
}

macro_rules! safe_rows4 {
    ($($name:ident => $kernel:ident, $w:expr, $a:expr;)*) => {$(
        pub(super) fn $name(n: usize, w: [&[u8]; 4], a: &[u8], out: &mut [f32]) {
            assert!(
                out.len().is_multiple_of(4),
                "rows4 dot: {} outputs are not whole groups of four",
                out.len()
            );
            let groups = out.len() / 4;
            // Checks `n` and the activation row; the streams are checked below.
            let nb = check_dot_args(n, &[], 0, a, $a);
            let row_bytes = nb * $w;
            for stream in w {
                assert!(
                    stream.len() >= groups * row_bytes,
                    "rows4 dot: a stream of {} bytes holds fewer than {groups} rows of {row_bytes}",
                    stream.len()
                );
            }
            let a = a.as_ptr();
            // SAFETY: every stream holds `groups` rows of `nb` blocks and `a` holds `nb`
            // blocks (checked above), all the kernel reads. This fn is only handed out by
            // `legacy::vec_dot_rows4_fn` for `SimdLevel::Avx2` after
            // `quant::vec_dot_rows4_fn` checked that the CPU supports it.
            unsafe {
                each_group(row_bytes, w.map(|r| r.as_ptr()), out, |rows| $kernel(nb, rows, a))
            }
        }
    )*};
}

safe_rows4! {
    vec_dot_rows4_q4_0_q8_1 => q4_0_q8_1, Q4_0_SIZE, Q8_1_SIZE;
    vec_dot_rows4_q5_0_q8_1 => q5_0_q8_1, Q5_0_SIZE, Q8_1_SIZE;
    vec_dot_rows4_q8_0_q8_1 => q8_0_q8_1, Q8_0_SIZE, Q8_1_SIZE;
    vec_dot_rows4_q4_1_q8_1 => q4_1_q8_1, Q4_1_SIZE, Q8_1_SIZE;
}
