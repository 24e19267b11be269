//! What a request asks of the sampler ([`SamplingParams`]) and its validation. Ranges follow
//! the OpenAI API (temperature, top_p, presence/frequency penalties, logit_bias, top
//! logprobs); top-k, min-p and the repetition penalty follow llama.cpp / vLLM usage.

use std::fmt;

pub use super::penalties::LogitBias;

/// Largest `logprobs` (top-N alternatives per token), as in the OpenAI API (`top_logprobs`).
pub const MAX_TOP_LOGPROBS: usize = 20;

/// Magnitude of a logit bias that bans (−100) or forces (+100) a token outright.
pub const LOGIT_BIAS_LIMIT: f32 = 100.0;

/// Most entries a `logit_bias` may have (OpenAI's limit).
pub const MAX_LOGIT_BIAS: usize = 300;

/// Which distribution the reported log-probabilities describe.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogprobsMode {
    /// The model's own distribution: log-softmax of the logits as the model produced them,
    /// before logit bias, penalties, temperature and truncation (vLLM's default; what the
    /// OpenAI API documents as "the log probability of this token").
    #[default]
    Raw,
    /// Log-softmax of the logits after logit bias and penalties, before temperature and
    /// top-k / top-p / min-p. A banned token then reports `-inf`.
    Processed,
}

/// A request's sampling settings.
///
/// [`SamplingParams::default`] is the OpenAI API's default: temperature 1.0 (plain sampling
/// from the model's distribution — *not* greedy), top_p 1.0, no top-k, no min-p, no
/// penalties, no bias, no seed, no logprobs. [`SamplingParams::greedy`] is argmax decoding.
#[derive(Clone, Debug, PartialEq)]
pub struct SamplingParams {
    /// Divides the logits before the softmax; `0.0` means greedy argmax (ties → lowest id).
    /// Range `0..=2`.
    pub temperature: f32,
    /// Keep only the `top_k` most likely tokens; `0` turns it off. Values ≥ the vocabulary
    /// size also mean "off".
    pub top_k: usize,
    /// Nucleus sampling: keep the smallest set of most likely tokens whose probability sums
    /// to at least `top_p` (at least one token). Range `(0, 1]`; `1.0` is off.
    pub top_p: f32,
    /// Keep tokens whose probability is at least `min_p` times the most likely token's.
    /// Range `0..=1`; `0.0` is off.
    pub min_p: f32,
    /// CTRL-style penalty over the distinct tokens of the history's repetition window:
    /// positive logits are divided by it, negative ones multiplied. `> 0`; `1.0` is off.
    pub repetition_penalty: f32,
    /// Subtracted once from the logit of every token already generated. Range `-2..=2`.
    pub presence_penalty: f32,
    /// Subtracted from a token's logit once per time it was generated. Range `-2..=2`.
    pub frequency_penalty: f32,
    /// `(token id, bias)` added to the logit, each in `-100..=100`. Exactly `-100` bans the
    /// token; exactly `+100` restricts the choice to the tokens biased by `+100` (their
    /// logits, plus 100, still rank them). Each token at most once, at most
    /// [`MAX_LOGIT_BIAS`] tokens: checked when the [`LogitBias`] is built.
    pub logit_bias: LogitBias,
    /// Seed of the request's generator; `None` draws one from OS entropy (see
    /// [`Sampler::seed`](super::Sampler::seed)). Same seed + same params + same logits →
    /// same tokens, on every platform and version.
    pub seed: Option<u64>,
    /// `None`: no log-probabilities. `Some(n)`: the chosen token's logprob plus the `n`
    /// most likely alternatives (`0..=20`).
    pub logprobs: Option<usize>,
    /// Which distribution `logprobs` describe (default: the model's raw distribution).
    pub logprobs_mode: LogprobsMode,
}

impl Default for SamplingParams {
    fn default() -> SamplingParams {
        SamplingParams {
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.0,
            repetition_penalty: 1.0,
            presence_penalty: 0.0,
            frequency_penalty: 0.0,
            logit_bias: LogitBias::default(),
            seed: None,
            logprobs: None,
            logprobs_mode: LogprobsMode::Raw,
        }
    }
}

impl SamplingParams {
    /// Greedy decoding: temperature 0, everything else neutral.
    pub fn greedy() -> SamplingParams {
        SamplingParams {
            temperature: 0.0,
            ..SamplingParams::default()
        }
    }

    /// Whether the sampler takes the argmax (temperature 0) instead of drawing.
    pub fn is_greedy(&self) -> bool {
        self.temperature == 0.0
    }

