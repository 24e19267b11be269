//! AMX-INT8 level of the legacy formats' mat-mat (`SimdLevel::Amx`), over the same packed
//! panels as [`super::avx512_panel`]: per 32-element block, one `tdpbsud` multiplies
//! sixteen activation rows (tile A: 16 rows × 32 signed bytes, loaded straight from the
//! Q8_1 rows with their row stride) by the panel block (tile B: its eight 64-byte groups,
//! which are exactly AMX's B layout: four consecutive elements of sixteen weight rows per
//! tile row), giving the 16 × 16 exact block sums in tile C. C is stored and the float
//! step of the AVX-512 panel ([`super::avx512_panel::block_step`]) runs per activation row
//! (four blocks per round of tile instructions, each into its own C tile),
//! so every result is the scalar reference's bits, as at the AVX-512 level. Rows left over
//! from groups of sixteen go through the AVX-512 panel kernel.
//!
//! The tile instructions are written with `asm!` (stable Rust has no AMX intrinsics);
//! `dispatch` only offers this level after Linux granted the process the tile data state
//! (`arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`). No other code in the process
//! uses the tile registers, so their contents survive between the `asm!` blocks of one
//! call; each call loads its own tile configuration and releases the tiles at the end.

use super::avx512_panel::{block_step, check_panel_args, dot_rows, PANEL_BLOCK};
use super::Q8_1_SIZE;
use std::arch::asm;
use std::arch::x86_64::*;

/// A 64-byte AMX tile configuration (palette 1): tiles 0–3 = C (16 rows × 64 bytes:
/// sixteen i32 per activation row, one tile per block of a group of four), tiles 4–5 = A
/// (16 rows × 32 bytes), tiles 6–7 = B (8 rows × 64 bytes).
#[repr(C, align(64))]
struct TileConfig([u8; 64]);

const fn tile_config() -> TileConfig {
    let mut c = [0u8; 64];
    c[0] = 1; // palette
              // Bytes per row (u16 at 16 + 2t) and rows (u8 at 48 + t) of tile t.
    let mut t = 0;
    while t < 8 {
        let (colsb, rows) = match t {
            0..=3 => (64, 16),
            4 | 5 => (32, 16),
            _ => (64, 8),
        };
        c[16 + 2 * t] = colsb;
        c[48 + t] = rows;
        t += 1;
    }
    TileConfig(c)
}

/// Blocks multiplied per round of tile instructions (one C tile each), so that the tile
/// loads and multiplies of a round overlap instead of each waiting for the last store.
const GROUP: usize = 4;

/// Fewest activation rows for which the tiles are used: at 16 rows (one tile pass per
/// block) AMX measured 0.92–1.00× the AVX-512 panel kernel, at 64 rows 1.02–1.13×.
const AMX_MIN_ROWS: usize = 32;

/// Sixteen i32 per activation row and block of a group, 64-byte aligned for the tile
/// stores and the loads.
#[repr(C, align(64))]
struct Sums16([i32; 256 * GROUP]);

