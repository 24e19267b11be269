//! Sampling: from one position's logits to one token (architecture guide, data flow step 7).
//!
//! [`Sampler::sample`] runs, in this order (each stage documented in its module):
//! 1. sanitize — NaN logits count as −∞; if any logit is +∞, the +∞ tokens share all the
//!    probability ([`penalties`]);
//! 2. grammar mask, when sampling under a grammar ([`Sampler::sample_masked`], structured
//!    output) — every token the grammar does not allow gets −∞, so every later stage acts
//!    on allowed tokens only;
//! 3. logit bias, with −100 = ban and +100 = force ([`penalties::LogitBias`]);
//! 4. repetition penalty (CTRL / llama.cpp, over the history's window);
//! 5. presence & frequency penalties (OpenAI formula);
//! 6. temperature 0 → greedy argmax, ties → lowest token id; otherwise temperature, top-k,
//!    top-p, min-p ([`filters`]) and one draw from the request's seeded generator ([`rng`]).
//!
//! Log-probabilities (when asked for) are computed from the raw logits (the model's own
//! distribution, the default) or from the logits after stages 1–5
//! ([`LogprobsMode::Processed`]); never after temperature or truncation.
//!
//! Reproducibility contract: the same seed, parameters and logits give the same token on
//! every platform and in every version. A non-greedy call consumes exactly one 64-bit
//! output of the generator (converted by [`rng::Xoshiro256StarStar::next_f64`]); a greedy
//! call consumes none. Sampling is single-threaded, so thread counts do not matter. The
//! generator, its seeding, the draw order ([`filters`]) and the weight arithmetic
//! ([`math`]) are therefore API: changing any of them is a breaking change. The RNG
//! known-answer tests and the pinned seeded sequences in `tests/sampling.rs` (expected
//! values from `tools/xoshiro_reference.py`) guard it.
//!
//! After warm-up a call allocates nothing except the returned top-N list: the weight,
//! candidate and raw-logit buffers live in the [`Sampler`]. All arithmetic that decides a
//! token is portable ([`math::exp`] instead of the platform libm, `f64` sums in a fixed
//! order), so a seed gives the same tokens on x86-64 and aarch64 alike.

pub mod filters;
pub mod history;
pub mod logprobs;
pub mod math;
pub mod params;
pub mod penalties;
pub mod rng;

use std::fmt;

use kaiyuan_grammar::TokenMask;

pub use history::{TokenHistory, DEFAULT_REPETITION_WINDOW};
pub use params::{
    LogitBias, LogprobsMode, ParamError, SamplingParams, LOGIT_BIAS_LIMIT, MAX_LOGIT_BIAS,
    MAX_TOP_LOGPROBS,
};

use filters::{Truncation, Workspace};
use logprobs::LogSoftmax;
use rng::Xoshiro256StarStar;

/// One sampled token.
#[derive(Clone, Debug, PartialEq)]
pub struct Sampled {
    pub token: u32,
    /// The token's log-probability; `None` unless the params asked for `logprobs`.
    pub logprob: Option<f32>,
    /// The `logprobs` most likely tokens as `(id, logprob)`, most likely first (ties →
    /// lowest id); empty unless asked for. Tokens of probability zero are left out.
    pub top: Vec<(u32, f32)>,
}

/// Why no token came out.
#[derive(Clone, Debug, PartialEq)]
pub enum SamplingError {
    /// The parameters failed validation (names the field).
    InvalidParams(ParamError),
    /// The logits slice is not one vocabulary long.
    LogitsLength { expected: usize, got: usize },
    /// Every token was excluded: all logits NaN or −∞ after the grammar mask, bias and
    /// penalties (for example a model that produced NaN everywhere, or every token banned).
    NoCandidate,
}

impl fmt::Display for SamplingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SamplingError::InvalidParams(e) => e.fmt(f),
            SamplingError::LogitsLength { expected, got } => write!(
                f,
                "logits have {got} entries but the vocabulary has {expected} tokens"
            ),
            SamplingError::NoCandidate => write!(
                f,
                "no token can be sampled: every logit is NaN or -inf after the grammar mask, logit bias and penalties"
            ),
        }
    }
}

impl std::error::Error for SamplingError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SamplingError::InvalidParams(e) => Some(e),
            _ => None,
        }
    }
}

impl From<ParamError> for SamplingError {
    fn from(e: ParamError) -> SamplingError {
        SamplingError::InvalidParams(e)
    }
}

/// The sampler of one request: validated params, its generator and reusable buffers.
#[derive(Clone, Debug)]
pub struct Sampler {
    params: SamplingParams,
    vocab_size: usize,
    seed: u64,
    rng: Xoshiro256StarStar,
    bias: LogitBias,
    workspace: Workspace,
    raw_logits: Vec<f32>,
    top_scratch: Vec<(f32, u32)>,
}