    /// Checks every field against its range; the error names the first bad field.
    /// NaN is outside every range. (`logit_bias` was checked when it was built.)
    pub fn validate(&self) -> Result<(), ParamError> {
        check_range("temperature", self.temperature, 0.0, 2.0, "0..=2")?;
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(ParamError::new(
                "top_p",
                self.top_p.to_string(),
                "in (0, 1]".into(),
            ));
        }
        check_range("min_p", self.min_p, 0.0, 1.0, "0..=1")?;
        if !(self.repetition_penalty > 0.0 && self.repetition_penalty.is_finite()) {
            return Err(ParamError::new(
                "repetition_penalty",
                self.repetition_penalty.to_string(),
                "finite and > 0 (1 = off)".into(),
            ));
        }
        check_range(
            "presence_penalty",
            self.presence_penalty,
            -2.0,
            2.0,
            "-2..=2",
        )?;
        check_range(
            "frequency_penalty",
            self.frequency_penalty,
            -2.0,
            2.0,
            "-2..=2",
        )?;
        if let Some(n) = self.logprobs {
            if n > MAX_TOP_LOGPROBS {
                return Err(ParamError::new(
                    "logprobs",
                    n.to_string(),
                    format!("in 0..={MAX_TOP_LOGPROBS}"),
                ));
            }
        }
        Ok(())
    }

    /// [`Self::validate`] plus the checks that need the vocabulary size: it is non-zero and
    /// fits a `u32` token id, and every biased token exists.
    pub fn validate_for_vocab(&self, vocab_size: usize) -> Result<(), ParamError> {
        if vocab_size == 0 || vocab_size > u32::MAX as usize {
            return Err(ParamError::new(
                "vocab_size",
                vocab_size.to_string(),
                format!("in 1..={}", u32::MAX),
            ));
        }
        self.validate()?;
        if let Some(token) = self
            .logit_bias
            .max_token()
            .filter(|&t| t as usize >= vocab_size)
        {
            return Err(ParamError::new(
                "logit_bias",
                format!("token {token}"),
                format!("a token id below the vocabulary size {vocab_size}"),
            ));
        }
        Ok(())
    }
}

fn check_range(
    field: &'static str,
    value: f32,
    lo: f32,
    hi: f32,
    range: &str,
) -> Result<(), ParamError> {
    if (lo..=hi).contains(&value) {
        Ok(())
    } else {
        Err(ParamError::new(
            field,
            value.to_string(),
            format!("in {range}"),
        ))
    }
}

/// A sampling parameter outside its valid range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParamError {
    /// The field's name as in [`SamplingParams`] (and the OpenAI request).
    pub field: &'static str,
    /// The offending value, as text.
    pub value: String,
    /// What would have been valid.
    pub expected: String,
}

impl ParamError {
    pub(crate) fn new(field: &'static str, value: String, expected: String) -> ParamError {
        ParamError {
            field,
            value,
            expected,
        }
    }
}

impl fmt::Display for ParamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid sampling parameter `{}` = {}: must be {}",
            self.field, self.value, self.expected
        )
    }
}

impl std::error::Error for ParamError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_openai_like() {
        let p = SamplingParams::default();
        assert_eq!(p.validate(), Ok(()));
        assert_eq!(p.temperature, 1.0);
        assert!(!p.is_greedy());
        assert!(SamplingParams::greedy().is_greedy());
        assert_eq!(SamplingParams::greedy().validate(), Ok(()));
    }

    #[test]
    fn boundaries_are_inclusive_where_documented() {
        let ok = SamplingParams {
            temperature: 2.0,
            top_p: 1.0,
            min_p: 1.0,
            presence_penalty: -2.0,
            frequency_penalty: 2.0,
            logit_bias: LogitBias::new([(0, -100.0), (1, 100.0)]).unwrap(),
            logprobs: Some(20),
            ..SamplingParams::default()
        };
        assert_eq!(ok.validate(), Ok(()));
        let zero_top_p = SamplingParams {
            top_p: 0.0,
            ..SamplingParams::default()
        };
        assert_eq!(zero_top_p.validate().map_err(|e| e.field), Err("top_p"));
    }

    #[test]
    fn logit_bias_is_checked_once_when_built() {
        let field = |r: Result<LogitBias, ParamError>| r.map(|_| ()).map_err(|e| e.field);
        assert_eq!(field(LogitBias::new([(1, 100.5)])), Err("logit_bias"));
        assert_eq!(field(LogitBias::new([(1, f32::NAN)])), Err("logit_bias"));
        assert_eq!(
            field(LogitBias::new([(1, 1.0), (1, 2.0)])),
            Err("logit_bias")
        );
        // At most 300 entries, refused before any is looked at (the size hint is exact).
        let ok = LogitBias::new((0..300).map(|t| (t, 1.0))).expect("300 entries");
        assert_eq!((ok.len(), ok.max_token()), (300, Some(299)));
        let e = LogitBias::new((0..301).map(|t| (t, 1.0))).unwrap_err();
        assert_eq!((e.field, e.value.as_str()), ("logit_bias", "301 entries"));
        // Without a size hint the count is checked while reading.
        let e = LogitBias::new((0..100_000u32).filter(|_| true).map(|t| (t, 1.0))).unwrap_err();
        assert_eq!(e.value, "more than 300 entries");
        // Many distinct entries validate in linear time (a quadratic check of a large list
        // was the old behaviour); the vocabulary check is one comparison.
        let p = SamplingParams {
            logit_bias: LogitBias::new([(5, -1.0), (9, 2.0)]).unwrap(),
            ..SamplingParams::default()
        };
        assert_eq!(p.validate_for_vocab(10), Ok(()));
        assert_eq!(
            p.validate_for_vocab(9).map_err(|e| e.field),
            Err("logit_bias")
        );
    }
}
