//! K-quant kernels against independent references: every SIMD dot product against the
//! scalar specification, the scalar dot against an f64 dot of dequantized rows, an
//! integer-exact mode where every level must agree bit for bit, extreme f16 scales, and
//! the Q8_K activation quantizer's own contract.

use kaiyuan_kernels::quant::testing::{random_blocks, Rng};
use kaiyuan_kernels::quant::{dequantize_fn, quantize_fn, vec_dot_fn};
use kaiyuan_kernels::{DType, SimdLevel};

const QK_K: usize = 256;
const ROW_BLOCKS: [usize; 7] = [1, 2, 3, 5, 7, 16, 17];

/// Weight types and, from the GGML block layouts, the byte offsets of their f16 `d` and
/// `dmin` fields.
const WEIGHTS: [(DType, usize, Option<usize>); 5] = [
    (DType::Q2_K, 80, Some(82)),
    (DType::Q3_K, 108, None),
    (DType::Q4_K, 0, Some(2)),
    (DType::Q5_K, 0, Some(2)),
    (DType::Q6_K, 208, None),
];

const F16_ONE: u16 = 0x3c00;

fn set_f16(blocks: &mut [u8], size: usize, off: usize, bits: u16) {
    for b in blocks.chunks_exact_mut(size) {
        b[off..off + 2].copy_from_slice(&bits.to_le_bytes());
    }
}

fn dequant(t: DType, bytes: &[u8], n: usize) -> Vec<f32> {
    let mut out = vec![0f32; n];
    dequantize_fn(t).expect("dequantizer")(bytes, &mut out);
    out
}

fn quantize_act(x: &[f32]) -> Vec<u8> {
    let q = quantize_fn(DType::Q8_K, SimdLevel::Scalar).expect("scalar Q8_K quantizer");
    let mut out = vec![0u8; x.len() / QK_K * DType::Q8_K.type_size()];
    q(x, &mut out);
    out
}

/// Random activations: f32 with a varying magnitude per row, quantized by the scalar
/// Q8_K quantizer.
fn random_act(n: usize, rng: &mut Rng) -> Vec<u8> {
    let scale = rng.uniform(0.1, 4.0);
    quantize_act(&rng.vec_f32(n, scale))
}

/// f64 dot of the dequantized rows, and the sum of magnitudes of the terms the kernels
/// add (the scale part and the min part separately), which bounds their rounding error.
fn reference(
    t: DType,
    d_off: usize,
    dmin_off: Option<usize>,
    w: &[u8],
    a: &[u8],
    n: usize,
) -> (f64, f64) {
    let wf = dequant(t, w, n);
    let af = dequant(DType::Q8_K, a, n);
    let exact: f64 = wf.iter().zip(&af).map(|(&x, &y)| x as f64 * y as f64).sum();
    // Split each weight into its `d·scale·q` and `dmin·min` parts by zeroing the other
    // scale, so cancellation between them cannot hide rounding.
    let size = t.type_size();
    let mut only_d = w.to_vec();
    let mut only_min = w.to_vec();
    if let Some(off) = dmin_off {
        set_f16(&mut only_d, size, off, 0);
        set_f16(&mut only_min, size, d_off, 0);
    } else {
        only_min.fill(0);
        set_f16(&mut only_min, size, d_off, 0);
    }
    let pd = dequant(t, &only_d, n);
    let pm = dequant(t, &only_min, n);
    let bound: f64 = (0..n)
        .map(|j| (pd[j].abs() as f64 + pm[j].abs() as f64) * af[j].abs() as f64)
        .sum();
    (exact, bound)
}

fn simd_levels() -> Vec<SimdLevel> {
    SimdLevel::available()
        .into_iter()
        .filter(|&l| l != SimdLevel::Scalar)
        .collect()
}

