//! AVX2 dot products of one K-quant weight row (Q4_K, Q5_K, Q6_K) with four Q8_K
//! activation rows at once, for the mat-mat of prefill and batched decode: each weight
//! super-block's quants and sub-block scales (and mins) are unpacked once and used for all
//! four rows.
//!
//! Every result is bit-identical to the single-row kernel of [`super::avx2`] on the same
//! pair of rows: both are built from the same helpers there, so per activation row the
//! same i32 lanes are formed, folded into the f32 accumulator by the same FMAs in the
//! same super-block order, and summed by the same [`hsum_ps`].

use std::arch::x86_64::*;

use super::avx2::{
    bsum_mins, chunk_scales, f16_at_hw, fold_super_block, hsum_ps, q45k_header, q4k_chunk,
    q5k_chunk, q6k_half, q6k_offset, q6k_scale_vectors, q6k_scaled_sum, scaled_pair_sum,
};
use super::layout::*;
use crate::quant::x86::prefetch_ahead;

/// [`super::avx2`]'s `dot_q45k` for four activation rows: `chunk(wb, c)` gives the quants
/// of elements `64c..64c + 64` of super-block `wb`; it is only called with whole
/// `w_bytes`-byte blocks and `c < 4`. Each row's activation rows hold `nb` Q8_K blocks.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
fn dot_x4_q45k(
    nb: usize,
    w: &[u8],
    w_bytes: usize,
    a: [&[u8]; 4],
    chunk: impl Fn(&[u8], usize) -> (__m256i, __m256i),
) -> [f32; 4] {
    let mut acc = [_mm256_setzero_ps(); 4];
    for (wb, ab) in super_blocks_x4(w, w_bytes, a, nb) {
        prefetch_ahead(wb.as_ptr(), w_bytes);
        let hd = q45k_header(wb);
        let mut sumi = [_mm256_setzero_si256(); 4];
        for c in 0..4 {
            let (lo, hi) = chunk(wb, c);
            let s = chunk_scales(hd.scd, c);
            for r in 0..4 {
                // SAFETY: `ab[r]` is a whole Q8_K block (super_blocks_x4) and c < 4.
                let p = unsafe { scaled_pair_sum(lo, hi, ab[r], c, s) };
                sumi[r] = _mm256_add_epi32(sumi[r], p);
            }
        }
        for r in 0..4 {
            let d_a = f32_at(ab[r], Q8K_D);
            // SAFETY: `ab[r]` is a whole Q8_K block (super_blocks_x4).
            let mins = unsafe { bsum_mins(ab[r], hd.mins) };
            acc[r] = fold_super_block(acc[r], d_a * hd.d, sumi[r], d_a * hd.dmin, mins);
        }
    }
    [
        hsum_ps(acc[0]),
        hsum_ps(acc[1]),
        hsum_ps(acc[2]),
        hsum_ps(acc[3]),
    ]
}

#[target_feature(enable = "avx2,fma,f16c")]
fn dot_x4_q4_k(nb: usize, w: &[u8], a: [&[u8]; 4]) -> [f32; 4] {
    // SAFETY: dot_x4_q45k passes whole Q4_K blocks and c < 4.
    dot_x4_q45k(nb, w, Q4K_BYTES, a, |wb, c| unsafe { q4k_chunk(wb, c) })
}

#[target_feature(enable = "avx2,fma,f16c")]
fn dot_x4_q5_k(nb: usize, w: &[u8], a: [&[u8]; 4]) -> [f32; 4] {
    // SAFETY: dot_x4_q45k passes whole Q5_K blocks and c < 4.
    dot_x4_q45k(nb, w, Q5K_BYTES, a, |wb, c| unsafe { q5k_chunk(wb, c) })
}

