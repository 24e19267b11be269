//! Element-wise ops against straightforward f64 implementations written here from the
//! published formulas (not from the crate's code), on random data of awkward lengths;
//! RoPE also against hand-computed values and its geometric properties.

use kaiyuan_kernels::ops::{
    add, add_scaled, geglu, gelu, gelu_erf, mul, rms_norm, rms_norm_in_place, rope, rope_qk, scale,
    silu, softmax, swiglu, RopeParams, RopeStyle,
};
use kaiyuan_kernels::quant::testing::Rng;

const LENGTHS: [usize; 6] = [1, 2, 7, 33, 257, 1001];

fn assert_close(got: &[f32], want: &[f64], rel: f64, abs: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let tol = abs + rel * w.abs();
        assert!(
            (f64::from(g) - w).abs() <= tol,
            "{what}[{i}]: got {g}, want {w} (tol {tol})"
        );
    }
}

fn to_f64(x: &[f32]) -> Vec<f64> {
    x.iter().map(|&v| f64::from(v)).collect()
}

// ---- normalisation ----

#[test]
fn rms_norm_matches_formula() {
    let mut rng = Rng::new(1);
    for n in LENGTHS {
        for eps in [1e-6f32, 1e-5] {
            let x = rng.vec_f32(n, 3.0);
            let w = rng.vec_f32(n, 2.0);
            let mean_sq = x.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / n as f64;
            let denom = (mean_sq + f64::from(eps)).sqrt();
            let want: Vec<f64> = x
                .iter()
                .zip(&w)
                .map(|(&v, &g)| f64::from(v) / denom * f64::from(g))
                .collect();
            let mut out = vec![f32::NAN; n];
            rms_norm(&x, &w, eps, &mut out);
            assert_close(&out, &want, 1e-5, 1e-6, &format!("rms_norm n={n}"));

            let mut inplace = x.clone();
            rms_norm_in_place(&mut inplace, &w, eps);
            assert_eq!(inplace, out, "in-place differs, n={n}");
        }
    }
}

#[test]
fn rms_norm_eps_matters_for_tiny_inputs() {
    // mean(x²) = 1e-6, so eps = 1e-6 halves the variance term's weight: factor 1/√2.
    let x = vec![1e-3f32; 5];
    let w = vec![1f32; 5];
    let mut out = vec![0f32; 5];
    rms_norm(&x, &w, 1e-6, &mut out);
    for v in out {
        assert!(
            (f64::from(v) - std::f64::consts::FRAC_1_SQRT_2).abs() < 1e-5,
            "{v}"
        );
    }
}

// ---- softmax ----

fn softmax_ref(x: &[f32]) -> Vec<f64> {
    let max = x
        .iter()
        .map(|&v| f64::from(v))
        .fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = x.iter().map(|&v| (f64::from(v) - max).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|v| v / s).collect()
}

#[test]
fn softmax_matches_formula_with_masks_and_large_values() {
    let mut rng = Rng::new(2);
    for n in LENGTHS {
        for shift in [0.0f32, 80.0, -80.0, 1000.0] {
            let mut x: Vec<f32> = rng.vec_f32(n, 10.0).iter().map(|v| v + shift).collect();
            // Mask roughly a third of the entries, but keep at least one.
            for (i, v) in x.iter_mut().enumerate() {
                if i % 3 == 1 {
                    *v = f32::NEG_INFINITY;
                }
            }
            let want = softmax_ref(&x);
            softmax(&mut x);
            assert_close(
                &x,
                &want,
                1e-5,
                1e-7,
                &format!("softmax n={n} shift={shift}"),
            );
            for (i, v) in x.iter().enumerate() {
                if i % 3 == 1 {
                    assert_eq!(*v, 0.0, "masked entry {i} must be exactly 0");
                }
            }
            let total: f64 = x.iter().map(|&v| f64::from(v)).sum();
            assert!((total - 1.0).abs() < 1e-5, "sum {total}");
        }
    }
}

#[test]
fn softmax_of_fully_masked_row_is_zero_not_nan() {
    let mut x = vec![f32::NEG_INFINITY; 9];
    softmax(&mut x);
    assert!(x.iter().all(|&v| v == 0.0), "{x:?}");
    let mut empty: Vec<f32> = Vec::new();
    softmax(&mut empty);
}