#[test]
fn every_simd_dot_matches_the_scalar_spec() {
    let mut rng = Rng::new(0x6b71);
    let mut checked = 0;
    for (t, d_off, dmin_off) in WEIGHTS {
        let scalar = vec_dot_fn(t, SimdLevel::Scalar).expect("scalar dot");
        for level in simd_levels() {
            let Some(simd) = vec_dot_fn(t, level) else {
                continue;
            };
            for nb in ROW_BLOCKS {
                let n = nb * QK_K;
                for rep in 0..20 {
                    let w = random_blocks(t, nb, &mut rng).expect("random blocks");
                    // Mostly quantized activations; every fourth row raw random Q8_K
                    // blocks, whose quants span the full i8 range including -128.
                    let a = if rep % 4 == 3 {
                        random_blocks(DType::Q8_K, nb, &mut rng).expect("random Q8_K")
                    } else {
                        random_act(n, &mut rng)
                    };
                    let (want, got) = (scalar(n, &w, &a), simd(n, &w, &a));
                    let (_, bound) = reference(t, d_off, dmin_off, &w, &a, n);
                    // Single block: only the order of a few f32 roundings differs.
                    let rel = if nb == 1 { 2e-6 } else { 1e-5 };
                    let tol = rel * bound + 1e-30;
                    assert!(
                        ((got - want) as f64).abs() <= tol,
                        "{t} {level:?} {nb} blocks: simd {got} vs scalar {want} (tol {tol:e})"
                    );
                    checked += 1;
                }
            }
        }
    }
    eprintln!("compared {checked} SIMD rows");
    // Every weight type has an AVX2 kernel (AVX-512 may fall back to it) and a NEON one.
    if SimdLevel::Avx2.is_supported() || SimdLevel::Neon.is_supported() {
        assert!(
            checked >= WEIGHTS.len() * ROW_BLOCKS.len() * 20,
            "only {checked} rows compared"
        );
    }
}

#[test]
fn scalar_dot_matches_f64_dot_of_dequantized_rows() {
    let mut rng = Rng::new(0x5eed);
    for (t, d_off, dmin_off) in WEIGHTS {
        let dot = vec_dot_fn(t, SimdLevel::Scalar).expect("scalar dot");
        for nb in ROW_BLOCKS {
            let n = nb * QK_K;
            for _ in 0..10 {
                let w = random_blocks(t, nb, &mut rng).expect("random blocks");
                let a = random_act(n, &mut rng);
                let got = dot(n, &w, &a) as f64;
                let (want, bound) = reference(t, d_off, dmin_off, &w, &a, n);
                assert!(
                    (got - want).abs() <= 1e-5 * bound + 1e-30,
                    "{t} {nb} blocks: scalar {got} vs f64 {want} (bound {bound:e})"
                );
            }
        }
    }
}

/// Activations with `d = 1` and quants in -2..=2, weights with `d = dmin = 1`: every
/// partial sum is an integer below 2^24, so all float steps are exact and every level
/// must give exactly the f64 dot of the dequantized rows.
#[test]
fn integer_parts_are_exact_on_every_level() {
    let mut rng = Rng::new(0x1e7);
    for (t, d_off, dmin_off) in WEIGHTS {
        for nb in [1, 2, 3, 5, 7] {
            let n = nb * QK_K;
            for _ in 0..10 {
                let mut w = random_blocks(t, nb, &mut rng).expect("random blocks");
                set_f16(&mut w, t.type_size(), d_off, F16_ONE);
                if let Some(off) = dmin_off {
                    set_f16(&mut w, t.type_size(), off, F16_ONE);
                }
                let x: Vec<f32> = (0..n).map(|_| rng.below(5) as f32 - 2.0).collect();
                let a = q8_k_unit_scale(&x);
                let (want, _) = reference(t, d_off, dmin_off, &w, &a, n);
                for level in SimdLevel::available() {
                    let Some(dot) = vec_dot_fn(t, level) else {
                        continue;
                    };
                    let got = dot(n, &w, &a);
                    assert_eq!(got as f64, want, "{t} {level:?} {nb} blocks");
                }
            }
        }
    }
}

