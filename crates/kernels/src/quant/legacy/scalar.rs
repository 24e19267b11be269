//! Scalar reference (the specification) for the legacy 32-element formats: dequantization,
//! quantization of Q4_0/Q8_0/Q8_1, and weight·activation dot products.
//!
//! Methods follow GGML's reference C code as documented by the `gguf` Python package
//! (`gguf.quants`), rewritten from the formulas; see `legacy/mod.rs` for the layouts.
//!
//! Dot-product formula (what every SIMD version must reproduce): for block `b`,
//! `isum_b = Σ_j qw_j * qa_j` exactly in i32, where `qw_j` is the weight quant with its
//! offset removed (`q - 8` for Q4_0, `q - 16` for Q5_0, `q` for Q8_0/Q4_1/Q5_1) and `qa_j`
//! the activation's i8 quant. Then, in f32, left to right over blocks starting at 0.0:
//!
//! * `_0` weights: `sumf += (d_w * d_a) * (isum_b as f32)`
//! * `_1` weights: `sumf += (d_w * d_a) * (isum_b as f32) + m_w * s_a`
//!
//! with `d_w`, `m_w` the f16 fields widened exactly to f32 and `d_a`, `s_a` the activation's
//! f32 (Q8_1) or widened f16 (Q8_0) fields. SIMD versions compute the same `isum_b` (or
//! the same per-lane partial sums of it) and may reassociate and fuse the float part.

use super::{check_dot_args, QK};
use super::{Q4_0_SIZE, Q4_1_SIZE, Q5_0_SIZE, Q5_1_SIZE, Q8_0_SIZE, Q8_1_SIZE};
use crate::half::f32_to_f16;
use crate::quant::le_bytes::{f16_at, f32_at, u32_at};

/// The 32 unsigned 4-bit quants of a 16-byte `qs` field, in element order.
#[inline]
fn nibbles(qs: &[u8]) -> [u8; QK] {
    let mut q = [0u8; QK];
    for i in 0..QK / 2 {
        q[i] = qs[i] & 0x0f;
        q[i + QK / 2] = qs[i] >> 4;
    }
    q
}

/// The 32 unsigned 5-bit quants from `qh` (bit `j` = bit 4 of element `j`) and `qs`.
#[inline]
fn five_bit(qh: u32, qs: &[u8]) -> [u8; QK] {
    let mut q = nibbles(qs);
    for (j, v) in q.iter_mut().enumerate() {
        *v |= (((qh >> j) & 1) as u8) << 4;
    }
    q
}

fn check_dequant(src: &[u8], dst: &[f32], size: usize, name: &str) {
    assert!(
        dst.len().is_multiple_of(QK) && src.len() == dst.len() / QK * size,
        "{name} dequantize: {} bytes do not hold {} elements",
        src.len(),
        dst.len()
    );
}

pub(super) fn dequantize_q4_0(src: &[u8], dst: &mut [f32]) {
    check_dequant(src, dst, Q4_0_SIZE, "Q4_0");
    for (b, out) in src.chunks_exact(Q4_0_SIZE).zip(dst.chunks_exact_mut(QK)) {
        let d = f16_at(b, 0);
        for (o, q) in out.iter_mut().zip(nibbles(&b[2..18])) {
            *o = (q as i32 - 8) as f32 * d;
        }
    }
}

pub(super) fn dequantize_q4_1(src: &[u8], dst: &mut [f32]) {
    check_dequant(src, dst, Q4_1_SIZE, "Q4_1");
    for (b, out) in src.chunks_exact(Q4_1_SIZE).zip(dst.chunks_exact_mut(QK)) {
        let (d, m) = (f16_at(b, 0), f16_at(b, 2));
        for (o, q) in out.iter_mut().zip(nibbles(&b[4..20])) {
            *o = q as f32 * d + m;
        }
    }
}

pub(super) fn dequantize_q5_0(src: &[u8], dst: &mut [f32]) {
    check_dequant(src, dst, Q5_0_SIZE, "Q5_0");
    for (b, out) in src.chunks_exact(Q5_0_SIZE).zip(dst.chunks_exact_mut(QK)) {
        let d = f16_at(b, 0);
        for (o, q) in out.iter_mut().zip(five_bit(u32_at(b, 2), &b[6..22])) {
            *o = (q as i32 - 16) as f32 * d;
        }
    }
}

