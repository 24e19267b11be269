//! The AVX-512 VNNI mat-mat of Q4_K, Q5_K and Q6_K over packed weight panels (prefill and
//! batched decode), the K-quant counterpart of `legacy::avx512_panel`: sixteen weight rows
//! are repacked so that one `vpdpbusd` multiplies four elements of all sixteen rows with
//! the same four elements of one activation row (broadcast), the sixteen i32 lanes being
//! the sixteen rows' partial sums, and every per-super-block float step serves sixteen rows.
//!
//! Panel layout, per 256-element super-block ([`PANEL_KBLOCK`] bytes at `b · PANEL_KBLOCK`):
//! - 64 groups of 64 bytes (elements `4g..4g + 4`): bytes `4l..4l + 4` are those four
//!   unsigned quants of row `l` (Q4_K 0..15, Q5_K 0..31, Q6_K the stored 0..63);
//! - the sub-block scales as i32, one 64-byte vector per sub-block (8 for Q4_K/Q5_K,
//!   16 for Q6_K; room for 16);
//! - eight 64-byte vectors of i16 pairs that meet Q8_K's `bsums` (sums of 16 activation
//!   quants) in one `vpdpwssd` each: Q4_K/Q5_K `(min[k], min[k])` (both 16-element halves of
//!   sub-block `k`), Q6_K `(scale[2k], scale[2k + 1])`;
//! - the sixteen rows' `d` as f32, then their `dmin` as f32 (0 for Q6_K).
//!
//! Rows past the last real one are zero, so their results are 0 and ignored.
//!
//! Bits: every result equals the scalar reference ([`super::dot_scalar`]) exactly. Per
//! super-block the integer sums are exact: `isum = Σ_sub scale·Σ q·y` (with Q6_K's offset
//! removed as `32·Σ_sub scale·bsum`, an exact integer identity) and `isum_mins =
//! Σ min·bsum`; then the lane computes the reference's float step with the same roundings,
//! no FMA, in the same order. The AVX-512 single-row kernels of these types
//! ([`super::avx512`]) end each super-block with the same scalar float step, so batched,
//! unbatched and scalar forward passes agree bit for bit at this level.

use super::layout::*;
use crate::quant::PANEL_ROWS;
use std::arch::x86_64::*;

/// Format tags for the const generic of this module's functions.
pub(super) const Q4K: u8 = 0;
pub(super) const Q5K: u8 = 1;
pub(super) const Q6K: u8 = 2;

const QUANTS: usize = 64 * 64;
const SCALES: usize = QUANTS;
const PAIRS: usize = SCALES + 16 * 64;
const D: usize = PAIRS + 8 * 64;
const DMIN: usize = D + 64;
/// Bytes of one super-block of a panel.
pub(super) const PANEL_KBLOCK: usize = DMIN + 64;

const fn block_bytes(fmt: u8) -> usize {
    match fmt {
        Q4K => Q4K_BYTES,
        Q5K => Q5K_BYTES,
        _ => Q6K_BYTES,
    }
}

/// Sub-blocks per super-block: 8 of 32 elements (Q4_K, Q5_K) or 16 of 16 (Q6_K).
const fn sub_blocks(fmt: u8) -> usize {
    if fmt == Q6K {
        16
    } else {
        8
    }
}

/// Packs `rows` (at most [`PANEL_ROWS`]) weight rows of `n` elements of format `FMT`, back
/// to back in `w`, into `panel` (resized to the panel's length; rows past `rows` are zero).
pub(super) fn pack<const FMT: u8>(n: usize, rows: usize, w: &[u8], panel: &mut Vec<u8>) {
    assert!(rows <= PANEL_ROWS, "panel pack: {rows} rows > {PANEL_ROWS}");
    assert!(
        n.is_multiple_of(QK_K),
        "panel pack: {n} is not whole super-blocks"
    );
    let nb = n / QK_K;
    let row_bytes = nb * block_bytes(FMT);
    assert_eq!(w.len(), rows * row_bytes, "panel pack: {} bytes", w.len());
    panel.clear();
    panel.resize(nb * PANEL_KBLOCK, 0);
    let mut stage = [[0u8; QK_K]; PANEL_ROWS];
    for b in 0..nb {
        let dst = &mut panel[b * PANEL_KBLOCK..(b + 1) * PANEL_KBLOCK];
        for (l, q) in stage.iter_mut().enumerate().take(rows) {
            let off = l * row_bytes + b * block_bytes(FMT);
            let wb = &w[off..off + block_bytes(FMT)];
            // SAFETY: `wb` is one whole block of this format and `q` holds 256 bytes. This
            // fn is only handed out by `kquants::panel_fn` for `SimdLevel::Avx512`, after
            // `quant::panel_fn` checked that the CPU supports that level.
            unsafe { unpack_quants::<FMT>(wb, q) };
            pack_factors::<FMT>(wb, l, dst);
        }
        // SAFETY: `stage` is 16 rows of 256 bytes (rows past `rows` zero), `dst` holds the
        // 4096 bytes of groups; the CPU has the target features (as above).
        unsafe { transpose(&stage, dst) };
    }
}

