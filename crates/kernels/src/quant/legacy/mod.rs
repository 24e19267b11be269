//! GGML's 32-element block formats Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 and the activation format
//! Q8_1: byte layouts, kernel lookup and random-block sanitizing.
//!
//! Layouts (little-endian, no padding, byte-exact with GGUF files; learned from the GGML
//! type traits and the `gguf` Python package's `gguf.quants` numpy reference, and checked
//! against it). "f16" is the raw IEEE binary16 bit pattern. Element `j` of a block is
//! `j` in `0..32`; "q" is its stored quant.
//!
//! | type | bytes | fields (offsets)                                  | value of element `j`        |
//! |------|-------|---------------------------------------------------|-----------------------------|
//! | Q4_0 | 18    | d:f16 @0, qs:[u8;16] @2                           | `(q - 8) * d`               |
//! | Q4_1 | 20    | d:f16 @0, m:f16 @2, qs:[u8;16] @4                 | `q * d + m`                 |
//! | Q5_0 | 22    | d:f16 @0, qh:u32 @2, qs:[u8;16] @6                | `(q - 16) * d`              |
//! | Q5_1 | 24    | d:f16 @0, m:f16 @2, qh:u32 @4, qs:[u8;16] @8      | `q * d + m`                 |
//! | Q8_0 | 34    | d:f16 @0, qs:[i8;32] @2                           | `q * d`                     |
//! | Q8_1 | 40    | d:f32 @0, s:f32 @4, qs:[i8;32] @8                 | `q * d`                     |
//!
//! 4-bit quants: byte `qs[i]` (i < 16) holds element `i` in its low nibble and element
//! `i + 16` in its high nibble. 5-bit quants add bit `j` of `qh` as bit 4 of element `j`.
//!
//! Q8_1 is Kaiyuan's own layout for the 40-byte size the `gguf` package reports (GGML's
//! current in-memory Q8_1 uses f16 d and s; Q8_1 never appears in model files). `s` is
//! `d * sum(qs)`, so the Q4_1/Q5_1 dot products can add `m * s` once per block for the
//! `m` part of the weight. Every weight format of this family takes Q8_1 activations:
//! the f32 scale costs nothing to convert in the inner loop (Q8_0's f16 scale cost a
//! conversion per block pair), and the AVX2 kernels treat the `_0` offsets the same way as
//! the `_1` mins, as `(-offset * d) * s` per block (`avx2::offset_term`).
//!
//! Files: `scalar.rs` is the specification (dequantizers, the Q4_0/Q8_0/Q8_1 quantizers
//! and the dot-product formulas); `avx2.rs`, `avx512.rs` and `neon.rs` are the dot products
//! per SIMD level, which (except AVX2's offset correction) compute the same exact
//! per-block integer sums and differ only in float summation order; `avx2_x4.rs` and
//! `avx2_rows4.rs` are the four-row AVX2 kernels, bit-identical to `avx2.rs` per row.
//! The AVX-512 level (`avx512.rs`: four-stream mat-vec; `avx512_panel.rs`: mat-mat over
//! packed sixteen-row weight panels) gives exactly the scalar reference's bits, and uses
//! the scalar `vec_dot` as its one-row kernel; the AMX level (`amx.rs`) is the same with
//! the panels multiplied by AMX tiles;
//! `quantize_avx2.rs` quantizes activations bit-identically to scalar; `golden_tests.rs`
//! checks the scalar code against the `gguf` package.
//!
//! Activation quants are in [-127, 127] (our quantizers clamp; `sanitize_random_blocks`
//! keeps random Q8_0/Q8_1 blocks so). The AVX2 dot products rely on that (sign trick); the
//! scalar, AVX-512 and NEON ones are exact for any bytes.

use crate::dispatch::SimdLevel;
use crate::dtype::DType;
use crate::half::f32_to_f16;
use crate::quant::{
    DequantizeFn, PanelKernels, QuantizeFn, VecDotFn, VecDotRows4Fn, VecDotX4Fn, VecDotX8Fn,
};

/// Bytes per block of each format (the table above).
pub(super) const Q4_0_SIZE: usize = 18;
pub(super) const Q4_1_SIZE: usize = 20;
pub(super) const Q5_0_SIZE: usize = 22;
pub(super) const Q5_1_SIZE: usize = 24;
pub(super) const Q8_0_SIZE: usize = 34;
pub(super) const Q8_1_SIZE: usize = 40;

