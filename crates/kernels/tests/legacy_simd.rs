//! Legacy-format (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0) dot products: every SIMD level this CPU
//! supports against the scalar reference, and the scalar reference against an independent
//! f64 evaluation of dequantized data.
//!
//! Tolerances. `S` is `Σ_j (|w_j| + |m_b|) * |a_j|` in f64 over dequantized values (`m_b`
//! the block's min, 0 for `_0` types): a bound on the sum of magnitudes of every float
//! term either side adds. SIMD may reassociate those additions and fuse multiply-adds, so:
//! one-block rows must agree within `16 * f32::EPSILON * S` (a handful of roundings), longer
//! rows within `1e-5 * S`. Rows whose scales are powers of two make every term and partial
//! sum exactly representable, so there the results must be bit-identical: that checks the
//! integer accumulation exactly.

use kaiyuan_kernels::half::{f16_to_f32, f32_to_f16};
use kaiyuan_kernels::quant::testing::{random_blocks, Rng};
use kaiyuan_kernels::quant::{activation_type, dequantize_fn, quantize_fn, vec_dot_fn};
use kaiyuan_kernels::{DType, SimdLevel};

const WEIGHTS: [DType; 5] = [
    DType::Q4_0,
    DType::Q4_1,
    DType::Q5_0,
    DType::Q5_1,
    DType::Q8_0,
];
const BLOCK_COUNTS: [usize; 14] = [1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 31, 33, 67, 129];

fn has_min(t: DType) -> bool {
    matches!(t, DType::Q4_1 | DType::Q5_1)
}

fn simd_levels() -> Vec<SimdLevel> {
    SimdLevel::available()
        .into_iter()
        .filter(|&l| l != SimdLevel::Scalar)
        .collect()
}

/// Activation row for weight type `t`: random f32 of `n` elements quantized by the
/// scalar quantizer. Returns (f32 values, quantized bytes).
fn activations(t: DType, n: usize, rng: &mut Rng) -> (Vec<f32>, Vec<u8>) {
    let act = activation_type(t).expect("weight type");
    let scale = rng.uniform(0.1, 4.0);
    let x = rng.vec_f32(n, scale);
    let mut q = vec![0u8; n / 32 * act.type_size()];
    quantize_fn(act, SimdLevel::Scalar).expect("scalar quantizer")(&x, &mut q);
    (x, q)
}

fn dequant(t: DType, bytes: &[u8], n: usize) -> Vec<f32> {
    let mut out = vec![0f32; n];
    dequantize_fn(t).expect("dequantizer")(bytes, &mut out);
    out
}

/// `S` from the module docs.
fn magnitude_bound(t: DType, w: &[u8], a: &[u8], n: usize) -> f64 {
    let wd = dequant(t, w, n);
    let ad = dequant(activation_type(t).unwrap(), a, n);
    let mut s = 0.0f64;
    for j in 0..n {
        let b = j / 32 * t.type_size();
        let m = if has_min(t) {
            f16_to_f32(u16::from_le_bytes([w[b + 2], w[b + 3]])) as f64
        } else {
            0.0
        };
        s += (wd[j].abs() as f64 + m.abs()) * ad[j].abs() as f64;
    }
    s
}

fn assert_close(t: DType, level: SimdLevel, nb: usize, got: f32, want: f32, s: f64) {
    let tol = if nb == 1 {
        16.0 * f32::EPSILON as f64 * s
    } else {
        1e-5 * s
    } + 1e-30;
    let diff = (got as f64 - want as f64).abs();
    assert!(
        got.is_finite() && diff <= tol,
        "{t} {level:?} {nb} blocks: simd {got} vs scalar {want} (diff {diff:e}, tol {tol:e})"
    );
}

#[test]
fn every_level_has_all_legacy_dots() {
    for t in WEIGHTS {
        for level in SimdLevel::available() {
            assert!(vec_dot_fn(t, level).is_some(), "{t}: no {level:?} dot");
        }
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        assert!(simd_levels().contains(&SimdLevel::Avx2));
    }
}

#[test]
fn simd_matches_scalar_on_random_rows() {
    let mut rng = Rng::new(0x1e9a);
    for t in WEIGHTS {
        let scalar = vec_dot_fn(t, SimdLevel::Scalar).unwrap();
        for level in simd_levels() {
            let simd = vec_dot_fn(t, level).unwrap();
            for &nb in &BLOCK_COUNTS {
                for _ in 0..8 {
                    let n = nb * 32;
                    let w = random_blocks(t, nb, &mut rng).unwrap();
                    let (_, a) = activations(t, n, &mut rng);
                    let s = magnitude_bound(t, &w, &a, n);
                    assert_close(t, level, nb, simd(n, &w, &a), scalar(n, &w, &a), s);
                }
            }
        }
    }
}