// ---- activations ----

/// erf by its Maclaurin series (accurate in f64 for |x| ≤ 4; beyond, erf = ±1 to 2e-8).
fn erf_ref(x: f64) -> f64 {
    if x.abs() > 4.0 {
        return x.signum();
    }
    let mut term = x; // (-1)^n x^(2n+1) / n!
    let mut sum = x;
    for n in 1..200 {
        term *= -x * x / n as f64;
        let add = term / (2 * n + 1) as f64;
        sum += add;
        if add.abs() < 1e-18 {
            break;
        }
    }
    sum * 2.0 / std::f64::consts::PI.sqrt()
}

#[test]
fn erf_reference_is_sane() {
    // Known values: erf(0.5) = 0.5204998778130465, erf(1) = 0.8427007929497149.
    assert!((erf_ref(0.5) - 0.520_499_877_813_046_5).abs() < 1e-14);
    assert!((erf_ref(1.0) - 0.842_700_792_949_714_9).abs() < 1e-14);
    assert!((erf_ref(-2.0) + 0.995_322_265_018_952_7).abs() < 1e-13);
}

fn check_unary(f: fn(&mut [f32]), reference: fn(f64) -> f64, name: &str, seed: u64) {
    let mut rng = Rng::new(seed);
    for n in LENGTHS {
        let mut x = rng.vec_f32(n, 8.0);
        if n > 2 {
            x[0] = 0.0;
            x[1] = -30.0;
        }
        let want: Vec<f64> = x.iter().map(|&v| reference(f64::from(v))).collect();
        f(&mut x);
        assert_close(&x, &want, 2e-6, 1e-7, &format!("{name} n={n}"));
    }
}

fn silu_ref(x: f64) -> f64 {
    x / (1.0 + (-x).exp())
}

fn gelu_tanh_ref(x: f64) -> f64 {
    let k = (2.0 / std::f64::consts::PI).sqrt();
    0.5 * x * (1.0 + (k * (x + 0.044715 * x * x * x)).tanh())
}

fn gelu_erf_ref(x: f64) -> f64 {
    0.5 * x * (1.0 + erf_ref(x / std::f64::consts::SQRT_2))
}

#[test]
fn silu_matches_formula() {
    check_unary(silu, silu_ref, "silu", 3);
}

#[test]
fn gelu_tanh_matches_formula() {
    check_unary(gelu, gelu_tanh_ref, "gelu", 4);
}

#[test]
fn gelu_erf_matches_formula() {
    check_unary(gelu_erf, gelu_erf_ref, "gelu_erf", 5);
}

/// The activations over their whole range, where the (AVX2) exponential's argument is
/// capped or its result leaves the normal range, and NaN.
#[test]
fn activations_hold_at_the_extremes() {
    let xs: Vec<f32> = (-2400..=2400).map(|i| i as f32 * 0.05).collect();
    let want_silu: Vec<f64> = xs.iter().map(|&v| silu_ref(f64::from(v))).collect();
    let want_gelu: Vec<f64> = xs.iter().map(|&v| gelu_tanh_ref(f64::from(v))).collect();
    let (mut s, mut g) = (xs.clone(), xs.clone());
    silu(&mut s);
    gelu(&mut g);
    assert_close(&s, &want_silu, 2e-6, 1e-7, "silu on [-120, 120]");
    assert_close(&g, &want_gelu, 2e-6, 1e-7, "gelu on [-120, 120]");
    let mut nan = [f32::NAN; 9];
    silu(&mut nan);
    assert!(nan.iter().all(|v| v.is_nan()), "silu(NaN) = {nan:?}");
    let mut nan = [f32::NAN; 9];
    geglu(&mut nan, &[1.0; 9]);
    assert!(nan.iter().all(|v| v.is_nan()), "geglu(NaN) = {nan:?}");
}

#[test]
fn gelu_variants_differ() {
    // The tanh approximation is not the exact GELU (they differ by ~4.4e-4 at x = 2.5):
    // make sure each op implements the one it claims.
    let mut a = vec![2.5f32];
    let mut b = vec![2.5f32];
    gelu(&mut a);
    gelu_erf(&mut b);
    assert!((f64::from(a[0]) - gelu_tanh_ref(2.5)).abs() < 1e-6);
    assert!((f64::from(b[0]) - gelu_erf_ref(2.5)).abs() < 1e-6);
    assert!((a[0] - b[0]).abs() > 3e-4);
}

