//! AVX2 + FMA + F16C dot products for the legacy formats (`SimdLevel::Avx2`).
//!
//! Technique (the usual one for GGML-style blocks, written from the layout): each block's
//! 32 weight quants are unpacked into one 256-bit vector of bytes (low nibbles in the low
//! 128-bit lane = elements 0..15, high nibbles in the high lane = 16..31, 5th bits spread
//! from `qh` by a byte shuffle and a bit-mask compare), multiplied with the activation's
//! 32 i8 quants into eight exact i32 partial sums (`vpmaddubsw` + `vpmaddwd`, with the
//! sign trick for signed weights), converted to f32 and accumulated with one FMA by
//! `d_w * d_a`, block by block into one accumulator per row pair (see [`sum_blocks`]).
//! The `m_w * s_a` terms of the `_1` formats are summed in a scalar.
//! Float results therefore differ from the scalar reference only by reassociation.
//!
//! The loop is kept off the shuffle port where it can be: nibbles come from a broadcasting
//! load plus a variable shift of the high lane, f16 scales are converted straight from
//! memory, so each block costs one scale broadcast (plus the `qh` byte shuffle for Q5).

use super::{Q4_0_SIZE, Q4_1_SIZE, Q5_0_SIZE, Q5_1_SIZE, Q8_0_SIZE, Q8_1_SIZE};
use crate::quant::legacy::check_dot_args;
use crate::quant::x86::{hsum_ps, prefetch_ahead};
use std::arch::x86_64::*;

/// Eight i32 sums of four `q[k] * y[k]` each, `q` unsigned bytes. `vpmaddubsw` saturates
/// the i16 sum of each adjacent pair of products, so this is exact when
/// `2 * q * |y| <= 32767`: always for the 4- and 5-bit quants (q <= 31), and for
/// `q <= 128` when `|y| <= 127` (the sign trick below).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn dot_u8_i8(q: __m256i, y: __m256i) -> __m256i {
    _mm256_madd_epi16(_mm256_maddubs_epi16(q, y), _mm256_set1_epi16(1))
}

/// Eight i32 sums of four `x[k] * y[k]` each, both signed: `|x| * (y * sign(x))`.
/// `|x|` fits an unsigned byte even for -128; `y` must not be -128 (negating it wraps),
/// which holds for activations from Kaiyuan's quantizers (|q| <= 127).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn dot_i8_i8(x: __m256i, y: __m256i) -> __m256i {
    dot_u8_i8(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x))
}

/// The f16 at `p` (unaligned) widened to f32, exactly. Reads 8 bytes.
///
/// Written as one `vcvtph2ps` from memory, which writes its whole destination register.
/// Left to itself LLVM loads the half with a 16-bit insert (`vpinsrw`), which merges into
/// whatever register it picks; it picked the one every scale product had just been
/// written to, chaining all blocks' scale conversions into one serial dependency (perf:
/// the four-row Q5_0 and Q8_0 mat-mat kernels ran at about half speed).
///
/// # Safety
/// Eight bytes at `p` are readable (scales sit at the start of blocks of >= 18 bytes).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn f16_at(p: *const u8) -> f32 {
    let wide: __m128;
    // SAFETY: the caller guarantees eight readable bytes at `p`; the instruction reads
    // exactly those, writes only `wide`, and needs F16C, which this fn's target features
    // (checked by whoever hands out the kernels) include.
    unsafe {
        std::arch::asm!(
            "vcvtph2ps {wide}, qword ptr [{p}]",
            p = in(reg) p,
            wide = out(xmm_reg) wide,
            options(pure, readonly, nostack, preserves_flags),
        );
    }
    _mm_cvtss_f32(wide)
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn f32_at(p: *const u8) -> f32 {
    // SAFETY: the caller guarantees four readable bytes at `p`.
    unsafe { (p as *const f32).read_unaligned() }
}

/// The 32 nibbles of the 16 bytes at `p`, one byte per element in element order: the
/// bytes are broadcast to both 128-bit lanes by the load itself, and only the high lane
/// is shifted (a variable shift), so no shuffle-port instruction is needed.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn nibbles(p: *const u8) -> __m256i {
    // SAFETY: the caller guarantees 16 readable bytes at `p`.
    let b = unsafe { _mm256_broadcastsi128_si256(_mm_loadu_si128(p as *const __m128i)) };
    let shifted = _mm256_srlv_epi64(b, _mm256_setr_epi64x(0, 0, 4, 4));
    _mm256_and_si256(shifted, _mm256_set1_epi8(0x0f))
}

