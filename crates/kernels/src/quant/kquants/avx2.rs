//! AVX2 + FMA dot products of the K-quant weight formats with Q8_K activations.
//!
//! Same integer arithmetic as the scalar spec ([`super::dot_scalar`]), 32 elements per
//! instruction: `vpmaddubsw` multiplies unsigned weight quants with signed activation
//! quants into i16 pairs (never saturating: |q| ≤ 63, |a| ≤ 128), `vpmaddwd` applies the
//! integer sub-block scale and widens to i32. Formats whose quants are signed (Q3_K,
//! Q6_K) use unsigned quants plus an offset corrected exactly through Q8_K's bsums or a
//! second `vpmaddubsw`. Each super-block's eight i32 lanes are converted to f32 and
//! accumulated with `d_a * d_w` (and `-d_a * dmin_w` for the mins) by FMA, so only the
//! float summation order differs from the scalar spec.
//!
//! The per-super-block steps of Q4_K, Q5_K and Q6_K are `pub(super)` helpers that
//! [`super::avx2_x4`]'s four-row kernels share, which keeps those bit-identical to these.
//!
//! Every `vec_dot_*` here is handed out by `kquants::vec_dot_fn` only for a level whose
//! CPU support `quant::vec_dot_fn` has checked (AVX2 + FMA + F16C).

use std::arch::x86_64::*;

use super::layout::*;
/// Sum of the eight f32 lanes (also used by the AVX-512 kernels).
pub(super) use crate::quant::x86::hsum_ps;
use crate::quant::x86::prefetch_ahead;

/// The f16 at byte offset `off` of `b`, converted by the F16C instruction (exact, the
/// same value as `half::f16_to_f32`).
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn f16_at_hw(b: &[u8], off: usize) -> f32 {
    let bits = u16::from_le_bytes([b[off], b[off + 1]]);
    _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(bits as i32)))
}

/// Eight u8 sub-block scales widened to i16, the same eight in both 128-bit lanes.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn scales_u8_both_lanes(sc: [u8; 8]) -> __m256i {
    _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(_mm_set_epi64x(0, i64::from_le_bytes(sc))))
}

/// `vpshufb` control that broadcasts i16 word `k` (0..8) of each 128-bit lane.
#[target_feature(enable = "avx2,fma,f16c")]
fn word_broadcast(k: i16) -> __m256i {
    _mm256_set1_epi16(((2 * k + 1) << 8) | (2 * k))
}

/// From sixteen i16 sub-block scales `s` (one per 16 elements), the eight vectors that
/// scale 32 elements each: vector `k` holds `s[2k]` in its low 128-bit lane and
/// `s[2k+1]` in its high lane, matching `vpmaddubsw`'s output for elements `32k..32k+32`.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn pair_scales(s: __m256i) -> [__m256i; 8] {
    let low_dup = _mm256_permute2x128_si256::<0x00>(s, s);
    let high_dup = _mm256_permute2x128_si256::<0x11>(s, s);
    let pick = |k: i8| {
        // Bytes of word 2k in the low lane, of word 2k+1 in the high lane.
        let (a, b, c, e) = (4 * k, 4 * k + 1, 4 * k + 2, 4 * k + 3);
        _mm256_setr_epi8(
            a, b, a, b, a, b, a, b, a, b, a, b, a, b, a, b, c, e, c, e, c, e, c, e, c, e, c, e, c,
            e, c, e,
        )
    };
    let mut out = [_mm256_setzero_si256(); 8];
    for k in 0..4 {
        out[k] = _mm256_shuffle_epi8(low_dup, pick(k as i8));
        out[k + 4] = _mm256_shuffle_epi8(high_dup, pick(k as i8));
    }
    out
}

