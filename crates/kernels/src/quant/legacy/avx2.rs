//! AVX2 + FMA + F16C dot products for the legacy formats (`SimdLevel::Avx2`): the shared
//! kernels of `x86_common.rs` with byte products summed by `vpmaddubsw` + `vpmaddwd`.

use std::arch::x86_64::*;

/// Eight i32 sums of four `q[k] * y[k]` each, `q` unsigned bytes. Exact while
/// `2 * q * 128 <= 32767` (the i16 pair sum of `vpmaddubsw` saturates), i.e. `q <= 127`;
/// the legacy quants are at most 31.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn dot_u8_i8(q: __m256i, y: __m256i) -> __m256i {
    _mm256_madd_epi16(_mm256_maddubs_epi16(q, y), _mm256_set1_epi16(1))
}

/// Eight i32 sums of four `x[k] * y[k]` each, both signed: `|x| * (y * sign(x))`.
/// `|x|` fits an unsigned byte even for -128; `y` must not be -128 (negating it wraps),
/// which holds for activations from Kaiyuan's quantizers (|q| <= 127).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn dot_i8_i8(x: __m256i, y: __m256i) -> __m256i {
    dot_u8_i8(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x))
}

legacy_x86_kernels!("avx2,fma,f16c");
