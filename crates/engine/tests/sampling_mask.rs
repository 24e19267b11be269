//! The grammar mask in the sampler: over random logits, masks and sampling settings, the
//! sampled token is always one the mask allows; the raw log-probabilities stay the model's.

use kaiyuan_engine::sampling::rng::Xoshiro256StarStar;
use kaiyuan_engine::sampling::{LogitBias, Sampler, SamplingError, SamplingParams, TokenHistory};
use kaiyuan_grammar::TokenMask;

const VOCAB: usize = 300;

fn uniform(rng: &mut Xoshiro256StarStar) -> f32 {
    rng.next_f64() as f32
}

#[test]
fn sampled_tokens_are_always_allowed() {
    let mut rng = Xoshiro256StarStar::from_seed(7);
    for case in 0..3000u64 {
        // Random logits, some extreme; a mask of 1..=8 tokens, or a dense one.
        let logits: Vec<f32> = (0..VOCAB)
            .map(|_| match rng.next_u64() % 50 {
                0 => f32::NAN,
                1 => f32::NEG_INFINITY,
                2 => 80.0,
                _ => (uniform(&mut rng) - 0.5) * 20.0,
            })
            .collect();
        let allowed: Vec<u32> = if case.is_multiple_of(3) {
            (0..VOCAB as u32)
                .filter(|_| rng.next_u64().is_multiple_of(2))
                .collect()
        } else {
            let k = 1 + rng.next_u64() % 8;
            (0..k)
                .map(|_| (rng.next_u64() % VOCAB as u64) as u32)
                .collect()
        };
        let mask = TokenMask::from_allowed(VOCAB, allowed.iter().copied());
        let banned = allowed[0].wrapping_add(1) % VOCAB as u32;
        let params = SamplingParams {
            temperature: [0.0, 0.3, 1.0, 2.0][(case % 4) as usize],
            top_k: (rng.next_u64() % 5) as usize,
            top_p: 0.05 + 0.95 * uniform(&mut rng),
            min_p: [0.0, 0.1, 0.5][(case % 3) as usize],
            repetition_penalty: 1.0 + uniform(&mut rng),
            presence_penalty: uniform(&mut rng) * 2.0 - 1.0,
            frequency_penalty: uniform(&mut rng) * 2.0 - 1.0,
            seed: Some(case),
            logprobs: Some(3),
            // +100 ("force") on a token the mask may forbid, −100 on one it may allow.
            logit_bias: LogitBias::new([
                ((rng.next_u64() % VOCAB as u64) as u32, 100.0),
                (banned, -100.0),
            ])
            .unwrap_or_default(),
            ..SamplingParams::default()
        };
        let mut history = TokenHistory::new();
        history.push_prompt(&[allowed[0], 5, 6]);
        let mut sampler = Sampler::new(params, VOCAB).expect("valid params");
        let mut l = logits.clone();
        match sampler.sample_masked(&mut l, &history, Some(&mask)) {
            Ok(s) => {
                assert!(mask.allows(s.token), "case {case}: {} not allowed", s.token);
                for &(t, _) in &s.top {
                    // Raw mode: the alternatives are the model's, allowed or not; the
                    // logprob of the chosen token is the model's too.
                    assert!((t as usize) < VOCAB);
                }
            }
            // Only when no allowed token has a finite logit and no ban.
            Err(SamplingError::NoCandidate) => {
                assert!(
                    allowed
                        .iter()
                        .all(|&t| t == banned || !logits[t as usize].is_finite()),
                    "case {case}: refused although an allowed token has a finite logit"
                );
            }
            Err(e) => panic!("case {case}: {e}"),
        }
    }
}

#[test]
fn raw_logprobs_are_the_unmasked_distribution() {
    let logits = [2.0f32, 1.0, 0.0, -1.0];
    let params = SamplingParams {
        logprobs: Some(2),
        ..SamplingParams::greedy()
    };
    let mut sampler = Sampler::new(params, 4).unwrap();
    let mask = TokenMask::from_allowed(4, [2]);
    let mut l = logits;
    let s = sampler
        .sample_masked(&mut l, &TokenHistory::new(), Some(&mask))
        .unwrap();
    assert_eq!(s.token, 2);
    // The model's log-softmax at token 2 (logit 0).
    let z: f64 = logits.iter().map(|&x| (x as f64).exp()).sum();
    let expected = (0.0f64 - z.ln()) as f32;
    assert!((s.logprob.unwrap() - expected).abs() < 1e-5);
    // The top alternatives are the model's most likely tokens, which the mask forbade.
    assert_eq!(s.top.iter().map(|&(t, _)| t).collect::<Vec<_>>(), [0, 1]);
}
