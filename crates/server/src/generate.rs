//! The server's side of the engine boundary: one request becomes one engine request per
//! choice ([`submit`]); their events are either gathered ([`collect`]) or merged into one
//! stream ([`merge`]). Dropping what this returns drops the engines' event receivers, which
//! cancels the requests (a client that hangs up frees its sequences).
//!
//! How engine finish reasons reach clients (the only valid OpenAI values are used):
//! - `Stop` → `"stop"`, `Length` → `"length"`.
//! - `Shutdown` (the grace period ran out), `Error` and `Cancelled` are failures: a whole
//!   response becomes an error (503 `shutting_down`, 500 `engine_error`); a stream that
//!   already started gets a last chunk with `finish_reason: "length"` (the text was cut
//!   short), then a `data: {"error": {...}}` line saying why, then `[DONE]`.

use std::pin::Pin;
use std::time::Duration;

use futures_util::stream::{self, SelectAll, Stream};
use kaiyuan_engine::{
    EngineHandle, Event, EventReceiver, FinishReason, Finished, GenerateRequest, QueueReservation,
    TokenEvent, Usage,
};

use kaiyuan_grammar::Constraint;

use crate::api::validate::GenParams;
use crate::error::ApiError;

/// One engine request of a response: choice `index` continues `prompt`.
pub struct Job {
    pub index: usize,
    pub prompt: Vec<u32>,
    /// Which prompt of the request (completions may have several); usage counts each
    /// prompt once however many choices it has.
    pub prompt_index: usize,
    /// Tokens this choice may generate.
    pub max_tokens: usize,
}

/// Submits every job (each with its own fork of `constraint`, the compiled grammar) into the
/// request's reserved queue `places`; if one is refused, the ones already queued are cancelled (their receivers dropped) and the
/// refusal is returned.
pub fn submit(
    engine: &EngineHandle,
    places: &mut QueueReservation,
    jobs: &[Job],
    gen: &GenParams,
    constraint: Option<&Constraint>,
) -> Result<Vec<(usize, EventReceiver)>, ApiError> {
    let mut receivers = Vec::with_capacity(jobs.len());
    for job in jobs {
        let mut sampling = gen.sampling.clone();
        // Choice i of a seeded request uses seed + i (a different but reproducible draw).
        sampling.seed = sampling
            .seed
            .map(|s| s.wrapping_add((job.index % gen.n) as u64));
        let request = GenerateRequest {
            prompt: job.prompt.clone(),
            sampling,
            max_tokens: job.max_tokens,
            stop: gen.stop.clone(),
            stop_token_ids: Vec::new(),
            ignore_eos: gen.ignore_eos,
            constraint: constraint.map(Constraint::fork),
        };
        receivers.push((job.index, engine.submit_reserved(places, request)?));
    }
    Ok(receivers)
}

/// Everything one choice produced.
#[derive(Clone, Debug, PartialEq)]
pub struct ChoiceOutcome {
    pub index: usize,
    pub text: String,
    pub tokens: Vec<TokenEvent>,
    pub finished: Finished,
}

/// Waits for every choice to finish (concurrently).
pub async fn collect(receivers: Vec<(usize, EventReceiver)>) -> Vec<ChoiceOutcome> {
    let all = receivers.into_iter().map(|(index, mut rx)| async move {
        let mut text = String::new();
        let mut tokens = Vec::new();
        loop {
            match rx.recv().await {
                Some(Event::Scheduled { .. }) => {}
                Some(Event::Token(t)) => {
                    text.push_str(&t.text);
                    tokens.push(t);
                }
                Some(Event::Finished(f)) => {
                    text.push_str(&f.text);
                    return ChoiceOutcome {
                        index,
                        text,
                        tokens,
                        finished: f,
                    };
                }
                None => {
                    return ChoiceOutcome {
                        index,
                        text,
                        tokens,
                        finished: vanished(),
                    }
                }
            }
        }
    });
    let mut outcomes = futures_util::future::join_all(all).await;
    outcomes.sort_by_key(|o| o.index);
    outcomes
}

/// The `Finished` a receiver that closed without one stands for.
fn vanished() -> Finished {
    Finished {
        reason: FinishReason::Error("the engine stopped without finishing the request".into()),
        text: String::new(),
        usage: Usage::default(),
        time_to_first_token: None,
        stop_index: None,
    }
}

