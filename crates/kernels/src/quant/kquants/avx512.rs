//! AVX-512 (F/BW/VL/DQ + VNNI) dot products of the K-quant weight formats with Q8_K
//! activations.
//!
//! The AVX2 method ([`super::avx2`]) at twice the width: 64 elements per `vpmaddubsw`
//! (unsigned weight quants × signed activation quants → i16 pairs, never saturating),
//! and the sub-block scale applied by VNNI `vpdpwssd`, which fuses the i16×i16 → i32
//! multiply-add with the accumulation. Each 512-bit weight vector is built from one
//! 32-byte load broadcast to both halves and shifted per half (`vpsrlvw`), so the two
//! halves hold the two bit-planes that belong to 64 consecutive activations. Signed
//! quants (Q3_K, Q6_K) are handled as unsigned ones plus an offset removed exactly via
//! Q8_K's bsums. For Q2_K and Q3_K the i32 lanes of each super-block are folded to eight,
//! converted to f32 and accumulated by FMA with `d_a * d_w` (and `-d_a * dmin_w`), as in the
//! AVX2 kernels. Q4_K, Q5_K and Q6_K instead sum their lanes to the exact integers and take
//! the scalar reference's float step ([`super::dot_scalar`]), so that they give its bits,
//! as their packed-panel mat-mat ([`super::avx512_panel`]) does.
//!
//! Every `vec_dot_*` here is handed out by `kquants::vec_dot_fn` only for
//! `SimdLevel::Avx512`, whose CPU support `quant::vec_dot_fn` has checked.

use std::arch::x86_64::*;

use super::avx2::{dup_pairs_u8, f16_at_hw, hsum_ps, load16, load32};
use super::layout::*;
use crate::quant::x86::prefetch_ahead;

/// `vpermw` indices spreading sixteen 16-element sub-block scales over four vectors of
/// 64 elements (eight i16 lanes per sub-block).
const SPREAD_16X16: [[i16; 32]; 4] = [runs(0, 4), runs(4, 4), runs(8, 4), runs(12, 4)];
/// The same for eight 32-element sub-blocks (sixteen i16 lanes per sub-block).
const SPREAD_8X32: [[i16; 32]; 4] = [runs(0, 2), runs(2, 2), runs(4, 2), runs(6, 2)];

/// The four index vectors of `table`, loaded once per kernel call.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")]
fn spread_indices(table: &[[i16; 32]; 4]) -> [__m512i; 4] {
    // SAFETY: each row is an array of exactly 64 bytes; `loadu` has no alignment need.
    table.map(|row| unsafe { _mm512_loadu_si512(row.as_ptr() as *const __m512i) })
}

/// An index vector: `n` runs of `32 / n` equal values `first, first + 1, ...`.
const fn runs(first: i16, n: usize) -> [i16; 32] {
    let mut out = [0i16; 32];
    let mut k = 0;
    while k < 32 {
        out[k] = first + (k / (32 / n)) as i16;
        k += 1;
    }
    out
}

/// Per-half shift counts for `vpsrlvw`: `low` in the low 256 bits, `high` above.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")]
fn half_shifts(low: i16, high: i16) -> __m512i {
    _mm512_inserti64x4::<1>(_mm512_set1_epi16(low), _mm256_set1_epi16(high))
}

/// The 32 bytes at `p + off`, in both 256-bit halves.
///
/// # Safety
/// `off + 32 <= p.len()`, and the CPU has AVX-512F.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")]
unsafe fn load32_twice(p: &[u8], off: usize) -> __m512i {
    debug_assert!(off + 32 <= p.len());
    // SAFETY: the caller guarantees `off + 32 <= p.len()`; `loadu` has no alignment need.
    unsafe { _mm512_broadcast_i64x4(_mm256_loadu_si256(p.as_ptr().add(off) as *const __m256i)) }
}