pub(super) fn dequantize_q5_1(src: &[u8], dst: &mut [f32]) {
    check_dequant(src, dst, Q5_1_SIZE, "Q5_1");
    for (b, out) in src.chunks_exact(Q5_1_SIZE).zip(dst.chunks_exact_mut(QK)) {
        let (d, m) = (f16_at(b, 0), f16_at(b, 2));
        for (o, q) in out.iter_mut().zip(five_bit(u32_at(b, 4), &b[8..24])) {
            *o = q as f32 * d + m;
        }
    }
}

pub(super) fn dequantize_q8_0(src: &[u8], dst: &mut [f32]) {
    check_dequant(src, dst, Q8_0_SIZE, "Q8_0");
    for (b, out) in src.chunks_exact(Q8_0_SIZE).zip(dst.chunks_exact_mut(QK)) {
        let d = f16_at(b, 0);
        for (o, &q) in out.iter_mut().zip(&b[2..34]) {
            *o = q as i8 as f32 * d;
        }
    }
}

pub(super) fn dequantize_q8_1(src: &[u8], dst: &mut [f32]) {
    check_dequant(src, dst, Q8_1_SIZE, "Q8_1");
    for (b, out) in src.chunks_exact(Q8_1_SIZE).zip(dst.chunks_exact_mut(QK)) {
        let d = f32_at(b, 0);
        for (o, &q) in out.iter_mut().zip(&b[8..40]) {
            *o = q as i8 as f32 * d;
        }
    }
}

pub(super) fn check_quant(src: &[f32], dst: &[u8], size: usize, name: &str) {
    assert!(
        src.len().is_multiple_of(QK) && dst.len() == src.len() / QK * size,
        "{name} quantize: {} elements do not fit {} bytes",
        src.len(),
        dst.len()
    );
}

/// Symmetric 8-bit quantization of one block: `amax` = largest `|x|` (NaNs ignored),
/// `d = amax / 127`, `q = round(x / d)` computed as `x * (1 / d)` in f32 and rounded half
/// away from zero (C `roundf`, Rust `f32::round`), then clamped to [-127, 127] with NaN
/// giving 0. An all-zero block gets `d = 0` and zero quants. Returns `(d, qs)` with `d`
/// unrounded (Q8_0 stores it as f16, Q8_1 as f32).
///
/// This is GGML's method; the clamp only matters where GGML's would overflow: when
/// `1 / d` is infinite (`amax` below about 3.7e-37) GGML's products become ±inf and NaN
/// and its quants ±128/0. Keeping quants in [-127, 127] is what lets the AVX2 dot products
/// use the sign trick on activations.
#[inline]
pub(super) fn quantize_block_i8(x: &[f32]) -> (f32, [i8; QK]) {
    let amax = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let d = amax / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    let mut qs = [0i8; QK];
    for (q, v) in qs.iter_mut().zip(x) {
        *q = (v * id).round().clamp(-127.0, 127.0) as i8;
    }
    (d, qs)
}

pub(super) fn quantize_q8_0(src: &[f32], dst: &mut [u8]) {
    check_quant(src, dst, Q8_0_SIZE, "Q8_0");
    for (x, b) in src.chunks_exact(QK).zip(dst.chunks_exact_mut(Q8_0_SIZE)) {
        let (d, qs) = quantize_block_i8(x);
        b[0..2].copy_from_slice(&f32_to_f16(d).to_le_bytes());
        for (o, q) in b[2..].iter_mut().zip(qs) {
            *o = q as u8;
        }
    }
}

/// Like Q8_0 but `d` kept as f32, plus `s = d * Σ q` (f32 product of `d` and the exact
/// integer sum).
pub(super) fn quantize_q8_1(src: &[f32], dst: &mut [u8]) {
    check_quant(src, dst, Q8_1_SIZE, "Q8_1");
    for (x, b) in src.chunks_exact(QK).zip(dst.chunks_exact_mut(Q8_1_SIZE)) {
        let (d, qs) = quantize_block_i8(x);
        let sum: i32 = qs.iter().map(|&q| q as i32).sum();
        b[0..4].copy_from_slice(&d.to_le_bytes());
        b[4..8].copy_from_slice(&(d * sum as f32).to_le_bytes());
        for (o, q) in b[8..].iter_mut().zip(qs) {
            *o = q as u8;
        }
    }
}

