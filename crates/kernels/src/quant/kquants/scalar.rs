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

/// `y[j] = (d * sc[sub]) * q[j] - (dmin * mn[sub])`, `sub = j / (256 / sc.len())`.
fn dequantize_with_mins(y: &mut [f32], q: &[i8; QK_K], d: f32, dmin: f32, sc: &[u8], mn: &[u8]) {
    let sub_len = QK_K / sc.len();
    for (j, (v, &q)) in y.iter_mut().zip(q).enumerate() {
        let dl = d * sc[j / sub_len] as f32;
        let ml = dmin * mn[j / sub_len] as f32;
        *v = dl * q as f32 - ml;
    }
}

/// `y[j] = (d * scales[j / 16]) * q[j]`.
fn dequantize_signed_scales(y: &mut [f32], q: &[i8; QK_K], d: f32, scales: &[i8; 16]) {
    for (j, (v, &q)) in y.iter_mut().zip(q).enumerate() {
        let dl = d * scales[j / 16] as f32;
        *v = dl * q as f32;
    }
}

pub(super) fn dequantize_q2_k(src: &[u8], dst: &mut [f32]) {
    check_dequant_args(src, dst, Q2K_BYTES);
    for (b, y) in src.chunks_exact(Q2K_BYTES).zip(dst.chunks_exact_mut(QK_K)) {
        let packed = &b[Q2K_SCALES..Q2K_SCALES + 16];
        let sc: [u8; 16] = std::array::from_fn(|k| packed[k] & 0x0f);
        let mn: [u8; 16] = std::array::from_fn(|k| packed[k] >> 4);
        let (d, dmin) = (f16_at(b, Q2K_D), f16_at(b, Q2K_DMIN));
        dequantize_with_mins(y, &q2k_quants(b), d, dmin, &sc, &mn);
    }
}

pub(super) fn dequantize_q3_k(src: &[u8], dst: &mut [f32]) {
    check_dequant_args(src, dst, Q3K_BYTES);
    for (b, y) in src.chunks_exact(Q3K_BYTES).zip(dst.chunks_exact_mut(QK_K)) {
        let scales = unpack_q3k_scales(&b[Q3K_SCALES..Q3K_SCALES + 12]);
        dequantize_signed_scales(y, &q3k_quants(b), f16_at(b, Q3K_D), &scales);
    }
}

pub(super) fn dequantize_q4_k(src: &[u8], dst: &mut [f32]) {
    check_dequant_args(src, dst, Q4K_BYTES);
    for (b, y) in src.chunks_exact(Q4K_BYTES).zip(dst.chunks_exact_mut(QK_K)) {
        let (sc, mn) = unpack_q4k_scales(&b[Q4K_SCALES..Q4K_SCALES + 12]);
        let (d, dmin) = (f16_at(b, Q4K_D), f16_at(b, Q4K_DMIN));
        dequantize_with_mins(y, &q4k_quants(b), d, dmin, &sc, &mn);
    }
}

pub(super) fn dequantize_q5_k(src: &[u8], dst: &mut [f32]) {
    check_dequant_args(src, dst, Q5K_BYTES);
    for (b, y) in src.chunks_exact(Q5K_BYTES).zip(dst.chunks_exact_mut(QK_K)) {
        let (sc, mn) = unpack_q4k_scales(&b[Q5K_SCALES..Q5K_SCALES + 12]);
        let (d, dmin) = (f16_at(b, Q5K_D), f16_at(b, Q5K_DMIN));
        dequantize_with_mins(y, &q5k_quants(b), d, dmin, &sc, &mn);
    }
}

pub(super) fn dequantize_q6_k(src: &[u8], dst: &mut [f32]) {
    check_dequant_args(src, dst, Q6K_BYTES);
    for (b, y) in src.chunks_exact(Q6K_BYTES).zip(dst.chunks_exact_mut(QK_K)) {
        dequantize_signed_scales(y, &q6k_quants(b), f16_at(b, Q6K_D), &q6k_scales(b));
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

/// Checks a Q8_K quantizer's inputs: whole super-blocks in, exactly their bytes out.
pub(super) fn check_quantize_args(src: &[f32], dst: &[u8]) {
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
    check_quantize_args(src, dst);
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
        for (o, &v) in b[Q8K_QS..Q8K_QS + QK_K].iter_mut().zip(x) {
            *o = quant(v) as u8;
        }
        fill_q8k_bsums(b);
    }
}