/// Eight i16 values, each repeated twice, as sixteen i16 lanes (mins of Q4_K/Q5_K
/// against the sixteen bsums, two per 32-element sub-block).
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn dup_pairs_u8(m: [u8; 8]) -> __m256i {
    let v = _mm_cvtepu8_epi16(_mm_set_epi64x(0, i64::from_le_bytes(m)));
    _mm256_set_m128i(_mm_unpackhi_epi16(v, v), _mm_unpacklo_epi16(v, v))
}

/// Loads 32 bytes at `p + off`.
///
/// # Safety
/// `off + 32 <= p.len()` (every caller passes a constant offset inside a fixed-size
/// block slice) and AVX is available.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn load32(p: &[u8], off: usize) -> __m256i {
    debug_assert!(off + 32 <= p.len());
    // SAFETY: the caller guarantees `off + 32 <= p.len()`; `loadu` has no alignment need.
    unsafe { _mm256_loadu_si256(p.as_ptr().add(off) as *const __m256i) }
}

/// Loads 16 bytes at `p + off`. Same contract as [`load32`] with 16 bytes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn load16(p: &[u8], off: usize) -> __m128i {
    debug_assert!(off + 16 <= p.len());
    // SAFETY: the caller guarantees `off + 16 <= p.len()`; `loadu` has no alignment need.
    unsafe { _mm_loadu_si128(p.as_ptr().add(off) as *const __m128i) }
}

/// The two scale vectors of Q4_K/Q5_K elements `64c..64c + 64` (`c < 4`): sub-block
/// `2c`'s scale and sub-block `2c+1`'s, each broadcast to every i16 lane, from the eight
/// scales `scd` as from [`scales_u8_both_lanes`].
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn chunk_scales(scd: __m256i, c: usize) -> [__m256i; 2] {
    [
        _mm256_shuffle_epi8(scd, word_broadcast(2 * c as i16)),
        _mm256_shuffle_epi8(scd, word_broadcast(2 * c as i16 + 1)),
    ]
}

/// For Q4_K/Q5_K elements `64c..64c + 64` (`c < 4`): eight i32 lanes summing to
/// `sc[2c] · Σ lo·a + sc[2c+1] · Σ hi·a`, where `lo` holds sub-block `2c`'s 32 unsigned
/// quants, `hi` sub-block `2c+1`'s, `a` the matching activation quants of Q8_K block `ab`,
/// and `s` the two scales as from [`chunk_scales`].
///
/// # Safety
/// `c < 4` and `ab` is a whole Q8_K block (so both loads end by byte 260 of 292); the CPU
/// has AVX2.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn scaled_pair_sum(
    lo: __m256i,
    hi: __m256i,
    ab: &[u8],
    c: usize,
    s: [__m256i; 2],
) -> __m256i {
    // SAFETY: Q8K_QS + 64c + 64 <= 260 <= ab.len() (caller contract).
    let (a_lo, a_hi) = unsafe {
        (
            load32(ab, Q8K_QS + 64 * c),
            load32(ab, Q8K_QS + 64 * c + 32),
        )
    };
    let p0 = _mm256_maddubs_epi16(lo, a_lo);
    let p1 = _mm256_maddubs_epi16(hi, a_hi);
    _mm256_add_epi32(_mm256_madd_epi16(p0, s[0]), _mm256_madd_epi16(p1, s[1]))
}

// Q4_K and Q5_K share their header (d, dmin, packed scales) and its offsets.
const _: () = assert!(Q4K_D == Q5K_D && Q4K_DMIN == Q5K_DMIN && Q4K_SCALES == Q5K_SCALES);

/// What a Q4_K/Q5_K super-block's eight sub-blocks share, unpacked once.
#[derive(Clone, Copy)]
pub(super) struct Q45kHeader {
    /// The weight's `d` and `dmin` (not yet multiplied by the activation's `d`).
    pub(super) d: f32,
    pub(super) dmin: f32,
    /// The eight scales as from [`scales_u8_both_lanes`].
    pub(super) scd: __m256i,
    /// The eight mins as from [`dup_pairs_u8`], against the sixteen Q8_K bsums.
    pub(super) mins: __m256i,
}

