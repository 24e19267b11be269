//! AVX-512 (F/BW/VL/DQ + VNNI) level of the legacy formats (`SimdLevel::Avx512`): the
//! four-stream mat-vec of decoding (`rows4`) here, the mat-mat over packed weight panels
//! in [`super::avx512_panel`]. Every result of this level is bit-identical to the scalar
//! reference, which is also this level's one-row `vec_dot` (it only serves the few rows
//! the other two leave over), so all three agree per row as the level contract asks.
//!
//! `rows4` technique (written from the layouts in `legacy`): per block, each of the four
//! weight rows is unpacked to 32 unsigned bytes with the AVX2 helpers (nibbles by a
//! broadcasting load and a variable shift, 5th bits by a byte shuffle and compare, Q8_0
//! as `x + 128`) and `vpdpbusd` (256-bit, VNNI) forms eight exact i32 sums of four
//! products against the activation block, starting from lanes that sum to `−offset·Σy`
//! (Q4_0 8, Q5_0 16, Q8_0 128; one more `vpdpbusd` per block for the four rows); one
//! `vphaddd` tree folds the four rows' sums into one 128-bit vector. The four rows' f16 scales (and mins) are converted together, and the reference's
//! float steps `(d_w·d_a)·isum (+ m_w·s_a)` then `sum += ·` run in the four lanes.

use super::avx2::{fifth_bits, load32, nibbles};
use super::{check_dot_args, Q4_0_SIZE, Q4_1_SIZE, Q5_0_SIZE, Q5_1_SIZE, Q8_0_SIZE, Q8_1_SIZE};
use crate::quant::x86::{prefetch_at, PREFETCH_AHEAD};
use std::arch::x86_64::*;

/// The weight formats, as the const parameter `FMT` of this level's kernels.
pub(super) const Q4_0: u8 = 0;
pub(super) const Q4_1: u8 = 1;
pub(super) const Q5_0: u8 = 2;
pub(super) const Q5_1: u8 = 3;
pub(super) const Q8_0: u8 = 4;

/// Bytes per block of format `fmt`.
pub(super) const fn size(fmt: u8) -> usize {
    match fmt {
        Q4_0 => Q4_0_SIZE,
        Q4_1 => Q4_1_SIZE,
        Q5_0 => Q5_0_SIZE,
        Q5_1 => Q5_1_SIZE,
        _ => Q8_0_SIZE,
    }
}

/// What the unsigned quants this level forms exceed the reference's signed ones by.
pub(super) const fn offset(fmt: u8) -> i32 {
    match fmt {
        Q4_0 => 8,
        Q5_0 => 16,
        Q8_0 => 128,
        _ => 0,
    }
}

/// The 32 quants of the block at `bw` as unsigned bytes in element order.
///
/// # Safety
/// The whole block is readable.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
pub(super) unsafe fn quants<const FMT: u8>(bw: *const u8) -> __m256i {
    // SAFETY: every field read lies inside the block (layouts in `legacy`).
    unsafe {
        match FMT {
            Q4_0 => nibbles(bw.add(2)),
            Q4_1 => nibbles(bw.add(4)),
            Q5_0 => _mm256_or_si256(nibbles(bw.add(6)), fifth_bits(bw.add(2))),
            Q5_1 => _mm256_or_si256(nibbles(bw.add(8)), fifth_bits(bw.add(4))),
            _ => _mm256_xor_si256(load32(bw.add(2)), _mm256_set1_epi8(-128)),
        }
    }
}

/// Four weight rows `w` (block `i` of row `k` at `w[k] + i·size`) against the activation
/// row `a`, `nb` blocks: the scalar reference's result for each row.
///
/// # Safety
/// Every row of `w` holds `nb` blocks of format `FMT` and `a` `nb` Q8_1 blocks; the CPU
/// has this fn's target features.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
unsafe fn rows4<const FMT: u8>(nb: usize, w: [*const u8; 4], a: *const u8) -> [f32; 4] {
    let size = size(FMT);
    let off = offset(FMT);
    let (lo16, hi16) = (
        _mm_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, -1, -1, -1, -1, -1, -1, -1, -1),
        _mm_setr_epi8(2, 3, 6, 7, 10, 11, 14, 15, -1, -1, -1, -1, -1, -1, -1, -1),
    );
    let mut acc = _mm_setzero_ps();
    for i in 0..nb {
        // SAFETY: block i < nb of every weight row and of `a` is readable (caller
        // contract); `field` reads the first four bytes of block i of a row.
        unsafe {
            let ba = a.add(i * Q8_1_SIZE);
            let y = load32(ba.add(8));
            // Lanes summing to −offset·Σy: the start of every row's sums.
            let start = if off != 0 {
                let c = _mm256_dpbusd_epi32(
                    _mm256_setzero_si256(),
                    _mm256_set1_epi8(off as u8 as i8),
                    y,
                );
                _mm256_sub_epi32(_mm256_setzero_si256(), c)
            } else {
                _mm256_setzero_si256()
            };
            let mut v = [start; 4];
            for (k, v) in v.iter_mut().enumerate() {
                let bw = w[k].add(i * size);
                prefetch_at(bw, PREFETCH_AHEAD);
                *v = _mm256_dpbusd_epi32(*v, quants::<FMT>(bw), y);
            }
            let h = _mm256_hadd_epi32(_mm256_hadd_epi32(v[0], v[1]), _mm256_hadd_epi32(v[2], v[3]));
            let isum = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256::<1>(h));
            let field = |k: usize| (w[k].add(i * size) as *const i32).read_unaligned();
            let fields = _mm_setr_epi32(field(0), field(1), field(2), field(3));
            let dw = _mm_cvtph_ps(_mm_shuffle_epi8(fields, lo16));
            let da = _mm_set1_ps((ba as *const f32).read_unaligned());
            let mut t = _mm_mul_ps(_mm_mul_ps(dw, da), _mm_cvtepi32_ps(isum));
            if matches!(FMT, Q4_1 | Q5_1) {
                let mw = _mm_cvtph_ps(_mm_shuffle_epi8(fields, hi16));
                let sa = _mm_set1_ps((ba.add(4) as *const f32).read_unaligned());
                t = _mm_add_ps(t, _mm_mul_ps(mw, sa));
            }
            acc = _mm_add_ps(acc, t);
        }
    }
    let mut out = [0f32; 4];
    // SAFETY: `out` holds four floats.
    unsafe { _mm_storeu_ps(out.as_mut_ptr(), acc) };
    out
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
        // blocks (checked above), all `rows4` reads. This fn is only handed out by
        // `legacy::vec_dot_rows4_fn` for `SimdLevel::Avx512` after
        // `quant::vec_dot_rows4_fn` checked that the CPU supports it.
        o.copy_from_slice(&unsafe { rows4::<FMT>(nb, rows, a.as_ptr()) });
    }
}
