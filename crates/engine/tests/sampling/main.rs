//! Properties of `kaiyuan_engine::sampling` checked against independent references: every
//! expected distribution, nucleus, min-p set and penalty is recomputed here in `f64` from
//! its published definition (never with the crate's own helpers); frequencies are checked
//! with principled bounds (per-token binomial 5σ, chi-square at α = 1e-6) under fixed seeds,
//! so the tests are deterministic; pinned token sequences come from
//! `tools/xoshiro_reference.py`.
//!
//! One test binary, split by topic: `distribution` (greedy, temperature, truncation),
//! `penalties` (penalties, `logit_bias`), `reproducibility` (seeds, pinned draws),
//! `edge_cases` (validation, NaN/inf, logprobs, large vocabulary); helpers in `support`.

mod distribution;
mod edge_cases;
mod penalties;
mod reproducibility;
mod support;
