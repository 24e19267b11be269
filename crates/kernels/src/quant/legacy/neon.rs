//! aarch64 NEON dot products for the legacy formats (`SimdLevel::Neon`), baseline Advanced
//! SIMD only (no `dotprod` extension).
//!
//! Per block: the 32 weight quants are unpacked into two 16-byte vectors (elements 0..15
//! from the low nibbles, 16..31 from the high nibbles, 5th bits from `qh` by a bit test
//! against a per-byte mask), multiplied with the activation's i8 quants by widening
//! `smull` into exact i16 products, pairwise-added into four exact i32 partial sums,
//! converted to f32 and accumulated by `d_w * d_a`; two blocks per iteration into two
//! accumulators, `m_w * s_a` summed in a scalar. The x86 tests run on aarch64 too, e.g.
//! under `qemu-aarch64` (linker `aarch64-linux-gnu-gcc`, runner `qemu-aarch64 -L
//! /usr/aarch64-linux-gnu`).

use super::check_dot_args;
use super::{Q4_0_SIZE, Q4_1_SIZE, Q5_0_SIZE, Q5_1_SIZE, Q8_0_SIZE, Q8_1_SIZE};
use crate::quant::le_bytes::{f16_at, f32_at, u32_at};
use std::arch::aarch64::*;

/// A block's weight quants (offset removed) as two i8 vectors, and its float factors.
struct Block {
    x: [int8x16_t; 2],
    y: [int8x16_t; 2],
    d: f32,
    ms: f32,
}

#[inline]
#[target_feature(enable = "neon")]
fn load16(b: &[u8]) -> uint8x16_t {
    assert!(b.len() >= 16);
    // SAFETY: 16 readable bytes checked just above; vld1q has no alignment requirement.
    unsafe { vld1q_u8(b.as_ptr()) }
}

/// Low and high nibbles of 16 bytes: elements 0..15 and 16..31.
#[inline]
#[target_feature(enable = "neon")]
fn nibbles(qs: &[u8]) -> [uint8x16_t; 2] {
    let v = load16(qs);
    [vandq_u8(v, vdupq_n_u8(0x0f)), vshrq_n_u8::<4>(v)]
}

/// 0x10 in byte `j` of element half `h` where bit `16 h + j` of `qh` is set.
#[inline]
#[target_feature(enable = "neon")]
fn fifth_bits(qh: u32) -> [uint8x16_t; 2] {
    let bit = vreinterpretq_u8_u64(vdupq_n_u64(0x8040_2010_0804_0201));
    let half = |lo: u32, hi: u32| {
        let v = vcombine_u8(vdup_n_u8(lo as u8), vdup_n_u8(hi as u8));
        vandq_u8(vtstq_u8(v, bit), vdupq_n_u8(0x10))
    };
    [half(qh, qh >> 8), half(qh >> 16, qh >> 24)]
}

/// Four exact i32 partial sums of `x * y` over one block.
#[inline]
#[target_feature(enable = "neon")]
fn isum(x: [int8x16_t; 2], y: [int8x16_t; 2]) -> int32x4_t {
    let mut acc = vdupq_n_s32(0);
    for k in 0..2 {
        let lo = vmull_s8(vget_low_s8(x[k]), vget_low_s8(y[k]));
        let hi = vmull_high_s8(x[k], y[k]);
        acc = vpadalq_s16(acc, lo);
        acc = vpadalq_s16(acc, hi);
    }
    acc
}

#[inline]
#[target_feature(enable = "neon")]
fn i8s(b: &[u8]) -> [int8x16_t; 2] {
    [
        vreinterpretq_s8_u8(load16(b)),
        vreinterpretq_s8_u8(load16(&b[16..])),
    ]
}

#[inline]
#[target_feature(enable = "neon")]
fn sum_blocks(nb: usize, block: impl Fn(usize) -> Block) -> f32 {
    let mut acc = [vdupq_n_f32(0.0); 2];
    let mut summs = 0.0f32;
    for i in 0..nb {
        let b = block(i);
        let p = vcvtq_f32_s32(isum(b.x, b.y));
        acc[i & 1] = vfmaq_n_f32(acc[i & 1], p, b.d);
        summs += b.ms;
    }
    vaddvq_f32(vaddq_f32(acc[0], acc[1])) + summs
}

