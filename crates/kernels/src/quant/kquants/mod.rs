//! K-quant super-block formats Q2_K, Q3_K, Q4_K, Q5_K, Q6_K and the activation format Q8_K:
//! dequantization, Q8_K quantization, and weight·Q8_K dot products per SIMD level.
//!
//! Layouts ([`layout`]) follow GGML's K-quant blocks as read by the `gguf` Python
//! package; the scalar dot products ([`dot_scalar`]) are the specification that the
//! AVX2, AVX-512 and NEON kernels are tested against (`tests/kquants_simd.rs`).

use crate::dispatch::SimdLevel;
use crate::dtype::DType;
use crate::half::f32_to_f16;
use crate::quant::{DequantizeFn, PanelKernels, QuantizeFn, VecDotFn, VecDotRows4Fn, VecDotX4Fn};

/// Defines a SIMD module's safe [`VecDotFn`]s: `$name` checks the lengths
/// ([`layout::check_dot_args`]) and calls the module's `#[target_feature]` kernel
/// `$kernel(nb, w, a)` on `$bytes`-byte weight blocks.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
macro_rules! safe_vec_dots {
    ($($name:ident => $kernel:ident, $bytes:expr;)*) => {$(
        pub(super) fn $name(n: usize, w: &[u8], a: &[u8]) -> f32 {
            let nb = check_dot_args(n, w, $bytes, a);
            // SAFETY: the kernel is a safe fn but for its `#[target_feature]` (its own
            // unchecked loads stay inside the first `nb` blocks, which check_dot_args has
            // just confirmed both rows hold). This fn is only handed out by
            // `kquants::vec_dot_fn` for the level of the module that defines it, after
            // `quant::vec_dot_fn` confirmed the CPU supports that level.
            unsafe { $kernel(nb, w, a) }
        }
    )*};
}

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx2_x4;
#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(target_arch = "x86_64")]
mod avx512_panel;
mod dot_scalar;
mod layout;
#[cfg(target_arch = "aarch64")]
mod neon;
mod scalar;

#[cfg(test)]
mod golden_tests;

use layout::*;

pub(in crate::quant) fn dequantize_fn(dtype: DType) -> Option<DequantizeFn> {
    match dtype {
        DType::Q2_K => Some(scalar::dequantize_q2_k),
        DType::Q3_K => Some(scalar::dequantize_q3_k),
        DType::Q4_K => Some(scalar::dequantize_q4_k),
        DType::Q5_K => Some(scalar::dequantize_q5_k),
        DType::Q6_K => Some(scalar::dequantize_q6_k),
        DType::Q8_K => Some(scalar::dequantize_q8_k),
        _ => None,
    }
}

pub(in crate::quant) fn quantize_fn(dtype: DType, level: SimdLevel) -> Option<QuantizeFn> {
    match (dtype, level) {
        (DType::Q8_K, SimdLevel::Scalar) => Some(scalar::quantize_q8_k),
        #[cfg(target_arch = "x86_64")]
        (DType::Q8_K, SimdLevel::Avx2) => Some(avx2::quantize_q8_k),
        _ => None,
    }
}

/// The caller (`quant::vec_dot_fn`) has checked that this CPU supports `level`.
pub(in crate::quant) fn vec_dot_fn(dtype: DType, level: SimdLevel) -> Option<VecDotFn> {
    match (dtype, level) {
        (DType::Q2_K, SimdLevel::Scalar) => Some(dot_scalar::vec_dot_q2_k),
        (DType::Q3_K, SimdLevel::Scalar) => Some(dot_scalar::vec_dot_q3_k),
        (DType::Q4_K, SimdLevel::Scalar) => Some(dot_scalar::vec_dot_q4_k),
        (DType::Q5_K, SimdLevel::Scalar) => Some(dot_scalar::vec_dot_q5_k),
        (DType::Q6_K, SimdLevel::Scalar) => Some(dot_scalar::vec_dot_q6_k),
        #[cfg(target_arch = "x86_64")]
        (DType::Q2_K, SimdLevel::Avx2) => Some(avx2::vec_dot_q2_k),
        #[cfg(target_arch = "x86_64")]
        (DType::Q3_K, SimdLevel::Avx2) => Some(avx2::vec_dot_q3_k),
        #[cfg(target_arch = "x86_64")]
        (DType::Q4_K, SimdLevel::Avx2) => Some(avx2::vec_dot_q4_k),
        #[cfg(target_arch = "x86_64")]
        (DType::Q5_K, SimdLevel::Avx2) => Some(avx2::vec_dot_q5_k),
        #[cfg(target_arch = "x86_64")]
        (DType::Q6_K, SimdLevel::Avx2) => Some(avx2::vec_dot_q6_k),
        #[cfg(target_arch = "x86_64")]
        (DType::Q2_K, SimdLevel::Avx512) => Some(avx512::vec_dot_q2_k),
        #[cfg(target_arch = "x86_64")]
        (DType::Q3_K, SimdLevel::Avx512) => Some(avx512::vec_dot_q3_k),
        #[cfg(target_arch = "x86_64")]
        (DType::Q4_K, SimdLevel::Avx512) => Some(avx512::vec_dot_q4_k),
        #[cfg(target_arch = "x86_64")]
        (DType::Q5_K, SimdLevel::Avx512) => Some(avx512::vec_dot_q5_k),
        #[cfg(target_arch = "x86_64")]
        (DType::Q6_K, SimdLevel::Avx512) => Some(avx512::vec_dot_q6_k),
        #[cfg(target_arch = "aarch64")]
        (DType::Q2_K, SimdLevel::Neon) => Some(neon::vec_dot_q2_k),
        #[cfg(target_arch = "aarch64")]
        (DType::Q3_K, SimdLevel::Neon) => Some(neon::vec_dot_q3_k),
        #[cfg(target_arch = "aarch64")]
        (DType::Q4_K, SimdLevel::Neon) => Some(neon::vec_dot_q4_k),
        #[cfg(target_arch = "aarch64")]
        (DType::Q5_K, SimdLevel::Neon) => Some(neon::vec_dot_q5_k),
        #[cfg(target_arch = "aarch64")]
        (DType::Q6_K, SimdLevel::Neon) => Some(neon::vec_dot_q6_k),
        _ => None,
    }
}

