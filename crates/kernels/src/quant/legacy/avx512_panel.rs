//! The AVX-512 VNNI mat-mat of the legacy formats over packed weight panels (prefill and
//! batched decode): sixteen weight rows are repacked so that one `vpdpbusd` multiplies four
//! elements of all sixteen rows with the same four elements of one activation row,
//! broadcast. The sixteen i32 lanes are then the sixteen rows' block sums, with no
//! horizontal reduction, and every per-block float operation serves sixteen rows at once.
//!
//! Panel layout, per 32-element block `b` ([`PANEL_BLOCK`] bytes at `b · PANEL_BLOCK`):
//! eight 64-byte groups `g` (elements `4g..4g + 4`), in which bytes `4l..4l + 4` are those
//! four unsigned quants of row `l` (nibbles, 5-bit quants, or Q8_0's `x + 128`), then the
//! sixteen rows' `d` as f32, then their `m` as f32 (0 for the `_0` formats). Rows past the
//! last real one are zero, so their results are 0 and ignored. Packing unpacks each row's
//! block with the `rows4` unpacker into a 16 × 32-byte stage and gathers the groups out
//! of it; the scales come from one gather of the sixteen rows' f16 fields.
//!
//! Bits: every result equals the scalar reference ([`super::scalar`]) exactly. Per block
//! the exact integer `Σ (q − offset)·y` is formed (`offset·Σy` subtracted in integers, from
//! the activation row's per-block sums, [`act_sums`]), and the lane computes
//! `(d_w·d_a)·isum (+ m_w·s_a)` and adds it to its running sum block by block from +0.0,
//! with the same roundings, no FMA, in the reference's order. The AVX-512 one-row and
//! four-stream kernels ([`super::avx512`]) do the same, so batched, unbatched and scalar
//! forward passes agree bit for bit at this level.

use super::avx512::{offset, quants, size, Q4_1, Q5_1};
use super::{check_dot_args, Q8_1_SIZE};
use crate::quant::PANEL_ROWS;
use std::arch::x86_64::*;

/// Bytes of one block of a panel: 8 groups of 64 quant bytes, 16 `d`, 16 `m`.
pub(super) const PANEL_BLOCK: usize = 8 * 64 + 2 * 64;

/// Packs `rows` (at most [`PANEL_ROWS`]) weight rows of `n` elements of format `FMT`, back
/// to back in `w`, into `panel` (resized to the panel's length; rows past `rows` are zero).
pub(super) fn pack<const FMT: u8>(n: usize, rows: usize, w: &[u8], panel: &mut Vec<u8>) {
    assert!(rows <= PANEL_ROWS, "panel pack: {rows} rows > {PANEL_ROWS}");
    let nb = check_dot_args(n, &[], 0, &[], 0);
    let row_bytes = nb * size(FMT);
    assert_eq!(w.len(), rows * row_bytes, "panel pack: {} bytes", w.len());
    panel.clear();
    panel.resize(nb * PANEL_BLOCK, 0);
    if rows == 0 {
        return;
    }
    // Offsets of the rows' blocks from row 0's, for the scale gathers (i32: a panel's rows
    // span far less than 2 GiB).
    let stride = i32::try_from(row_bytes).expect("panel pack: rows over 2 GiB");
    for b in 0..nb {
        // SAFETY: block b < nb of each of the `rows` rows is inside `w` (asserted above),
        // and block b of the panel is inside `panel` (resized above). This fn is only
        // handed out by `legacy::panel_fn` for `SimdLevel::Avx512`, after
        // `quant::panel_fn` checked that the CPU supports that level.
        unsafe {
            let dst = panel.as_mut_ptr().add(b * PANEL_BLOCK);
            pack_block::<FMT>(w.as_ptr().add(b * size(FMT)), stride, rows, dst);
        }
    }
}