#[test]
fn gated_products_match_formula() {
    let mut rng = Rng::new(6);
    for n in LENGTHS {
        let gate = rng.vec_f32(n, 6.0);
        let up = rng.vec_f32(n, 3.0);
        let mut g = gate.clone();
        swiglu(&mut g, &up);
        let want: Vec<f64> = gate
            .iter()
            .zip(&up)
            .map(|(&a, &b)| silu_ref(f64::from(a)) * f64::from(b))
            .collect();
        assert_close(&g, &want, 2e-6, 1e-7, &format!("swiglu n={n}"));

        let mut g = gate.clone();
        geglu(&mut g, &up);
        let want: Vec<f64> = gate
            .iter()
            .zip(&up)
            .map(|(&a, &b)| gelu_tanh_ref(f64::from(a)) * f64::from(b))
            .collect();
        assert_close(&g, &want, 2e-6, 1e-7, &format!("geglu n={n}"));
    }
}

// ---- arithmetic ----

#[test]
fn arithmetic_matches_formula() {
    let mut rng = Rng::new(7);
    for n in LENGTHS {
        let a = rng.vec_f32(n, 5.0);
        let b = rng.vec_f32(n, 5.0);
        let s = rng.uniform(-3.0, 3.0);
        let (a64, b64, s64) = (to_f64(&a), to_f64(&b), f64::from(s));

        let mut d = a.clone();
        add(&mut d, &b);
        let want: Vec<f64> = a64.iter().zip(&b64).map(|(x, y)| x + y).collect();
        assert_close(&d, &want, 1e-7, 1e-6, "add");

        let mut d = a.clone();
        mul(&mut d, &b);
        let want: Vec<f64> = a64.iter().zip(&b64).map(|(x, y)| x * y).collect();
        assert_close(&d, &want, 1e-7, 1e-6, "mul");

        let mut d = a.clone();
        scale(&mut d, s);
        let want: Vec<f64> = a64.iter().map(|x| x * s64).collect();
        assert_close(&d, &want, 1e-7, 1e-6, "scale");

        let mut d = a.clone();
        add_scaled(&mut d, &b, s);
        let want: Vec<f64> = a64.iter().zip(&b64).map(|(x, y)| x + s64 * y).collect();
        assert_close(&d, &want, 1e-6, 1e-5, "add_scaled");
    }
}

#[test]
#[should_panic(expected = "lengths differ")]
fn arithmetic_rejects_mismatched_lengths() {
    add(&mut [1.0, 2.0], &[1.0]);
}

// ---- RoPE ----

/// Reference rotation of one head: the pair (a, b) is the complex number a + ib,
/// multiplied by e^{iθ}.
fn rope_ref(head: &[f32], pos: f64, style: RopeStyle, n_rot: usize, p: &RefParams) -> Vec<f64> {
    let mut out = to_f64(head);
    let half = n_rot / 2;
    for i in 0..half {
        let inv_freq = 1.0 / p.base.powf(2.0 * i as f64 / n_rot as f64);
        let theta = pos * p.freq_scale * inv_freq / p.factors.as_ref().map_or(1.0, |f| f[i]);
        let (ia, ib) = match style {
            RopeStyle::Normal => (2 * i, 2 * i + 1),
            RopeStyle::Neox => (i, i + half),
        };
        let (a, b) = (f64::from(head[ia]), f64::from(head[ib]));
        // (a + ib)(cos θ + i sin θ)
        out[ia] = a * theta.cos() - b * theta.sin();
        out[ib] = a * theta.sin() + b * theta.cos();
    }
    out
}

struct RefParams {
    base: f64,
    freq_scale: f64,
    factors: Option<Vec<f64>>,
}