/// Sets every block's scale to `±2^-k` (one `k` per row, random signs) and its min, if
/// any, to `-4 d`: then all terms are integer multiples of `2^-(k+7)` (activation scale
/// 2^-7) and, for the row lengths used, every partial sum stays below 2^24 such units.
fn power_of_two_scales(t: DType, w: &mut [u8], rng: &mut Rng) {
    let magnitude = (2.0f32).powi(-(rng.below(6) as i32) - 2);
    for b in w.chunks_exact_mut(t.type_size()) {
        let sign = if rng.next_u32() & 1 == 1 { -1.0 } else { 1.0 };
        let d = sign * magnitude;
        b[0..2].copy_from_slice(&f32_to_f16(d).to_le_bytes());
        if has_min(t) {
            b[2..4].copy_from_slice(&f32_to_f16(-d * 4.0).to_le_bytes());
        }
    }
}

/// Activation scale 2^-7 everywhere (and `s` recomputed for Q8_1).
fn power_of_two_activations(act: DType, a: &mut [u8]) {
    let d = (2.0f32).powi(-7);
    for b in a.chunks_exact_mut(act.type_size()) {
        if act == DType::Q8_1 {
            let sum: i32 = b[8..40].iter().map(|&q| q as i8 as i32).sum();
            b[0..4].copy_from_slice(&d.to_le_bytes());
            b[4..8].copy_from_slice(&(d * sum as f32).to_le_bytes());
        } else {
            b[0..2].copy_from_slice(&f32_to_f16(d).to_le_bytes());
        }
    }
}

#[test]
fn simd_is_bit_exact_when_all_terms_are_exact() {
    let mut rng = Rng::new(77);
    for t in WEIGHTS {
        let act = activation_type(t).unwrap();
        let scalar = vec_dot_fn(t, SimdLevel::Scalar).unwrap();
        for level in simd_levels() {
            let simd = vec_dot_fn(t, level).unwrap();
            // Up to 31 blocks keeps every partial sum below 2^24 units of the finest scale.
            for nb in [1, 2, 3, 5, 8, 9, 16, 17, 31] {
                for _ in 0..6 {
                    let n = nb * 32;
                    let mut w = random_blocks(t, nb, &mut rng).unwrap();
                    power_of_two_scales(t, &mut w, &mut rng);
                    let (_, mut a) = activations(t, n, &mut rng);
                    power_of_two_activations(act, &mut a);
                    let (got, want) = (simd(n, &w, &a), scalar(n, &w, &a));
                    assert_eq!(
                        got.to_bits(),
                        want.to_bits(),
                        "{t} {level:?} {nb}: {got} vs {want}"
                    );
                }
            }
        }
    }
}

#[test]
fn simd_matches_scalar_with_extreme_scales() {
    let specials = [
        65504.0f32,
        -65504.0,
        5.960_464_5e-8,
        -5.960_464_5e-8,
        0.0,
        -0.5,
        6.1e-5,
    ];
    let mut rng = Rng::new(5);
    for t in WEIGHTS {
        let scalar = vec_dot_fn(t, SimdLevel::Scalar).unwrap();
        for level in simd_levels() {
            let simd = vec_dot_fn(t, level).unwrap();
            for nb in [1, 3, 9] {
                let n = nb * 32;
                let mut w = random_blocks(t, nb, &mut rng).unwrap();
                for (i, b) in w.chunks_exact_mut(t.type_size()).enumerate() {
                    let d = specials[(i + nb) % specials.len()];
                    b[0..2].copy_from_slice(&f32_to_f16(d).to_le_bytes());
                    if has_min(t) {
                        let m = specials[(i + 3) % specials.len()];
                        b[2..4].copy_from_slice(&f32_to_f16(m).to_le_bytes());
                    }
                }
                let (_, a) = activations(t, n, &mut rng);
                let s = magnitude_bound(t, &w, &a, n);
                assert_close(t, level, nb, simd(n, &w, &a), scalar(n, &w, &a), s);
            }
        }
    }
}

