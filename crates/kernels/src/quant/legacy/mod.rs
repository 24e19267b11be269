//! 32-element block formats Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 and the activation format Q8_1.
//!
//! (Skeleton: filled in by the legacy-formats work.)

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
