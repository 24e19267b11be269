//! Scalar reference dot products of the K-quant weight formats with Q8_K activations:
//! the specification every SIMD kernel is tested against.
//!
//! Per super-block the integer part is exact: `isum = Σ_sub scale[sub] · Σ_{j∈sub} q_j·a_j`
//! (i32, cannot overflow for any input) and, for formats with mins, `isum_mins =
//! Σ_sub min[sub] · Σ_{j∈sub} a_j`, the activation sums taken from Q8_K's `bsums`. The
//! float part is then accumulated left to right over super-blocks in f32:
//!
//! ```text
//! sumf += (d_a * d_w) * (isum as f32) - (d_a * dmin_w) * (isum_mins as f32)   // Q2_K, Q4_K, Q5_K
//! sumf += (d_a * d_w) * (isum as f32)                                          // Q3_K, Q6_K
//! ```
//!
//! with `d_w`, `dmin_w` the weight's f16 scales and `d_a` the activation's f32 scale.
//! The method (integer sub-block sums, mins through bsums) is GGML's K-quant dot design.

use super::layout::*;

/// `Σ_sub scale(sub) · Σ_{j∈sub} q_j · a_j` over one super-block, for sub-blocks of
/// `sub_len` elements, with the activation quants `a` read as i8. Exact in i32.
#[inline]
fn scaled_isum(q: &[i8; QK_K], ab: &[u8], sub_len: usize, scale: impl Fn(usize) -> i32) -> i32 {
    let aq = &ab[Q8K_QS..Q8K_QS + QK_K];
    q.chunks_exact(sub_len)
        .zip(aq.chunks_exact(sub_len))
        .enumerate()
        .map(|(sub, (qs, as_))| {
            let part: i32 = qs
                .iter()
                .zip(as_)
                .map(|(&q, &a)| q as i32 * (a as i8) as i32)
                .sum();
            scale(sub) * part
        })
        .sum()
}

/// Activation sum `g` (over elements `16g..16g + 16`) from Q8_K's bsums.
#[inline]
fn bsum(ab: &[u8], g: usize) -> i32 {
    i16_at(ab, Q8K_BSUMS + 2 * g) as i32
}

/// `Σ_sub min[sub] · Σ_{j∈sub} a_j` for Q2_K's sixteen 16-element sub-blocks, whose mins are
/// the high nibbles of the 16 scale bytes `scales`.
#[inline]
pub(super) fn mins_isum_q2k(ab: &[u8], scales: &[u8]) -> i32 {
    (0..16).map(|g| (scales[g] >> 4) as i32 * bsum(ab, g)).sum()
}

/// `Σ_sub min[sub] · Σ_{j∈sub} a_j` for Q4_K/Q5_K's eight 32-element sub-blocks.
#[inline]
pub(super) fn mins_isum_32(ab: &[u8], mn: &[u8; 8]) -> i32 {
    (0..8)
        .map(|s| mn[s] as i32 * (bsum(ab, 2 * s) + bsum(ab, 2 * s + 1)))
        .sum()
}

/// The float step (module docs) of one super-block of a format with mins, added to `sumf`.
#[inline]
pub(super) fn add_with_mins(
    sumf: f32,
    ab: &[u8],
    d_w: f32,
    dmin_w: f32,
    isum: i32,
    isum_mins: i32,
) -> f32 {
    let d_a = f32_at(ab, Q8K_D);
    sumf + ((d_a * d_w) * isum as f32 - (d_a * dmin_w) * isum_mins as f32)
}

/// The float step (module docs) of one super-block of Q3_K or Q6_K, added to `sumf`.
#[inline]
pub(super) fn add_without_mins(sumf: f32, ab: &[u8], d_w: f32, isum: i32) -> f32 {
    sumf + (f32_at(ab, Q8K_D) * d_w) * isum as f32
}

pub(super) fn vec_dot_q2_k(n: usize, w: &[u8], a: &[u8]) -> f32 {
    let nb = check_dot_args(n, w, Q2K_BYTES, a);
    let mut sumf = 0.0f32;
    for (wb, ab) in super_blocks(w, Q2K_BYTES, a, nb) {
        let scales = &wb[Q2K_SCALES..Q2K_SCALES + 16];
        let isum = scaled_isum(&q2k_quants(wb), ab, 16, |sub| (scales[sub] & 0x0f) as i32);
        let (d, dmin) = (f16_at(wb, Q2K_D), f16_at(wb, Q2K_DMIN));
        sumf = add_with_mins(sumf, ab, d, dmin, isum, mins_isum_q2k(ab, scales));
    }
    sumf
}

pub(super) fn vec_dot_q3_k(n: usize, w: &[u8], a: &[u8]) -> f32 {
    let nb = check_dot_args(n, w, Q3K_BYTES, a);
    let mut sumf = 0.0f32;
    for (wb, ab) in super_blocks(w, Q3K_BYTES, a, nb) {
        let scales = unpack_q3k_scales(&wb[Q3K_SCALES..Q3K_SCALES + 12]);
        let isum = scaled_isum(&q3k_quants(wb), ab, 16, |sub| scales[sub] as i32);
        sumf = add_without_mins(sumf, ab, f16_at(wb, Q3K_D), isum);
    }
    sumf
}

pub(super) fn vec_dot_q4_k(n: usize, w: &[u8], a: &[u8]) -> f32 {
    let nb = check_dot_args(n, w, Q4K_BYTES, a);
    let mut sumf = 0.0f32;
    for (wb, ab) in super_blocks(w, Q4K_BYTES, a, nb) {
        let (sc, mn) = unpack_q4k_scales(&wb[Q4K_SCALES..Q4K_SCALES + 12]);
        let isum = scaled_isum(&q4k_quants(wb), ab, 32, |sub| sc[sub] as i32);
        let (d, dmin) = (f16_at(wb, Q4K_D), f16_at(wb, Q4K_DMIN));
        sumf = add_with_mins(sumf, ab, d, dmin, isum, mins_isum_32(ab, &mn));
    }
    sumf
}

pub(super) fn vec_dot_q5_k(n: usize, w: &[u8], a: &[u8]) -> f32 {
    let nb = check_dot_args(n, w, Q5K_BYTES, a);
    let mut sumf = 0.0f32;
    for (wb, ab) in super_blocks(w, Q5K_BYTES, a, nb) {
        let (sc, mn) = unpack_q4k_scales(&wb[Q5K_SCALES..Q5K_SCALES + 12]);
        let isum = scaled_isum(&q5k_quants(wb), ab, 32, |sub| sc[sub] as i32);
        let (d, dmin) = (f16_at(wb, Q5K_D), f16_at(wb, Q5K_DMIN));
        sumf = add_with_mins(sumf, ab, d, dmin, isum, mins_isum_32(ab, &mn));
    }
    sumf
}

pub(super) fn vec_dot_q6_k(n: usize, w: &[u8], a: &[u8]) -> f32 {
    let nb = check_dot_args(n, w, Q6K_BYTES, a);
    let mut sumf = 0.0f32;
    for (wb, ab) in super_blocks(w, Q6K_BYTES, a, nb) {
        let scales = q6k_scales(wb);
        let isum = scaled_isum(&q6k_quants(wb), ab, 16, |sub| scales[sub] as i32);
        sumf = add_without_mins(sumf, ab, f16_at(wb, Q6K_D), isum);
    }
    sumf
}