/// Sixteen activation rows against the panel, results to `out` (sixteen per row).
///
/// # Safety
/// As `avx512_panel::panel_rows` for sixteen rows; the CPU has AMX-INT8 and this fn's
/// target features, and the process may use the tile data state.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")]
unsafe fn rows16<const FMT: u8>(
    nb: usize,
    panel: *const u8,
    a: *const u8,
    act_bytes: usize,
    sums: *const i32,
    out: *mut f32,
) {
    let cfg = tile_config();
    let mut c = Sums16([0; 256 * GROUP]);
    let mut acc = [_mm512_setzero_ps(); 16];
    // SAFETY: the configuration is 64 readable, aligned bytes; AMX is available and
    // permitted (caller contract).
    unsafe { asm!("ldtilecfg [{0}]", in(reg) cfg.0.as_ptr(), options(nostack, readonly)) };
    let mut b = 0;
    while b < nb {
        let blocks = GROUP.min(nb - b);
        // SAFETY: tile A reads 32 bytes of a block's quants in each of the sixteen
        // activation rows (`act_bytes` apart), tile B a panel block's 512 quant bytes, for
        // blocks b..b + blocks < nb, and the stores write `c`: all in bounds (caller
        // contract).
        unsafe {
            let (a_b, p_b) = (a.add(b * Q8_1_SIZE + 8), panel.add(b * PANEL_BLOCK));
            let cp = c.0.as_mut_ptr();
            if blocks == GROUP {
                asm!(
                    "tilezero tmm0",
                    "tilezero tmm1",
                    "tilezero tmm2",
                    "tilezero tmm3",
                    "tileloadd tmm4, [{a} + {sa}*1]",
                    "tileloadd tmm6, [{p} + {sp}*1]",
                    "tdpbsud tmm0, tmm4, tmm6",
                    "tileloadd tmm5, [{a} + {sa}*1 + 40]",
                    "tileloadd tmm7, [{p} + {sp}*1 + 640]",
                    "tdpbsud tmm1, tmm5, tmm7",
                    "tileloadd tmm4, [{a} + {sa}*1 + 80]",
                    "tileloadd tmm6, [{p} + {sp}*1 + 1280]",
                    "tdpbsud tmm2, tmm4, tmm6",
                    "tileloadd tmm5, [{a} + {sa}*1 + 120]",
                    "tileloadd tmm7, [{p} + {sp}*1 + 1920]",
                    "tdpbsud tmm3, tmm5, tmm7",
                    "tilestored [{c} + {sc}*1], tmm0",
                    "tilestored [{c} + {sc}*1 + 1024], tmm1",
                    "tilestored [{c} + {sc}*1 + 2048], tmm2",
                    "tilestored [{c} + {sc}*1 + 3072], tmm3",
                    a = in(reg) a_b,
                    sa = in(reg) act_bytes,
                    p = in(reg) p_b,
                    sp = in(reg) 64usize,
                    c = in(reg) cp,
                    sc = in(reg) 64usize,
                    options(nostack),
                );
            } else {
                for k in 0..blocks {
                    asm!(
                        "tilezero tmm0",
                        "tileloadd tmm4, [{a} + {sa}*1]",
                        "tileloadd tmm6, [{p} + {sp}*1]",
                        "tdpbsud tmm0, tmm4, tmm6",
                        "tilestored [{c} + {sc}*1], tmm0",
                        a = in(reg) a_b.add(k * Q8_1_SIZE),
                        sa = in(reg) act_bytes,
                        p = in(reg) p_b.add(k * PANEL_BLOCK),
                        sp = in(reg) 64usize,
                        c = in(reg) cp.add(256 * k),
                        sc = in(reg) 64usize,
                        options(nostack),
                    );
                }
            }
            for k in 0..blocks {
                let p = p_b.add(k * PANEL_BLOCK);
                let dw = _mm512_loadu_ps(p.add(512) as *const f32);
                let mw = _mm512_loadu_ps(p.add(576) as *const f32);
                for (r, acc) in acc.iter_mut().enumerate() {
                    let sums_k = c.0.as_ptr().add(256 * k + 16 * r);
                    let isum = _mm512_load_si512(sums_k as *const __m512i);
                    let ba = a.add(r * act_bytes + (b + k) * Q8_1_SIZE);
                    let s = *sums.add(r * nb + b + k);
                    *acc = block_step::<FMT>(*acc, isum, dw, mw, ba, s);
                }
            }
        }
        b += blocks;
    }
    // SAFETY: releases the tile state this fn configured.
    unsafe { asm!("tilerelease", options(nostack, nomem)) };
    for (r, v) in acc.into_iter().enumerate() {
        // SAFETY: `out` holds 16 · 16 floats (caller contract).
        unsafe { _mm512_storeu_ps(out.add(16 * r), v) };
    }
}

/// The packed panel against the activation rows (see [`crate::quant::PanelDotFn`]), sixteen
/// rows per AMX pass; the same bits as the AVX-512 panel kernel and the scalar reference.
pub(super) fn dot<const FMT: u8>(n: usize, panel: &[u8], a: &[u8], sums: &[i32], out: &mut [f32]) {
    let (nb, act_bytes, count) = check_panel_args(n, panel, a, sums, out);
    // Below AMX_MIN_ROWS activation rows the AVX-512 kernel alone is as fast (same bits).
    let amx_rows = if count >= AMX_MIN_ROWS {
        count / 16 * 16
    } else {
        0
    };
    let mut r = 0;
    // SAFETY: check_panel_args asserted that the panel, the `count` activation and sums
    // rows and 16 outputs per row are in bounds. This fn is only handed out by
    // `legacy::panel_fn` for `SimdLevel::Amx`, after `quant::panel_fn` checked that the CPU
    // supports that level (AVX-512 VNNI, AMX-INT8, and the tile state granted by Linux).
    unsafe {
        let (pa, aa, sa, oa) = (panel.as_ptr(), a.as_ptr(), sums.as_ptr(), out.as_mut_ptr());
        while r < amx_rows {
            let (a_r, s_r, o_r) = (aa.add(r * act_bytes), sa.add(r * nb), oa.add(16 * r));
            rows16::<FMT>(nb, pa, a_r, act_bytes, s_r, o_r);
            r += 16;
        }
        let (a_r, s_r, o_r) = (aa.add(r * act_bytes), sa.add(r * nb), oa.add(16 * r));
        dot_rows::<FMT>(nb, pa, a_r, act_bytes, s_r, o_r, count - r);
    }
}
