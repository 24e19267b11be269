//! F32, F16 and BF16 rows: dequantization (conversion to f32), quantization from f32,
//! and dot products against an f32 activation row: the scalar reference (plain
//! left-to-right f32 sum of f32 products) and AVX2, AVX-512 and NEON versions, which
//! widen the weights exactly to f32 and differ from the reference only by summation
//! order and fused multiply-adds (several vector accumulators, then a horizontal sum).

use crate::dispatch::SimdLevel;
use crate::dtype::DType;
use crate::half::{bf16_to_f32, f16_to_f32, f32_to_bf16, f32_to_f16};
use crate::quant::{DequantizeFn, QuantizeFn, VecDotFn};

pub(super) fn dequantize_fn(dtype: DType) -> Option<DequantizeFn> {
    match dtype {
        DType::F32 => Some(dequantize_f32),
        DType::F16 => Some(dequantize_f16),
        DType::BF16 => Some(dequantize_bf16),
        _ => None,
    }
}

pub(super) fn quantize_fn(dtype: DType, level: SimdLevel) -> Option<QuantizeFn> {
    match (dtype, level) {
        (DType::F32, SimdLevel::Scalar) => Some(quantize_f32),
        (DType::F16, SimdLevel::Scalar) => Some(quantize_f16),
        (DType::BF16, SimdLevel::Scalar) => Some(quantize_bf16),
        _ => None,
    }
}

/// The caller ([`crate::quant::vec_dot_fn`]) has already checked that the CPU supports
/// `level`; handing out the SIMD wrappers relies on that.
pub(super) fn vec_dot_fn(dtype: DType, level: SimdLevel) -> Option<VecDotFn> {
    match (dtype, level) {
        (DType::F32, SimdLevel::Scalar) => Some(scalar::vec_dot_f32),
        (DType::F16, SimdLevel::Scalar) => Some(scalar::vec_dot_f16),
        (DType::BF16, SimdLevel::Scalar) => Some(scalar::vec_dot_bf16),
        #[cfg(target_arch = "x86_64")]
        (DType::F32, SimdLevel::Avx2) => Some(avx2::vec_dot_f32),
        #[cfg(target_arch = "x86_64")]
        (DType::F16, SimdLevel::Avx2) => Some(avx2::vec_dot_f16),
        #[cfg(target_arch = "x86_64")]
        (DType::BF16, SimdLevel::Avx2) => Some(avx2::vec_dot_bf16),
        #[cfg(target_arch = "x86_64")]
        (DType::F32, SimdLevel::Avx512) => Some(avx512::vec_dot_f32),
        #[cfg(target_arch = "x86_64")]
        (DType::F16, SimdLevel::Avx512) => Some(avx512::vec_dot_f16),
        #[cfg(target_arch = "x86_64")]
        (DType::BF16, SimdLevel::Avx512) => Some(avx512::vec_dot_bf16),
        #[cfg(target_arch = "aarch64")]
        (DType::F32, SimdLevel::Neon) => Some(neon::vec_dot_f32),
        #[cfg(target_arch = "aarch64")]
        (DType::F16, SimdLevel::Neon) => Some(neon::vec_dot_f16),
        #[cfg(target_arch = "aarch64")]
        (DType::BF16, SimdLevel::Neon) => Some(neon::vec_dot_bf16),
        _ => None,
    }
}

/// Asserts that `w` holds `n` weights of `w_size` bytes and `a` holds `n` f32s.
#[inline]
fn check_float_dot(n: usize, w: &[u8], w_size: usize, a: &[u8]) {
    assert!(
        w.len() >= n * w_size && a.len() >= n * 4,
        "float dot: rows too short for n = {n} (w {} bytes, a {} bytes)",
        w.len(),
        a.len()
    );
}

#[inline]
fn f32_at(b: &[u8], i: usize) -> f32 {
    f32::from_le_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]])
}

#[inline]
fn u16_at(b: &[u8], i: usize) -> u16 {
    u16::from_le_bytes([b[2 * i], b[2 * i + 1]])
}

fn dequantize_f32(src: &[u8], dst: &mut [f32]) {
    assert_eq!(src.len(), dst.len() * 4);
    for (i, d) in dst.iter_mut().enumerate() {
        *d = f32_at(src, i);
    }
}

