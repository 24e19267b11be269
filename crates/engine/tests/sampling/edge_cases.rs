//! Parameter validation, NaN/infinite logits, log-probabilities and a 262,144-token
//! vocabulary.

use kaiyuan_engine::sampling::{
    LogitBias, LogprobsMode, Sampler, SamplingError, SamplingParams, TokenHistory, MAX_LOGIT_BIAS,
};

use crate::support::{bias, once, params, ranked, reference_distribution, sample_counts, Lcg};

// ---------------------------------------------------------------- validation

#[test]
fn validation_errors_name_the_field() {
    type Edit = fn(&mut SamplingParams);
    let cases: [(&str, Edit); 12] = [
        ("temperature", |p| p.temperature = 2.5),
        ("temperature", |p| p.temperature = -0.1),
        ("temperature", |p| p.temperature = f32::NAN),
        ("top_p", |p| p.top_p = 0.0),
        ("top_p", |p| p.top_p = 1.01),
        ("min_p", |p| p.min_p = -0.01),
        ("min_p", |p| p.min_p = 1.5),
        ("repetition_penalty", |p| p.repetition_penalty = 0.0),
        ("repetition_penalty", |p| {
            p.repetition_penalty = f32::INFINITY
        }),
        ("presence_penalty", |p| p.presence_penalty = 2.1),
        ("frequency_penalty", |p| p.frequency_penalty = -2.5),
        ("logprobs", |p| p.logprobs = Some(21)),
    ];
    for (field, edit) in cases {
        let mut p = SamplingParams::default();
        edit(&mut p);
        let err = p.validate().expect_err(field);
        assert_eq!(err.field, field, "{p:?}");
        assert!(err.to_string().contains(field), "{err}");
        match Sampler::new(p, 10) {
            Err(SamplingError::InvalidParams(e)) => assert_eq!(e.field, field),
            other => panic!("{field}: expected InvalidParams, got {other:?}"),
        }
    }
    // logit_bias is checked when it is built, once, and names its field.
    for bad in [
        vec![(1, 100.5)],
        vec![(1, f32::NAN)],
        vec![(1, 1.0), (1, 2.0)],
        (0..=MAX_LOGIT_BIAS as u32).map(|t| (t, 1.0)).collect(),
    ] {
        let err = LogitBias::new(bad.iter().copied()).expect_err("invalid logit_bias");
        assert_eq!(err.field, "logit_bias");
        assert!(err.to_string().contains("logit_bias"), "{err}");
    }
    let base = SamplingParams::default;
    // Checks that need the vocabulary.
    let out_of_vocab = SamplingParams {
        logit_bias: bias(&[(10, 1.0)]),
        ..base()
    };
    assert_eq!(out_of_vocab.validate(), Ok(()));
    match Sampler::new(out_of_vocab, 10) {
        Err(SamplingError::InvalidParams(e)) => assert_eq!(e.field, "logit_bias"),
        other => panic!("expected InvalidParams, got {other:?}"),
    }
    assert!(matches!(
        Sampler::new(base(), 0),
        Err(SamplingError::InvalidParams(e)) if e.field == "vocab_size"
    ));
}

// ---------------------------------------------------------------- NaN / inf

#[test]
fn nan_and_infinite_logits_do_not_panic() {
    let h = TokenHistory::new();
    for p in [SamplingParams::greedy(), params(1.0, 91)] {
        let with_logprobs = SamplingParams {
            logprobs: Some(3),
            ..p.clone()
        };
        // NaN counts as −∞: never chosen, even where it sits at the "max".
        let mut s = Sampler::new(with_logprobs.clone(), 4).expect("valid");
        for _ in 0..200 {
            let r = once(&mut s, &[f32::NAN, 0.0, 0.5, f32::NAN]);
            assert!(r.token == 1 || r.token == 2);
            assert!(r.logprob.is_some_and(|l| l.is_finite()));
            assert!(r
                .top
                .iter()
                .all(|&(id, l)| (id == 1 || id == 2) && l.is_finite()));
        }
        // +∞ tokens share all the probability.
        for _ in 0..200 {
            let r = once(&mut s, &[1e30, f32::INFINITY, 0.0, f32::INFINITY]);
            assert!(r.token == 1 || r.token == 3);
            let lp = r.logprob.expect("asked for logprobs");
            assert!((f64::from(lp) - 0.5f64.ln()).abs() < 1e-6);
        }
        // Nothing left: an error, not a panic.
        let mut s = Sampler::new(p.clone(), 3).expect("valid");
        assert_eq!(
            s.sample(&mut [f32::NAN; 3], &h),
            Err(SamplingError::NoCandidate)
        );
        assert_eq!(
            s.sample(&mut [f32::NEG_INFINITY; 3], &h),
            Err(SamplingError::NoCandidate)
        );
        let ban_all = SamplingParams {
            logit_bias: bias(&[(0, -100.0), (1, -100.0), (2, -100.0)]),
            ..p
        };
        let mut s = Sampler::new(ban_all, 3).expect("valid");
        assert_eq!(
            s.sample(&mut [0.0, 1.0, 2.0], &h),
            Err(SamplingError::NoCandidate)
        );
    }
    // Both infinities at once with a tiny temperature and huge finite logits.
    let mut s = Sampler::new(params(0.01, 92), 3).expect("valid");
    let r = once(&mut s, &[f32::MAX, -f32::MAX, f32::NEG_INFINITY]);
    assert_eq!(r.token, 0);
}