/// Unpacks the header of Q4_K/Q5_K super-block `wb`. Panics if `wb` is shorter than the
/// header (16 bytes).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn q45k_header(wb: &[u8]) -> Q45kHeader {
    let (sc, mn) = unpack_q4k_scales(&wb[Q4K_SCALES..Q4K_SCALES + 12]);
    Q45kHeader {
        d: f16_at_hw(wb, Q4K_D),
        dmin: f16_at_hw(wb, Q4K_DMIN),
        scd: scales_u8_both_lanes(sc),
        mins: dup_pairs_u8(mn),
    }
}

/// Eight i32 lanes summing to `Σ min · bsum` over Q8_K block `ab`'s sixteen bsums, with
/// the mins as in [`Q45kHeader::mins`].
///
/// # Safety
/// `ab` is a whole Q8_K block; the CPU has AVX2.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn bsum_mins(ab: &[u8], mins: __m256i) -> __m256i {
    // SAFETY: bsums are bytes 260..292 of the 292-byte block (caller contract).
    _mm256_madd_epi16(unsafe { load32(ab, Q8K_BSUMS) }, mins)
}

/// The 64 unsigned 4-bit quants of Q4_K elements `64c..64c + 64` (`c < 4`): sub-block
/// `2c` (low nibbles) and `2c+1` (high nibbles).
///
/// # Safety
/// `c < 4` and `wb` is a whole Q4_K block (the load ends by byte 144); the CPU has AVX2.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn q4k_chunk(wb: &[u8], c: usize) -> (__m256i, __m256i) {
    let m4 = _mm256_set1_epi8(0x0f);
    // SAFETY: Q4K_QS + 32c + 32 <= 144 (caller contract).
    let x = unsafe { load32(wb, Q4K_QS + 32 * c) };
    (
        _mm256_and_si256(x, m4),
        _mm256_and_si256(_mm256_srli_epi16::<4>(x), m4),
    )
}

/// The 64 unsigned 5-bit quants of Q5_K elements `64c..64c + 64` (`c < 4`): the nibbles
/// as in [`q4k_chunk`], plus bits `2c` and `2c+1` of each `qh` byte as bit 4.
///
/// # Safety
/// `c < 4` and `wb` is a whole Q5_K block (the loads end by byte 176); the CPU has AVX2.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn q5k_chunk(wb: &[u8], c: usize) -> (__m256i, __m256i) {
    let m4 = _mm256_set1_epi8(0x0f);
    // SAFETY: Q5K_QH + 32 <= 48 and Q5K_QS + 32c + 32 <= 176 (caller contract).
    let (qh, x) = unsafe { (load32(wb, Q5K_QH), load32(wb, Q5K_QS + 32 * c)) };
    // Bit `sub` of each qh byte is bit 4 of sub-block `sub`'s quant; shifting the 16-bit
    // words right by 2c brings bits 2c and 2c+1 of every byte to bits 0 and 1.
    let hcur = _mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * c as i32));
    let h0 = _mm256_slli_epi16::<4>(_mm256_and_si256(hcur, _mm256_set1_epi8(1)));
    let h1 = _mm256_slli_epi16::<3>(_mm256_and_si256(hcur, _mm256_set1_epi8(2)));
    (
        _mm256_or_si256(_mm256_and_si256(x, m4), h0),
        _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16::<4>(x), m4), h1),
    )
}

/// Adds one super-block to the accumulator: `acc + d·sumi - dm·mins`, in that order (two
/// FMAs), with `d` and `dm` the products of the activation's and the weight's scales.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn fold_super_block(
    acc: __m256,
    d: f32,
    sumi: __m256i,
    dm: f32,
    mins: __m256i,
) -> __m256 {
    let acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    _mm256_fmadd_ps(_mm256_set1_ps(-dm), _mm256_cvtepi32_ps(mins), acc)
}