/// Defines a SIMD module's five safe [`VecDotFn`]s: `$name` checks the lengths with
/// [`check_dot_args`] for `$w`-byte weight and `$a`-byte activation blocks, then calls the
/// module's `#[target_feature]` kernel `$kernel`, passing raw pointers (`pointers`: the
/// kernel reads only the first `nb` blocks) or the slices (`slices`: the kernel indexes
/// with bounds checks).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
macro_rules! safe_vec_dots {
    (pointers: $($name:ident => $kernel:ident, $w:expr, $a:expr;)*) => {$(
        pub(super) fn $name(n: usize, w: &[u8], a: &[u8]) -> f32 {
            let nb = check_dot_args(n, w, $w, a, $a);
            // SAFETY: check_dot_args asserted that both slices hold `nb` blocks, all the
            // kernel reads. This fn is only handed out by `legacy::vec_dot_fn` for the level
            // of the module that defines it, after `quant::vec_dot_fn` checked that the CPU
            // supports that level.
            unsafe { $kernel(nb, w.as_ptr(), a.as_ptr()) }
        }
    )*};
    (slices: $($name:ident => $kernel:ident, $w:expr, $a:expr;)*) => {$(
        pub(super) fn $name(n: usize, w: &[u8], a: &[u8]) -> f32 {
            let nb = check_dot_args(n, w, $w, a, $a);
            // SAFETY: the kernel indexes the slices with bounds checks, so memory safety
            // needs only the CPU feature: this fn is only handed out by `legacy::vec_dot_fn`
            // for the level of the module that defines it, after `quant::vec_dot_fn`
            // checked that the CPU supports that level.
            unsafe { $kernel(nb, w, a) }
        }
    )*};
}

#[cfg(target_arch = "x86_64")]
mod amx;
#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx2_rows4;
#[cfg(target_arch = "x86_64")]
mod avx2_x4;
#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(target_arch = "x86_64")]
mod avx512_panel;
#[cfg(test)]
mod golden_tests;
#[cfg(target_arch = "aarch64")]
mod neon;
#[cfg(target_arch = "x86_64")]
mod quantize_avx2;
mod scalar;

/// Elements per block in every format of this family.
pub(crate) const QK: usize = 32;

pub(in crate::quant) fn dequantize_fn(dtype: DType) -> Option<DequantizeFn> {
    match dtype {
        DType::Q4_0 => Some(scalar::dequantize_q4_0),
        DType::Q4_1 => Some(scalar::dequantize_q4_1),
        DType::Q5_0 => Some(scalar::dequantize_q5_0),
        DType::Q5_1 => Some(scalar::dequantize_q5_1),
        DType::Q8_0 => Some(scalar::dequantize_q8_0),
        DType::Q8_1 => Some(scalar::dequantize_q8_1),
        _ => None,
    }
}

/// Scalar quantizers for Q4_0 (weights), Q8_0 and Q8_1 (activations); AVX2 versions of
/// the activation quantizers (bit-identical to scalar), which AVX-512 runs reach through
/// the fallback order. The caller has checked that the CPU supports `level`.
pub(in crate::quant) fn quantize_fn(dtype: DType, level: SimdLevel) -> Option<QuantizeFn> {
    match (dtype, level) {
        (DType::Q4_0, SimdLevel::Scalar) => Some(scalar::quantize_q4_0),
        (DType::Q8_0, SimdLevel::Scalar) => Some(scalar::quantize_q8_0),
        (DType::Q8_1, SimdLevel::Scalar) => Some(scalar::quantize_q8_1),
        #[cfg(target_arch = "x86_64")]
        (DType::Q8_0, SimdLevel::Avx2) => Some(quantize_avx2::quantize_q8_0),
        #[cfg(target_arch = "x86_64")]
        (DType::Q8_1, SimdLevel::Avx2) => Some(quantize_avx2::quantize_q8_1),
        _ => None,
    }
}

/// The five dot products of module `$m` (each level's module names them alike).
macro_rules! dot_table {
    ($m:ident, $dtype:expr) => {
        match $dtype {
            DType::Q4_0 => Some($m::vec_dot_q4_0_q8_1 as VecDotFn),
            DType::Q4_1 => Some($m::vec_dot_q4_1_q8_1 as VecDotFn),
            DType::Q5_0 => Some($m::vec_dot_q5_0_q8_1 as VecDotFn),
            DType::Q5_1 => Some($m::vec_dot_q5_1_q8_1 as VecDotFn),
            DType::Q8_0 => Some($m::vec_dot_q8_0_q8_1 as VecDotFn),
            _ => None,
        }
    };
}

/// The AVX-512 kernel `$f` (a generic of `avx512`, given any further const arguments
/// `$n`) for `$dtype`'s format, as a `$ty`.
#[cfg(target_arch = "x86_64")]
macro_rules! avx512_table {
    ($dtype:expr, $f:ident, $ty:ty $(, $n:literal)?) => {
        match $dtype {
            DType::Q4_0 => Some(avx512::$f::<{ avx512::Q4_0 } $(, $n)?> as $ty),
            DType::Q4_1 => Some(avx512::$f::<{ avx512::Q4_1 } $(, $n)?> as $ty),
            DType::Q5_0 => Some(avx512::$f::<{ avx512::Q5_0 } $(, $n)?> as $ty),
            DType::Q5_1 => Some(avx512::$f::<{ avx512::Q5_1 } $(, $n)?> as $ty),
            DType::Q8_0 => Some(avx512::$f::<{ avx512::Q8_0 } $(, $n)?> as $ty),
            _ => None,
        }
    };
}

