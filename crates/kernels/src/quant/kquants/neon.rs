//! NEON (aarch64 Advanced SIMD) dot products of the K-quant weight formats with Q8_K
//! activations.
//!
//! Each super-block's integer sums are formed exactly with widening multiplies
//! (`smull`/`smlal` i8×i8→i16, never overflowing: at most four products of |q| ≤ 32 and
//! |a| ≤ 128 per lane) and `smlal` by the i16 sub-block scale into i32 lanes; the lanes are
//! then reduced to the super-block's `isum`, and the float step is the scalar spec's own
//! code (`dot_scalar::add_with_mins` / `add_without_mins`: `(d_a * d_w) * isum - (d_a *
//! dmin_w) * isum_mins`, left to right), so these kernels agree with [`super::dot_scalar`]
//! bit for bit. Baseline NEON only (no `sdot`,
//! which needs the optional dot-product extension).
//!
//! Every `vec_dot_*` here is handed out by `kquants::vec_dot_fn` only for
//! `SimdLevel::Neon`, whose CPU support `quant::vec_dot_fn` has checked.

use std::arch::aarch64::*;

use super::dot_scalar::{add_with_mins, add_without_mins, mins_isum_32, mins_isum_q2k};
use super::layout::*;

/// Loads 16 bytes at `p + off`.
///
/// # Safety
/// `off + 16 <= p.len()` (callers pass constant offsets inside fixed-size block slices)
/// and NEON is available.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn load16(p: &[u8], off: usize) -> uint8x16_t {
    debug_assert!(off + 16 <= p.len());
    // SAFETY: the caller guarantees `off + 16 <= p.len()`; `ld1` has no alignment need.
    unsafe { vld1q_u8(p.as_ptr().add(off)) }
}

/// Loads 16 activation quants at `p + off` as i8. Same contract as [`load16`].
#[inline]
#[target_feature(enable = "neon")]
unsafe fn load16_s8(p: &[u8], off: usize) -> int8x16_t {
    // SAFETY: forwarded contract of `load16`.
    unsafe { vreinterpretq_s8_u8(load16(p, off)) }
}

/// i16 lanes holding pairwise sums of `q * a` over 16 elements (each lane two products).
#[inline]
#[target_feature(enable = "neon")]
fn mul16(q: int8x16_t, a: int8x16_t) -> int16x8_t {
    vmlal_high_s8(vmull_s8(vget_low_s8(q), vget_low_s8(a)), q, a)
}

/// Adds 16 more products `q * a` to `p`.
#[inline]
#[target_feature(enable = "neon")]
fn mla16(p: int16x8_t, q: int8x16_t, a: int8x16_t) -> int16x8_t {
    vmlal_high_s8(vmlal_s8(p, vget_low_s8(q), vget_low_s8(a)), q, a)
}

/// `acc + scale * p`, widened to i32.
#[inline]
#[target_feature(enable = "neon")]
fn scale_add(acc: int32x4_t, p: int16x8_t, scale: i16) -> int32x4_t {
    vmlal_high_n_s16(vmlal_n_s16(acc, vget_low_s16(p), scale), p, scale)
}

#[target_feature(enable = "neon")]
fn dot_q2_k(nb: usize, w: &[u8], a: &[u8]) -> f32 {
    let m3 = vdupq_n_u8(3);
    let mut sumf = 0.0f32;
    for (wb, ab) in super_blocks(w, Q2K_BYTES, a, nb) {
        let scales = &wb[Q2K_SCALES..Q2K_SCALES + 16];
        // SAFETY: every load offset + 16 lies inside the 84-byte weight block (qs
        // 16..80) or the 292-byte activation block (qs 4..260).
        let isum = unsafe {
            let mut acc = vdupq_n_s32(0);
            for h in 0..2 {
                let mut q0 = load16(wb, Q2K_QS + 32 * h);
                let mut q1 = load16(wb, Q2K_QS + 32 * h + 16);
                for s in 0..4 {
                    let e = Q8K_QS + 128 * h + 32 * s;
                    let sub = 8 * h + 2 * s;
                    let p0 = mul16(vreinterpretq_s8_u8(vandq_u8(q0, m3)), load16_s8(ab, e));
                    let p1 = mul16(vreinterpretq_s8_u8(vandq_u8(q1, m3)), load16_s8(ab, e + 16));
                    acc = scale_add(acc, p0, (scales[sub] & 0x0f) as i16);
                    acc = scale_add(acc, p1, (scales[sub + 1] & 0x0f) as i16);
                    q0 = vshrq_n_u8::<2>(q0);
                    q1 = vshrq_n_u8::<2>(q1);
                }
            }
            vaddvq_s32(acc)
        };
        let (d, dmin) = (f16_at(wb, Q2K_D), f16_at(wb, Q2K_DMIN));
        sumf = add_with_mins(sumf, ab, d, dmin, isum, mins_isum_q2k(ab, scales));
    }
    sumf
}