/// Packs block `b` of `rows` weight rows (block of row `l` at `w + l·stride`) into the
/// panel block at `dst` (whose bytes are zero).
///
/// # Safety
/// The `rows` (1 to 16) blocks are readable, [`PANEL_BLOCK`] bytes at `dst` writable; the
/// CPU has this fn's target features.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
unsafe fn pack_block<const FMT: u8>(w: *const u8, stride: i32, rows: usize, dst: *mut u8) {
    // The rows' unsigned quants, row-major, then gathered into groups of four elements.
    let mut stage = [_mm256_setzero_si256(); PANEL_ROWS];
    for (l, q) in stage.iter_mut().enumerate().take(rows) {
        // SAFETY: row l < rows's block is readable (caller contract).
        *q = unsafe { quants::<FMT>(w.add(l * stride as usize)) };
    }
    let lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    let mask: __mmask16 = if rows >= 16 { !0 } else { (1u16 << rows) - 1 };
    // SAFETY: the gathers read the stage array (16 × 32 bytes) at dword `8l + g`, and the
    // first four bytes of the blocks of rows < `rows` (masked); the stores stay within
    // the panel block at `dst` (caller contract).
    unsafe {
        let base = stage.as_ptr() as *const i32;
        for g in 0..8 {
            let idx = _mm512_add_epi32(_mm512_slli_epi32::<3>(lanes), _mm512_set1_epi32(g));
            let v = _mm512_i32gather_epi32::<4>(idx, base);
            _mm512_storeu_si512(dst.add(64 * g as usize) as *mut __m512i, v);
        }
        let offs = _mm512_mullo_epi32(lanes, _mm512_set1_epi32(stride));
        let f = _mm512_mask_i32gather_epi32::<1>(_mm512_setzero_si512(), mask, offs, w as _);
        let d = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(f));
        _mm512_storeu_ps(dst.add(512) as *mut f32, _mm512_maskz_mov_ps(mask, d));
        if matches!(FMT, Q4_1 | Q5_1) {
            let m = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32::<16>(f)));
            _mm512_storeu_ps(dst.add(576) as *mut f32, _mm512_maskz_mov_ps(mask, m));
        }
    }
}

/// The per-block sums `Σy` of the quants of one Q8_1 activation row of `n` elements.
pub(super) fn act_sums(n: usize, a: &[u8], sums: &mut [i32]) {
    let nb = check_dot_args(n, &[], 0, a, Q8_1_SIZE);
    for (s, ba) in sums[..nb].iter_mut().zip(a.chunks_exact(Q8_1_SIZE)) {
        *s = ba[8..40].iter().map(|&q| q as i8 as i32).sum();
    }
}

/// `R` activation rows (`act_bytes` apart from `a`, their block sums `nb` apart from
/// `sums`) against the panel: row `r`'s sixteen results go to `out[16r..16r + 16]`.
///
/// # Safety
/// The panel holds `nb` blocks, each activation row `nb` Q8_1 blocks and each sums row
/// `nb` values, `out` has `16·R` floats; the CPU has this fn's target features.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
unsafe fn panel_rows<const FMT: u8, const R: usize>(
    nb: usize,
    panel: *const u8,
    a: *const u8,
    act_bytes: usize,
    sums: *const i32,
    out: *mut f32,
) {
    let mut acc = [_mm512_setzero_ps(); R];
    for b in 0..nb {
        // SAFETY: block b < nb of the panel, of every activation row and of every sums row
        // is in bounds (caller contract); `out` holds 16·R floats.
        unsafe {
            let p = panel.add(b * PANEL_BLOCK);
            let mut even = [_mm512_setzero_si512(); R];
            let mut odd = [_mm512_setzero_si512(); R];
            for g in (0..8).step_by(2) {
                let w0 = _mm512_loadu_si512(p.add(64 * g) as *const __m512i);
                let w1 = _mm512_loadu_si512(p.add(64 * g + 64) as *const __m512i);
                for r in 0..R {
                    let y = a.add(r * act_bytes + b * Q8_1_SIZE + 8 + 4 * g);
                    let y0 = _mm512_set1_epi32((y as *const i32).read_unaligned());
                    let y1 = _mm512_set1_epi32((y.add(4) as *const i32).read_unaligned());
                    even[r] = _mm512_dpbusd_epi32(even[r], w0, y0);
                    odd[r] = _mm512_dpbusd_epi32(odd[r], w1, y1);
                }
            }
            let dw = _mm512_loadu_ps(p.add(512) as *const f32);
            let mw = _mm512_loadu_ps(p.add(576) as *const f32);
            for r in 0..R {
                let isum = _mm512_add_epi32(even[r], odd[r]);
                let ba = a.add(r * act_bytes + b * Q8_1_SIZE);
                acc[r] = block_step::<FMT>(acc[r], isum, dw, mw, ba, *sums.add(r * nb + b));
            }
        }
    }
    for (r, v) in acc.into_iter().enumerate() {
        // SAFETY: `out` holds 16·R floats (caller contract).
        unsafe { _mm512_storeu_ps(out.add(16 * r), v) };
    }
}