/// The 64 bytes at `p + off`. Same contract as [`load32_twice`] with 64 bytes.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")]
unsafe fn load64(p: &[u8], off: usize) -> __m512i {
    debug_assert!(off + 64 <= p.len());
    // SAFETY: the caller guarantees `off + 64 <= p.len()`; `loadu` has no alignment need.
    unsafe { _mm512_loadu_si512(p.as_ptr().add(off) as *const __m512i) }
}

/// Sixteen i32 lanes folded to eight.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")]
fn fold(v: __m512i) -> __m256i {
    _mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64::<1>(v))
}

/// The sum of eight i32 lanes (wrapping; exact where the true sum fits, as the K-quant
/// integer sums do).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")]
fn hsum_i32(v: __m256i) -> i32 {
    let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b01_00_11_10>(s));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b10_11_00_01>(s));
    _mm_cvtsi128_si32(s)
}

/// Scale vectors for formats with sixteen 16-element sub-blocks: vector `g` covers
/// elements `64g..64g+64`, i.e. sub-blocks `4g..4g+4`, eight i16 lanes each.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")]
fn scales_16x16(sc16: __m256i, idx: &[__m512i; 4]) -> [__m512i; 4] {
    let v = _mm512_castsi256_si512(sc16);
    idx.map(|i| _mm512_permutexvar_epi16(i, v))
}

/// Scale vectors for formats with eight 32-element sub-blocks: vector `c` covers
/// elements `64c..64c+64`, i.e. sub-blocks `2c, 2c+1`, sixteen i16 lanes each.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")]
fn scales_8x32(sc: [u8; 8], idx: &[__m512i; 4]) -> [__m512i; 4] {
    let v = _mm512_cvtepu8_epi16(_mm256_castsi128_si256(_mm_set_epi64x(
        0,
        i64::from_le_bytes(sc),
    )));
    idx.map(|i| _mm512_permutexvar_epi16(i, v))
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")]
fn dot_q2_k(nb: usize, w: &[u8], a: &[u8]) -> f32 {
    let idx = spread_indices(&SPREAD_16X16);
    let m3 = _mm512_set1_epi8(3);
    let m4 = _mm_set1_epi8(0x0f);
    // Group g of a half: bit-planes 2g (low 256 bits) and 2g+1 (high), 2 bits each.
    let shifts = [half_shifts(0, 2), half_shifts(4, 6)];
    let mut acc = _mm256_setzero_ps();
    for (wb, ab) in super_blocks(w, Q2K_BYTES, a, nb) {
        let d_a = f32_at(ab, Q8K_D);
        let d = d_a * f16_at_hw(wb, Q2K_D);
        let dm = d_a * f16_at_hw(wb, Q2K_DMIN);
        // SAFETY: every load offset + width lies inside the 84-byte weight block
        // (scales 0..16, qs 16..80) or the 292-byte activation block (qs 4..260, bsums
        // 260..292).
        let (sumi, mins) = unsafe {
            let scb = load16(wb, Q2K_SCALES);
            let sc16 = _mm256_cvtepu8_epi16(_mm_and_si128(scb, m4));
            let mn16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16::<4>(scb), m4));
            let scv = scales_16x16(sc16, &idx);
            let mins = _mm256_madd_epi16(load32(ab, Q8K_BSUMS), mn16);
            let mut sumi = _mm512_setzero_si512();
            for h in 0..2 {
                let qs = load32_twice(wb, Q2K_QS + 32 * h);
                for g in 0..2 {
                    let q = _mm512_and_si512(_mm512_srlv_epi16(qs, shifts[g]), m3);
                    let p = _mm512_maddubs_epi16(q, load64(ab, Q8K_QS + 128 * h + 64 * g));
                    sumi = _mm512_dpwssd_epi32(sumi, p, scv[2 * h + g]);
                }
            }
            (fold(sumi), mins)
        };
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(-dm), _mm256_cvtepi32_ps(mins), acc);
    }
    hsum_ps(acc)
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")]
fn dot_q3_k(nb: usize, w: &[u8], a: &[u8]) -> f32 {
    let idx = spread_indices(&SPREAD_16X16);
    let m3 = _mm512_set1_epi8(3);
    let ones = _mm512_set1_epi8(1);
    let q_shifts = [half_shifts(0, 2), half_shifts(4, 6)];
    let mut acc = _mm256_setzero_ps();
    for (wb, ab) in super_blocks(w, Q3K_BYTES, a, nb) {
        let d = f32_at(ab, Q8K_D) * f16_at_hw(wb, Q3K_D);
        let scales = unpack_q3k_scales(&wb[Q3K_SCALES..Q3K_SCALES + 12]);
        // SAFETY: every load offset + width lies inside the 110-byte weight block (hmask
        // 0..32, qs 32..96), the 16-byte `scales` array, or the 292-byte activation
        // block (qs 4..260, bsums 260..292).
        let sumi = unsafe {
            let sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(scales.as_ptr() as *const __m128i));
            let scv = scales_16x16(sc16, &idx);
            // q = low + 4·hbit - 4: use the unsigned low + 4·hbit (0..7) and remove
            // 4·Σ scale·bsum exactly.
            let offset = _mm256_slli_epi32::<2>(_mm256_madd_epi16(load32(ab, Q8K_BSUMS), sc16));
            let hm = load32_twice(wb, Q3K_HMASK);
            let mut sumi = _mm512_setzero_si512();
            for h in 0..2 {
                let qs = load32_twice(wb, Q3K_QS + 32 * h);
                for g in 0..2 {
                    let plane = 4 * h + 2 * g;
                    let low = _mm512_and_si512(_mm512_srlv_epi16(qs, q_shifts[g]), m3);
                    // hmask bits `plane` (low half) and `plane + 1` (high half), as 0/4.
                    let hb = _mm512_srlv_epi16(hm, half_shifts(plane as i16, plane as i16 + 1));
                    let hb = _mm512_slli_epi16::<2>(_mm512_and_si512(hb, ones));
                    let q = _mm512_or_si512(low, hb);
                    let p = _mm512_maddubs_epi16(q, load64(ab, Q8K_QS + 128 * h + 64 * g));
                    sumi = _mm512_dpwssd_epi32(sumi, p, scv[2 * h + g]);
                }
            }
            _mm256_sub_epi32(fold(sumi), offset)
        };
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    hsum_ps(acc)
}