/// The Q6_K scales of super-block `wb`: the sixteen widened to i16, and as from
/// [`pair_scales`].
///
/// # Safety
/// `wb` is a whole Q6_K block (the load ends by byte 208 of 210); the CPU has AVX2.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn q6k_scale_vectors(wb: &[u8]) -> (__m256i, [__m256i; 8]) {
    // SAFETY: scales are bytes 192..208 of the block (caller contract).
    let sc16 = _mm256_cvtepi8_epi16(unsafe { load16(wb, Q6K_SCALES) });
    (sc16, pair_scales(sc16))
}

/// Q6_K's quants are stored +32 (unsigned 0..63): the starting integer sum for Q8_K block
/// `ab`, `-32·Σ scale·bsum`, with `sc16` as from [`q6k_scale_vectors`].
///
/// # Safety
/// `ab` is a whole Q8_K block; the CPU has AVX2.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn q6k_offset(ab: &[u8], sc16: __m256i) -> __m256i {
    // SAFETY: bsums are bytes 260..292 of the 292-byte block (caller contract).
    let bsums = unsafe { load32(ab, Q8K_BSUMS) };
    let offset = _mm256_slli_epi32::<5>(_mm256_madd_epi16(bsums, sc16));
    _mm256_sub_epi32(_mm256_setzero_si256(), offset)
}

/// The 128 unsigned (+32) quants of Q6_K elements `128h..128h + 128` (`h < 2`), 32 per
/// vector in element order.
///
/// # Safety
/// `h < 2` and `wb` is a whole Q6_K block (ql 0..128, qh 128..192); the CPU has AVX2.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn q6k_half(wb: &[u8], h: usize) -> [__m256i; 4] {
    let m4 = _mm256_set1_epi8(0x0f);
    let m30 = _mm256_set1_epi8(0x30);
    // SAFETY: Q6K_QL + 64h + 64 <= 128 and Q6K_QH + 32h + 32 <= 192 (caller contract).
    let (ql0, ql1, qh) = unsafe {
        (
            load32(wb, Q6K_QL + 64 * h),
            load32(wb, Q6K_QL + 64 * h + 32),
            load32(wb, Q6K_QH + 32 * h),
        )
    };
    [
        _mm256_or_si256(
            _mm256_and_si256(ql0, m4),
            _mm256_and_si256(_mm256_slli_epi16::<4>(qh), m30),
        ),
        _mm256_or_si256(
            _mm256_and_si256(ql1, m4),
            _mm256_and_si256(_mm256_slli_epi16::<2>(qh), m30),
        ),
        _mm256_or_si256(
            _mm256_and_si256(_mm256_srli_epi16::<4>(ql0), m4),
            _mm256_and_si256(qh, m30),
        ),
        _mm256_or_si256(
            _mm256_and_si256(_mm256_srli_epi16::<4>(ql1), m4),
            _mm256_and_si256(_mm256_srli_epi16::<2>(qh), m30),
        ),
    ]
}

/// Eight i32 lanes summing to `Σ scale · q·a` over Q6_K elements `128h + 32s..+ 32`
/// (`h < 2`, `s < 4`; sub-blocks `8h + 2s` and `8h + 2s + 1`): `q` their quants as from
/// [`q6k_half`], `sc` their scale vector (`[4h + s]` of [`q6k_scale_vectors`]) and `a` the
/// matching quants of Q8_K block `ab`.
///
/// # Safety
/// `h < 2`, `s < 4` and `ab` is a whole Q8_K block; the CPU has AVX2.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn q6k_scaled_sum(
    q: __m256i,
    ab: &[u8],
    h: usize,
    s: usize,
    sc: __m256i,
) -> __m256i {
    // SAFETY: Q8K_QS + 128h + 32s + 32 <= 260 (caller contract).
    let act = unsafe { load32(ab, Q8K_QS + 128 * h + 32 * s) };
    _mm256_madd_epi16(_mm256_maddubs_epi16(q, act), sc)
}