fn dequantize_f16(src: &[u8], dst: &mut [f32]) {
    assert_eq!(src.len(), dst.len() * 2);
    for (i, d) in dst.iter_mut().enumerate() {
        *d = f16_to_f32(u16_at(src, i));
    }
}

fn dequantize_bf16(src: &[u8], dst: &mut [f32]) {
    assert_eq!(src.len(), dst.len() * 2);
    for (i, d) in dst.iter_mut().enumerate() {
        *d = bf16_to_f32(u16_at(src, i));
    }
}

fn quantize_f32(src: &[f32], dst: &mut [u8]) {
    assert_eq!(dst.len(), src.len() * 4);
    for (s, d) in src.iter().zip(dst.chunks_exact_mut(4)) {
        d.copy_from_slice(&s.to_le_bytes());
    }
}

fn quantize_f16(src: &[f32], dst: &mut [u8]) {
    assert_eq!(dst.len(), src.len() * 2);
    for (s, d) in src.iter().zip(dst.chunks_exact_mut(2)) {
        d.copy_from_slice(&f32_to_f16(*s).to_le_bytes());
    }
}

fn quantize_bf16(src: &[f32], dst: &mut [u8]) {
    assert_eq!(dst.len(), src.len() * 2);
    for (s, d) in src.iter().zip(dst.chunks_exact_mut(2)) {
        d.copy_from_slice(&f32_to_bf16(*s).to_le_bytes());
    }
}

/// Scalar references: plain left-to-right f32 accumulation.
mod scalar {
    use super::*;

    pub(super) fn vec_dot_f32(n: usize, w: &[u8], a: &[u8]) -> f32 {
        check_float_dot(n, w, 4, a);
        (0..n).map(|i| f32_at(w, i) * f32_at(a, i)).sum()
    }

    pub(super) fn vec_dot_f16(n: usize, w: &[u8], a: &[u8]) -> f32 {
        check_float_dot(n, w, 2, a);
        (0..n)
            .map(|i| f16_to_f32(u16_at(w, i)) * f32_at(a, i))
            .sum()
    }

    pub(super) fn vec_dot_bf16(n: usize, w: &[u8], a: &[u8]) -> f32 {
        check_float_dot(n, w, 2, a);
        (0..n)
            .map(|i| bf16_to_f32(u16_at(w, i)) * f32_at(a, i))
            .sum()
    }
}

/// Weight encodings of the SIMD kernels' `KIND` parameter.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
const WEIGHTS_F32: u8 = 0;
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
const WEIGHTS_F16: u8 = 1;
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
const WEIGHTS_BF16: u8 = 2;

/// Adds `w[k] * a[k]` for `k` in `i..n` to `sum`, one element at a time, left to right:
/// the scalar tail of the AVX2 and NEON kernels (plain f32 multiply and add, no FMA).
///
/// # Safety
/// `w` holds `n` weights of kind `KIND` and `a` holds `n` f32s (no alignment needed).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[inline]
unsafe fn scalar_tail<const KIND: u8>(
    mut sum: f32,
    mut i: usize,
    n: usize,
    w: *const u8,
    a: *const f32,
) -> f32 {
    while i < n {
        // SAFETY: i < n, inside both rows (caller contract).
        let (wi, ai) = unsafe {
            let wi = match KIND {
                WEIGHTS_F32 => (w as *const f32).add(i).read_unaligned(),
                WEIGHTS_F16 => f16_to_f32((w as *const u16).add(i).read_unaligned()),
                _ => bf16_to_f32((w as *const u16).add(i).read_unaligned()),
            };
            (wi, a.add(i).read_unaligned())
        };
        sum += wi * ai;
        i += 1;
    }
    sum
}

/// Defines the safe [`VecDotFn`] wrapper `$name` around `unsafe fn $kernel(n, w, a)` (the
/// enclosing module's `dot::<KIND>`), for weights of `$w_size` bytes each.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
macro_rules! float_dot_wrapper {
    ($name:ident, $kernel:expr, $w_size:literal) => {
        pub(super) fn $name(n: usize, w: &[u8], a: &[u8]) -> f32 {
            check_float_dot(n, w, $w_size, a);
            // SAFETY: check_float_dot asserted that both rows hold `n` elements, which is
            // all the kernel reads. This fn is only handed out by `vec_dot_fn` for this
            // module's level, after `quant::vec_dot_fn` checked the CPU supports it.
            unsafe { $kernel(n, w.as_ptr(), a.as_ptr() as *const f32) }
        }
    };
}