#[target_feature(enable = "neon")]
fn dot_q3_k(nb: usize, w: &[u8], a: &[u8]) -> f32 {
    let m3 = vdupq_n_u8(3);
    let four = vdupq_n_u8(4);
    let mut sumf = 0.0f32;
    for (wb, ab) in super_blocks(w, Q3K_BYTES, a, nb) {
        let scales = unpack_q3k_scales(&wb[Q3K_SCALES..Q3K_SCALES + 12]);
        // SAFETY: every load offset + 16 lies inside the 110-byte weight block (hmask
        // 0..32, qs 32..96) or the 292-byte activation block (qs 4..260).
        let isum = unsafe {
            let hm0 = load16(wb, Q3K_HMASK);
            let hm1 = load16(wb, Q3K_HMASK + 16);
            let mut acc = vdupq_n_s32(0);
            for h in 0..2 {
                let mut q0 = load16(wb, Q3K_QS + 32 * h);
                let mut q1 = load16(wb, Q3K_QS + 32 * h + 16);
                for s in 0..4 {
                    let bit = vdupq_n_u8(1 << (4 * h + s));
                    // q = low - 4 where the hmask bit is clear.
                    let off0 = vbicq_u8(four, vtstq_u8(hm0, bit));
                    let off1 = vbicq_u8(four, vtstq_u8(hm1, bit));
                    let v0 = vsubq_s8(
                        vreinterpretq_s8_u8(vandq_u8(q0, m3)),
                        vreinterpretq_s8_u8(off0),
                    );
                    let v1 = vsubq_s8(
                        vreinterpretq_s8_u8(vandq_u8(q1, m3)),
                        vreinterpretq_s8_u8(off1),
                    );
                    let e = Q8K_QS + 128 * h + 32 * s;
                    let sub = 8 * h + 2 * s;
                    acc = scale_add(acc, mul16(v0, load16_s8(ab, e)), scales[sub] as i16);
                    acc = scale_add(
                        acc,
                        mul16(v1, load16_s8(ab, e + 16)),
                        scales[sub + 1] as i16,
                    );
                    q0 = vshrq_n_u8::<2>(q0);
                    q1 = vshrq_n_u8::<2>(q1);
                }
            }
            vaddvq_s32(acc)
        };
        sumf = add_without_mins(sumf, ab, f16_at(wb, Q3K_D), isum);
    }
    sumf
}

#[target_feature(enable = "neon")]
fn dot_q4_k(nb: usize, w: &[u8], a: &[u8]) -> f32 {
    let m4 = vdupq_n_u8(0x0f);
    let mut sumf = 0.0f32;
    for (wb, ab) in super_blocks(w, Q4K_BYTES, a, nb) {
        let (sc, mn) = unpack_q4k_scales(&wb[Q4K_SCALES..Q4K_SCALES + 12]);
        // SAFETY: every load offset + 16 lies inside the 144-byte weight block (qs
        // 16..144) or the 292-byte activation block (qs 4..260).
        let isum = unsafe {
            let mut acc = vdupq_n_s32(0);
            for c in 0..4 {
                let x0 = load16(wb, Q4K_QS + 32 * c);
                let x1 = load16(wb, Q4K_QS + 32 * c + 16);
                let e = Q8K_QS + 64 * c;
                let lo0 = vreinterpretq_s8_u8(vandq_u8(x0, m4));
                let lo1 = vreinterpretq_s8_u8(vandq_u8(x1, m4));
                let hi0 = vreinterpretq_s8_u8(vshrq_n_u8::<4>(x0));
                let hi1 = vreinterpretq_s8_u8(vshrq_n_u8::<4>(x1));
                let p_lo = mla16(mul16(lo0, load16_s8(ab, e)), lo1, load16_s8(ab, e + 16));
                let p_hi = mla16(
                    mul16(hi0, load16_s8(ab, e + 32)),
                    hi1,
                    load16_s8(ab, e + 48),
                );
                acc = scale_add(acc, p_lo, sc[2 * c] as i16);
                acc = scale_add(acc, p_hi, sc[2 * c + 1] as i16);
            }
            vaddvq_s32(acc)
        };
        let (d, dmin) = (f16_at(wb, Q4K_D), f16_at(wb, Q4K_DMIN));
        sumf = add_with_mins(sumf, ab, d, dmin, isum, mins_isum_32(ab, &mn));
    }
    sumf
}