#[inline]
#[target_feature(enable = "neon")]
fn offset(q: [uint8x16_t; 2], off: i8) -> [int8x16_t; 2] {
    let o = vdupq_n_s8(off);
    [
        vsubq_s8(vreinterpretq_s8_u8(q[0]), o),
        vsubq_s8(vreinterpretq_s8_u8(q[1]), o),
    ]
}

#[inline]
#[target_feature(enable = "neon")]
fn or2(a: [uint8x16_t; 2], b: [uint8x16_t; 2]) -> [uint8x16_t; 2] {
    [vorrq_u8(a[0], b[0]), vorrq_u8(a[1], b[1])]
}

#[target_feature(enable = "neon")]
fn q4_0_q8_1(nb: usize, w: &[u8], a: &[u8]) -> f32 {
    sum_blocks(nb, |i| {
        let (bw, ba) = (&w[i * 18..i * 18 + 18], &a[i * 40..i * 40 + 40]);
        Block {
            x: offset(nibbles(&bw[2..]), 8),
            y: i8s(&ba[8..]),
            d: f16_at(bw, 0) * f32_at(ba, 0),
            ms: 0.0,
        }
    })
}

#[target_feature(enable = "neon")]
fn q5_0_q8_1(nb: usize, w: &[u8], a: &[u8]) -> f32 {
    sum_blocks(nb, |i| {
        let (bw, ba) = (&w[i * 22..i * 22 + 22], &a[i * 40..i * 40 + 40]);
        let qh = u32_at(bw, 2);
        Block {
            x: offset(or2(nibbles(&bw[6..]), fifth_bits(qh)), 16),
            y: i8s(&ba[8..]),
            d: f16_at(bw, 0) * f32_at(ba, 0),
            ms: 0.0,
        }
    })
}

#[target_feature(enable = "neon")]
fn q8_0_q8_1(nb: usize, w: &[u8], a: &[u8]) -> f32 {
    sum_blocks(nb, |i| {
        let (bw, ba) = (&w[i * 34..i * 34 + 34], &a[i * 40..i * 40 + 40]);
        Block {
            x: i8s(&bw[2..]),
            y: i8s(&ba[8..]),
            d: f16_at(bw, 0) * f32_at(ba, 0),
            ms: 0.0,
        }
    })
}

#[target_feature(enable = "neon")]
fn q4_1_q8_1(nb: usize, w: &[u8], a: &[u8]) -> f32 {
    sum_blocks(nb, |i| {
        let (bw, ba) = (&w[i * 20..i * 20 + 20], &a[i * 40..i * 40 + 40]);
        Block {
            x: offset(nibbles(&bw[4..]), 0),
            y: i8s(&ba[8..]),
            d: f16_at(bw, 0) * f32_at(ba, 0),
            ms: f16_at(bw, 2) * f32_at(ba, 4),
        }
    })
}

#[target_feature(enable = "neon")]
fn q5_1_q8_1(nb: usize, w: &[u8], a: &[u8]) -> f32 {
    sum_blocks(nb, |i| {
        let (bw, ba) = (&w[i * 24..i * 24 + 24], &a[i * 40..i * 40 + 40]);
        let qh = u32_at(bw, 4);
        Block {
            x: offset(or2(nibbles(&bw[8..]), fifth_bits(qh)), 0),
            y: i8s(&ba[8..]),
            d: f16_at(bw, 0) * f32_at(ba, 0),
            ms: f16_at(bw, 2) * f32_at(ba, 4),
        }
    })
}

safe_vec_dots! {
    slices:
    vec_dot_q4_0_q8_1 => q4_0_q8_1, Q4_0_SIZE, Q8_1_SIZE;
    vec_dot_q5_0_q8_1 => q5_0_q8_1, Q5_0_SIZE, Q8_1_SIZE;
    vec_dot_q8_0_q8_1 => q8_0_q8_1, Q8_0_SIZE, Q8_1_SIZE;
    vec_dot_q4_1_q8_1 => q4_1_q8_1, Q4_1_SIZE, Q8_1_SIZE;
    vec_dot_q5_1_q8_1 => q5_1_q8_1, Q5_1_SIZE, Q8_1_SIZE;
}