/// Byte `j` = 0x10 where bit `j` of the little-endian u32 at `p` is set, else 0.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn fifth_bits(p: *const u8) -> __m256i {
    // SAFETY: the caller guarantees four readable bytes at `p`.
    let qh = unsafe { (p as *const u32).read_unaligned() };
    // Both 128-bit lanes hold qh's four bytes; byte j picks qh byte j / 8.
    let spread = _mm256_shuffle_epi8(
        _mm256_set1_epi32(qh as i32),
        _mm256_setr_epi64x(
            0,
            0x0101_0101_0101_0101,
            0x0202_0202_0202_0202,
            0x0303_0303_0303_0303,
        ),
    );
    let bit = _mm256_set1_epi64x(0x8040_2010_0804_0201u64 as i64);
    let set = _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
    _mm256_and_si256(set, _mm256_set1_epi8(0x10))
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn load32(p: *const u8) -> __m256i {
    // SAFETY: the caller guarantees 32 readable bytes at `p`.
    unsafe { _mm256_loadu_si256(p as *const __m256i) }
}

/// `acc + d * (f32 lanes of isum)`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn fma_block(acc: __m256, d: f32, isum: __m256i) -> __m256 {
    _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(isum), acc)
}

/// Runs `block(i)` (returning `(d_w * d_a, i32 sums, m_w * s_a)`) for every block in
/// order, and adds everything up: one vector accumulator, one scalar for the `m·s` terms.
///
/// One accumulator, not two for even and odd blocks: the kernels that share a side
/// ([`sum_blocks_n`]) must accumulate each pair exactly this way, and with two
/// accumulators per pair their four pairs need eight registers, which with the constants
/// spilled to the stack on every block. Their four independent chains hide the FMA
/// latency that a lone chain here exposes; the single-row kernel only runs for the few
/// rows left over from four-row passes (and for Q5_1, which has no four-row kernels).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn sum_blocks(nb: usize, block: impl Fn(usize) -> (f32, __m256i, f32)) -> f32 {
    let mut acc = _mm256_setzero_ps();
    let mut summs = 0.0f32;
    for i in 0..nb {
        let (d, s, m) = block(i);
        acc = fma_block(acc, d, s);
        summs += m;
    }
    hsum_ps(acc) + summs
}

/// `sum_blocks` for `N` row pairs that share one side: `shared(i)` loads block `i` of
/// the shared row once (a weight row for four or eight activation rows, or an activation
/// row for four weight rows), `pair(s, i, r)` gives `(d_w·d_a, i32 sums, m_w·s_a)` for row `r` of
/// the other side. Per row the values are accumulated exactly as `sum_blocks` does, so
/// every result is bit-identical to the one-row kernel's.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn sum_blocks_n<S: Copy, const N: usize>(
    nb: usize,
    shared: impl Fn(usize) -> S,
    pair: impl Fn(S, usize, usize) -> (f32, __m256i, f32),
) -> [f32; N] {
    let mut acc = [_mm256_setzero_ps(); N];
    let mut summs = [0f32; N];
    for i in 0..nb {
        let s = shared(i);
        for r in 0..N {
            let (d, q, m) = pair(s, i, r);
            acc[r] = fma_block(acc[r], d, q);
            summs[r] += m;
        }
    }
    let mut out = [0f32; N];
    for r in 0..N {
        out[r] = hsum_ps(acc[r]) + summs[r];
    }
    out
}

/// The `_0` formats' offset as a per-block correction: the weights are dotted as the
/// unsigned quants `q` they are stored as, and `Σ (q − o)·y = Σ q·y − o·Σ y` is completed
/// by adding `(−o·d_w)·s_a` (`s_a = d_a·Σ y`, from the Q8_1 block), the same way the `_1`
/// formats add `m_w·s_a`. That needs neither the subtraction nor the two sign operations
/// of the signed form, which dominate the weight side when one activation block serves
/// four weight rows. The integer sums are no longer the reference's, so results differ
/// from it by float rounding of the two terms, as for the `_1` formats.
///
/// `−offset` is a power of two, so `−offset·d_w` and `−offset·s_a` are exact and
/// `(−offset·d_w)·s_a`, `d_w·(−offset·s_a)` round the same exact product: the four-row
/// kernels precompute whichever factor their shared side owns and stay bit-identical.
#[inline]
pub(super) fn offset_term(offset: f32, d_w: f32, s_a: f32) -> f32 {
    (-offset * d_w) * s_a
}

