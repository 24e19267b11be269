//! The sampling flags `run` and `chat` share (`--temp`, `--top-k`, `--top-p`, `--min-p`,
//! `--seed`, `--logit-bias`), with llama.cpp's defaults and syntax.

use anyhow::Context;
use kaiyuan_engine::sampling::{LogitBias, SamplingParams};

#[derive(clap::Args, Debug, Clone)]
pub struct SamplingArgs {
    /// Sampling temperature; 0 is greedy.
    #[arg(long = "temp", default_value_t = 0.8)]
    pub temperature: f32,
    /// Keep only the K most likely tokens (0: off).
    #[arg(long, default_value_t = 40)]
    pub top_k: usize,
    /// Nucleus sampling threshold (1: off).
    #[arg(long, default_value_t = 0.95)]
    pub top_p: f32,
    /// Drop tokens less likely than this fraction of the most likely one (0: off).
    #[arg(long, default_value_t = 0.05)]
    pub min_p: f32,
    /// Seed for sampling (default: random, printed to stderr).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Add BIAS (-100..=100) to a token's logit, as the API's `logit_bias`: `ID+BIAS` or
    /// `ID-BIAS` (llama.cpp's form, e.g. `2+100` forces token 2, `15043-100` bans one).
    /// Repeat for several tokens.
    #[arg(short = 'l', long, value_name = "ID(+|-)BIAS", value_parser = parse_logit_bias)]
    pub logit_bias: Vec<(u32, f32)>,
}

impl SamplingArgs {
    /// The sampler settings these flags ask for (ranges validated later by `Sampler::new`).
    pub fn params(&self) -> anyhow::Result<SamplingParams> {
        let logit_bias =
            LogitBias::new(self.logit_bias.iter().copied()).context("invalid --logit-bias")?;
        Ok(SamplingParams {
            temperature: self.temperature,
            top_k: self.top_k,
            top_p: self.top_p,
            min_p: self.min_p,
            seed: self.seed,
            logit_bias,
            ..SamplingParams::default()
        })
    }
}

/// `ID+BIAS` / `ID-BIAS` → `(ID, ±BIAS)`.
fn parse_logit_bias(s: &str) -> Result<(u32, f32), String> {
    let bad = || format!("{s:?} is not ID+BIAS or ID-BIAS (e.g. 2+100, 15043-5.5)");
    let split = s.find(['+', '-']).ok_or_else(bad)?;
    let (id, bias) = s.split_at(split);
    let id: u32 = id.parse().map_err(|_| bad())?;
    let bias: f32 = bias.parse().map_err(|_| bad())?;
    if !bias.is_finite() {
        return Err(bad());
    }
    Ok((id, bias))
}

/// Threads to use: the request, or every core the OS offers.
pub fn threads(requested: Option<usize>) -> anyhow::Result<usize> {
    match requested {
        Some(0) => anyhow::bail!("-t 0: at least one thread is needed"),
        Some(n) => Ok(n),
        None => Ok(std::thread::available_parallelism().map_or(1, |n| n.get())),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_logit_bias;

    #[test]
    fn logit_bias_takes_llama_cpp_syntax() {
        assert_eq!(parse_logit_bias("2+100"), Ok((2, 100.0)));
        assert_eq!(parse_logit_bias("15043-5.5"), Ok((15043, -5.5)));
        assert_eq!(parse_logit_bias("0+0"), Ok((0, 0.0)));
        for bad in [
            "", "2", "+100", "-1+5", "2+", "x+1", "2+inf", "2+nan", "2*3", "2+1+1",
        ] {
            assert!(parse_logit_bias(bad).is_err(), "{bad:?} accepted");
        }
    }
}