/// Row `l`'s scales, pairs, `d` and `dmin` of one super-block `wb` into the panel block.
fn pack_factors<const FMT: u8>(wb: &[u8], l: usize, dst: &mut [u8]) {
    let mut put = |off: usize, bytes: [u8; 4]| {
        dst[off + 4 * l..off + 4 * l + 4].copy_from_slice(&bytes);
    };
    if FMT == Q6K {
        let sc = q6k_scales(wb);
        for (sub, &s) in sc.iter().enumerate() {
            put(SCALES + 64 * sub, (s as i32).to_le_bytes());
        }
        for k in 0..8 {
            let pair =
                (sc[2 * k] as i16 as u16 as u32) | ((sc[2 * k + 1] as i16 as u16 as u32) << 16);
            put(PAIRS + 64 * k, pair.to_le_bytes());
        }
        put(D, f16_at(wb, Q6K_D).to_le_bytes());
    } else {
        let (scales_at, d_at, dmin_at) = if FMT == Q4K {
            (Q4K_SCALES, Q4K_D, Q4K_DMIN)
        } else {
            (Q5K_SCALES, Q5K_D, Q5K_DMIN)
        };
        let (sc, mn) = unpack_q4k_scales(&wb[scales_at..scales_at + 12]);
        for sub in 0..8 {
            put(SCALES + 64 * sub, (sc[sub] as i32).to_le_bytes());
            let m = mn[sub] as u32;
            put(PAIRS + 64 * sub, (m | (m << 16)).to_le_bytes());
        }
        put(D, f16_at(wb, d_at).to_le_bytes());
        put(DMIN, f16_at(wb, dmin_at).to_le_bytes());
    }
}

/// The 256 quants of one block, unsigned, in element order (see `layout`'s `q*k_quants`,
/// here without Q6_K's `- 32`).
///
/// # Safety
/// `wb` holds one whole block of format `FMT`; the CPU has AVX2.
#[target_feature(enable = "avx2")]
unsafe fn unpack_quants<const FMT: u8>(wb: &[u8], q: &mut [u8; QK_K]) {
    assert_eq!(wb.len(), block_bytes(FMT));
    let m4 = _mm256_set1_epi8(0x0f);
    let (w, q) = (wb.as_ptr(), q.as_mut_ptr());
    // SAFETY: every load reads 32 bytes inside the block (Q4_K qs 16..144; Q5_K qh 16..48
    // and qs 48..176; Q6_K ql 0..128 and qh 128..192; `wb` is one whole block, asserted),
    // every store writes 32 bytes at 0, 32, ..., 224 of the 256-byte `q`; `loadu`/`storeu`
    // need no alignment.
    unsafe {
        let load = |off: usize| _mm256_loadu_si256(w.add(off) as *const __m256i);
        match FMT {
            Q4K | Q5K => {
                let qs = if FMT == Q4K { Q4K_QS } else { Q5K_QS };
                // Q4_K has no high bits; its `qh` is never read.
                let qh = if FMT == Q5K {
                    load(Q5K_QH)
                } else {
                    _mm256_setzero_si256()
                };
                for c in 0..4 {
                    let x = load(qs + 32 * c);
                    for half in 0..2 {
                        let sub = 2 * c + half;
                        let nib = if half == 0 {
                            x
                        } else {
                            _mm256_srli_epi16::<4>(x)
                        };
                        let mut v = _mm256_and_si256(nib, m4);
                        if FMT == Q5K {
                            // Bit `sub` of qh[l] is bit 4 of element 32·sub + l.
                            let bit = _mm256_srl_epi16(qh, _mm_cvtsi32_si128(sub as i32));
                            let bit = _mm256_and_si256(bit, _mm256_set1_epi8(1));
                            v = _mm256_or_si256(v, _mm256_slli_epi16::<4>(bit));
                        }
                        _mm256_storeu_si256(q.add(32 * sub) as *mut __m256i, v);
                    }
                }
            }
            _ => {
                for h in 0..2 {
                    let qh = load(Q6K_QH + 32 * h);
                    for s in 0..4 {
                        let ql = load(Q6K_QL + 64 * h + 32 * (s % 2));
                        let low = if s < 2 {
                            ql
                        } else {
                            _mm256_srli_epi16::<4>(ql)
                        };
                        let low = _mm256_and_si256(low, m4);
                        let high = _mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * s as i32));
                        let high = _mm256_and_si256(high, _mm256_set1_epi8(3));
                        let v = _mm256_or_si256(low, _mm256_slli_epi16::<4>(high));
                        _mm256_storeu_si256(q.add(128 * h + 32 * s) as *mut __m256i, v);
                    }
                }
            }
        }
    }
}

