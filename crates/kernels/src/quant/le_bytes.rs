//! Little-endian field reads at byte offsets inside GGUF blocks (no alignment assumed),
//! shared by the legacy and K-quant block code. Out-of-range offsets panic (slice
//! indexing), so these are safe on any input.

use crate::half::f16_to_f32;

/// The f16 at byte offset `off`, widened exactly to f32.
#[inline]
pub(crate) fn f16_at(b: &[u8], off: usize) -> f32 {
    f16_to_f32(u16::from_le_bytes([b[off], b[off + 1]]))
}

/// The f32 at byte offset `off`.
#[inline]
pub(crate) fn f32_at(b: &[u8], off: usize) -> f32 {
    f32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

/// The u32 at byte offset `off`.
#[inline]
pub(crate) fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

/// The i16 at byte offset `off`.
#[inline]
pub(crate) fn i16_at(b: &[u8], off: usize) -> i16 {
    i16::from_le_bytes([b[off], b[off + 1]])
}