/// Per-call constants of the Q4_K / Q5_K block sums.
struct Consts32 {
    idx: [__m512i; 4],
    m4: __m512i,
    ones: __m512i,
    /// Low nibbles (sub-block 2c) in the low half, high nibbles (2c+1) in the high half.
    nibbles: __m512i,
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")]
fn consts32() -> Consts32 {
    Consts32 {
        idx: spread_indices(&SPREAD_8X32),
        m4: _mm512_set1_epi8(0x0f),
        ones: _mm512_set1_epi8(1),
        nibbles: half_shifts(0, 4),
    }
}

/// Per-call constants of the Q6_K block sums.
struct Consts16 {
    idx: [__m512i; 4],
    m4: __m512i,
    m30: __m512i,
    /// Elements 128h + 0..64 use the low nibbles of ql[64h..64h+64] and qh bit-pairs 0, 1
    /// (moved to bits 4..6 by left shifts 4, 2); elements 128h + 64..128 the high nibbles
    /// and bit-pairs 2, 3 (right shifts 0, 2).
    qh_low_group: __m512i,
    qh_high_group: __m512i,
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")]
fn consts16() -> Consts16 {
    Consts16 {
        idx: spread_indices(&SPREAD_16X16),
        m4: _mm512_set1_epi8(0x0f),
        m30: _mm512_set1_epi8(0x30),
        qh_low_group: half_shifts(4, 2),
        qh_high_group: half_shifts(0, 2),
    }
}

/// One Q4_K (`HIGH` false) or Q5_K (`HIGH` true) super-block's exact integer sums against
/// a Q8_K block, in eight i32 lanes each: `Σ_sub scale·Σ q·y` and `Σ_sub min·bsum`.
///
/// # Safety
/// `wb` is one whole weight block (144 or 176 bytes), `ab` one Q8_K block (292 bytes);
/// the CPU has this fn's target features.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")]
unsafe fn q45k_sums<const HIGH: bool>(wb: &[u8], ab: &[u8], c: &Consts32) -> (__m256i, __m256i) {
    let (scales_at, qs) = if HIGH {
        (Q5K_SCALES, Q5K_QS)
    } else {
        (Q4K_SCALES, Q4K_QS)
    };
    let (sc, mn) = unpack_q4k_scales(&wb[scales_at..scales_at + 12]);
    let scv = scales_8x32(sc, &c.idx);
    // SAFETY: every load offset + width lies inside the weight block (Q4_K qs 16..144;
    // Q5_K qh 16..48, qs 48..176) or the 292-byte activation block (qs 4..260, bsums
    // 260..292) (caller contract).
    unsafe {
        let mins = _mm256_madd_epi16(load32(ab, Q8K_BSUMS), dup_pairs_u8(mn));
        // Q5_K: qh bit `sub` is bit 4 of sub-block `sub`'s quants: bits 2c, 2c+1 per half.
        let mut hcur = if HIGH {
            _mm512_srlv_epi16(load32_twice(wb, Q5K_QH), half_shifts(0, 1))
        } else {
            _mm512_setzero_si512()
        };
        let mut sumi = _mm512_setzero_si512();
        for (k, scale) in scv.into_iter().enumerate() {
            let x = load32_twice(wb, qs + 32 * k);
            let mut q = _mm512_and_si512(_mm512_srlv_epi16(x, c.nibbles), c.m4);
            if HIGH {
                q = _mm512_or_si512(q, _mm512_slli_epi16::<4>(_mm512_and_si512(hcur, c.ones)));
                hcur = _mm512_srli_epi16::<2>(hcur);
            }
            let p = _mm512_maddubs_epi16(q, load64(ab, Q8K_QS + 64 * k));
            sumi = _mm512_dpwssd_epi32(sumi, p, scale);
        }
        (fold(sumi), mins)
    }
}

/// One Q6_K super-block's exact integer sum `Σ_sub scale·Σ q·y` against a Q8_K block, in
/// eight i32 lanes (the second value is zero: Q6_K has no mins).
///
/// # Safety
/// `wb` is one whole 210-byte weight block, `ab` one Q8_K block; the CPU has this fn's
/// target features.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")]
unsafe fn q6k_sums(wb: &[u8], ab: &[u8], c: &Consts16) -> (__m256i, __m256i) {
    // SAFETY: every load offset + width lies inside the 210-byte weight block (ql 0..128,
    // qh 128..192, scales 192..208) or the 292-byte activation block (qs 4..260, bsums
    // 260..292) (caller contract).
    unsafe {
        let sc16 = _mm256_cvtepi8_epi16(load16(wb, Q6K_SCALES));
        let scv = scales_16x16(sc16, &c.idx);
        // The quants are stored +32 (unsigned 0..63): subtract 32·Σ scale·bsum.
        let offset = _mm256_slli_epi32::<5>(_mm256_madd_epi16(load32(ab, Q8K_BSUMS), sc16));
        let mut sumi = _mm512_setzero_si512();
        for h in 0..2 {
            let ql = load64(wb, Q6K_QL + 64 * h);
            let qh = load32_twice(wb, Q6K_QH + 32 * h);
            let q0 = _mm512_or_si512(
                _mm512_and_si512(ql, c.m4),
                _mm512_and_si512(_mm512_sllv_epi16(qh, c.qh_low_group), c.m30),
            );
            let q1 = _mm512_or_si512(
                _mm512_and_si512(_mm512_srli_epi16::<4>(ql), c.m4),
                _mm512_and_si512(_mm512_srlv_epi16(qh, c.qh_high_group), c.m30),
            );
            let p0 = _mm512_maddubs_epi16(q0, load64(ab, Q8K_QS + 128 * h));
            let p1 = _mm512_maddubs_epi16(q1, load64(ab, Q8K_QS + 128 * h + 64));
            sumi = _mm512_dpwssd_epi32(sumi, p0, scv[2 * h]);
            sumi = _mm512_dpwssd_epi32(sumi, p1, scv[2 * h + 1]);
        }
        (_mm256_sub_epi32(fold(sumi), offset), _mm256_setzero_si256())
    }
}

/// Defines the single-row dot and the four-stream `rows4` kernel of a format from its
/// block sums: both end each super-block with the scalar reference's float step on the
/// exact integers (`(d_a·d_w)·isum (− (d_a·dmin_w)·isum_mins)`, added to the running sum),
/// so they give its bits; `rows4` does it for four rows in four lanes.
macro_rules! exact_kernels {
    ($dot:ident, $rows4:ident, $sums:expr, $consts:ident, $bytes:expr, $d:expr, $dmin:expr) => {
        #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")]
        fn $dot(nb: usize, w: &[u8], a: &[u8]) -> f32 {
            let c = $consts();
            let mut sumf = 0.0f32;
            for (wb, ab) in super_blocks(w, $bytes, a, nb) {
                let d_a = f32_at(ab, Q8K_D);
                // SAFETY: `super_blocks` yields whole blocks of both rows.
                let (sumi, mins) = unsafe { $sums(wb, ab, &c) };
                let mut t = (d_a * f16_at_hw(wb, $d)) * hsum_i32(sumi) as f32;
                if let Some(dmin) = $dmin {
                    t -= (d_a * f16_at_hw(wb, dmin)) * hsum_i32(mins) as f32;
                }
                sumf += t;
            }
            sumf
        }

        /// Four streams of `out.len() / 4` rows against one activation row of `nb`
        /// super-blocks (lengths checked by [`check_rows4`]).
        #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")]
        fn $rows4(nb: usize, w: [&[u8]; 4], a: &[u8], out: &mut [f32]) {
            let c = $consts();
            let row_bytes = nb * $bytes;
            for (i, o) in out.chunks_exact_mut(4).enumerate() {
                let mut acc = _mm_setzero_ps();
                for (b, ab) in a.chunks_exact(Q8K_BYTES).take(nb).enumerate() {
                    let at = i * row_bytes + b * $bytes;
                    let (b0, b1) = (&w[0][at..at + $bytes], &w[1][at..at + $bytes]);
                    let (b2, b3) = (&w[2][at..at + $bytes], &w[3][at..at + $bytes]);
                    // Each stream [`PREFETCH_AHEAD`] bytes ahead, as the AVX2 kernels do: the
                    // hardware prefetcher alone left a decoded MoE token's small expert
                    // matrices at 26 GB/s of 39 from DRAM (Zen 5; BENCHMARKS.md).
                    for blk in [b0, b1, b2, b3] {
                        prefetch_ahead(blk.as_ptr(), $bytes);
                    }
                    // SAFETY: whole blocks of the four rows and of the activation row.
                    let (s0, m0, s1, m1, s2, m2, s3, m3) = unsafe {
                        let (s0, m0) = $sums(b0, ab, &c);
                        let (s1, m1) = $sums(b1, ab, &c);
                        let (s2, m2) = $sums(b2, ab, &c);
                        let (s3, m3) = $sums(b3, ab, &c);
                        (s0, m0, s1, m1, s2, m2, s3, m3)
                    };
                    let d_a = _mm_set1_ps(f32_at(ab, Q8K_D));
                    let dw = _mm_setr_ps(
                        f16_at_hw(b0, $d),
                        f16_at_hw(b1, $d),
                        f16_at_hw(b2, $d),
                        f16_at_hw(b3, $d),
                    );
                    let isum = _mm_cvtepi32_ps(hsum4([s0, s1, s2, s3]));
                    let mut t = _mm_mul_ps(_mm_mul_ps(d_a, dw), isum);
                    if let Some(dmin) = $dmin {
                        let dm = _mm_setr_ps(
                            f16_at_hw(b0, dmin),
                            f16_at_hw(b1, dmin),
                            f16_at_hw(b2, dmin),
                            f16_at_hw(b3, dmin),
                        );
                        let mins = _mm_cvtepi32_ps(hsum4([m0, m1, m2, m3]));
                        t = _mm_sub_ps(t, _mm_mul_ps(_mm_mul_ps(d_a, dm), mins));
                    }
                    acc = _mm_add_ps(acc, t);
                }
                // SAFETY: `o` is four floats.
                unsafe { _mm_storeu_ps(o.as_mut_ptr(), acc) };
            }
        }
    };
}

exact_kernels!(
    dot_q4_k,
    rows4_q4_k,
    q45k_sums::<false>,
    consts32,
    Q4K_BYTES,
    Q4K_D,
    Some(Q4K_DMIN)
);
exact_kernels!(
    dot_q5_k,
    rows4_q5_k,
    q45k_sums::<true>,
    consts32,
    Q5K_BYTES,
    Q5K_D,
    Some(Q5K_DMIN)
);
exact_kernels!(
    dot_q6_k,
    rows4_q6_k,
    q6k_sums,
    consts16,
    Q6K_BYTES,
    Q6K_D,
    None::<usize>
);

/// The sums of four vectors of eight i32 lanes, one per lane (wrapping; exact where the
/// true sums fit).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")]
fn hsum4(v: [__m256i; 4]) -> __m128i {
    let half =
        |x: __m256i| _mm_add_epi32(_mm256_castsi256_si128(x), _mm256_extracti128_si256::<1>(x));
    let (h0, h1, h2, h3) = (half(v[0]), half(v[1]), half(v[2]), half(v[3]));
    _mm_hadd_epi32(_mm_hadd_epi32(h0, h1), _mm_hadd_epi32(h2, h3))
}

/// Checks a `rows4` call's lengths (see [`crate::quant::VecDotRows4Fn`]); returns the
/// number of super-blocks. Panics on a caller bug.
fn check_rows4(n: usize, w: &[&[u8]; 4], bytes: usize, a: &[u8], out: &[f32]) -> usize {
    assert!(
        out.len().is_multiple_of(4),
        "rows4 dot: {} outputs are not whole groups of four",
        out.len()
    );
    let nb = check_dot_args(n, &[0u8; 0], 0, a);
    let need = out.len() / 4 * nb * bytes;
    for stream in w {
        assert!(
            stream.len() >= need,
            "rows4 dot: a stream of {} bytes holds fewer than {} rows of {}",
            stream.len(),
            out.len() / 4,
            nb * bytes
        );
    }
    nb
}

/// Defines the safe `VecDotRows4Fn`s.
macro_rules! safe_rows4 {
    ($($name:ident => $kernel:ident, $bytes:expr;)*) => {$(
        pub(super) fn $name(n: usize, w: [&[u8]; 4], a: &[u8], out: &mut [f32]) {
            let nb = check_rows4(n, &w, $bytes, a, out);
            // SAFETY: the kernel's slicing is bounds-checked; its `#[target_feature]` is
            // the only reason for `unsafe`. This fn is only handed out by
            // `kquants::vec_dot_rows4_fn` for `SimdLevel::Avx512`, after
            // `quant::vec_dot_rows4_fn` confirmed the CPU supports that level.
            unsafe { $kernel(nb, w, a, out) }
        }
    )*};
}

safe_rows4! {
    vec_dot_rows4_q4_k => rows4_q4_k, Q4K_BYTES;
    vec_dot_rows4_q5_k => rows4_q5_k, Q5K_BYTES;
    vec_dot_rows4_q6_k => rows4_q6_k, Q6K_BYTES;
}

safe_vec_dots! {
    vec_dot_q2_k => dot_q2_k, Q2K_BYTES;
    vec_dot_q3_k => dot_q3_k, Q3K_BYTES;
    vec_dot_q4_k => dot_q4_k, Q4K_BYTES;
    vec_dot_q5_k => dot_q5_k, Q5K_BYTES;
    vec_dot_q6_k => dot_q6_k, Q6K_BYTES;
}
