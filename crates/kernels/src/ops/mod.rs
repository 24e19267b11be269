//! Tensor operations built on the block kernels: matrix products and the element-wise
//! operations a transformer needs.
//!
//! (Skeleton: filled in by the ops work.)
