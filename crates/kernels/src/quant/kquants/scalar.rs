//! Scalar dequantization of the K-quant super-blocks and scalar quantization of f32
//! activations to Q8_K.
//!
//! Element order and arithmetic follow the numpy dequantizers of the `gguf` Python
//! package (`gguf/quants.py`): each value is `(d * scale) * q - (dmin * min)` evaluated
//! in f32 in exactly that order, so results are bit-identical to that reference.

use super::layout::*;

fn check_dequant_args(src: &[u8], dst: &[f32], block_bytes: usize) -> usize {
    assert_eq!(
        dst.len() % QK_K,
        0,
        "K-quant dequantize: {} is not whole super-blocks",
        dst.len()
    );
    let nb = dst.len() / QK_K;
    assert_eq!(
        src.len(),
        nb * block_bytes,
        "K-quant dequantize: {nb} super-blocks need {} bytes",
        nb * block_bytes
    );
    nb
}

pub(super) fn dequantize_q2_k(src: &[u8], dst: &mut [f32]) {
    check_dequant_args(src, dst, Q2K_BYTES);
    for (b, y) in src.chunks_exact(Q2K_BYTES).zip(dst.chunks_exact_mut(QK_K)) {
        let d = f16_at(b, Q2K_D);
        let dmin = f16_at(b, Q2K_DMIN);
        let scales = &b[Q2K_SCALES..Q2K_SCALES + 16];
        let qs = &b[Q2K_QS..Q2K_QS + 64];
        for h in 0..2 {
            for s in 0..4 {
                for l in 0..32 {
                    let j = 128 * h + 32 * s + l;
                    let q = (qs[32 * h + l] >> (2 * s)) & 3;
                    let sc = scales[j / 16];
                    let dl = d * (sc & 0x0f) as f32;
                    let ml = dmin * (sc >> 4) as f32;
                    y[j] = dl * q as f32 - ml;
                }
            }
        }
    }
}

pub(super) fn dequantize_q3_k(src: &[u8], dst: &mut [f32]) {
    check_dequant_args(src, dst, Q3K_BYTES);
    for (b, y) in src.chunks_exact(Q3K_BYTES).zip(dst.chunks_exact_mut(QK_K)) {
        let d = f16_at(b, Q3K_D);
        let scales = unpack_q3k_scales(&b[Q3K_SCALES..Q3K_SCALES + 12]);
        let hmask = &b[Q3K_HMASK..Q3K_HMASK + 32];
        let qs = &b[Q3K_QS..Q3K_QS + 64];
        for h in 0..2 {
            for s in 0..4 {
                for l in 0..32 {
                    let j = 128 * h + 32 * s + l;
                    let low = ((qs[32 * h + l] >> (2 * s)) & 3) as i32;
                    // A set hmask bit means no offset; a clear one subtracts 4.
                    let high_set = (hmask[l] >> (j / 32)) & 1 == 1;
                    let q = if high_set { low } else { low - 4 };
                    let dl = d * scales[j / 16] as f32;
                    y[j] = dl * q as f32;
                }
            }
        }
    }
}

pub(super) fn dequantize_q4_k(src: &[u8], dst: &mut [f32]) {
    check_dequant_args(src, dst, Q4K_BYTES);
    for (b, y) in src.chunks_exact(Q4K_BYTES).zip(dst.chunks_exact_mut(QK_K)) {
        let d = f16_at(b, Q4K_D);
        let dmin = f16_at(b, Q4K_DMIN);
        let (sc, mn) = unpack_q4k_scales(&b[Q4K_SCALES..Q4K_SCALES + 12]);
        let qs = &b[Q4K_QS..Q4K_QS + 128];
        for c in 0..4 {
            for nib in 0..2 {
                let sub = 2 * c + nib;
                let dl = d * sc[sub] as f32;
                let ml = dmin * mn[sub] as f32;
                for l in 0..32 {
                    let q = (qs[32 * c + l] >> (4 * nib)) & 0x0f;
                    y[32 * sub + l] = dl * q as f32 - ml;
                }
            }
        }
    }
}

pub(super) fn dequantize_q5_k(src: &[u8], dst: &mut [f32]) {
    check_dequant_args(src, dst, Q5K_BYTES);
    for (b, y) in src.chunks_exact(Q5K_BYTES).zip(dst.chunks_exact_mut(QK_K)) {
        let d = f16_at(b, Q5K_D);
        let dmin = f16_at(b, Q5K_DMIN);
        let (sc, mn) = unpack_q4k_scales(&b[Q5K_SCALES..Q5K_SCALES + 12]);
        let qh = &b[Q5K_QH..Q5K_QH + 32];
        let qs = &b[Q5K_QS..Q5K_QS + 128];
        for c in 0..4 {
            for nib in 0..2 {
                let sub = 2 * c + nib;
                let dl = d * sc[sub] as f32;
                let ml = dmin * mn[sub] as f32;
                for l in 0..32 {
                    let low = (qs[32 * c + l] >> (4 * nib)) & 0x0f;
                    let high = (qh[l] >> sub) & 1;
                    let q = low | (high << 4);
                    y[32 * sub + l] = dl * q as f32 - ml;
                }
            }
        }
    }
}