impl Sampler {
    /// Validates `params` against `vocab_size` and seeds the generator (from OS entropy if
    /// `params.seed` is `None`).
    pub fn new(params: SamplingParams, vocab_size: usize) -> Result<Sampler, SamplingError> {
        params.validate_for_vocab(vocab_size)?;
        let seed = params.seed.unwrap_or_else(rng::entropy_seed);
        Ok(Sampler {
            bias: params.logit_bias.clone(),
            params,
            vocab_size,
            seed,
            rng: Xoshiro256StarStar::from_seed(seed),
            workspace: Workspace::default(),
            raw_logits: Vec::new(),
            top_scratch: Vec::new(),
        })
    }

    pub fn params(&self) -> &SamplingParams {
        &self.params
    }

    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    /// The seed in use: `params.seed`, or the one drawn from entropy (log it to let a user
    /// reproduce an unseeded run).
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Picks the next token from one position's `logits` (one per vocabulary entry).
    /// `logits` is overwritten with the processed logits (after stages 1–5 of the module
    /// docs). The caller pushes the returned token into `history` itself.
    pub fn sample(
        &mut self,
        logits: &mut [f32],
        history: &TokenHistory,
    ) -> Result<Sampled, SamplingError> {
        self.sample_masked(logits, history, None)
    }

    /// [`Sampler::sample`] restricted to the tokens `mask` allows (structured output): the
    /// others get −∞ right after sanitizing, before logit bias. Log-probabilities in the
    /// default raw mode stay the model's own (unmasked) distribution.
    pub fn sample_masked(
        &mut self,
        logits: &mut [f32],
        history: &TokenHistory,
        mask: Option<&TokenMask>,
    ) -> Result<Sampled, SamplingError> {
        if logits.len() != self.vocab_size {
            return Err(SamplingError::LogitsLength {
                expected: self.vocab_size,
                got: logits.len(),
            });
        }
        let p = &self.params;
        penalties::sanitize(logits);
        let raw_logprobs = p.logprobs.is_some() && p.logprobs_mode == LogprobsMode::Raw;
        if raw_logprobs {
            self.raw_logits.clear();
            self.raw_logits.extend_from_slice(logits);
        }
        if let Some(mask) = mask {
            mask.apply(logits);
        }
        self.bias.apply(logits);
        penalties::apply_repetition_penalty(logits, history, p.repetition_penalty);
        penalties::apply_presence_frequency(
            logits,
            history,
            p.presence_penalty,
            p.frequency_penalty,
        );

        let token = if p.is_greedy() {
            filters::argmax(logits).ok_or(SamplingError::NoCandidate)?
        } else {
            let truncation = Truncation {
                temperature: p.temperature,
                top_k: p.top_k,
                top_p: p.top_p,
                min_p: p.min_p,
            };
            filters::draw(logits, truncation, &mut self.workspace, &mut self.rng)
                .ok_or(SamplingError::NoCandidate)?
        };

        let Some(n) = p.logprobs else {
            return Ok(Sampled {
                token,
                logprob: None,
                top: Vec::new(),
            });
        };
        let source: &[f32] = if raw_logprobs {
            &self.raw_logits
        } else {
            logits
        };
        // A token was chosen, so the processed logits have a finite entry, and bias and
        // penalties never turn −∞ into a finite value: the raw logits have one too. The
        // `None` arm is defensive.
        let Some(norm) = LogSoftmax::of(source, self.workspace.scratch()) else {
            return Ok(Sampled {
                token,
                logprob: Some(f32::NEG_INFINITY),
                top: Vec::new(),
            });
        };
        Ok(Sampled {
            token,
            logprob: Some(norm.logprob(source[token as usize])),
            top: logprobs::top_n(source, n, &norm, &mut self.top_scratch),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_logits_length_is_an_error() {
        let mut sampler = Sampler::new(SamplingParams::default(), 4).expect("valid");
        assert_eq!(
            sampler.sample(&mut [0.0; 3], &TokenHistory::new()),
            Err(SamplingError::LogitsLength {
                expected: 4,
                got: 3
            })
        );
    }

    #[test]
    fn greedy_ignores_truncation_settings() {
        let p = SamplingParams {
            temperature: 0.0,
            top_k: 1,
            top_p: 0.1,
            min_p: 0.9,
            ..SamplingParams::default()
        };
        let mut sampler = Sampler::new(p, 4).expect("valid");
        for _ in 0..10 {
            let mut logits = [0.1f32, 3.0, 2.9, -1.0];
            let s = sampler
                .sample(&mut logits, &TokenHistory::new())
                .expect("sample");
            assert_eq!(s.token, 1);
        }
    }

    #[test]
    fn history_tokens_outside_the_vocabulary_are_ignored() {
        let mut history = TokenHistory::new();
        history.push_prompt(&[u32::MAX]);
        history.push(1_000_000);
        history.push(1);
        let p = SamplingParams {
            repetition_penalty: 2.0,
            presence_penalty: 1.0,
            frequency_penalty: 1.0,
            ..SamplingParams::greedy()
        };
        let mut sampler = Sampler::new(p, 3).expect("valid");
        let mut logits = [1.0f32, 4.0, -1.0];
        sampler.sample(&mut logits, &history).expect("sample");
        // Token 1: 4 / 2 (repetition) − 1·1 (frequency) − 1 (presence) = 0.
        assert_eq!(logits, [1.0, 0.0, -1.0]);
    }
}