// ---------------------------------------------------------------- logprobs

#[test]
fn logprobs_raw_and_processed() {
    let logits = [1.0f32, 3.0, -2.0, 2.5, 0.0];
    let bias = bias(&[(1, -100.0), (4, 1.5)]);
    let log_softmax = |v: &[f64]| -> Vec<f64> {
        let m = v.iter().cloned().fold(f64::MIN, f64::max);
        let lse = m + v.iter().map(|x| (x - m).exp()).sum::<f64>().ln();
        v.iter().map(|x| x - lse).collect()
    };
    // Raw: the model's distribution, bias ignored.
    let raw = SamplingParams {
        logit_bias: bias.clone(),
        logprobs: Some(3),
        ..SamplingParams::greedy()
    };
    let mut s = Sampler::new(raw.clone(), 5).expect("valid");
    let r = once(&mut s, &logits);
    let want = log_softmax(&[1.0, 3.0, -2.0, 2.5, 0.0]);
    assert_eq!(r.token, 3, "token 1 is banned");
    assert!((f64::from(r.logprob.expect("asked")) - want[3]).abs() < 1e-6);
    let ids: Vec<u32> = r.top.iter().map(|&(id, _)| id).collect();
    assert_eq!(ids, [1, 3, 0]);
    for &(id, lp) in &r.top {
        assert!((f64::from(lp) - want[id as usize]).abs() < 1e-6);
    }
    // Processed: after bias (token 1 gone, token 4 raised to 1.5).
    let processed = SamplingParams {
        logprobs_mode: LogprobsMode::Processed,
        ..raw
    };
    let mut s = Sampler::new(processed, 5).expect("valid");
    let r = once(&mut s, &logits);
    let kept = [1.0f64, -2.0, 2.5, 1.5];
    let lp = log_softmax(&kept);
    let want = [lp[0], f64::NEG_INFINITY, lp[1], lp[2], lp[3]];
    assert!((f64::from(r.logprob.expect("asked")) - want[3]).abs() < 1e-6);
    let ids: Vec<u32> = r.top.iter().map(|&(id, _)| id).collect();
    assert_eq!(ids, [3, 4, 0]);
    for &(id, lp) in &r.top {
        assert!((f64::from(lp) - want[id as usize]).abs() < 1e-6);
    }
    // Not asked: nothing reported.
    let mut s = Sampler::new(SamplingParams::greedy(), 5).expect("valid");
    let r = once(&mut s, &logits);
    assert_eq!((r.logprob, r.top.len()), (None, 0));
}

// ---------------------------------------------------------------- large vocabulary

#[test]
fn vocab_262144_works() {
    const V: usize = 262_144;
    let mut rng = Lcg(10);
    let logits = rng.logits(V, 12.0);
    let order = ranked(&logits);

    let mut greedy = Sampler::new(
        SamplingParams {
            logprobs: Some(5),
            ..SamplingParams::greedy()
        },
        V,
    )
    .expect("valid");
    let r = once(&mut greedy, &logits);
    assert_eq!(r.token as usize, order[0]);
    let top_ids: Vec<usize> = r.top.iter().map(|&(id, _)| id as usize).collect();
    assert_eq!(top_ids, order[..5]);
    let m = f64::from(logits[order[0]]);
    let lse = m + logits
        .iter()
        .map(|&x| (f64::from(x) - m).exp())
        .sum::<f64>()
        .ln();
    assert!((f64::from(r.logprob.expect("asked")) - (m - lse)).abs() < 1e-4);

    let top_k = SamplingParams {
        top_k: 40,
        ..params(1.0, 101)
    };
    let counts = sample_counts(top_k, &logits, 300);
    for (id, &c) in counts.iter().enumerate() {
        assert!(
            c == 0 || order[..40].contains(&id),
            "token {id} not in top 40"
        );
    }

    // Here min-p (tokens within ln 10 of the max) binds before top-p; the f64 reference
    // and the sampler can only disagree on a token at the boundary, whose probability is
    // below 1e-4 per draw.
    let (want, _) = reference_distribution(&logits, 1.0, 0, 0.9, 0.1);
    let nucleus = SamplingParams {
        top_p: 0.9,
        min_p: 0.1,
        ..params(1.0, 102)
    };
    let counts = sample_counts(nucleus, &logits, 300);
    for (id, &c) in counts.iter().enumerate() {
        assert!(c == 0 || want[id] > 0.0, "token {id} outside top-p/min-p");
    }

    // Plain sampling over the whole vocabulary.
    let counts = sample_counts(params(1.0, 103), &logits, 50);
    assert_eq!(counts.iter().sum::<usize>(), 50);
}