/// Checks the lengths a [`crate::quant::PanelDotFn`] relies on; returns the blocks per
/// row, the bytes per activation row and the number of activation rows. Panics on a
/// caller bug.
pub(super) fn check_panel_args(
    n: usize,
    panel: &[u8],
    a: &[u8],
    sums: &[i32],
    out: &[f32],
) -> (usize, usize, usize) {
    assert!(
        out.len().is_multiple_of(PANEL_ROWS),
        "panel dot: {} outputs",
        out.len()
    );
    let count = out.len() / PANEL_ROWS;
    let nb = check_dot_args(n, &[], 0, &[], 0);
    let act_bytes = nb * Q8_1_SIZE;
    assert!(
        panel.len() >= nb * PANEL_BLOCK && a.len() >= count * act_bytes && sums.len() >= count * nb,
        "panel dot: panel {} bytes, activations {} bytes, {} sums for {count} rows of {n}",
        panel.len(),
        a.len(),
        sums.len()
    );
    (nb, act_bytes, count)
}

/// One block's float step for one activation row and the sixteen panel rows: `acc` plus
/// `(d_w·d_a)·(isum − offset·Σy) (+ m_w·s_a)`, the scalar reference's operations, with
/// `isum` the sixteen rows' exact `Σ q·y`, `dw`/`mw` the panel block's factors, `ba` the
/// activation block and `sum` its `Σy`.
///
/// # Safety
/// Eight bytes at `ba` are readable; the CPU has this fn's target features.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
pub(super) unsafe fn block_step<const FMT: u8>(
    acc: __m512,
    isum: __m512i,
    dw: __m512,
    mw: __m512,
    ba: *const u8,
    sum: i32,
) -> __m512 {
    let off = offset(FMT);
    let isum = if off != 0 {
        _mm512_sub_epi32(isum, _mm512_set1_epi32(off * sum))
    } else {
        isum
    };
    // SAFETY: `d` and `s` are the first eight bytes of the block (caller contract).
    let (da, sa) = unsafe {
        (
            (ba as *const f32).read_unaligned(),
            (ba.add(4) as *const f32).read_unaligned(),
        )
    };
    let mut t = _mm512_mul_ps(
        _mm512_mul_ps(dw, _mm512_set1_ps(da)),
        _mm512_cvtepi32_ps(isum),
    );
    if matches!(FMT, Q4_1 | Q5_1) {
        t = _mm512_add_ps(t, _mm512_mul_ps(mw, _mm512_set1_ps(sa)));
    }
    _mm512_add_ps(acc, t)
}

/// `count` activation rows (from `a`, `act_bytes` apart, sums from `sums`, `nb` apart)
/// against the panel, four at a time, results to `out` (16 per row).
///
/// # Safety
/// As [`panel_rows`] for `count` rows.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
pub(super) unsafe fn dot_rows<const FMT: u8>(
    nb: usize,
    panel: *const u8,
    a: *const u8,
    act_bytes: usize,
    sums: *const i32,
    out: *mut f32,
    count: usize,
) {
    let mut r = 0;
    while r < count {
        // SAFETY: rows r..r + 4 (or r) are among the `count` rows (caller contract).
        unsafe {
            let (a_r, s_r, o_r) = (a.add(r * act_bytes), sums.add(r * nb), out.add(16 * r));
            if r + 4 <= count {
                panel_rows::<FMT, 4>(nb, panel, a_r, act_bytes, s_r, o_r);
                r += 4;
            } else {
                panel_rows::<FMT, 1>(nb, panel, a_r, act_bytes, s_r, o_r);
                r += 1;
            }
        }
    }
}

/// The packed panel against the activation rows back to back in `a` (each `n` elements
/// of Q8_1, with their [`act_sums`] back to back in `sums`): `out[16·r + l]` is the dot
/// product of panel row `l` with activation row `r`, bit-identical to the scalar
/// reference. `out.len()` is a multiple of 16.
pub(super) fn dot<const FMT: u8>(n: usize, panel: &[u8], a: &[u8], sums: &[i32], out: &mut [f32]) {
    let (nb, act_bytes, count) = check_panel_args(n, panel, a, sums, out);
    // SAFETY: the asserts above cover every block of the panel and of the `count`
    // activation and sums rows, and 16 outputs per row. This fn is only handed out by
    // `legacy::panel_fn` for `SimdLevel::Avx512`, after `quant::panel_fn` checked that the
    // CPU supports that level.
    unsafe {
        dot_rows::<FMT>(
            nb,
            panel.as_ptr(),
            a.as_ptr(),
            act_bytes,
            sums.as_ptr(),
            out.as_mut_ptr(),
            count,
        )
    }
}