/// Q8_K blocks with `d = 1` holding the integers `x` as quants, bsums filled.
fn q8_k_unit_scale(x: &[f32]) -> Vec<u8> {
    let mut out = Vec::new();
    for xs in x.chunks_exact(QK_K) {
        out.extend_from_slice(&1f32.to_le_bytes());
        out.extend(xs.iter().map(|&v| (v as i8) as u8));
        for g in xs.chunks_exact(16) {
            out.extend_from_slice(&(g.iter().sum::<f32>() as i16).to_le_bytes());
        }
    }
    out
}

#[test]
fn extreme_weight_scales() {
    // 65504 (largest f16), smallest subnormal, zero, negative, negative zero.
    let extremes: [u16; 6] = [0x7bff, 0x0001, 0x0000, 0xa4f2, 0xfbff, 0x8000];
    let mut rng = Rng::new(0xe47);
    for (t, d_off, dmin_off) in WEIGHTS {
        let scalar = vec_dot_fn(t, SimdLevel::Scalar).expect("scalar dot");
        for &d in &extremes {
            for &dmin in &extremes {
                if dmin_off.is_none() && dmin != extremes[0] {
                    continue;
                }
                let nb = 3;
                let n = nb * QK_K;
                let mut w = random_blocks(t, nb, &mut rng).expect("random blocks");
                set_f16(&mut w, t.type_size(), d_off, d);
                if let Some(off) = dmin_off {
                    set_f16(&mut w, t.type_size(), off, dmin);
                }
                let a = random_act(n, &mut rng);
                let (want, bound) = reference(t, d_off, dmin_off, &w, &a, n);
                let tol = 1e-5 * bound + 1e-30;
                let s = scalar(n, &w, &a);
                assert!(s.is_finite(), "{t} d={d:#x} dmin={dmin:#x}: {s}");
                assert!(
                    (s as f64 - want).abs() <= tol,
                    "{t} d={d:#x} dmin={dmin:#x}: scalar {s} vs f64 {want}"
                );
                for level in simd_levels() {
                    let Some(simd) = vec_dot_fn(t, level) else {
                        continue;
                    };
                    let v = simd(n, &w, &a);
                    assert!(
                        ((v - s) as f64).abs() <= tol,
                        "{t} {level:?} d={d:#x} dmin={dmin:#x}: simd {v} vs scalar {s}"
                    );
                }
            }
        }
    }
}

#[test]
fn q8_k_quantizer_contract() {
    let mut rng = Rng::new(0x8b);
    let size = DType::Q8_K.type_size();
    for nb in [1, 3] {
        let n = nb * QK_K;
        let mut x = rng.vec_f32(n, 3.0);
        x[QK_K..].iter_mut().take(QK_K).for_each(|v| *v *= 0.01); // a quieter block
        if nb > 1 {
            x[2 * QK_K..].fill(0.0);
        }
        let q = quantize_act(&x);
        let back = dequant(DType::Q8_K, &q, n);
        for (bi, (blk, xs)) in q.chunks_exact(size).zip(x.chunks_exact(QK_K)).enumerate() {
            let d = f32::from_le_bytes(blk[0..4].try_into().unwrap());
            let amax = xs.iter().fold(0f32, |m, v| m.max(v.abs()));
            assert!(
                (d as f64 - amax as f64 / 127.0).abs() <= 1e-6 * amax as f64,
                "block {bi}: d {d}"
            );
            let qs: Vec<i32> = blk[4..260].iter().map(|&b| (b as i8) as i32).collect();
            assert!(qs.iter().all(|&v| (-127..=127).contains(&v)));
            if amax > 0.0 {
                assert_eq!(qs.iter().map(|v| v.abs()).max(), Some(127), "block {bi}");
            } else {
                assert!(qs.iter().all(|&v| v == 0) && d == 0.0);
            }
            for g in 0..16 {
                let bsum = i16::from_le_bytes([blk[260 + 2 * g], blk[261 + 2 * g]]) as i32;
                assert_eq!(
                    bsum,
                    qs[16 * g..16 * g + 16].iter().sum::<i32>(),
                    "block {bi} group {g}"
                );
            }
            for j in 0..QK_K {
                let err = (back[bi * QK_K + j] - xs[j]).abs();
                assert!(
                    err <= 0.5 * d * 1.0001 + 1e-12,
                    "block {bi} [{j}]: {} vs {}",
                    back[bi * QK_K + j],
                    xs[j]
                );
            }
        }
    }
}