/// GGML's reference Q4_0 quantization: `max` is the element of largest magnitude (the
/// first one on ties), `d = max / -8`, `id = 1 / d` (0 if `d` is 0), and
/// `q = min(15, trunc(x * id + 8.5))`, all in f32 (the truncation cannot go below 0 since
/// `|x * id| <= 8`). `d` is stored as f16.
pub(super) fn quantize_q4_0(src: &[f32], dst: &mut [u8]) {
    check_quant(src, dst, Q4_0_SIZE, "Q4_0");
    for (x, b) in src.chunks_exact(QK).zip(dst.chunks_exact_mut(Q4_0_SIZE)) {
        let mut amax = 0.0f32;
        let mut max = 0.0f32;
        for &v in x {
            if amax < v.abs() {
                amax = v.abs();
                max = v;
            }
        }
        let d = max / -8.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        let q = |v: f32| ((v * id + 8.5) as i32).clamp(0, 15) as u8;
        b[0..2].copy_from_slice(&f32_to_f16(d).to_le_bytes());
        for i in 0..QK / 2 {
            b[2 + i] = q(x[i]) | (q(x[i + QK / 2]) << 4);
        }
    }
}

/// Σ (q_w - offset) * q_a over one block of unsigned weight quants.
#[inline]
fn isum_unsigned(qw: &[u8; QK], offset: i32, qa: &[u8]) -> i32 {
    qw.iter()
        .zip(qa)
        .map(|(&w, &a)| (w as i32 - offset) * (a as i8 as i32))
        .sum()
}

/// The dot product over whole blocks: checks the lengths, then sums `block(w_b, a_b)` over
/// the block pairs in f32, left to right, starting at 0.0 (the formula in the module docs).
#[inline]
fn dot_blocks(
    n: usize,
    w: &[u8],
    w_size: usize,
    a: &[u8],
    a_size: usize,
    block: impl Fn(&[u8], &[u8]) -> f32,
) -> f32 {
    let nb = check_dot_args(n, w, w_size, a, a_size);
    let mut sumf = 0.0f32;
    for (bw, ba) in w.chunks_exact(w_size).zip(a.chunks_exact(a_size)).take(nb) {
        sumf += block(bw, ba);
    }
    sumf
}

pub(super) fn vec_dot_q4_0_q8_1(n: usize, w: &[u8], a: &[u8]) -> f32 {
    dot_blocks(n, w, Q4_0_SIZE, a, Q8_1_SIZE, |bw, ba| {
        let isum = isum_unsigned(&nibbles(&bw[2..18]), 8, &ba[8..40]);
        (f16_at(bw, 0) * f32_at(ba, 0)) * isum as f32
    })
}

pub(super) fn vec_dot_q5_0_q8_1(n: usize, w: &[u8], a: &[u8]) -> f32 {
    dot_blocks(n, w, Q5_0_SIZE, a, Q8_1_SIZE, |bw, ba| {
        let isum = isum_unsigned(&five_bit(u32_at(bw, 2), &bw[6..22]), 16, &ba[8..40]);
        (f16_at(bw, 0) * f32_at(ba, 0)) * isum as f32
    })
}

pub(super) fn vec_dot_q8_0_q8_1(n: usize, w: &[u8], a: &[u8]) -> f32 {
    dot_blocks(n, w, Q8_0_SIZE, a, Q8_1_SIZE, |bw, ba| {
        let isum: i32 = bw[2..34]
            .iter()
            .zip(&ba[8..40])
            .map(|(&x, &y)| x as i8 as i32 * y as i8 as i32)
            .sum();
        (f16_at(bw, 0) * f32_at(ba, 0)) * isum as f32
    })
}

pub(super) fn vec_dot_q4_1_q8_1(n: usize, w: &[u8], a: &[u8]) -> f32 {
    dot_blocks(n, w, Q4_1_SIZE, a, Q8_1_SIZE, |bw, ba| {
        let isum = isum_unsigned(&nibbles(&bw[4..20]), 0, &ba[8..40]);
        (f16_at(bw, 0) * f32_at(ba, 0)) * isum as f32 + f16_at(bw, 2) * f32_at(ba, 4)
    })
}

