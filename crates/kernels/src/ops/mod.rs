//! Tensor operations built on the block kernels: matrix products over any weight type
//! ([`matmul`]) and the element-wise operations a transformer needs (normalisation,
//! rotary embeddings, softmax, activations, arithmetic), on plain `f32` slices.
//!
//! Element-wise ops are scalar Rust written as simple loops over slices so the compiler
//! can vectorise them; each file names where its formula comes from.

mod activation;
mod elementwise;
mod exp;
mod f16kv;
mod matmul;
mod norm;
mod rope;
mod softmax;

use crate::dtype::DType;
use std::fmt;

pub use activation::{geglu, gelu, gelu_erf, silu, swiglu};
pub use elementwise::{add, add_scaled, mul, scale};
pub use exp::{exp_shifted, exp_shifted_scalar, scale_max};
pub use f16kv::{axpy_heads_f16, axpy_heads_f16_scalar, dot_heads_f16, dot_heads_f16_scalar};
pub use matmul::{
    matmul, matmul_with_scratch, matvec, matvec_with_scratch, WeightMatrix, ACT_TILE_BYTES,
};
pub use norm::{rms_norm, rms_norm_in_place};
pub use rope::{rope, rope_qk, RopeParams, RopeStyle};
pub use softmax::softmax;

/// Why a tensor cannot be used by an operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpsError {
    /// The type has no dot-product kernels (see [`DType::is_supported`]).
    UnsupportedType(DType),
    /// A row of `cols` elements is not a whole number of `dtype` blocks.
    PartialBlock { dtype: DType, cols: usize },
    /// The data is not exactly `rows` rows of `cols` elements (`expected` is `None` when
    /// that size overflows `usize`).
    DataSize {
        dtype: DType,
        rows: usize,
        cols: usize,
        expected: Option<usize>,
        actual: usize,
    },
}

impl fmt::Display for OpsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpsError::UnsupportedType(t) => {
                write!(f, "tensor type {t} cannot be used in matrix products")
            }
            OpsError::PartialBlock { dtype, cols } => write!(
                f,
                "a row of {cols} elements is not a whole number of {dtype} blocks of {}",
                dtype.block_size()
            ),
            OpsError::DataSize {
                dtype,
                rows,
                cols,
                expected,
                actual,
            } => match expected {
                Some(e) => write!(
                    f,
                    "{rows}x{cols} {dtype} matrix needs {e} bytes, got {actual}"
                ),
                None => write!(f, "{rows}x{cols} {dtype} matrix size overflows"),
            },
        }
    }
}

impl std::error::Error for OpsError {}