/// `rope_qk` shares each angle between the query and key heads and caches the inverse
/// frequencies per thread; it must give exactly what two `rope` calls give, also when the
/// base and rotary width change from call to call (Gemma 3 alternates two bases), which
/// would expose a stale cache. `rope` itself is checked against the f64 reference.
#[test]
fn rope_qk_is_rope_of_q_and_of_k() {
    let mut rng = Rng::new(31);
    let head_dim = 16;
    let settings = [
        (10000.0f32, 16),
        (1e6, 16),
        (10000.0, 8),
        (1e6, 16),
        (10000.0, 16),
    ];
    for (call, &(base, n_rot)) in settings.iter().enumerate() {
        for style in [RopeStyle::Normal, RopeStyle::Neox] {
            let p = RopeParams::new(style, n_rot, base);
            let pos = 37 * call + 5;
            let (q0, k0) = (
                rng.vec_f32(4 * head_dim, 1.0),
                rng.vec_f32(2 * head_dim, 1.0),
            );
            let q_orig = q0.clone();
            let (mut q1, mut k1) = (q0.clone(), k0.clone());
            rope_qk(&mut q1, 4, &mut k1, 2, head_dim, pos, &p);
            let (mut q2, mut k2) = (q0, k0);
            rope(&mut q2, 4, head_dim, pos, &p);
            rope(&mut k2, 2, head_dim, pos, &p);
            assert_eq!(q1, q2, "q, base {base}, n_rot {n_rot}, {style:?}");
            assert_eq!(k1, k2, "k, base {base}, n_rot {n_rot}, {style:?}");
            // Against the f64 reference too: a stale cache would fool both sides above.
            let refp = RefParams {
                base: f64::from(base),
                freq_scale: 1.0,
                factors: None,
            };
            for (got, orig) in q1.chunks(head_dim).zip(q_orig.chunks(head_dim)) {
                let want = rope_ref(orig, pos as f64, style, n_rot, &refp);
                assert_close(got, &want, 1e-5, 1e-5, "rope_qk against the reference");
            }
        }
    }
}

#[test]
fn rope_hand_computed_example() {
    // head_dim 4, base 10000, pos 1: pair 0 turns by 1 rad, pair 1 by 10000^(-1/2) = 0.01.
    let (c1, s1) = (0.540_302_305_868_139_8f64, 0.841_470_984_807_896_5f64);
    let (c01, s01) = (0.999_950_000_416_665_3f64, 0.009_999_833_334_166_664f64);

    let mut x = vec![1.0f32, 0.0, 0.0, 1.0];
    rope(
        &mut x,
        1,
        4,
        1,
        &RopeParams::new(RopeStyle::Normal, 4, 10000.0),
    );
    // Normal pairs (0,1) and (2,3): (1,0)→(cos1, sin1), (0,1)→(−sin.01, cos.01).
    let want = [c1, s1, -s01, c01];
    assert_close(&x, &want, 0.0, 1e-6, "normal");

    let mut x = vec![1.0f32, 0.0, 0.0, 1.0];
    rope(
        &mut x,
        1,
        4,
        1,
        &RopeParams::new(RopeStyle::Neox, 4, 10000.0),
    );
    // NeoX pairs (0,2) and (1,3): x0=1,x2=0 turn by 1 rad; x1=0,x3=1 turn by 0.01.
    let want = [c1, -s01, s1, c01];
    assert_close(&x, &want, 0.0, 1e-6, "neox");
}

#[test]
fn rope_matches_reference_for_both_styles_partial_rotation_and_scaling() {
    let mut rng = Rng::new(8);
    for style in [RopeStyle::Normal, RopeStyle::Neox] {
        for (head_dim, n_rot) in [(8usize, 8usize), (64, 64), (64, 32), (80, 40), (6, 2)] {
            for (freq_scale, with_factors) in [(1.0f32, false), (0.25, false), (1.0, true)] {
                let n_heads = 3;
                let factors: Option<Vec<f32>> =
                    with_factors.then(|| (0..n_rot / 2).map(|_| rng.uniform(1.0, 8.0)).collect());
                let params = RopeParams {
                    style,
                    n_rot,
                    theta_base: 10000.0,
                    freq_scale,
                    freq_factors: factors.as_deref(),
                };
                let refp = RefParams {
                    base: 10000.0,
                    freq_scale: f64::from(freq_scale),
                    factors: factors.as_ref().map(|f| to_f64(f)),
                };
                for pos in [0usize, 1, 5, 100, 4097] {
                    let x = rng.vec_f32(n_heads * head_dim, 2.0);
                    let mut got = x.clone();
                    rope(&mut got, n_heads, head_dim, pos, &params);
                    for h in 0..n_heads {
                        let head = &x[h * head_dim..(h + 1) * head_dim];
                        let want = rope_ref(head, pos as f64, style, n_rot, &refp);
                        let what = format!(
                            "{style:?} hd={head_dim} rot={n_rot} fs={freq_scale} \
                             ff={with_factors} pos={pos} head={h}"
                        );
                        assert_close(
                            &got[h * head_dim..(h + 1) * head_dim],
                            &want,
                            0.0,
                            2e-6,
                            &what,
                        );
                        // Dimensions past n_rot are untouched, bit for bit.
                        assert_eq!(
                            &got[h * head_dim + n_rot..(h + 1) * head_dim],
                            &head[n_rot..]
                        );
                    }
                    if pos == 0 {
                        assert_eq!(got, x, "position 0 must be the identity");
                    }
                }
            }
        }
    }
}

