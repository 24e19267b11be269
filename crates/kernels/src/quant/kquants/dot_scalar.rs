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

/// The activation super-block's quants as i8.
#[inline]
fn act_qs(ab: &[u8]) -> &[u8] {
    &ab[Q8K_QS..Q8K_QS + QK_K]
}

#[inline]
fn bsum(ab: &[u8], g: usize) -> i32 {
    i16_at(ab, Q8K_BSUMS + 2 * g) as i32
}

pub(super) fn vec_dot_q2_k(n: usize, w: &[u8], a: &[u8]) -> f32 {
    let nb = check_dot_args(n, w, Q2K_BYTES, a);
    let mut sumf = 0.0f32;
    for i in 0..nb {
        let wb = &w[i * Q2K_BYTES..(i + 1) * Q2K_BYTES];
        let ab = &a[i * Q8K_BYTES..(i + 1) * Q8K_BYTES];
        let aq = act_qs(ab);
        let scales = &wb[Q2K_SCALES..Q2K_SCALES + 16];
        let qs = &wb[Q2K_QS..Q2K_QS + 64];
        let mut isum = 0i32;
        for h in 0..2 {
            for s in 0..4 {
                for half in 0..2 {
                    let sub = 8 * h + 2 * s + half;
                    let mut part = 0i32;
                    for l in 16 * half..16 * half + 16 {
                        let q = ((qs[32 * h + l] >> (2 * s)) & 3) as i32;
                        part += q * (aq[128 * h + 32 * s + l] as i8) as i32;
                    }
                    isum += (scales[sub] & 0x0f) as i32 * part;
                }
            }
        }
        let isum_mins: i32 = (0..16).map(|g| (scales[g] >> 4) as i32 * bsum(ab, g)).sum();
        let d_a = f32_at(ab, Q8K_D);
        sumf += (d_a * f16_at(wb, Q2K_D)) * isum as f32
            - (d_a * f16_at(wb, Q2K_DMIN)) * isum_mins as f32;
    }
    sumf
}

pub(super) fn vec_dot_q3_k(n: usize, w: &[u8], a: &[u8]) -> f32 {
    let nb = check_dot_args(n, w, Q3K_BYTES, a);
    let mut sumf = 0.0f32;
    for i in 0..nb {
        let wb = &w[i * Q3K_BYTES..(i + 1) * Q3K_BYTES];
        let ab = &a[i * Q8K_BYTES..(i + 1) * Q8K_BYTES];
        let aq = act_qs(ab);
        let scales = unpack_q3k_scales(&wb[Q3K_SCALES..Q3K_SCALES + 12]);
        let hmask = &wb[Q3K_HMASK..Q3K_HMASK + 32];
        let qs = &wb[Q3K_QS..Q3K_QS + 64];
        let mut isum = 0i32;
        for h in 0..2 {
            for s in 0..4 {
                let bit = 4 * h + s;
                for half in 0..2 {
                    let sub = 8 * h + 2 * s + half;
                    let mut part = 0i32;
                    for l in 16 * half..16 * half + 16 {
                        let low = ((qs[32 * h + l] >> (2 * s)) & 3) as i32;
                        let q = if (hmask[l] >> bit) & 1 == 1 {
                            low
                        } else {
                            low - 4
                        };
                        part += q * (aq[128 * h + 32 * s + l] as i8) as i32;
                    }
                    isum += scales[sub] as i32 * part;
                }
            }
        }
        let d_a = f32_at(ab, Q8K_D);
        sumf += (d_a * f16_at(wb, Q3K_D)) * isum as f32;
    }
    sumf
}