/// AVX2 + FMA + F16C: four 8-lane accumulators (32 elements per iteration), then 8-lane
/// steps, then a scalar tail.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{check_float_dot, scalar_tail, WEIGHTS_BF16, WEIGHTS_F16, WEIGHTS_F32};
    use crate::quant::x86::hsum_ps;
    use std::arch::x86_64::*;

    /// Eight weights at element `i` widened to f32.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn load8<const KIND: u8>(w: *const u8, i: usize) -> __m256 {
        // SAFETY: the caller guarantees elements i..i + 8 are inside the row.
        unsafe {
            match KIND {
                WEIGHTS_F32 => _mm256_loadu_ps((w as *const f32).add(i)),
                WEIGHTS_F16 => _mm256_cvtph_ps(_mm_loadu_si128(w.add(2 * i) as *const __m128i)),
                _ => {
                    let h = _mm_loadu_si128(w.add(2 * i) as *const __m128i);
                    _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16))
                }
            }
        }
    }

    /// # Safety
    /// `w` holds `n` weights of kind `KIND`, `a` holds `n` f32s; the CPU has AVX2/FMA/F16C.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn dot<const KIND: u8>(n: usize, w: *const u8, a: *const f32) -> f32 {
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        // SAFETY: every index read in this block is < n, the caller's row length.
        unsafe {
            while i + 32 <= n {
                for (k, acc) in acc.iter_mut().enumerate() {
                    let x = load8::<KIND>(w, i + 8 * k);
                    *acc = _mm256_fmadd_ps(x, _mm256_loadu_ps(a.add(i + 8 * k)), *acc);
                }
                i += 32;
            }
            while i + 8 <= n {
                acc[0] = _mm256_fmadd_ps(load8::<KIND>(w, i), _mm256_loadu_ps(a.add(i)), acc[0]);
                i += 8;
            }
        }
        let v = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
        let sum = hsum_ps(v);
        // SAFETY: forwarded caller contract; `i <= n`.
        unsafe { scalar_tail::<KIND>(sum, i, n, w, a) }
    }

    float_dot_wrapper!(vec_dot_f32, dot::<WEIGHTS_F32>, 4);
    float_dot_wrapper!(vec_dot_f16, dot::<WEIGHTS_F16>, 2);
    float_dot_wrapper!(vec_dot_bf16, dot::<WEIGHTS_BF16>, 2);
}

/// AVX-512: four 16-lane accumulators (64 elements per iteration), then 16-lane steps,
/// then one masked step for the last `n % 16` elements (masked-off lanes are not read).
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{check_float_dot, WEIGHTS_BF16, WEIGHTS_F16, WEIGHTS_F32};
    use std::arch::x86_64::*;

    /// Weights `i..i + 16` (lanes beyond `mask` read as zero and not touched in memory).
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")]
    unsafe fn load16<const KIND: u8>(w: *const u8, i: usize, mask: __mmask16) -> __m512 {
        // SAFETY: the caller guarantees the unmasked elements are inside the row.
        unsafe {
            match KIND {
                WEIGHTS_F32 => _mm512_maskz_loadu_ps(mask, (w as *const f32).add(i)),
                WEIGHTS_F16 => {
                    _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask, w.add(2 * i) as *const i16))
                }
                _ => {
                    let h = _mm256_maskz_loadu_epi16(mask, w.add(2 * i) as *const i16);
                    _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16))
                }
            }
        }
    }

    /// # Safety
    /// `w` holds `n` weights of kind `KIND`, `a` holds `n` f32s; the CPU has AVX-512.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")]
    unsafe fn dot<const KIND: u8>(n: usize, w: *const u8, a: *const f32) -> f32 {
        let mut acc = [_mm512_setzero_ps(); 4];
        let mut i = 0;
        // SAFETY: every unmasked index read in this block is < n, the row length.
        unsafe {
            while i + 64 <= n {
                for (k, acc) in acc.iter_mut().enumerate() {
                    let x = load16::<KIND>(w, i + 16 * k, !0);
                    *acc = _mm512_fmadd_ps(x, _mm512_loadu_ps(a.add(i + 16 * k)), *acc);
                }
                i += 64;
            }
            while i + 16 <= n {
                let x = load16::<KIND>(w, i, !0);
                acc[0] = _mm512_fmadd_ps(x, _mm512_loadu_ps(a.add(i)), acc[0]);
                i += 16;
            }
            if i < n {
                let mask: __mmask16 = (1u16 << (n - i)) - 1;
                let x = load16::<KIND>(w, i, mask);
                let y = _mm512_maskz_loadu_ps(mask, a.add(i));
                acc[1] = _mm512_fmadd_ps(x, y, acc[1]);
            }
        }
        let v = _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3]));
        _mm512_reduce_add_ps(v)
    }

    float_dot_wrapper!(vec_dot_f32, dot::<WEIGHTS_F32>, 4);
    float_dot_wrapper!(vec_dot_f16, dot::<WEIGHTS_F16>, 2);
    float_dot_wrapper!(vec_dot_bf16, dot::<WEIGHTS_BF16>, 2);
}