#[test]
fn rope_preserves_pair_norms() {
    let mut rng = Rng::new(9);
    let (n_heads, head_dim) = (4, 64);
    for style in [RopeStyle::Normal, RopeStyle::Neox] {
        let half = head_dim / 2;
        let pairs = |i: usize| match style {
            RopeStyle::Normal => (2 * i, 2 * i + 1),
            RopeStyle::Neox => (i, i + half),
        };
        let x = rng.vec_f32(n_heads * head_dim, 3.0);
        let mut y = x.clone();
        rope(
            &mut y,
            n_heads,
            head_dim,
            12345,
            &RopeParams::new(style, head_dim, 500000.0),
        );
        assert_ne!(x, y);
        for h in 0..n_heads {
            for i in 0..half {
                let (a, b) = pairs(i);
                let norm = |v: &[f32]| {
                    let (p, q) = (
                        f64::from(v[h * head_dim + a]),
                        f64::from(v[h * head_dim + b]),
                    );
                    (p * p + q * q).sqrt()
                };
                assert!(
                    (norm(&x) - norm(&y)).abs() < 1e-5,
                    "{style:?} head {h} pair {i}"
                );
            }
        }
    }
}

#[test]
fn rope_freq_scale_is_position_interpolation_and_factors_divide_angles() {
    let mut rng = Rng::new(10);
    let (n_heads, head_dim) = (2, 16);
    let x = rng.vec_f32(n_heads * head_dim, 1.0);
    for style in [RopeStyle::Normal, RopeStyle::Neox] {
        // freq_scale 0.5 at position 40 == no scaling at position 20.
        let mut a = x.clone();
        let mut scaled = RopeParams::new(style, head_dim, 10000.0);
        scaled.freq_scale = 0.5;
        rope(&mut a, n_heads, head_dim, 40, &scaled);
        let mut b = x.clone();
        rope(
            &mut b,
            n_heads,
            head_dim,
            20,
            &RopeParams::new(style, head_dim, 10000.0),
        );
        assert_close(&a, &to_f64(&b), 0.0, 1e-6, "freq_scale");

        // All factors 4 at position 80 == no factors at position 20; and factors must
        // change the result at all.
        let fours = vec![4.0f32; head_dim / 2];
        let mut with_ff = RopeParams::new(style, head_dim, 10000.0);
        with_ff.freq_factors = Some(&fours);
        let mut c = x.clone();
        rope(&mut c, n_heads, head_dim, 80, &with_ff);
        assert_close(&c, &to_f64(&b), 0.0, 1e-6, "freq_factors");
        let mut d = x.clone();
        rope(
            &mut d,
            n_heads,
            head_dim,
            80,
            &RopeParams::new(style, head_dim, 10000.0),
        );
        assert!(c.iter().zip(&d).any(|(p, q)| (p - q).abs() > 1e-3));
    }
}

#[test]
fn rope_rotations_compose() {
    // Rotating by position a then b equals rotating by a + b.
    let mut rng = Rng::new(11);
    let x = rng.vec_f32(2 * 32, 1.0);
    for style in [RopeStyle::Normal, RopeStyle::Neox] {
        let p = RopeParams::new(style, 32, 10000.0);
        let mut twice = x.clone();
        rope(&mut twice, 2, 32, 7, &p);
        rope(&mut twice, 2, 32, 30, &p);
        let mut once = x.clone();
        rope(&mut once, 2, 32, 37, &p);
        assert_close(&twice, &to_f64(&once), 0.0, 1e-5, "compose");
    }
}