#[target_feature(enable = "avx2,fma,f16c")]
fn dot_x4_q6_k(nb: usize, w: &[u8], a: [&[u8]; 4]) -> [f32; 4] {
    let mut acc = [_mm256_setzero_ps(); 4];
    for (wb, ab) in super_blocks_x4(w, Q6K_BYTES, a, nb) {
        prefetch_ahead(wb.as_ptr(), Q6K_BYTES);
        let d_w = f16_at_hw(wb, Q6K_D);
        // SAFETY: `wb` is a whole Q6_K block and every `ab[r]` a whole Q8_K block
        // (super_blocks_x4), h < 2 and s < 4, as the helpers need.
        let sumi = unsafe {
            let (sc16, scp) = q6k_scale_vectors(wb);
            let mut sumi = [_mm256_setzero_si256(); 4];
            for r in 0..4 {
                sumi[r] = q6k_offset(ab[r], sc16);
            }
            for h in 0..2 {
                for (s, q) in q6k_half(wb, h).into_iter().enumerate() {
                    for r in 0..4 {
                        let p = q6k_scaled_sum(q, ab[r], h, s, scp[4 * h + s]);
                        sumi[r] = _mm256_add_epi32(sumi[r], p);
                    }
                }
            }
            sumi
        };
        for r in 0..4 {
            let d = f32_at(ab[r], Q8K_D) * d_w;
            acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi[r]), acc[r]);
        }
    }
    [
        hsum_ps(acc[0]),
        hsum_ps(acc[1]),
        hsum_ps(acc[2]),
        hsum_ps(acc[3]),
    ]
}

/// Defines the safe four-row wrappers: `$name` checks the weight row against each
/// activation row ([`check_dot_args`]) and calls the `#[target_feature]` kernel `$kernel`
/// on `$bytes`-byte weight blocks.
macro_rules! safe_vec_dots_x4 {
    ($($name:ident => $kernel:ident, $bytes:expr;)*) => {$(
        pub(super) fn $name(n: usize, w: &[u8], a: [&[u8]; 4]) -> [f32; 4] {
            let mut nb = 0;
            for row in a {
                nb = check_dot_args(n, w, $bytes, row);
            }
            // SAFETY: the kernel is a safe fn but for its `#[target_feature]` (its
            // unchecked loads stay inside the first `nb` blocks, which check_dot_args has
            // just confirmed the weight row and every activation row hold). This fn is
            // only handed out by `kquants::vec_dot_x4_fn` for `SimdLevel::Avx2`, after
            // `quant::vec_dot_x4_fn` confirmed the CPU supports that level.
            unsafe { $kernel(nb, w, a) }
        }
    )*};
}