/// NEON: four 4-lane accumulators (16 elements per iteration), then 4-lane steps, then a
/// scalar tail. f16 is widened with `fcvtl` (base ARMv8 Advanced SIMD) through inline asm,
/// since Rust's `float16x4_t` intrinsics are not stable.
#[cfg(target_arch = "aarch64")]
mod neon {
    use super::{check_float_dot, scalar_tail, WEIGHTS_BF16, WEIGHTS_F16, WEIGHTS_F32};
    use std::arch::aarch64::*;

    #[inline]
    #[target_feature(enable = "neon")]
    unsafe fn load4<const KIND: u8>(w: *const u8, i: usize) -> float32x4_t {
        // SAFETY: the caller guarantees elements i..i + 4 are inside the row.
        unsafe {
            match KIND {
                WEIGHTS_F32 => vld1q_f32((w as *const f32).add(i)),
                WEIGHTS_F16 => {
                    let h = vld1_u16((w as *const u16).add(i));
                    let out: float32x4_t;
                    std::arch::asm!(
                        "fcvtl {out:v}.4s, {h:v}.4h",
                        out = lateout(vreg) out,
                        h = in(vreg) h,
                        options(pure, nomem, nostack)
                    );
                    out
                }
                _ => {
                    let h = vld1_u16((w as *const u16).add(i));
                    vreinterpretq_f32_u32(vshll_n_u16::<16>(h))
                }
            }
        }
    }

    /// # Safety
    /// `w` holds `n` weights of kind `KIND`, `a` holds `n` f32s; the CPU has NEON.
    #[inline]
    #[target_feature(enable = "neon")]
    unsafe fn dot<const KIND: u8>(n: usize, w: *const u8, a: *const f32) -> f32 {
        let mut acc = [vdupq_n_f32(0.0); 4];
        let mut i = 0;
        // SAFETY: every index read in this block is < n, the caller's row length.
        unsafe {
            while i + 16 <= n {
                for (k, acc) in acc.iter_mut().enumerate() {
                    let x = load4::<KIND>(w, i + 4 * k);
                    *acc = vfmaq_f32(*acc, x, vld1q_f32(a.add(i + 4 * k)));
                }
                i += 16;
            }
            while i + 4 <= n {
                acc[0] = vfmaq_f32(acc[0], load4::<KIND>(w, i), vld1q_f32(a.add(i)));
                i += 4;
            }
        }
        let v = vaddq_f32(vaddq_f32(acc[0], acc[1]), vaddq_f32(acc[2], acc[3]));
        // SAFETY: forwarded caller contract; `i <= n`.
        unsafe { scalar_tail::<KIND>(vaddvq_f32(v), i, n, w, a) }
    }

    float_dot_wrapper!(vec_dot_f32, dot::<WEIGHTS_F32>, 4);
    float_dot_wrapper!(vec_dot_f16, dot::<WEIGHTS_F16>, 2);
    float_dot_wrapper!(vec_dot_bf16, dot::<WEIGHTS_BF16>, 2);
}