#[target_feature(enable = "avx2,fma,f16c")]
fn dot_q2_k(nb: usize, w: &[u8], a: &[u8]) -> f32 {
    let m3 = _mm256_set1_epi8(3);
    let m4 = _mm_set1_epi8(0x0f);
    let mut acc = _mm256_setzero_ps();
    for (wb, ab) in super_blocks(w, Q2K_BYTES, a, nb) {
        prefetch_ahead(wb.as_ptr(), Q2K_BYTES);
        let d_a = f32_at(ab, Q8K_D);
        let d = d_a * f16_at_hw(wb, Q2K_D);
        let dm = d_a * f16_at_hw(wb, Q2K_DMIN);
        // SAFETY: every load offset below + its width lies inside the 84-byte weight
        // block (scales 0..16, qs 16..80) or the 292-byte activation block (qs 4..260,
        // bsums 260..292), as the layout constants state.
        let (sumi, mins) = unsafe {
            let scb = load16(wb, Q2K_SCALES);
            let sc16 = _mm256_cvtepu8_epi16(_mm_and_si128(scb, m4));
            let mn16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16::<4>(scb), m4));
            let scp = pair_scales(sc16);
            let mins = _mm256_madd_epi16(load32(ab, Q8K_BSUMS), mn16);
            let mut sumi = _mm256_setzero_si256();
            for h in 0..2 {
                let mut qcur = load32(wb, Q2K_QS + 32 * h);
                for s in 0..4 {
                    let q = _mm256_and_si256(qcur, m3);
                    qcur = _mm256_srli_epi16::<2>(qcur);
                    let act = load32(ab, Q8K_QS + 128 * h + 32 * s);
                    let p = _mm256_maddubs_epi16(q, act);
                    sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, scp[4 * h + s]));
                }
            }
            (sumi, mins)
        };
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(-dm), _mm256_cvtepi32_ps(mins), acc);
    }
    hsum_ps(acc)
}

#[target_feature(enable = "avx2,fma,f16c")]
fn dot_q3_k(nb: usize, w: &[u8], a: &[u8]) -> f32 {
    let m3 = _mm256_set1_epi8(3);
    let ones = _mm256_set1_epi8(1);
    let mut acc = _mm256_setzero_ps();
    for (wb, ab) in super_blocks(w, Q3K_BYTES, a, nb) {
        prefetch_ahead(wb.as_ptr(), Q3K_BYTES);
        let d = f32_at(ab, Q8K_D) * f16_at_hw(wb, Q3K_D);
        let scales = unpack_q3k_scales(&wb[Q3K_SCALES..Q3K_SCALES + 12]);
        // SAFETY: every load offset + width lies inside the 110-byte weight block
        // (hmask 0..32, qs 32..96), the 16-byte `scales` array, or the 292-byte activation
        // block (qs 4..260).
        let sumi = unsafe {
            let sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(scales.as_ptr() as *const __m128i));
            let scp = pair_scales(sc16);
            let mut hcur = load32(wb, Q3K_HMASK);
            let mut sumi = _mm256_setzero_si256();
            for h in 0..2 {
                let mut qcur = load32(wb, Q3K_QS + 32 * h);
                for s in 0..4 {
                    let low = _mm256_and_si256(qcur, m3);
                    qcur = _mm256_srli_epi16::<2>(qcur);
                    // 4 where the high bit is clear (q = low - 4), else 0.
                    let offset = _mm256_slli_epi16::<2>(_mm256_andnot_si256(hcur, ones));
                    hcur = _mm256_srli_epi16::<1>(hcur);
                    let act = load32(ab, Q8K_QS + 128 * h + 32 * s);
                    let p = _mm256_sub_epi16(
                        _mm256_maddubs_epi16(low, act),
                        _mm256_maddubs_epi16(offset, act),
                    );
                    sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, scp[4 * h + s]));
                }
            }
            sumi
        };
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    hsum_ps(acc)
}

