//! K-quant super-block formats Q2_K, Q3_K, Q4_K, Q5_K, Q6_K and the activation format Q8_K.
//!
//! (Skeleton: filled in by the k-quants work.)

use crate::dispatch::SimdLevel;
use crate::dtype::DType;
use crate::quant::{DequantizeFn, QuantizeFn, VecDotFn};

pub(in crate::quant) fn dequantize_fn(_dtype: DType) -> Option<DequantizeFn> {
    None
}

pub(in crate::quant) fn quantize_fn(_dtype: DType, _level: SimdLevel) -> Option<QuantizeFn> {
    None
}

pub(in crate::quant) fn vec_dot_fn(_dtype: DType, _level: SimdLevel) -> Option<VecDotFn> {
    None
}

/// Overwrites the scale fields of random bytes `blocks` of `dtype` with finite, sane
/// values; returns false if `dtype` is not in this family. For tests and benchmarks.
pub(in crate::quant) fn sanitize_random_blocks(
    _dtype: DType,
    _blocks: &mut [u8],
    _rng: &mut crate::quant::testing::Rng,
) -> bool {
    false
}