safe_vec_dots_x4! {
    vec_dot_x4_q4_k_q8_k => dot_x4_q4_k, Q4K_BYTES;
    vec_dot_x4_q5_k_q8_k => dot_x4_q5_k, Q5K_BYTES;
    vec_dot_x4_q6_k_q8_k => dot_x4_q6_k, Q6K_BYTES;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::SimdLevel;
    use crate::dtype::DType;
    use crate::quant::testing::{random_blocks, Rng};
    use crate::quant::{quantize_fn, vec_dot_fn, vec_dot_x4_fn, VecDotFn, VecDotX4Fn};

    const TYPES: [DType; 3] = [DType::Q4_K, DType::Q5_K, DType::Q6_K];
    /// 1, 2 and 9 super-blocks.
    const SIZES: [usize; 3] = [256, 512, 2304];

    /// The AVX2 single-row and four-row kernels for `t`, through the public lookups, or
    /// `None` where this CPU lacks AVX2.
    fn kernels(t: DType) -> Option<(VecDotFn, VecDotX4Fn)> {
        let dot = vec_dot_fn(t, SimdLevel::Avx2)?;
        let x4 = vec_dot_x4_fn(t, SimdLevel::Avx2).expect("AVX2 four-row K-quant kernel");
        Some((dot, x4))
    }

    /// Asserts that each of the four results has the bits of the single-row kernel.
    fn assert_x4_matches(t: DType, n: usize, w: &[u8], acts: &[Vec<u8>], what: &str) {
        let Some((dot, x4)) = kernels(t) else {
            return;
        };
        let got = x4(n, w, [&acts[0], &acts[1], &acts[2], &acts[3]]);
        for (r, act) in acts.iter().enumerate() {
            let want = dot(n, w, act);
            assert_eq!(
                got[r].to_bits(),
                want.to_bits(),
                "{t} n={n} {what} row {r}: x4 {} vs single {want}",
                got[r]
            );
        }
    }

    /// Quantizes f32 values to Q8_K with the scalar quantizer.
    fn q8_k(x: &[f32]) -> Vec<u8> {
        let mut out = vec![0u8; x.len() / QK_K * Q8K_BYTES];
        quantize_fn(DType::Q8_K, SimdLevel::Scalar).unwrap()(x, &mut out);
        out
    }

    #[test]
    fn random_rows_match_the_single_row_kernel() {
        let mut rng = Rng::new(0x4b51);
        for t in TYPES {
            for n in SIZES {
                let nb = n / QK_K;
                for _ in 0..4 {
                    let w = random_blocks(t, nb, &mut rng).unwrap();
                    // Random Q8_K bytes (quants anywhere in -128..=127) ...
                    let raw: Vec<Vec<u8>> = (0..4)
                        .map(|_| random_blocks(DType::Q8_K, nb, &mut rng).unwrap())
                        .collect();
                    assert_x4_matches(t, n, &w, &raw, "random Q8_K");
                    // ... and quantized activations of varying magnitude.
                    let quantized: Vec<Vec<u8>> = (0..4)
                        .map(|_| {
                            let scale = rng.uniform(0.01, 100.0);
                            q8_k(&rng.vec_f32(n, scale))
                        })
                        .collect();
                    assert_x4_matches(t, n, &w, &quantized, "quantized");
                }
            }
        }
    }

    #[test]
    fn rows_longer_than_n_and_repeated_rows_match() {
        let mut rng = Rng::new(7);
        for t in TYPES {
            // Three super-blocks stored, two used.
            let w = random_blocks(t, 3, &mut rng).unwrap();
            let a = random_blocks(DType::Q8_K, 3, &mut rng).unwrap();
            let b = random_blocks(DType::Q8_K, 2, &mut rng).unwrap();
            let acts = [a.clone(), b, a.clone(), a];
            assert_x4_matches(t, 512, &w, &acts, "long/repeated rows");
        }
    }

    /// Sets the f16 `d` (and `dmin`) of every super-block of `w`.
    fn set_scales(t: DType, w: &mut [u8], d: u16, dmin: u16) {
        let (size, d_off, dmin_off) = match t {
            DType::Q4_K => (Q4K_BYTES, Q4K_D, Some(Q4K_DMIN)),
            DType::Q5_K => (Q5K_BYTES, Q5K_D, Some(Q5K_DMIN)),
            _ => (Q6K_BYTES, Q6K_D, None),
        };
        for b in w.chunks_exact_mut(size) {
            b[d_off..d_off + 2].copy_from_slice(&d.to_le_bytes());
            if let Some(off) = dmin_off {
                b[off..off + 2].copy_from_slice(&dmin.to_le_bytes());
            }
        }
    }

    /// A Q8_K row of `nb` blocks with every quant from `q(i)` and every `d` set to `d`.
    fn q8_k_row(nb: usize, d: f32, q: impl Fn(usize) -> i8) -> Vec<u8> {
        let mut out = vec![0u8; nb * Q8K_BYTES];
        for b in out.chunks_exact_mut(Q8K_BYTES) {
            b[Q8K_D..Q8K_D + 4].copy_from_slice(&d.to_le_bytes());
            for (i, v) in b[Q8K_QS..Q8K_QS + QK_K].iter_mut().enumerate() {
                *v = q(i) as u8;
            }
            fill_q8k_bsums(b);
        }
        out
    }

    #[test]
    fn extreme_values_match_the_single_row_kernel() {
        let mut rng = Rng::new(0xe7);
        // f16 bit patterns: largest finite, smallest subnormal, one, zero, -largest.
        let f16s = [0x7bffu16, 0x0001, 0x3c00, 0x0000, 0xfbff];
        // Activation scales from tiny to overflowing the products to infinity.
        let act_ds = [1e-30f32, 1.0, 3.0e4, 1e30];
        for t in TYPES {
            for n in SIZES {
                let nb = n / QK_K;
                let size = t.type_size();
                // Weight bytes: all ones (largest quants, scales and mins), all zeros,
                // and random.
                let mut weights = vec![vec![0xffu8; nb * size], vec![0u8; nb * size]];
                weights.push(random_blocks(t, nb, &mut rng).unwrap());
                for (wi, base) in weights.iter().enumerate() {
                    for (k, &d) in f16s.iter().enumerate() {
                        let mut w = base.clone();
                        set_scales(t, &mut w, d, f16s[(k + 1) % f16s.len()]);
                        for &da in &act_ds {
                            let acts = [
                                q8_k_row(nb, da, |_| 127),
                                q8_k_row(nb, da, |_| -128),
                                q8_k_row(nb, da, |i| if i % 2 == 0 { 127 } else { -128 }),
                                q8_k_row(nb, -da, |i| (i as i32 * 37 % 255 - 127) as i8),
                            ];
                            let what = format!("weights {wi} d {d:#06x} act d {da:e}");
                            assert_x4_matches(t, n, &w, &acts, &what);
                        }
                    }
                }
            }
        }
    }
}
