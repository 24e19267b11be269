//! Kaiyuan's numeric layer: GGML tensor types, block (de)quantization, SIMD dot-product
//! kernels chosen at run time, the worker pool and the tensor ops built on them.
//!
//! Nothing here knows about files, models or requests.

pub mod dispatch;
pub mod dtype;
pub mod half;
pub mod hugepage;
pub mod ops;
pub mod probe;
pub mod quant;
pub mod threads;

pub use dispatch::{dots_forced_to_level, simd_level, SimdLevel};
pub use dtype::DType;