/// # Safety
/// `w` and `a` hold `nb` Q4_0 and Q8_1 blocks; the CPU has AVX2/FMA/F16C.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q4_0_q8_1(nb: usize, w: *const u8, a: *const u8) -> f32 {
    sum_blocks(nb, |i| {
        // SAFETY: block i < nb lies inside both rows (caller contract).
        unsafe {
            let (bw, ba) = (w.add(i * Q4_0_SIZE), a.add(i * Q8_1_SIZE));
            prefetch_ahead(bw, 1);
            let d_w = f16_at(bw);
            (
                d_w * f32_at(ba),
                dot_u8_i8(nibbles(bw.add(2)), load32(ba.add(8))),
                offset_term(8.0, d_w, f32_at(ba.add(4))),
            )
        }
    })
}

/// # Safety
/// `w` and `a` hold `nb` Q5_0 and Q8_1 blocks; the CPU has AVX2/FMA/F16C.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q5_0_q8_1(nb: usize, w: *const u8, a: *const u8) -> f32 {
    sum_blocks(nb, |i| {
        // SAFETY: block i < nb lies inside both rows (caller contract).
        unsafe {
            let (bw, ba) = (w.add(i * Q5_0_SIZE), a.add(i * Q8_1_SIZE));
            prefetch_ahead(bw, 1);
            let d_w = f16_at(bw);
            let q = _mm256_or_si256(nibbles(bw.add(6)), fifth_bits(bw.add(2)));
            (
                d_w * f32_at(ba),
                dot_u8_i8(q, load32(ba.add(8))),
                offset_term(16.0, d_w, f32_at(ba.add(4))),
            )
        }
    })
}

/// # Safety
/// `w` and `a` hold `nb` Q8_0 and Q8_1 blocks; the CPU has AVX2/FMA/F16C.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q8_0_q8_1(nb: usize, w: *const u8, a: *const u8) -> f32 {
    sum_blocks(nb, |i| {
        // SAFETY: block i < nb lies inside both rows (caller contract).
        unsafe {
            let (bw, ba) = (w.add(i * Q8_0_SIZE), a.add(i * Q8_1_SIZE));
            prefetch_ahead(bw, 1);
            let isum = dot_i8_i8(load32(bw.add(2)), load32(ba.add(8)));
            (f16_at(bw) * f32_at(ba), isum, 0.0)
        }
    })
}

/// # Safety
/// `w` and `a` hold `nb` Q4_1 and Q8_1 blocks; the CPU has AVX2/FMA/F16C.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q4_1_q8_1(nb: usize, w: *const u8, a: *const u8) -> f32 {
    sum_blocks(nb, |i| {
        // SAFETY: block i < nb lies inside both rows (caller contract).
        unsafe {
            let (bw, ba) = (w.add(i * Q4_1_SIZE), a.add(i * Q8_1_SIZE));
            prefetch_ahead(bw, 1);
            let isum = dot_u8_i8(nibbles(bw.add(4)), load32(ba.add(8)));
            (
                f16_at(bw) * f32_at(ba),
                isum,
                f16_at(bw.add(2)) * f32_at(ba.add(4)),
            )
        }
    })
}

/// # Safety
/// `w` and `a` hold `nb` Q5_1 and Q8_1 blocks; the CPU has AVX2/FMA/F16C.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q5_1_q8_1(nb: usize, w: *const u8, a: *const u8) -> f32 {
    sum_blocks(nb, |i| {
        // SAFETY: block i < nb lies inside both rows (caller contract).
        unsafe {
            let (bw, ba) = (w.add(i * Q5_1_SIZE), a.add(i * Q8_1_SIZE));
            prefetch_ahead(bw, 1);
            let q = _mm256_or_si256(nibbles(bw.add(8)), fifth_bits(bw.add(4)));
            let isum = dot_u8_i8(q, load32(ba.add(8)));
            (
                f16_at(bw) * f32_at(ba),
                isum,
                f16_at(bw.add(2)) * f32_at(ba.add(4)),
            )
        }
    })
}

safe_vec_dots! {
    pointers:
    vec_dot_q4_0_q8_1 => q4_0_q8_1, Q4_0_SIZE, Q8_1_SIZE;
    vec_dot_q5_0_q8_1 => q5_0_q8_1, Q5_0_SIZE, Q8_1_SIZE;
    vec_dot_q8_0_q8_1 => q8_0_q8_1, Q8_0_SIZE, Q8_1_SIZE;
    vec_dot_q4_1_q8_1 => q4_1_q8_1, Q4_1_SIZE, Q8_1_SIZE;
    vec_dot_q5_1_q8_1 => q5_1_q8_1, Q5_1_SIZE, Q8_1_SIZE;
}
