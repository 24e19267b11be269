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
