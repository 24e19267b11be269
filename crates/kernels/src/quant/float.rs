//! F32, F16 and BF16 rows: dequantization (conversion to f32), quantization from f32,
//! and dot products against an f32 activation row.

use crate::dispatch::SimdLevel;
use crate::dtype::DType;
use crate::half::{bf16_to_f32, f16_to_f32, f32_to_bf16, f32_to_f16};
use crate::quant::{DequantizeFn, QuantizeFn, VecDotFn};

pub(super) fn dequantize_fn(dtype: DType) -> Option<DequantizeFn> {
    match dtype {
        DType::F32 => Some(dequantize_f32),
        DType::F16 => Some(dequantize_f16),
        DType::BF16 => Some(dequantize_bf16),
        _ => None,
    }
}

pub(super) fn quantize_fn(dtype: DType, level: SimdLevel) -> Option<QuantizeFn> {
    match (dtype, level) {
        (DType::F32, SimdLevel::Scalar) => Some(quantize_f32),
        (DType::F16, SimdLevel::Scalar) => Some(quantize_f16),
        (DType::BF16, SimdLevel::Scalar) => Some(quantize_bf16),
        _ => None,
    }
}

pub(super) fn vec_dot_fn(dtype: DType, level: SimdLevel) -> Option<VecDotFn> {
    match (dtype, level) {
        (DType::F32, SimdLevel::Scalar) => Some(scalar::vec_dot_f32),
        (DType::F16, SimdLevel::Scalar) => Some(scalar::vec_dot_f16),
        (DType::BF16, SimdLevel::Scalar) => Some(scalar::vec_dot_bf16),
        _ => None,
    }
}

#[inline]
fn f32_at(b: &[u8], i: usize) -> f32 {
    f32::from_le_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]])
}

#[inline]
fn u16_at(b: &[u8], i: usize) -> u16 {
    u16::from_le_bytes([b[2 * i], b[2 * i + 1]])
}

fn dequantize_f32(src: &[u8], dst: &mut [f32]) {
    assert_eq!(src.len(), dst.len() * 4);
    for (i, d) in dst.iter_mut().enumerate() {
        *d = f32_at(src, i);
    }
}

fn dequantize_f16(src: &[u8], dst: &mut [f32]) {
    assert_eq!(src.len(), dst.len() * 2);
    for (i, d) in dst.iter_mut().enumerate() {
        *d = f16_to_f32(u16_at(src, i));
    }
}

fn dequantize_bf16(src: &[u8], dst: &mut [f32]) {
    assert_eq!(src.len(), dst.len() * 2);
    for (i, d) in dst.iter_mut().enumerate() {
        *d = bf16_to_f32(u16_at(src, i));
    }
}

fn quantize_f32(src: &[f32], dst: &mut [u8]) {
    assert_eq!(dst.len(), src.len() * 4);
    for (s, d) in src.iter().zip(dst.chunks_exact_mut(4)) {
        d.copy_from_slice(&s.to_le_bytes());
    }
}

fn quantize_f16(src: &[f32], dst: &mut [u8]) {
    assert_eq!(dst.len(), src.len() * 2);
    for (s, d) in src.iter().zip(dst.chunks_exact_mut(2)) {
        d.copy_from_slice(&f32_to_f16(*s).to_le_bytes());
    }
}

fn quantize_bf16(src: &[f32], dst: &mut [u8]) {
    assert_eq!(dst.len(), src.len() * 2);
    for (s, d) in src.iter().zip(dst.chunks_exact_mut(2)) {
        d.copy_from_slice(&f32_to_bf16(*s).to_le_bytes());
    }
}

/// Scalar references: plain left-to-right f32 accumulation.
mod scalar {
    use super::*;

    pub(super) fn vec_dot_f32(n: usize, w: &[u8], a: &[u8]) -> f32 {
        assert!(w.len() >= n * 4 && a.len() >= n * 4);
        (0..n).map(|i| f32_at(w, i) * f32_at(a, i)).sum()
    }

    pub(super) fn vec_dot_f16(n: usize, w: &[u8], a: &[u8]) -> f32 {
        assert!(w.len() >= n * 2 && a.len() >= n * 4);
        (0..n)
            .map(|i| f16_to_f32(u16_at(w, i)) * f32_at(a, i))
            .sum()
    }

    pub(super) fn vec_dot_bf16(n: usize, w: &[u8], a: &[u8]) -> f32 {
        assert!(w.len() >= n * 2 && a.len() >= n * 4);
        (0..n)
            .map(|i| bf16_to_f32(u16_at(w, i)) * f32_at(a, i))
            .sum()
    }
}
