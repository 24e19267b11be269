//! What the two generation endpoints share: response ids, the fingerprint, and the plan
//! that checks tokenized prompts against the model (vocabulary, context) and turns them
//! into engine jobs.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::api::validate::{sampling_error, GenParams};
use crate::error::ApiError;
use axum::response::{IntoResponse, Response};
use kaiyuan_engine::Usage;

use crate::generate::{self, ChoiceOutcome, Job};
use crate::log::RequestLog;
use crate::state::{AppState, ServedModel};

/// `system_fingerprint` of every response: the server version (the weights are in `model`).
pub const SYSTEM_FINGERPRINT: &str = concat!("fp_kaiyuan_", env!("CARGO_PKG_VERSION"));

/// A fresh response id: `prefix-` and 24 hex digits.
/// The served model a request names, logging the name asked for until one is resolved (so
/// a 404 shows what was asked), then the one served, and the request's `user`. Waits (a
/// bounded time) while the model loads.
pub async fn resolve_model(
    state: &AppState,
    asked: Option<&str>,
    user: Option<&str>,
    log: &mut RequestLog,
) -> Result<Arc<ServedModel>, ApiError> {
    log.model(asked.unwrap_or("-"));
    let model = state.resolve(asked).await?;
    log.model(&model.name);
    log.user(user);
    Ok(model)
}

/// The HTTP response of a generation endpoint's result, logging the status of an error.
pub fn into_response(result: Result<Response, ApiError>, log: &mut RequestLog) -> Response {
    result.unwrap_or_else(|e| {
        log.status(e.log_status());
        e.into_response()
    })
}

pub fn new_id(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    let a = h.finish();
    h.write_u64(a);
    let b = h.finish();
    format!("{prefix}-{a:016x}{:08x}", b as u32)
}

/// Checks each prompt against the model and makes `gen.n` jobs per prompt (choice index
/// = prompt × n + i). `prompt_param` names the field the prompts came from.
pub fn plan_jobs(
    model: &ServedModel,
    gen: &GenParams,
    prompts: Vec<Vec<u32>>,
    prompt_param: &str,
    logprobs_param: &str,
) -> Result<Vec<Job>, ApiError> {
    let info = model.engine.info();
    gen.sampling
        .validate_for_vocab(info.vocab_size)
        .map_err(|e| sampling_error(e, logprobs_param))?;
    let context = info.context;
    let mut jobs = Vec::with_capacity(prompts.len() * gen.n);
    for (p, prompt) in prompts.into_iter().enumerate() {
        if prompt.is_empty() {
            return Err(ApiError::invalid(prompt_param, "the prompt is empty"));
        }
        if let Some(&bad) = prompt.iter().find(|&&t| t as usize >= info.vocab_size) {
            return Err(ApiError::invalid(
                prompt_param,
                format!(
                    "token id {bad} is outside the vocabulary ({} tokens)",
                    info.vocab_size
                ),
            ));
        }
        let max_tokens = match gen.max_tokens {
            Some(m) => {
                if prompt.len().saturating_add(m) > context {
                    let field = "max_tokens";
                    return Err(ApiError::invalid(
                        field,
                        format!(
                            "the prompt ({} tokens) plus max_tokens ({m}) needs {} positions, but the context holds {context}; shorten the prompt or lower max_tokens",
                            prompt.len(),
                            prompt.len().saturating_add(m)
                        ),
                    ));
                }
                m
            }
            None if prompt.len() >= context => {
                return Err(ApiError::invalid(
                    prompt_param,
                    format!(
                        "the prompt ({} tokens) leaves no room to generate: the context holds {context}",
                        prompt.len()
                    ),
                ))
            }
            None => context - prompt.len(),
        };
        for i in 0..gen.n {
            jobs.push(Job {
                index: p * gen.n + i,
                prompt: prompt.clone(),
                prompt_index: p,
                max_tokens,
            });
        }
    }
    Ok(jobs)
}

/// The usage of a whole (not streamed) response, written to the log line with the finish
/// reasons; the error if a choice failed (see `generate` for which reasons are failures).
pub fn conclude(
    jobs: &[Job],
    outcomes: &[ChoiceOutcome],
    log: &mut RequestLog,
) -> Result<Usage, ApiError> {
    let usages: Vec<_> = outcomes
        .iter()
        .map(|o| (o.index, o.finished.usage))
        .collect();
    let usage = generate::total_usage(jobs, &usages);
    log.usage(usage);
    log.first_token(generate::first_token_time(
        outcomes.iter().map(|o| o.finished.time_to_first_token),
    ));
    for o in outcomes {
        log.finish(o.finished.reason.as_str());
    }
    match outcomes
        .iter()
        .find_map(|o| generate::failure(&o.finished.reason))
    {
        Some(e) => Err(e),
        None => Ok(usage),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_prefixed() {
        let a = new_id("chatcmpl");
        let b = new_id("chatcmpl");
        assert!(
            a.starts_with("chatcmpl-") && a.len() == "chatcmpl-".len() + 24,
            "{a}"
        );
        assert_ne!(a, b);
    }
}