/// Q4_K and Q5_K: `chunk(wb, c)` gives the quants of elements `64c..64c + 64` of
/// super-block `wb` as [`q4k_chunk`] or [`q5k_chunk`] does; it is only called with whole
/// `w_bytes`-byte blocks and `c < 4`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn dot_q45k(
    nb: usize,
    w: &[u8],
    w_bytes: usize,
    a: &[u8],
    chunk: impl Fn(&[u8], usize) -> (__m256i, __m256i),
) -> f32 {
    let mut acc = _mm256_setzero_ps();
    for (wb, ab) in super_blocks(w, w_bytes, a, nb) {
        prefetch_ahead(wb.as_ptr(), w_bytes);
        let hd = q45k_header(wb);
        let d_a = f32_at(ab, Q8K_D);
        // SAFETY: `ab` is a whole Q8_K block (super_blocks) and c < 4, as
        // `scaled_pair_sum` and `bsum_mins` need.
        let (sumi, mins) = unsafe {
            let mut sumi = _mm256_setzero_si256();
            for c in 0..4 {
                let (lo, hi) = chunk(wb, c);
                let p = scaled_pair_sum(lo, hi, ab, c, chunk_scales(hd.scd, c));
                sumi = _mm256_add_epi32(sumi, p);
            }
            (sumi, bsum_mins(ab, hd.mins))
        };
        acc = fold_super_block(acc, d_a * hd.d, sumi, d_a * hd.dmin, mins);
    }
    hsum_ps(acc)
}

#[target_feature(enable = "avx2,fma,f16c")]
fn dot_q4_k(nb: usize, w: &[u8], a: &[u8]) -> f32 {
    // SAFETY: dot_q45k passes whole Q4_K blocks and c < 4.
    dot_q45k(nb, w, Q4K_BYTES, a, |wb, c| unsafe { q4k_chunk(wb, c) })
}

#[target_feature(enable = "avx2,fma,f16c")]
fn dot_q5_k(nb: usize, w: &[u8], a: &[u8]) -> f32 {
    // SAFETY: dot_q45k passes whole Q5_K blocks and c < 4.
    dot_q45k(nb, w, Q5K_BYTES, a, |wb, c| unsafe { q5k_chunk(wb, c) })
}

#[target_feature(enable = "avx2,fma,f16c")]
fn dot_q6_k(nb: usize, w: &[u8], a: &[u8]) -> f32 {
    let mut acc = _mm256_setzero_ps();
    for (wb, ab) in super_blocks(w, Q6K_BYTES, a, nb) {
        prefetch_ahead(wb.as_ptr(), Q6K_BYTES);
        let d = f32_at(ab, Q8K_D) * f16_at_hw(wb, Q6K_D);
        // SAFETY: `wb` is a whole Q6_K block and `ab` a whole Q8_K block (super_blocks),
        // h < 2 and s < 4, as the helpers need.
        let sumi = unsafe {
            let (sc16, scp) = q6k_scale_vectors(wb);
            let mut sumi = q6k_offset(ab, sc16);
            for h in 0..2 {
                for (s, q) in q6k_half(wb, h).into_iter().enumerate() {
                    let p = q6k_scaled_sum(q, ab, h, s, scp[4 * h + s]);
                    sumi = _mm256_add_epi32(sumi, p);
                }
            }
            sumi
        };
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    hsum_ps(acc)
}

/// Quantizes one super-block of 256 finite values whose `127 / amax` is finite and
/// non-zero to Q8_K, exactly
/// as [`super::scalar::quantize_q8_k`] does: same f32 `127 / amax`, same product, and
/// `vroundps` to nearest-even, which is `round_ties_even`.
#[target_feature(enable = "avx2,fma,f16c")]
fn quantize_q8_k_block(x: &[f32], amax: f32, b: &mut [u8]) {
    assert!(x.len() == QK_K && b.len() == Q8K_BYTES, "Q8_K block sizes");
    let d = amax / 127.0;
    let id = _mm256_set1_ps(127.0 / amax);
    let (lo, hi) = (_mm256_set1_ps(-127.0), _mm256_set1_ps(127.0));
    // Undo the lane interleaving of the two packs below.
    let order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    b[Q8K_D..Q8K_D + 4].copy_from_slice(&d.to_le_bytes());
    for k in 0..8 {
        // SAFETY: `x` has 256 values (asserted), so 32k + 8j + 8 <= 256 for k < 8, j < 4;
        // `b` has 292 bytes and the store covers 4 + 32k .. 4 + 32k + 32 <= 260.
        unsafe {
            let q = |j: usize| {
                let v = _mm256_loadu_ps(x.as_ptr().add(32 * k + 8 * j));
                let r = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
                    _mm256_mul_ps(v, id),
                );
                _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(r, lo), hi))
            };
            let w01 = _mm256_packs_epi32(q(0), q(1));
            let w23 = _mm256_packs_epi32(q(2), q(3));
            let bytes = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(w01, w23), order);
            _mm256_storeu_si256(b.as_mut_ptr().add(Q8K_QS + 32 * k) as *mut __m256i, bytes);
        }
    }
    fill_q8k_bsums(b);
}