/// The scalar dot equals the f64 dot of the dequantized rows (same numbers, one rounding
/// per term), and is within activation-quantization error of the dot with the original
/// f32 activations: each activation is off by at most half a quant step `d_a / 2`, plus
/// the f16 rounding of Q8_0's `d` (relative 2^-11 of the value).
#[test]
fn scalar_dot_is_consistent_with_dequantized_rows() {
    let mut rng = Rng::new(99);
    for t in WEIGHTS {
        let act = activation_type(t).unwrap();
        let dot = vec_dot_fn(t, SimdLevel::Scalar).unwrap();
        for nb in [1, 4, 17] {
            for _ in 0..10 {
                let n = nb * 32;
                let w = random_blocks(t, nb, &mut rng).unwrap();
                let (x, a) = activations(t, n, &mut rng);
                let wd = dequant(t, &w, n);
                let ad = dequant(act, &a, n);
                let got = dot(n, &w, &a) as f64;
                let exact: f64 = wd.iter().zip(&ad).map(|(&p, &q)| p as f64 * q as f64).sum();
                let s = magnitude_bound(t, &w, &a, n);
                assert!(
                    (got - exact).abs() <= 1e-5 * s + 1e-30,
                    "{t}: {got} vs {exact}"
                );

                let mut err_bound = 0.0f64;
                for j in 0..n {
                    let blk = &x[j / 32 * 32..j / 32 * 32 + 32];
                    let step = blk.iter().fold(0f32, |m, v| m.max(v.abs())) as f64 / 127.0;
                    let err = 0.5 * step * 1.001 + (x[j] as f64).abs() * 2f64.powi(-11);
                    err_bound += (wd[j] as f64).abs() * err;
                }
                let true_dot: f64 = wd.iter().zip(&x).map(|(&p, &q)| p as f64 * q as f64).sum();
                assert!(
                    (got - true_dot).abs() <= err_bound + 1e-5 * s + 1e-30,
                    "{t}: quantized dot {got} vs f32 dot {true_dot} (bound {err_bound})"
                );
            }
        }
    }
}

/// Blocks that stress the quantizers: exact halves after scaling (ties), zeros, a lone
/// value, subnormal (1 / d overflows) and huge magnitudes, NaN and inf, and plain random
/// data at several scales.
fn quantizer_inputs(rng: &mut Rng) -> Vec<f32> {
    let mut x = Vec::new();
    // amax 127 makes d = 1 and id = 1, so k + 0.5 is an exact tie.
    x.push(127.0);
    x.extend((0..31).map(|k| k as f32 - 15.5));
    x.push(-127.0);
    x.extend((0..31).map(|k| -(k as f32) * 0.5));
    x.extend([0.0f32; 32]);
    x.extend((0..32).map(|k| if k == 17 { -3.0 } else { 0.0 }));
    x.extend((0..32).map(|k| (k as f32 - 16.0) * 1e-40));
    x.extend((0..32).map(|k| (k as f32 - 16.0) * 1e36));
    // Non-finite inputs: NaN is left out of amax; inf makes d infinite.
    x.extend((0..32).map(|k| if k == 3 { f32::NAN } else { k as f32 }));
    x.extend((0..32).map(|k| if k == 9 { f32::NEG_INFINITY } else { k as f32 }));
    for _ in 0..40 {
        let scale = 10f32.powf(rng.uniform(-6.0, 6.0));
        x.extend(rng.vec_f32(32, scale));
    }
    x
}

#[test]
fn simd_quantizers_are_bit_exact() {
    let mut rng = Rng::new(4);
    let x = quantizer_inputs(&mut rng);
    let mut checked = 0;
    for act in [DType::Q8_0, DType::Q8_1] {
        let scalar = quantize_fn(act, SimdLevel::Scalar).unwrap();
        for level in simd_levels() {
            let Some(simd) = quantize_fn(act, level) else {
                continue;
            };
            for nb in [1, 2, 3, 7, x.len() / 32] {
                let mut want = vec![0u8; nb * act.type_size()];
                let mut got = vec![0xaa; nb * act.type_size()];
                scalar(&x[..nb * 32], &mut want);
                simd(&x[..nb * 32], &mut got);
                for (b, (g, w)) in got
                    .chunks_exact(act.type_size())
                    .zip(want.chunks_exact(act.type_size()))
                    .enumerate()
                {
                    assert_eq!(g, w, "{act} {level:?} block {b}");
                }
                checked += 1;
            }
        }
    }
    #[cfg(target_arch = "x86_64")]
    if SimdLevel::Avx2.is_supported() {
        assert!(checked >= 10, "AVX2 quantizers not found");
    }
    let _ = checked;
}