/// The caller ([`crate::quant::vec_dot_fn`]) has already checked that the CPU supports
/// `level`; handing out the SIMD wrappers relies on that.
pub(in crate::quant) fn vec_dot_fn(dtype: DType, level: SimdLevel) -> Option<VecDotFn> {
    match level {
        SimdLevel::Scalar => dot_table!(scalar, dtype),
        #[cfg(target_arch = "x86_64")]
        SimdLevel::Avx2 => dot_table!(avx2, dtype),
        #[cfg(target_arch = "x86_64")]
        // This level's results are the scalar reference's bits (see `avx512`).
        #[cfg(target_arch = "x86_64")]
        SimdLevel::Avx512 | SimdLevel::Amx => dot_table!(scalar, dtype),
        #[cfg(target_arch = "aarch64")]
        SimdLevel::Neon => dot_table!(neon, dtype),
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

/// The AVX2 kernel of `$dtype` for `$n` activation rows (one const-generic kernel per
/// format in `avx2_x4`), as a `$ty`, or `None` for a format without one.
#[cfg(target_arch = "x86_64")]
macro_rules! avx2_xn {
    ($dtype:expr, $n:literal, $ty:ty) => {
        match $dtype {
            DType::Q4_0 => Some(avx2_x4::vec_dot_xn_q4_0_q8_1::<$n> as $ty),
            DType::Q4_1 => Some(avx2_x4::vec_dot_xn_q4_1_q8_1::<$n> as $ty),
            DType::Q5_0 => Some(avx2_x4::vec_dot_xn_q5_0_q8_1::<$n> as $ty),
            DType::Q8_0 => Some(avx2_x4::vec_dot_xn_q8_0_q8_1::<$n> as $ty),
            _ => None,
        }
    };
}

/// The four-activation-row dot product for `dtype` at exactly `level` (AVX2 only; AVX-512
/// has the panel mat-mat instead, [`panel_fn`]), bit-identical per row to that level's
/// single-row kernel. The caller ([`crate::quant::vec_dot_x4_fn`]) has already checked that the CPU supports `level`.
pub(in crate::quant) fn vec_dot_x4_fn(dtype: DType, level: SimdLevel) -> Option<VecDotX4Fn> {
    // Only x86-64 has four-row kernels so far.
    #[cfg(not(target_arch = "x86_64"))]
    let _ = dtype;
    match level {
        #[cfg(target_arch = "x86_64")]
        SimdLevel::Avx2 => avx2_xn!(dtype, 4, VecDotX4Fn),
        _ => None,
    }
}

/// The eight-activation-row dot product for `dtype` at exactly `level` (AVX2 only), bit-identical
/// per row to that level's single-row kernel: the four-row kernels'
/// arithmetic with the weight block's unpacking shared by twice as many rows. The caller
/// ([`crate::quant::vec_dot_x8_fn`]) has already checked that the CPU supports `level`.
pub(in crate::quant) fn vec_dot_x8_fn(dtype: DType, level: SimdLevel) -> Option<VecDotX8Fn> {
    #[cfg(not(target_arch = "x86_64"))]
    let _ = dtype;
    match level {
        #[cfg(target_arch = "x86_64")]
        SimdLevel::Avx2 => avx2_xn!(dtype, 8, VecDotX8Fn),
        _ => None,
    }
}

/// The four-weight-row dot product for `dtype` at exactly `level` (AVX2 and AVX-512),
/// bit-identical per row to that level's single-row kernel. The caller
/// ([`crate::quant::vec_dot_rows4_fn`]) has already checked that the CPU supports `level`.
pub(in crate::quant) fn vec_dot_rows4_fn(dtype: DType, level: SimdLevel) -> Option<VecDotRows4Fn> {
    #[cfg(not(target_arch = "x86_64"))]
    let _ = dtype;
    match level {
        #[cfg(target_arch = "x86_64")]
        SimdLevel::Avx2 => match dtype {
            DType::Q4_0 => Some(avx2_rows4::vec_dot_rows4_q4_0_q8_1 as VecDotRows4Fn),
            DType::Q4_1 => Some(avx2_rows4::vec_dot_rows4_q4_1_q8_1 as VecDotRows4Fn),
            DType::Q5_0 => Some(avx2_rows4::vec_dot_rows4_q5_0_q8_1 as VecDotRows4Fn),
            DType::Q8_0 => Some(avx2_rows4::vec_dot_rows4_q8_0_q8_1 as VecDotRows4Fn),
            _ => None,
        },
        #[cfg(target_arch = "x86_64")]
        SimdLevel::Avx512 | SimdLevel::Amx => {
            avx512_table!(dtype, vec_dot_rows4, VecDotRows4Fn)
        }
        _ => None,
    }
}

/// The packed-panel mat-mat for `dtype` at exactly `level` (AVX-512 and AMX), bit-identical
/// per row to that level's single-row kernel (both are the scalar reference's bits). The
/// caller ([`crate::quant::panel_fn`]) has already checked that the CPU supports `level`.
pub(in crate::quant) fn panel_fn(dtype: DType, level: SimdLevel) -> Option<PanelKernels> {
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (dtype, level);
    #[cfg(target_arch = "x86_64")]
    if matches!(level, SimdLevel::Avx512 | SimdLevel::Amx) {
        // The same panels at both levels; AMX multiplies them with tiles.
        macro_rules! panel {
            ($f:ident) => {
                Some(PanelKernels {
                    pack: avx512_panel::pack::<{ avx512::$f }>,
                    act_sums: avx512_panel::act_sums,
                    dot: if level == SimdLevel::Amx {
                        amx::dot::<{ avx512::$f }>
                    } else {
                        avx512_panel::dot::<{ avx512::$f }>
                    },
                })
            };
        }
        return match dtype {
            DType::Q4_0 => panel!(Q4_0),
            DType::Q4_1 => panel!(Q4_1),
            DType::Q5_0 => panel!(Q5_0),
            DType::Q5_1 => panel!(Q5_1),
            DType::Q8_0 => panel!(Q8_0),
            _ => None,
        };
    }
    None
}

/// Checks the slice lengths every dot product in this family relies on: `n` is whole
/// blocks and both rows hold at least `n` elements. Panics on a caller bug.
#[inline]
pub(crate) fn check_dot_args(n: usize, w: &[u8], w_size: usize, a: &[u8], a_size: usize) -> usize {
    assert!(
        n.is_multiple_of(QK),
        "legacy dot: n = {n} is not whole 32-element blocks"
    );
    let nb = n / QK;
    assert!(
        w.len() >= nb * w_size && a.len() >= nb * a_size,
        "legacy dot: rows too short for n = {n} (w {} bytes, a {} bytes)",
        w.len(),
        a.len()
    );
    nb
}

/// Overwrites the scale fields of random bytes `blocks` of `dtype` with finite, sane
/// values; returns false if `dtype` is not in this family. For tests and benchmarks.
///
/// Scales `d` (and mins `m`) get a random sign and a magnitude in [1e-4, 0.1]; quants stay
/// random, except that an i8 quant of -128 becomes -127 in Q8_0/Q8_1 blocks (GGML's and
/// our quantizers never produce -128, and the SIMD kernels assume activation quants lie in
/// [-127, 127]). Q8_1 gets a positive f32 `d` and the matching `s = d * sum(qs)`.
pub(in crate::quant) fn sanitize_random_blocks(
    dtype: DType,
    blocks: &mut [u8],
    rng: &mut crate::quant::testing::Rng,
) -> bool {
    let scale = |rng: &mut crate::quant::testing::Rng| {
        let mag = rng.uniform(1e-4, 0.1);
        let v = if rng.next_u32() & 1 == 1 { -mag } else { mag };
        f32_to_f16(v).to_le_bytes()
    };
    let size = dtype.type_size();
    match dtype {
        DType::Q4_0 | DType::Q5_0 => {
            for b in blocks.chunks_exact_mut(size) {
                b[0..2].copy_from_slice(&scale(rng));
            }
        }
        DType::Q4_1 | DType::Q5_1 => {
            for b in blocks.chunks_exact_mut(size) {
                b[0..2].copy_from_slice(&scale(rng));
                b[2..4].copy_from_slice(&scale(rng));
            }
        }
        DType::Q8_0 => {
            for b in blocks.chunks_exact_mut(size) {
                b[0..2].copy_from_slice(&scale(rng));
                for q in &mut b[2..] {
                    if *q == 0x80 {
                        *q = 0x81;
                    }
                }
            }
        }
        DType::Q8_1 => {
            for b in blocks.chunks_exact_mut(size) {
                let d = rng.uniform(1e-4, 0.1);
                let mut sum = 0i32;
                for q in &mut b[8..] {
                    if *q == 0x80 {
                        *q = 0x81;
                    }
                    sum += *q as i8 as i32;
                }
                b[0..4].copy_from_slice(&d.to_le_bytes());
                b[4..8].copy_from_slice(&(d * sum as f32).to_le_bytes());
            }
        }
        _ => return false,
    }
    true
}
