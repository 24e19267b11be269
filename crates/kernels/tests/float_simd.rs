//! F32/F16/BF16 weight · f32 activation dot products: every SIMD level this CPU supports
//! against the scalar reference.
//!
//! Tolerance. With `S = Σ |w_j * a_j|` (f64), a sum of `n` f32 products in any order and
//! with or without fused multiply-adds is within `(n + 1) * ε * S` of the exact value
//! (ε = f32 machine epsilon); the scalar reference and a SIMD version are therefore within
//! `2 (n + 1) ε S` of each other. Rows of small integers times powers of two have every
//! product and partial sum exact, so there the results must be bit-identical (this is
//! what catches a lost or doubled tail element in long rows).

use kaiyuan_kernels::half::{bf16_to_f32, f16_to_f32, f32_to_bf16, f32_to_f16};
use kaiyuan_kernels::quant::testing::Rng;
use kaiyuan_kernels::quant::vec_dot_fn;
use kaiyuan_kernels::{DType, SimdLevel};

const TYPES: [DType; 3] = [DType::F32, DType::F16, DType::BF16];
const LENGTHS: [usize; 22] = [
    1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 127, 257, 1000, 4099,
];

fn simd_levels() -> Vec<SimdLevel> {
    SimdLevel::available()
        .into_iter()
        .filter(|&l| l != SimdLevel::Scalar)
        .collect()
}

/// Encodes `x` as a row of `t`; returns the bytes and the values actually stored.
fn encode(t: DType, x: &[f32]) -> (Vec<u8>, Vec<f32>) {
    let mut bytes = Vec::new();
    let mut vals = Vec::new();
    for &v in x {
        match t {
            DType::F32 => {
                bytes.extend_from_slice(&v.to_le_bytes());
                vals.push(v);
            }
            DType::F16 => {
                let h = f32_to_f16(v);
                bytes.extend_from_slice(&h.to_le_bytes());
                vals.push(f16_to_f32(h));
            }
            _ => {
                let h = f32_to_bf16(v);
                bytes.extend_from_slice(&h.to_le_bytes());
                vals.push(bf16_to_f32(h));
            }
        }
    }
    (bytes, vals)
}

fn f32_bytes(x: &[f32]) -> Vec<u8> {
    x.iter().flat_map(|v| v.to_le_bytes()).collect()
}

#[test]
fn every_level_has_float_dots() {
    for t in TYPES {
        for level in SimdLevel::available() {
            assert!(vec_dot_fn(t, level).is_some(), "{t}: no {level:?} dot");
        }
    }
}

#[test]
fn simd_matches_scalar_on_random_rows() {
    let mut rng = Rng::new(31);
    for t in TYPES {
        let scalar = vec_dot_fn(t, SimdLevel::Scalar).unwrap();
        for level in simd_levels() {
            let simd = vec_dot_fn(t, level).unwrap();
            for &n in &LENGTHS {
                for _ in 0..4 {
                    let (w, wv) = encode(t, &rng.vec_f32(n, 2.0));
                    let x = rng.vec_f32(n, 3.0);
                    let a = f32_bytes(&x);
                    let s: f64 = wv
                        .iter()
                        .zip(&x)
                        .map(|(&p, &q)| (p as f64 * q as f64).abs())
                        .sum();
                    let (got, want) = (simd(n, &w, &a), scalar(n, &w, &a));
                    let tol = 2.0 * (n + 1) as f64 * f32::EPSILON as f64 * s + 1e-30;
                    let diff = (got as f64 - want as f64).abs();
                    assert!(
                        diff <= tol,
                        "{t} {level:?} n={n}: {got} vs {want} (tol {tol:e})"
                    );
                }
            }
        }
    }
}

#[test]
fn simd_is_bit_exact_on_exactly_representable_rows() {
    let mut rng = Rng::new(8);
    for t in TYPES {
        let scalar = vec_dot_fn(t, SimdLevel::Scalar).unwrap();
        for level in simd_levels() {
            let simd = vec_dot_fn(t, level).unwrap();
            for &n in &LENGTHS {
                // |w| <= 16/8, |a| <= 32/16 in steps of 1/8 and 1/16: every product is a
                // multiple of 2^-7 below 2^2, so any partial sum of <= 4099 terms is exact.
                let wx: Vec<f32> = (0..n)
                    .map(|_| (rng.below(33) as f32 - 16.0) / 8.0)
                    .collect();
                let ax: Vec<f32> = (0..n)
                    .map(|_| (rng.below(65) as f32 - 32.0) / 16.0)
                    .collect();
                let (w, wv) = encode(t, &wx);
                assert_eq!(wv, wx, "test values must be exact in {t}");
                let a = f32_bytes(&ax);
                let exact: f64 = wx.iter().zip(&ax).map(|(&p, &q)| p as f64 * q as f64).sum();
                let (got, want) = (simd(n, &w, &a), scalar(n, &w, &a));
                assert_eq!(want as f64, exact, "{t} scalar n={n}");
                assert_eq!(
                    got.to_bits(),
                    want.to_bits(),
                    "{t} {level:?} n={n}: {got} vs {want}"
                );
            }
        }
    }
}

/// Every lane position widens extreme and subnormal f16/bf16 weights exactly: a one-hot
/// activation picks out a single weight, so the dot must equal that weight's f32 value;
/// an inf weight among finite ones gives inf.
#[test]
fn special_weights_widen_exactly_in_every_lane() {
    for t in [DType::F16, DType::BF16] {
        let widen = |b: u16| {
            if t == DType::F16 {
                f16_to_f32(b)
            } else {
                bf16_to_f32(b)
            }
        };
        let specials: [u16; 6] = match t {
            DType::F16 => [0x0001, 0x8001, 0x03ff, 0x7bff, 0xfbff, 0x0400],
            _ => [0x0001, 0x8001, 0x007f, 0x7f7f, 0xff7f, 0x0080],
        };
        for level in SimdLevel::available() {
            let dot = vec_dot_fn(t, level).unwrap();
            for n in [6, 17, 40, 71] {
                let w: Vec<u8> = (0..n).flat_map(|i| specials[i % 6].to_le_bytes()).collect();
                for k in 0..n {
                    let mut x = vec![0.0f32; n];
                    x[k] = 1.0;
                    let got = dot(n, &w, &f32_bytes(&x));
                    let want = widen(specials[k % 6]);
                    assert_eq!(got.to_bits(), want.to_bits(), "{t} {level:?} n={n} k={k}");
                }
                let one = if t == DType::F16 { 0x3c00u16 } else { 0x3f80 };
                let inf = if t == DType::F16 { 0x7c00u16 } else { 0x7f80 };
                let mut winf: Vec<u8> = (0..n).flat_map(|_| one.to_le_bytes()).collect();
                winf[2 * (n - 1)..2 * n].copy_from_slice(&inf.to_le_bytes());
                let got = dot(n, &winf, &f32_bytes(&vec![1.0; n]));
                assert_eq!(got, f32::INFINITY, "{t} {level:?} n={n} inf");
            }
        }
    }
}