#[test]
fn q8_k_quantizer_poisons_on_nan() {
    let mut x = vec![0.5f32; QK_K];
    x[7] = f32::NAN;
    let q = quantize_act(&x);
    assert!(f32::from_le_bytes(q[0..4].try_into().unwrap()).is_nan());
}

/// Activation rows whose blocks cover the quantizer's cases: ordinary values, exact
/// rounding ties (amax = 127 makes the inverse scale exactly 1), all zeros, a NaN, an
/// infinity, tiny values whose inverse scale overflows f32, and huge values.
fn quantizer_cases(rng: &mut Rng) -> Vec<Vec<f32>> {
    let mut rows = Vec::new();
    for nb in [1, 2, 5] {
        let scale = rng.uniform(0.01, 10.0);
        rows.push(rng.vec_f32(nb * QK_K, scale));
    }
    let mut ties = rng.vec_f32(QK_K, 100.0);
    ties[0] = 127.0;
    ties[3] = 0.0;
    ties[5] = 2.5;
    ties[6] = -3.5;
    ties[7] = 0.5;
    ties[8] = -0.5;
    rows.push(ties);
    rows.push(vec![0.0; QK_K]);
    let mut nan = rng.vec_f32(QK_K, 1.0);
    nan[100] = f32::NAN;
    rows.push(nan);
    let mut inf = rng.vec_f32(QK_K, 1.0);
    inf[9] = f32::NEG_INFINITY;
    rows.push(inf);
    rows.push(rng.vec_f32(QK_K, 1e-38));
    rows.push(rng.vec_f32(QK_K, 3e38));
    rows
}

#[test]
fn every_simd_quantizer_matches_scalar_bit_for_bit() {
    let mut rng = Rng::new(0x91);
    let rows = quantizer_cases(&mut rng);
    for level in simd_levels() {
        let Some(simd) = quantize_fn(DType::Q8_K, level) else {
            continue;
        };
        for (k, x) in rows.iter().enumerate() {
            let want = quantize_act(x);
            let mut got = vec![0u8; want.len()];
            simd(x, &mut got);
            assert_eq!(got, want, "{level:?} case {k}");
        }
    }
}

#[test]
fn q8_k_quantizer_handles_tiny_blocks() {
    // 127 / amax overflows f32 here; the quants must still follow x / d.
    let mut x = vec![0f32; QK_K];
    x[0] = 1e-38;
    x[1] = -0.5e-38;
    x[2] = 0.25e-38;
    let q = quantize_act(&x);
    let qs: Vec<i8> = q[4..7].iter().map(|&b| b as i8).collect();
    assert_eq!(qs, vec![127, -64, 32]); // 63.5 ties to 64, 31.75 rounds to 32
    assert!(q[7..260].iter().all(|&b| b == 0));
}

#[test]
fn every_k_quant_resolves_to_kernels_with_q8_k_activations() {
    for (t, _, _) in WEIGHTS {
        let k =
            kaiyuan_kernels::quant::weight_kernels(t).unwrap_or_else(|| panic!("{t}: no kernels"));
        assert_eq!(k.act, DType::Q8_K, "{t}");
    }
}