/// Gathers the sixteen staged rows into the panel block's 64 groups of four quants.
///
/// # Safety
/// `dst` holds at least 4096 bytes; the CPU has AVX-512F.
#[target_feature(enable = "avx512f")]
unsafe fn transpose(stage: &[[u8; QK_K]; PANEL_ROWS], dst: &mut [u8]) {
    assert!(dst.len() >= QUANTS);
    let lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    let row_dwords = _mm512_slli_epi32::<6>(lanes);
    let base = stage.as_ptr() as *const i32;
    for g in 0..64 {
        // SAFETY: dword `64l + g` (l < 16, g < 64) is inside the 16 × 256-byte stage; the
        // store writes bytes 64g..64g + 64 of `dst` (asserted to hold 4096).
        unsafe {
            let v = _mm512_i32gather_epi32::<4>(
                _mm512_add_epi32(row_dwords, _mm512_set1_epi32(g)),
                base,
            );
            _mm512_storeu_si512(dst.as_mut_ptr().add(64 * g as usize) as *mut __m512i, v);
        }
    }
}

/// K-quant panels read Q8_K's own `bsums`, so they need no per-block activation sums:
/// fills `sums` with zeros (the driver's buffer has one per super-block).
pub(super) fn act_sums(n: usize, _a: &[u8], sums: &mut [i32]) {
    sums[..n / QK_K].fill(0);
}