/// `max |x|` over 256 values, and whether any is NaN.
#[target_feature(enable = "avx2,fma,f16c")]
fn amax_and_nan(x: &[f32]) -> (f32, bool) {
    assert_eq!(x.len(), QK_K, "Q8_K block size");
    let abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fff_ffff));
    let mut max = _mm256_setzero_ps();
    let mut nan = _mm256_setzero_ps();
    for k in 0..32 {
        // SAFETY: `x` has 256 values (asserted) and 8k + 8 <= 256 for k < 32.
        let v = unsafe { _mm256_loadu_ps(x.as_ptr().add(8 * k)) };
        max = _mm256_max_ps(max, _mm256_and_ps(v, abs_mask));
        nan = _mm256_or_ps(nan, _mm256_cmp_ps::<_CMP_UNORD_Q>(v, v));
    }
    let m = _mm_max_ps(_mm256_castps256_ps128(max), _mm256_extractf128_ps::<1>(max));
    let m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    let m = _mm_max_ss(m, _mm_movehdup_ps(m));
    (_mm_cvtss_f32(m), _mm256_movemask_ps(nan) != 0)
}

/// AVX2 Q8_K quantizer, byte-identical to the scalar one. Blocks that are all zero, hold
/// a NaN or infinity, or are so small that `127 / amax` overflows go through the scalar
/// code, which defines those cases.
pub(super) fn quantize_q8_k(src: &[f32], dst: &mut [u8]) {
    super::scalar::check_quantize_args(src, dst);
    for (x, b) in src.chunks_exact(QK_K).zip(dst.chunks_exact_mut(Q8K_BYTES)) {
        // SAFETY: only handed out by `kquants::quantize_fn` for Avx2 (AVX-512 runs reach it
        // through the fallback order, which asks for Avx2 by name), after
        // `quant::quantize_fn` confirmed the CPU has AVX2, FMA and F16C.
        let (amax, nan) = unsafe { amax_and_nan(x) };
        if nan || amax == 0.0 || !amax.is_finite() || !(127.0 / amax).is_finite() {
            super::scalar::quantize_q8_k(x, b);
        } else {
            // SAFETY: as above.
            unsafe { quantize_q8_k_block(x, amax, b) };
        }
    }
}

safe_vec_dots! {
    vec_dot_q2_k => dot_q2_k, Q2K_BYTES;
    vec_dot_q3_k => dot_q3_k, Q3K_BYTES;
    vec_dot_q4_k => dot_q4_k, Q4K_BYTES;
    vec_dot_q5_k => dot_q5_k, Q5K_BYTES;
    vec_dot_q6_k => dot_q6_k, Q6K_BYTES;
}