pub(super) fn vec_dot_q4_k(n: usize, w: &[u8], a: &[u8]) -> f32 {
    let nb = check_dot_args(n, w, Q4K_BYTES, a);
    let mut sumf = 0.0f32;
    for i in 0..nb {
        let wb = &w[i * Q4K_BYTES..(i + 1) * Q4K_BYTES];
        let ab = &a[i * Q8K_BYTES..(i + 1) * Q8K_BYTES];
        let aq = act_qs(ab);
        let (sc, mn) = unpack_q4k_scales(&wb[Q4K_SCALES..Q4K_SCALES + 12]);
        let qs = &wb[Q4K_QS..Q4K_QS + 128];
        let mut isum = 0i32;
        for sub in 0..8 {
            let (c, shift) = (sub / 2, 4 * (sub % 2));
            let mut part = 0i32;
            for l in 0..32 {
                let q = ((qs[32 * c + l] >> shift) & 0x0f) as i32;
                part += q * (aq[32 * sub + l] as i8) as i32;
            }
            isum += sc[sub] as i32 * part;
        }
        let isum_mins: i32 = (0..8)
            .map(|s| mn[s] as i32 * (bsum(ab, 2 * s) + bsum(ab, 2 * s + 1)))
            .sum();
        let d_a = f32_at(ab, Q8K_D);
        sumf += (d_a * f16_at(wb, Q4K_D)) * isum as f32
            - (d_a * f16_at(wb, Q4K_DMIN)) * isum_mins as f32;
    }
    sumf
}

pub(super) fn vec_dot_q5_k(n: usize, w: &[u8], a: &[u8]) -> f32 {
    let nb = check_dot_args(n, w, Q5K_BYTES, a);
    let mut sumf = 0.0f32;
    for i in 0..nb {
        let wb = &w[i * Q5K_BYTES..(i + 1) * Q5K_BYTES];
        let ab = &a[i * Q8K_BYTES..(i + 1) * Q8K_BYTES];
        let aq = act_qs(ab);
        let (sc, mn) = unpack_q4k_scales(&wb[Q5K_SCALES..Q5K_SCALES + 12]);
        let qh = &wb[Q5K_QH..Q5K_QH + 32];
        let qs = &wb[Q5K_QS..Q5K_QS + 128];
        let mut isum = 0i32;
        for sub in 0..8 {
            let (c, shift) = (sub / 2, 4 * (sub % 2));
            let mut part = 0i32;
            for l in 0..32 {
                let low = (qs[32 * c + l] >> shift) & 0x0f;
                let high = (qh[l] >> sub) & 1;
                let q = (low | (high << 4)) as i32;
                part += q * (aq[32 * sub + l] as i8) as i32;
            }
            isum += sc[sub] as i32 * part;
        }
        let isum_mins: i32 = (0..8)
            .map(|s| mn[s] as i32 * (bsum(ab, 2 * s) + bsum(ab, 2 * s + 1)))
            .sum();
        let d_a = f32_at(ab, Q8K_D);
        sumf += (d_a * f16_at(wb, Q5K_D)) * isum as f32
            - (d_a * f16_at(wb, Q5K_DMIN)) * isum_mins as f32;
    }
    sumf
}

pub(super) fn vec_dot_q6_k(n: usize, w: &[u8], a: &[u8]) -> f32 {
    let nb = check_dot_args(n, w, Q6K_BYTES, a);
    let mut sumf = 0.0f32;
    for i in 0..nb {
        let wb = &w[i * Q6K_BYTES..(i + 1) * Q6K_BYTES];
        let ab = &a[i * Q8K_BYTES..(i + 1) * Q8K_BYTES];
        let aq = act_qs(ab);
        let ql = &wb[Q6K_QL..Q6K_QL + 128];
        let qh = &wb[Q6K_QH..Q6K_QH + 64];
        let scales = &wb[Q6K_SCALES..Q6K_SCALES + 16];
        let mut isum = 0i32;
        for h in 0..2 {
            for s in 0..4 {
                for half in 0..2 {
                    let sub = 8 * h + 2 * s + half;
                    let mut part = 0i32;
                    for l in 16 * half..16 * half + 16 {
                        let low = (ql[64 * h + 32 * (s % 2) + l] >> (4 * (s / 2))) & 0x0f;
                        let high = (qh[32 * h + l] >> (2 * s)) & 3;
                        let q = (low | (high << 4)) as i32 - 32;
                        part += q * (aq[128 * h + 32 * s + l] as i8) as i32;
                    }
                    isum += (scales[sub] as i8) as i32 * part;
                }
            }
        }
        let d_a = f32_at(ab, Q8K_D);
        sumf += (d_a * f16_at(wb, Q6K_D)) * isum as f32;
    }
    sumf
}