/// `R` activation rows (`act_bytes` apart from `a`) against the panel: row `r`'s sixteen
/// results go to `out[16r..16r + 16]`.
///
/// # Safety
/// The panel holds `nb` super-blocks, each activation row `nb` Q8_K blocks, `out` has `16·R`
/// floats; the CPU has this fn's target features.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
unsafe fn panel_rows<const FMT: u8, const R: usize>(
    nb: usize,
    panel: *const u8,
    a: *const u8,
    act_bytes: usize,
    out: *mut f32,
) {
    let subs = sub_blocks(FMT);
    let groups = 64 / subs;
    let mut acc = [_mm512_setzero_ps(); R];
    for b in 0..nb {
        // SAFETY: super-block b < nb of the panel and of every activation row is in bounds
        // (caller contract): panel offsets stay below PANEL_KBLOCK, activation offsets
        // below Q8K_BYTES.
        unsafe {
            let p = panel.add(b * PANEL_KBLOCK);
            let ab = |r: usize| a.add(r * act_bytes + b * Q8K_BYTES);
            let mut isum = [_mm512_setzero_si512(); R];
            for sub in 0..subs {
                let mut even = [_mm512_setzero_si512(); R];
                let mut odd = [_mm512_setzero_si512(); R];
                for g in (sub * groups..(sub + 1) * groups).step_by(2) {
                    let w0 = _mm512_loadu_si512(p.add(64 * g) as *const __m512i);
                    let w1 = _mm512_loadu_si512(p.add(64 * g + 64) as *const __m512i);
                    for r in 0..R {
                        let y = ab(r).add(Q8K_QS + 4 * g) as *const i32;
                        even[r] =
                            _mm512_dpbusd_epi32(even[r], w0, _mm512_set1_epi32(y.read_unaligned()));
                        odd[r] = _mm512_dpbusd_epi32(
                            odd[r],
                            w1,
                            _mm512_set1_epi32(y.add(1).read_unaligned()),
                        );
                    }
                }
                let sc = _mm512_loadu_si512(p.add(SCALES + 64 * sub) as *const __m512i);
                for r in 0..R {
                    let part = _mm512_add_epi32(even[r], odd[r]);
                    isum[r] = _mm512_add_epi32(isum[r], _mm512_mullo_epi32(part, sc));
                }
            }
            let dw = _mm512_loadu_ps(p.add(D) as *const f32);
            let dmin = _mm512_loadu_ps(p.add(DMIN) as *const f32);
            for r in 0..R {
                let bsums = ab(r).add(Q8K_BSUMS) as *const i32;
                let mut pairs = _mm512_setzero_si512();
                for k in 0..8 {
                    let pk = _mm512_loadu_si512(p.add(PAIRS + 64 * k) as *const __m512i);
                    pairs = _mm512_dpwssd_epi32(
                        pairs,
                        pk,
                        _mm512_set1_epi32(bsums.add(k).read_unaligned()),
                    );
                }
                let d_a = _mm512_set1_ps((ab(r).add(Q8K_D) as *const f32).read_unaligned());
                let t = if FMT == Q6K {
                    let isum = _mm512_sub_epi32(isum[r], _mm512_slli_epi32::<5>(pairs));
                    _mm512_mul_ps(_mm512_mul_ps(d_a, dw), _mm512_cvtepi32_ps(isum))
                } else {
                    _mm512_sub_ps(
                        _mm512_mul_ps(_mm512_mul_ps(d_a, dw), _mm512_cvtepi32_ps(isum[r])),
                        _mm512_mul_ps(_mm512_mul_ps(d_a, dmin), _mm512_cvtepi32_ps(pairs)),
                    )
                };
                acc[r] = _mm512_add_ps(acc[r], t);
            }
        }
    }
    for (r, v) in acc.into_iter().enumerate() {
        // SAFETY: `out` holds 16·R floats (caller contract).
        unsafe { _mm512_storeu_ps(out.add(16 * r), v) };
    }
}

/// The packed panel against the activation rows back to back in `a` (each `n` elements of
/// Q8_K; `sums` is not read): `out[16·r + l]` is the dot product of panel row `l` with
/// activation row `r`, bit-identical to the scalar reference. `out.len()` is a multiple
/// of 16.
pub(super) fn dot<const FMT: u8>(n: usize, panel: &[u8], a: &[u8], _sums: &[i32], out: &mut [f32]) {
    assert!(
        out.len().is_multiple_of(PANEL_ROWS),
        "panel dot: {} outputs",
        out.len()
    );
    assert!(
        n.is_multiple_of(QK_K),
        "panel dot: {n} is not whole super-blocks"
    );
    let count = out.len() / PANEL_ROWS;
    let nb = n / QK_K;
    let act_bytes = nb * Q8K_BYTES;
    assert!(
        panel.len() >= nb * PANEL_KBLOCK && a.len() >= count * act_bytes,
        "panel dot: panel {} bytes, activations {} bytes for {count} rows of {n}",
        panel.len(),
        a.len()
    );
    let (panel, a, out) = (panel.as_ptr(), a.as_ptr(), out.as_mut_ptr());
    let mut r = 0;
    while r < count {
        // SAFETY: the asserts above cover every super-block of the panel and of the `count`
        // activation rows, and 16 outputs per row; rows r..r + 4 (or r) are among them. This
        // fn is only handed out by `kquants::panel_fn` for `SimdLevel::Avx512`, after
        // `quant::panel_fn` checked that the CPU supports that level.
        unsafe {
            let (a_r, o_r) = (a.add(r * act_bytes), out.add(16 * r));
            if r + 4 <= count {
                panel_rows::<FMT, 4>(nb, panel, a_r, act_bytes, o_r);
                r += 4;
            } else {
                panel_rows::<FMT, 1>(nb, panel, a_r, act_bytes, o_r);
                r += 1;
            }
        }
    }
}
