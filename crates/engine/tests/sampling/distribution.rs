//! Greedy, temperature and truncation (top-k, top-p, min-p): sampled frequencies against
//! the reference distributions.

use kaiyuan_engine::sampling::{Sampler, SamplingParams};

use crate::support::{
    assert_frequencies, binomial_violations, chi_square, once, params, ranked,
    reference_distribution, sample_counts, softmax_f64, Lcg, CHI2_DF5_ALPHA_1E6,
};

// ---------------------------------------------------------------- greedy

#[test]
fn greedy_is_argmax_with_lowest_id_on_ties() {
    let mut rng = Lcg(1);
    for round in 0..50 {
        let logits = rng.logits(1000, 10.0);
        let want = ranked(&logits)[0];
        let mut sampler = Sampler::new(SamplingParams::greedy(), logits.len()).expect("valid");
        let got = once(&mut sampler, &logits);
        assert_eq!(got.token as usize, want, "round {round}");
    }
    let mut sampler = Sampler::new(SamplingParams::greedy(), 5).expect("valid");
    let got = once(&mut sampler, &[1.0, 4.0, 2.0, 4.0, 4.0]);
    assert_eq!(got.token, 1);
}

// ---------------------------------------------------------------- temperature

#[test]
fn temperature_frequencies_match_softmax() {
    let logits = [1.0f32, 0.5, 2.0, -1.0, 0.0, 1.5];
    let draws = 20_000;
    for (seed, t) in [(11u64, 0.5f32), (12, 1.0), (13, 1.7)] {
        let counts = sample_counts(params(t, seed), &logits, draws);
        let want = softmax_f64(&logits, f64::from(t));
        assert_frequencies(&counts, &want);
        let chi2 = chi_square(&counts, &want);
        assert!(
            chi2 < CHI2_DF5_ALPHA_1E6,
            "T={t}: chi-square {chi2:.1} ≥ {CHI2_DF5_ALPHA_1E6}"
        );
        // Power check: the same counts are clearly incompatible with a neighbouring
        // temperature, so the bounds above are tight enough to catch a wrong T.
        let wrong = softmax_f64(&logits, f64::from(t) * 1.3);
        assert!(chi_square(&counts, &wrong) > CHI2_DF5_ALPHA_1E6, "T={t}");
    }
}

// ---------------------------------------------------------------- truncation

#[test]
fn top_k_returns_only_the_k_best_with_renormalised_frequencies() {
    let mut rng = Lcg(2);
    let logits = rng.logits(60, 4.0);
    let k = 5;
    let best: Vec<usize> = ranked(&logits)[..k].to_vec();
    let p = SamplingParams {
        top_k: k,
        ..params(0.5, 21)
    };
    let counts = sample_counts(p, &logits, 20_000);
    for (id, &c) in counts.iter().enumerate() {
        if c > 0 {
            assert!(best.contains(&id), "token {id} is not in the top {k}");
        }
    }
    let (want, _) = reference_distribution(&logits, 0.5, k, 1.0, 0.0);
    assert_frequencies(&counts, &want);
    // Power check: temperature matters inside the top k.
    let (at_t1, _) = reference_distribution(&logits, 1.0, k, 1.0, 0.0);
    assert!(!binomial_violations(&counts, &at_t1).is_empty());
}

#[test]
fn top_p_returns_only_the_nucleus_with_renormalised_frequencies() {
    let mut rng = Lcg(3);
    for (case, (t, top_p)) in [(1.0f32, 0.8f32), (0.6, 0.5), (1.3, 0.95)]
        .into_iter()
        .enumerate()
    {
        let logits = rng.logits(500, 6.0);
        let (want, gap) = reference_distribution(&logits, f64::from(t), 0, f64::from(top_p), 0.0);
        assert!(
            gap > 1e-5,
            "case {case}: nucleus boundary too close to call"
        );
        let nucleus = want.iter().filter(|&&p| p > 0.0).count();
        assert!(nucleus > 1 && nucleus < 500, "case {case}: trivial nucleus");
        let p = SamplingParams {
            top_p,
            ..params(t, 30 + case as u64)
        };
        let counts = sample_counts(p, &logits, 20_000);
        assert_frequencies(&counts, &want);
    }
}

#[test]
fn top_p_nucleus_larger_than_a_first_chunk() {
    // A flat distribution over 4096 tokens: the nucleus needs thousands of tokens, so the
    // incremental partial sort must grow several times.
    let mut rng = Lcg(4);
    let logits = rng.logits(4096, 0.5);
    let (want, gap) = reference_distribution(&logits, 1.0, 0, 0.7, 0.0);
    assert!(gap > 1e-7);
    let p = SamplingParams {
        top_p: 0.7,
        ..params(1.0, 41)
    };
    let counts = sample_counts(p, &logits, 5_000);
    for (id, &c) in counts.iter().enumerate() {
        assert!(c == 0 || want[id] > 0.0, "token {id} outside the nucleus");
    }
    assert!(want.iter().filter(|&&p| p > 0.0).count() > 1000);
}

#[test]
fn min_p_keeps_tokens_above_the_relative_threshold() {
    let mut rng = Lcg(5);
    let logits = rng.logits(300, 5.0);
    let (want, _) = reference_distribution(&logits, 0.9, 0, 1.0, 0.05);
    let kept = want.iter().filter(|&&p| p > 0.0).count();
    assert!(kept > 1 && kept < 300);
    let p = SamplingParams {
        min_p: 0.05,
        ..params(0.9, 51)
    };
    let counts = sample_counts(p, &logits, 20_000);
    assert_frequencies(&counts, &want);
}

#[test]
fn top_k_then_top_p_then_min_p_compose_in_order() {
    // 10 "head" tokens with logits 5 − 0.3·i and 90 flat "tail" tokens at 1.0, scattered
    // over the ids by i ↦ 37·i mod 100. With k = 20 the tail contributes only its 10
    // lowest ids, which changes top-p's renormalisation: top-k binds through top-p.
    let mut logits = vec![0.0f32; 100];
    for i in 0..100 {
        logits[(37 * i) % 100] = if i < 10 { 5.0 - 0.3 * i as f32 } else { 1.0 };
    }
    // (top_p, min_p, the stage that must bind): A — min-p cuts more than top-p;
    // B — top-p cuts more than min-p.
    for (case, (top_p, min_p)) in [(0.9f32, 0.15f32), (0.8, 0.05)].into_iter().enumerate() {
        let (tp, mp) = (f64::from(top_p), f64::from(min_p));
        let (want, gap) = reference_distribution(&logits, 1.0, 20, tp, mp);
        assert!(gap > 1e-3, "case {case}");
        let p = SamplingParams {
            top_k: 20,
            top_p,
            min_p,
            ..params(1.0, 61 + case as u64)
        };
        let counts = sample_counts(p, &logits, 20_000);
        assert_frequencies(&counts, &want);
        // The stages bind: dropping top-k, or the tighter of top-p / min-p, changes the
        // expected distribution.
        let without_k = reference_distribution(&logits, 1.0, 0, tp, mp).0;
        let without_tighter = if case == 0 {
            reference_distribution(&logits, 1.0, 20, tp, 0.0).0
        } else {
            reference_distribution(&logits, 1.0, 20, 1.0, mp).0
        };
        assert!(
            without_tighter != want,
            "case {case}: truncation does not bind"
        );
        if case == 1 {
            assert!(without_k != want, "top-k does not bind");
        }
    }
}
