//! Repetition, presence and frequency penalties and `logit_bias`: the processed logits and
//! frequencies against the formulas (CTRL, OpenAI).

use kaiyuan_engine::sampling::{Sampler, SamplingParams, TokenHistory};

use crate::support::{assert_frequencies, bias, params, sample_counts, softmax_f64};

// ---------------------------------------------------------------- penalties

/// Runs the greedy sampler once and returns the processed logits it leaves behind.
fn processed(p: SamplingParams, logits: &[f32], history: &TokenHistory) -> Vec<f32> {
    let mut sampler = Sampler::new(p, logits.len()).expect("valid");
    let mut buf = logits.to_vec();
    sampler.sample(&mut buf, history).expect("sample");
    buf
}

#[test]
fn repetition_penalty_follows_ctrl_over_the_window() {
    let logits = [2.0f32, -1.5, 0.8, -0.3, 3.0, 1.0];
    let mut history = TokenHistory::new().with_repetition_window(4);
    history.push_prompt(&[4, 0]);
    for t in [1, 1, 3] {
        history.push(t);
    }
    // Window = last 4 = [0, 1, 1, 3]; token 4 slid out; 1 counts once.
    let penalty = 1.3f64;
    let p = SamplingParams {
        repetition_penalty: penalty as f32,
        ..SamplingParams::greedy()
    };
    let got = processed(p, &logits, &history);
    for (id, (&x, &g)) in logits.iter().zip(&got).enumerate() {
        let x = f64::from(x);
        let want = if [0, 1, 3].contains(&id) {
            if x > 0.0 {
                x / penalty
            } else {
                x * penalty
            }
        } else {
            x
        };
        assert!(
            (f64::from(g) - want).abs() < 1e-6,
            "token {id}: {g} vs {want}"
        );
    }
}

#[test]
fn presence_and_frequency_follow_openai_formula() {
    let logits = [2.0f32, -1.5, 0.8, -0.3, 3.0, 1.0];
    let mut history = TokenHistory::new();
    history.push_prompt(&[5, 5, 5]); // not counted by default
    for t in [2, 2, 2, 0, 4, 2] {
        history.push(t);
    }
    let counts = [1.0f64, 0.0, 4.0, 0.0, 1.0, 0.0];
    let (presence, frequency) = (0.7f64, -0.4f64);
    let p = SamplingParams {
        presence_penalty: presence as f32,
        frequency_penalty: frequency as f32,
        ..SamplingParams::greedy()
    };
    let got = processed(p.clone(), &logits, &history);
    for id in 0..6 {
        let c = counts[id];
        let want = f64::from(logits[id]) - c * frequency - if c > 0.0 { presence } else { 0.0 };
        assert!((f64::from(got[id]) - want).abs() < 1e-5, "token {id}");
    }
    // With prompt counting on, token 5 (three prompt occurrences) is penalised too.
    let mut with_prompt = TokenHistory::new().with_prompt_counts(true);
    with_prompt.push_prompt(&[5, 5, 5]);
    let got = processed(p, &logits, &with_prompt);
    let want = f64::from(logits[5]) - 3.0 * frequency - presence;
    assert!((f64::from(got[5]) - want).abs() < 1e-5);
}

#[test]
fn penalties_apply_after_bias_and_repetition_before_presence() {
    // Token 0: logit 1.0, bias −3 → −2.0; repetition 2 multiplies (negative) → −4.0;
    // frequency 0.5 × 1 → −4.5. Any other order gives a different number.
    let mut history = TokenHistory::new();
    history.push(0);
    let p = SamplingParams {
        logit_bias: bias(&[(0, -3.0)]),
        repetition_penalty: 2.0,
        frequency_penalty: 0.5,
        ..SamplingParams::greedy()
    };
    let got = processed(p, &[1.0, 0.0], &history);
    assert_eq!(got[0], -4.5);
}

// ---------------------------------------------------------------- logit bias

#[test]
fn logit_bias_minus_100_bans_and_plus_100_forces() {
    let logits = [0.0f32, 25.0, 1.0, -30.0];
    // Ban the overwhelming favourite: greedy takes the runner-up, sampling never picks it.
    let ban = SamplingParams {
        logit_bias: bias(&[(1, -100.0)]),
        ..params(2.0, 71)
    };
    let counts = sample_counts(ban.clone(), &logits, 2000);
    assert_eq!(counts[1], 0);
    assert!(counts[0] > 0 && counts[2] > 0);
    let greedy_ban = SamplingParams {
        temperature: 0.0,
        ..ban
    };
    assert_eq!(sample_counts(greedy_ban, &logits, 1)[2], 1);
    // Force the least likely token: it is always chosen.
    let force = SamplingParams {
        logit_bias: bias(&[(3, 100.0)]),
        ..params(1.0, 72)
    };
    assert_eq!(sample_counts(force, &logits, 500)[3], 500);
    // Two forced tokens share the probability by their own logits.
    let two = SamplingParams {
        logit_bias: bias(&[(3, 100.0), (0, 100.0)]),
        ..params(1.0, 73)
    };
    let counts = sample_counts(two, &logits, 20_000);
    let pair = softmax_f64(&[0.0, -30.0 + 0.5], 1.0);
    assert_frequencies(&counts, &[pair[0], 0.0, 0.0, pair[1]]);
}

#[test]
fn small_logit_bias_is_additive() {
    let logits = [0.3f32, -0.2, 1.1];
    let p = SamplingParams {
        logit_bias: bias(&[(1, 2.5), (2, -0.75)]),
        ..params(1.0, 81)
    };
    let counts = sample_counts(p, &logits, 20_000);
    let want = softmax_f64(&[0.3, 2.3, 0.35], 1.0);
    assert_frequencies(&counts, &want);
}