pub(super) fn vec_dot_q5_1_q8_1(n: usize, w: &[u8], a: &[u8]) -> f32 {
    dot_blocks(n, w, Q5_1_SIZE, a, Q8_1_SIZE, |bw, ba| {
        let isum = isum_unsigned(&five_bit(u32_at(bw, 4), &bw[8..24]), 0, &ba[8..40]);
        (f16_at(bw, 0) * f32_at(ba, 0)) * isum as f32 + f16_at(bw, 2) * f32_at(ba, 4)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::half::f32_to_f16;

    fn f16b(v: f32) -> [u8; 2] {
        f32_to_f16(v).to_le_bytes()
    }

    /// Builds blocks by hand from chosen quants and checks every element against the
    /// layout formula, evaluated independently in f64.
    #[test]
    fn dequantize_matches_layout_formulas() {
        let q: Vec<u8> = (0..32u8).map(|j| (j * 7 + 3) % 32).collect();
        let (d, m) = (0.375f32, -1.25f32);
        let mut qs = [0u8; 16];
        for i in 0..16 {
            qs[i] = (q[i] & 15) | ((q[i + 16] & 15) << 4);
        }
        let qh: u32 = (0..32).map(|j| ((q[j] as u32 >> 4) & 1) << j).sum();

        let mut b40 = [f16b(d).as_slice(), &qs].concat();
        let mut out = [0f32; 32];
        dequantize_q4_0(&b40, &mut out);
        for j in 0..32 {
            assert_eq!(
                out[j] as f64,
                ((q[j] & 15) as f64 - 8.0) * d as f64,
                "q4_0 {j}"
            );
        }
        b40 = [f16b(d).as_slice(), &f16b(m), &qs].concat();
        dequantize_q4_1(&b40, &mut out);
        for j in 0..32 {
            assert_eq!(
                out[j] as f64,
                (q[j] & 15) as f64 * d as f64 + m as f64,
                "q4_1 {j}"
            );
        }
        let b50 = [f16b(d).as_slice(), &qh.to_le_bytes(), &qs].concat();
        dequantize_q5_0(&b50, &mut out);
        for j in 0..32 {
            assert_eq!(out[j] as f64, (q[j] as f64 - 16.0) * d as f64, "q5_0 {j}");
        }
        let b51 = [f16b(d).as_slice(), &f16b(m), &qh.to_le_bytes(), &qs].concat();
        dequantize_q5_1(&b51, &mut out);
        for j in 0..32 {
            assert_eq!(out[j] as f64, q[j] as f64 * d as f64 + m as f64, "q5_1 {j}");
        }
        let q8: Vec<u8> = (0..32u32).map(|j| (j * 9 + 20) as u8).collect();
        let b80 = [f16b(d).as_slice(), &q8].concat();
        dequantize_q8_0(&b80, &mut out);
        for j in 0..32 {
            assert_eq!(out[j] as f64, (q8[j] as i8) as f64 * d as f64, "q8_0 {j}");
        }
        let b81 = [d.to_le_bytes().as_slice(), &7.0f32.to_le_bytes(), &q8].concat();
        dequantize_q8_1(&b81, &mut out);
        for j in 0..32 {
            assert_eq!(out[j] as f64, (q8[j] as i8) as f64 * d as f64, "q8_1 {j}");
        }
    }

    #[test]
    fn q8_quantizers_round_half_away_and_store_sum() {
        // amax 127 gives d = 1 exactly, so x * id = x and rounding is visible.
        let mut x = [0f32; 32];
        x[0] = 127.0;
        x[1] = 2.5;
        x[2] = -2.5;
        x[3] = 0.49;
        x[4] = -126.5;
        let mut b = [0u8; 40];
        quantize_q8_1(&x, &mut b);
        assert_eq!(f32::from_le_bytes(b[0..4].try_into().unwrap()), 1.0);
        let qs: Vec<i8> = b[8..13].iter().map(|&v| v as i8).collect();
        assert_eq!(qs, [127, 3, -3, 0, -127]);
        assert_eq!(f32::from_le_bytes(b[4..8].try_into().unwrap()), 0.0);
        let mut b0 = [0u8; 34];
        quantize_q8_0(&x, &mut b0);
        assert_eq!(&b0[2..34], &b[8..40]);
        assert_eq!(u16::from_le_bytes([b0[0], b0[1]]), 0x3c00);
        // All-zero block: d = 0, no NaN.
        quantize_q8_0(&[0.0; 32], &mut b0);
        assert!(b0.iter().all(|&v| v == 0));
    }

    #[test]
    fn q4_0_quantizer_picks_signed_max() {
        let mut x = [0f32; 32];
        x[5] = -4.0; // largest magnitude, negative: d = 0.5, q = trunc(x*2 + 8.5)
        x[6] = 3.0;
        x[20] = 1.74;
        let mut b = [0u8; 18];
        quantize_q4_0(&x, &mut b);
        assert_eq!(u16::from_le_bytes([b[0], b[1]]), f32_to_f16(0.5));
        let mut out = [0f32; 32];
        dequantize_q4_0(&b, &mut out);
        assert_eq!(out[5], -4.0);
        assert_eq!(out[6], 3.0);
        assert_eq!(out[20], 1.5); // trunc(3.48 + 8.5) = 11 -> (11 - 8) * 0.5
        assert_eq!(out[0], 0.0);
    }
}