pub(super) fn dequantize_q6_k(src: &[u8], dst: &mut [f32]) {
    check_dequant_args(src, dst, Q6K_BYTES);
    for (b, y) in src.chunks_exact(Q6K_BYTES).zip(dst.chunks_exact_mut(QK_K)) {
        let d = f16_at(b, Q6K_D);
        let ql = &b[Q6K_QL..Q6K_QL + 128];
        let qh = &b[Q6K_QH..Q6K_QH + 64];
        let scales = &b[Q6K_SCALES..Q6K_SCALES + 16];
        for h in 0..2 {
            for s in 0..4 {
                for l in 0..32 {
                    let j = 128 * h + 32 * s + l;
                    let low = (ql[64 * h + 32 * (s % 2) + l] >> (4 * (s / 2))) & 0x0f;
                    let high = (qh[32 * h + l] >> (2 * s)) & 3;
                    let q = (low | (high << 4)) as i32 - 32;
                    let dl = d * (scales[j / 16] as i8) as f32;
                    y[j] = dl * q as f32;
                }
            }
        }
    }
}

pub(super) fn dequantize_q8_k(src: &[u8], dst: &mut [f32]) {
    check_dequant_args(src, dst, Q8K_BYTES);
    for (b, y) in src.chunks_exact(Q8K_BYTES).zip(dst.chunks_exact_mut(QK_K)) {
        let d = f32_at(b, Q8K_D);
        for (v, &q) in y.iter_mut().zip(&b[Q8K_QS..Q8K_QS + QK_K]) {
            *v = d * (q as i8) as f32;
        }
    }
}

/// Quantizes f32 activations to Q8_K, one super-block per 256 values.
///
/// Per super-block: `amax = max |x|`; `d = amax / 127`; `q = round_ties_even(x * (127 /
/// amax))` (f32 product, then round half to even), clamped to -127..=127; `bsums[g]` =
/// sum of `q` over elements `16g..16g+16`. Edge cases: an all-zero block gives `d = 0`
/// and zero quants; a block with a NaN gets `d = NaN` (an infinite value `d = inf`), so
/// non-finite activations poison the dot products instead of vanishing; if `127 / amax`
/// overflows f32 (amax below about 3.7e-37) the quants are computed in f64 as
/// `round_ties_even(x * (127 / amax))` instead.
pub(super) fn quantize_q8_k(src: &[f32], dst: &mut [u8]) {
    assert_eq!(
        src.len() % QK_K,
        0,
        "Q8_K quantize: {} is not whole super-blocks",
        src.len()
    );
    let nb = src.len() / QK_K;
    assert_eq!(
        dst.len(),
        nb * Q8K_BYTES,
        "Q8_K quantize: {nb} super-blocks need {} bytes",
        nb * Q8K_BYTES
    );
    for (x, b) in src.chunks_exact(QK_K).zip(dst.chunks_exact_mut(Q8K_BYTES)) {
        let mut amax = 0.0f32;
        let mut has_nan = false;
        for &v in x {
            has_nan |= v.is_nan();
            amax = amax.max(v.abs());
        }
        let d = if has_nan { f32::NAN } else { amax / 127.0 };
        let id = 127.0 / amax;
        let id64 = 127.0 / amax as f64;
        let quant = |v: f32| -> i8 {
            if has_nan || amax == 0.0 || amax.is_infinite() {
                0
            } else if id.is_finite() {
                (v * id).round_ties_even().clamp(-127.0, 127.0) as i8
            } else {
                (v as f64 * id64).round_ties_even().clamp(-127.0, 127.0) as i8
            }
        };
        b[Q8K_D..Q8K_D + 4].copy_from_slice(&d.to_le_bytes());
        for g in 0..16 {
            let mut bsum = 0i16;
            for i in 16 * g..16 * g + 16 {
                let q = quant(x[i]);
                b[Q8K_QS + i] = q as u8;
                bsum += q as i16;
            }
            b[Q8K_BSUMS + 2 * g..Q8K_BSUMS + 2 * g + 2].copy_from_slice(&bsum.to_le_bytes());
        }
    }
}
