//! AVX-512 (F/BW/VL/DQ + VNNI) dot products for the legacy formats
//! (`SimdLevel::Avx512`): the shared kernels of `x86_common.rs` with byte products summed
//! by `vpdpbusd` on 256-bit vectors, which needs no i16 step and is exact for any bytes.

use std::arch::x86_64::*;

/// Eight i32 sums of four `q[k] * y[k]` each, `q` unsigned bytes; exact for all inputs.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
fn dot_u8_i8(q: __m256i, y: __m256i) -> __m256i {
    _mm256_dpbusd_epi32(_mm256_setzero_si256(), q, y)
}

/// Eight i32 sums of four `x[k] * y[k]` each, both signed, exact for all inputs:
/// `Σ (x + 128) * y - 128 * Σ y`, where `x + 128` is `x ^ 0x80` read unsigned.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
fn dot_i8_i8(x: __m256i, y: __m256i) -> __m256i {
    let bias = _mm256_set1_epi8(-128);
    let biased = dot_u8_i8(_mm256_xor_si256(x, bias), y);
    _mm256_sub_epi32(biased, dot_u8_i8(bias, y))
}

legacy_x86_kernels!("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni");