/// The four-activation-row dot product for `dtype` at exactly `level` (AVX2 Q4_K, Q5_K
/// and Q6_K so far), bit-identical per row to that level's single-row kernel. The caller
/// ([`crate::quant::vec_dot_x4_fn`]) has checked that this CPU supports `level`.
pub(in crate::quant) fn vec_dot_x4_fn(dtype: DType, level: SimdLevel) -> Option<VecDotX4Fn> {
    // Only x86-64 has four-row kernels so far.
    #[cfg(not(target_arch = "x86_64"))]
    let _ = dtype;
    match level {
        #[cfg(target_arch = "x86_64")]
        SimdLevel::Avx2 => match dtype {
            DType::Q4_K => Some(avx2_x4::vec_dot_x4_q4_k_q8_k as VecDotX4Fn),
            DType::Q5_K => Some(avx2_x4::vec_dot_x4_q5_k_q8_k as VecDotX4Fn),
            DType::Q6_K => Some(avx2_x4::vec_dot_x4_q6_k_q8_k as VecDotX4Fn),
            _ => None,
        },
        _ => None,
    }
}

/// The four-stream mat-vec of `dtype` at exactly `level` (AVX-512 Q4_K, Q5_K and Q6_K),
/// bit-identical per row to that level's single-row kernel and to the scalar reference. The
/// caller ([`crate::quant::vec_dot_rows4_fn`]) has checked that this CPU supports `level`.
pub(in crate::quant) fn vec_dot_rows4_fn(dtype: DType, level: SimdLevel) -> Option<VecDotRows4Fn> {
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (dtype, level);
    #[cfg(target_arch = "x86_64")]
    if level == SimdLevel::Avx512 {
        return match dtype {
            DType::Q4_K => Some(avx512::vec_dot_rows4_q4_k as VecDotRows4Fn),
            DType::Q5_K => Some(avx512::vec_dot_rows4_q5_k as VecDotRows4Fn),
            DType::Q6_K => Some(avx512::vec_dot_rows4_q6_k as VecDotRows4Fn),
            _ => None,
        };
    }
    None
}

/// The packed-panel mat-mat of `dtype` at exactly `level` (AVX-512 VNNI Q4_K, Q5_K and
/// Q6_K), bit-identical to that level's single-row kernel and to the scalar reference. The
/// caller ([`crate::quant::panel_fn`]) has checked that this CPU supports `level`.
pub(in crate::quant) fn panel_fn(dtype: DType, level: SimdLevel) -> Option<PanelKernels> {
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (dtype, level);
    #[cfg(target_arch = "x86_64")]
    if level == SimdLevel::Avx512 {
        macro_rules! panel {
            ($f:ident) => {
                Some(PanelKernels {
                    pack: avx512_panel::pack::<{ avx512_panel::$f }>,
                    act_sums: avx512_panel::act_sums,
                    dot: avx512_panel::dot::<{ avx512_panel::$f }>,
                })
            };
        }
        return match dtype {
            DType::Q4_K => panel!(Q4K),
            DType::Q5_K => panel!(Q5K),
            DType::Q6_K => panel!(Q6K),
            _ => None,
        };
    }
    None
}

/// Overwrites the scale fields of random bytes `blocks` of `dtype` with finite, sane
/// values; returns false if `dtype` is not in this family. For tests and benchmarks.
///
/// Weight formats get f16 `d` (and `dmin`) uniform in [1e-4, 0.05); quants and packed
/// sub-block scales stay random. Q8_K gets an f32 `d` in the same range and `bsums`
/// recomputed from its random quants, so it is a consistent activation block.
pub(in crate::quant) fn sanitize_random_blocks(
    dtype: DType,
    blocks: &mut [u8],
    rng: &mut crate::quant::testing::Rng,
) -> bool {
    // (block bytes, offset of d, offset of dmin)
    let (size, d_off, dmin_off) = match dtype {
        DType::Q2_K => (Q2K_BYTES, Q2K_D, Some(Q2K_DMIN)),
        DType::Q3_K => (Q3K_BYTES, Q3K_D, None),
        DType::Q4_K => (Q4K_BYTES, Q4K_D, Some(Q4K_DMIN)),
        DType::Q5_K => (Q5K_BYTES, Q5K_D, Some(Q5K_DMIN)),
        DType::Q6_K => (Q6K_BYTES, Q6K_D, None),
        DType::Q8_K => {
            for b in blocks.chunks_exact_mut(Q8K_BYTES) {
                let d = rng.uniform(1e-4, 0.05);
                b[Q8K_D..Q8K_D + 4].copy_from_slice(&d.to_le_bytes());
                fill_q8k_bsums(b);
            }
            return true;
        }
        _ => return false,
    };
    for b in blocks.chunks_exact_mut(size) {
        let d = f32_to_f16(rng.uniform(1e-4, 0.05));
        b[d_off..d_off + 2].copy_from_slice(&d.to_le_bytes());
        if let Some(off) = dmin_off {
            let dmin = f32_to_f16(rng.uniform(1e-4, 0.05));
            b[off..off + 2].copy_from_slice(&dmin.to_le_bytes());
        }
    }
    true
}