/// The OpenAI `finish_reason` of an engine reason; failures (see the module docs) report
/// `"length"` where a value is needed at all.
pub fn finish_reason(reason: &FinishReason) -> &'static str {
    match reason {
        FinishReason::Stop => "stop",
        FinishReason::Length
        | FinishReason::Cancelled
        | FinishReason::Shutdown
        | FinishReason::Error(_) => "length",
    }
}

/// The error a failed choice stands for, or `None` if it ended normally.
pub fn failure(reason: &FinishReason) -> Option<ApiError> {
    match reason {
        FinishReason::Stop | FinishReason::Length => None,
        FinishReason::Shutdown => Some(ApiError::ShuttingDown),
        FinishReason::Cancelled => Some(ApiError::Engine("the request was cancelled".into())),
        FinishReason::Error(message) => Some(ApiError::Engine(message.clone())),
    }
}

/// Summed usage: each prompt's tokens once; its cached tokens as the best any of its
/// choices got; every choice's generated tokens.
pub fn total_usage(jobs: &[Job], outcomes: &[(usize, Usage)]) -> Usage {
    let prompts = jobs
        .iter()
        .map(|j| j.prompt_index)
        .max()
        .map_or(0, |m| m + 1);
    let mut total = Usage::default();
    for p in 0..prompts {
        let of_prompt = || {
            jobs.iter()
                .filter(move |j| j.prompt_index == p)
                .filter_map(|j| outcomes.iter().find(|(i, _)| *i == j.index))
        };
        let len = jobs
            .iter()
            .find(|j| j.prompt_index == p)
            .map_or(0, |j| j.prompt.len());
        total.prompt_tokens += len;
        total.cached_tokens += of_prompt()
            .map(|(_, u)| u.cached_tokens)
            .max()
            .unwrap_or(0)
            .min(len);
    }
    total.completion_tokens = outcomes.iter().map(|(_, u)| u.completion_tokens).sum();
    total
}

/// The earliest time to first token among the choices.
pub fn first_token_time(times: impl Iterator<Item = Option<Duration>>) -> Option<Duration> {
    times.flatten().min()
}

/// One choice's events, tagged with its index.
pub type ChoiceStream = Pin<Box<dyn Stream<Item = (usize, Event)> + Send>>;

/// All choices' events of a request.
pub type Merged = SelectAll<ChoiceStream>;

/// Every choice's events as one stream, in arrival order, each tagged with its choice
/// index. A receiver that closes without `Finished` yields a synthetic `Error` finish.
pub fn merge(receivers: Vec<(usize, EventReceiver)>) -> Merged {
    stream::select_all(receivers.into_iter().map(|(index, rx)| {
        let s = stream::unfold(Some(rx), move |rx| async move {
            let mut rx = rx?;
            match rx.recv().await {
                Some(ev @ Event::Finished(_)) => Some(((index, ev), None)),
                Some(ev) => Some(((index, ev), Some(rx))),
                None => Some(((index, Event::Finished(vanished())), None)),
            }
        });
        Box::pin(s) as ChoiceStream
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(index: usize, prompt_index: usize, len: usize) -> Job {
        Job {
            index,
            prompt: vec![1; len],
            prompt_index,
            max_tokens: 1,
        }
    }

    fn usage(completion: usize, cached: usize) -> Usage {
        Usage {
            prompt_tokens: 0,
            completion_tokens: completion,
            cached_tokens: cached,
        }
    }

    #[test]
    fn usage_counts_each_prompt_once() {
        let jobs = [job(0, 0, 10), job(1, 0, 10), job(2, 1, 4), job(3, 1, 4)];
        let outcomes = [
            (0, usage(3, 0)),
            (1, usage(5, 8)),
            (2, usage(1, 0)),
            (3, usage(2, 0)),
        ];
        let u = total_usage(&jobs, &outcomes);
        assert_eq!(u.prompt_tokens, 14);
        assert_eq!(u.completion_tokens, 11);
        assert_eq!(u.cached_tokens, 8);
    }

    #[test]
    fn only_valid_openai_finish_reasons() {
        for r in [
            FinishReason::Stop,
            FinishReason::Length,
            FinishReason::Cancelled,
            FinishReason::Shutdown,
            FinishReason::Error("x".into()),
        ] {
            assert!(["stop", "length"].contains(&finish_reason(&r)));
        }
        assert!(failure(&FinishReason::Stop).is_none());
        assert_eq!(
            failure(&FinishReason::Shutdown),
            Some(ApiError::ShuttingDown)
        );
    }
}