#[target_feature(enable = "neon")]
fn dot_q5_k(nb: usize, w: &[u8], a: &[u8]) -> f32 {
    let m4 = vdupq_n_u8(0x0f);
    let bit4 = vdupq_n_u8(0x10);
    let mut sumf = 0.0f32;
    for (wb, ab) in super_blocks(w, Q5K_BYTES, a, nb) {
        let (sc, mn) = unpack_q4k_scales(&wb[Q5K_SCALES..Q5K_SCALES + 12]);
        // SAFETY: every load offset + 16 lies inside the 176-byte weight block (qh
        // 16..48, qs 48..176) or the 292-byte activation block (qs 4..260).
        let isum = unsafe {
            let qh0 = load16(wb, Q5K_QH);
            let qh1 = load16(wb, Q5K_QH + 16);
            let mut acc = vdupq_n_s32(0);
            for c in 0..4 {
                let x0 = load16(wb, Q5K_QS + 32 * c);
                let x1 = load16(wb, Q5K_QS + 32 * c + 16);
                // Bit `sub` of each qh byte becomes bit 4 of sub-block `sub`'s quant.
                let high =
                    |qh: uint8x16_t, sub: usize| vandq_u8(vtstq_u8(qh, vdupq_n_u8(1 << sub)), bit4);
                let (s0, s1) = (2 * c, 2 * c + 1);
                let lo0 = vreinterpretq_s8_u8(vorrq_u8(vandq_u8(x0, m4), high(qh0, s0)));
                let lo1 = vreinterpretq_s8_u8(vorrq_u8(vandq_u8(x1, m4), high(qh1, s0)));
                let hi0 = vreinterpretq_s8_u8(vorrq_u8(vshrq_n_u8::<4>(x0), high(qh0, s1)));
                let hi1 = vreinterpretq_s8_u8(vorrq_u8(vshrq_n_u8::<4>(x1), high(qh1, s1)));
                let e = Q8K_QS + 64 * c;
                let p_lo = mla16(mul16(lo0, load16_s8(ab, e)), lo1, load16_s8(ab, e + 16));
                let p_hi = mla16(
                    mul16(hi0, load16_s8(ab, e + 32)),
                    hi1,
                    load16_s8(ab, e + 48),
                );
                acc = scale_add(acc, p_lo, sc[s0] as i16);
                acc = scale_add(acc, p_hi, sc[s1] as i16);
            }
            vaddvq_s32(acc)
        };
        let (d, dmin) = (f16_at(wb, Q5K_D), f16_at(wb, Q5K_DMIN));
        sumf = add_with_mins(sumf, ab, d, dmin, isum, mins_isum_32(ab, &mn));
    }
    sumf
}

#[target_feature(enable = "neon")]
fn dot_q6_k(nb: usize, w: &[u8], a: &[u8]) -> f32 {
    let m4 = vdupq_n_u8(0x0f);
    let m30 = vdupq_n_u8(0x30);
    let bias = vdupq_n_s8(32);
    let mut sumf = 0.0f32;
    for (wb, ab) in super_blocks(w, Q6K_BYTES, a, nb) {
        let scales = &wb[Q6K_SCALES..Q6K_SCALES + 16];
        // SAFETY: every load offset + 16 lies inside the 210-byte weight block (ql
        // 0..128, qh 128..192) or the 292-byte activation block (qs 4..260).
        let isum = unsafe {
            let mut acc = vdupq_n_s32(0);
            for h in 0..2 {
                let ql = [
                    load16(wb, Q6K_QL + 64 * h),
                    load16(wb, Q6K_QL + 64 * h + 16),
                    load16(wb, Q6K_QL + 64 * h + 32),
                    load16(wb, Q6K_QL + 64 * h + 48),
                ];
                let mut qh = [
                    load16(wb, Q6K_QH + 32 * h),
                    load16(wb, Q6K_QH + 32 * h + 16),
                ];
                for s in 0..4 {
                    for half in 0..2 {
                        // Low nibbles of ql[0..32] for s = 0, of ql[32..64] for s = 1;
                        // high nibbles of the same for s = 2, 3.
                        let src = ql[2 * (s % 2) + half];
                        let low = if s < 2 {
                            vandq_u8(src, m4)
                        } else {
                            vshrq_n_u8::<4>(src)
                        };
                        let high = vandq_u8(vshlq_n_u8::<4>(qh[half]), m30);
                        let q = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(low, high)), bias);
                        let e = Q8K_QS + 128 * h + 32 * s + 16 * half;
                        let sub = 8 * h + 2 * s + half;
                        acc =
                            scale_add(acc, mul16(q, load16_s8(ab, e)), (scales[sub] as i8) as i16);
                    }
                    qh = [vshrq_n_u8::<2>(qh[0]), vshrq_n_u8::<2>(qh[1])];
                }
            }
            vaddvq_s32(acc)
        };
        sumf = add_without_mins(sumf, ab, f16_at(wb, Q6K_D), isum);
    }
    sumf
}

safe_vec_dots! {
    vec_dot_q2_k => dot_q2_k, Q2K_BYTES;
    vec_dot_q3_k => dot_q3_k, Q3K_BYTES;
    vec_dot_q4_k => dot_q4_k, Q4K_BYTES;
    vec_dot_q5_k => dot_q5_k, Q5K_BYTES;
    vec_dot_q6_k => dot_q6_k, Q6K_BYTES;
}
