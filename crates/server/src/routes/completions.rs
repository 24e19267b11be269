//! `POST /v1/completions`: validate, tokenize each prompt (text with the model's BOS and
//! control tokens recognised; token ids as given), submit `n` engine requests per prompt,
//! then answer whole or as a stream of `text_completion` chunks. With `echo`, each
//! choice's text starts with its prompt.

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use kaiyuan_engine::TokenEvent;
use kaiyuan_tokenizer::Tokenizer;

use super::common::{conclude, new_id, plan_jobs, SYSTEM_FINGERPRINT};
use crate::api::logprobs;
use crate::api::response::{Completion, CompletionChoice, Header, UsageBody};
use crate::api::validate::{self, CompletionParams, PromptInput};
use crate::constrain;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::fim;
use crate::generate;
use crate::log::RequestLog;
use crate::prompt::encode_text;
use crate::routes::common::{into_response, resolve_model};
use crate::sse::{self, to_json, ChunkFormat};
use crate::state::{unix_now, AppState, ServedModel};

pub async fn handle(
    State(state): State<Arc<AppState>>,
    body: Result<ApiJson, ApiError>,
) -> Response {
    let id = new_id("cmpl");
    let mut log = RequestLog::new("completions", id.clone());
    let result = async {
        let ApiJson(body) = body?;
        let params = validate::completion(&body)?;
        let model = resolve_model(
            &state,
            params.model.as_deref(),
            params.gen.user.as_deref(),
            &mut log,
        )
        .await?;
        // The model's default sampling fills the fields the request left out.
        let params = match model.with_sampling_defaults(&body) {
            Some(body) => validate::completion(&body)?,
            None => params,
        };
        let result = run(&model, &state, params, id, &mut log).await;
        if let Err(e) = &result {
            model.counters.count(e);
        }
        result
    }
    .await;
    into_response(result, &mut log)
}

async fn run(
    model: &Arc<ServedModel>,
    state: &AppState,
    params: CompletionParams,
    id: String,
    log: &mut RequestLog,
) -> Result<Response, ApiError> {
    let CompletionParams {
        prompts,
        echo,
        gen,
        suffix,
        ..
    } = params;
    // Fill-in-the-middle: each prompt is the text before the insertion.
    let fim = match &suffix {
        Some(_) => Some(fim::require_fim_tokens(&model.tokenizer)?),
        None => None,
    };
    // Queue places first (prompt work waits and is refused like queued requests), then a
    // prompt-work permit.
    let mut places = model.engine.reserve(prompts.len() * gen.n)?;
    // Refused before submission: the caller counts the refusal (a hang-up drops `places`
    // instead, which counts the places as cancelled requests).
    let submitted = async {
        let permit = state
            .prompt_work
            .acquire()
            .await
            .map_err(|_| ApiError::ShuttingDown)?;
        let tok = Arc::clone(&model.tokenizer);
        let (ids, echoes) = tokio::task::spawn_blocking(move || {
            let mut all_ids = Vec::with_capacity(prompts.len());
            let mut echoes = Vec::with_capacity(prompts.len());
            for p in prompts {
                match p {
                    PromptInput::Text(text) => {
                        all_ids.push(match (fim, &suffix) {
                            (Some(fim), Some(suffix)) => fim::fim_prompt(&tok, fim, &text, suffix),
                            _ => encode_text(&tok, &text),
                        });
                        echoes.push(text);
                    }
                    PromptInput::Tokens(ids) => {
                        echoes.push(if echo {
                            tok.decode(&ids, true).unwrap_or_default()
                        } else {
                            String::new()
                        });
                        all_ids.push(ids);
                    }
                }
            }
            (all_ids, echoes)
        })
        .await
        .map_err(|e| ApiError::Engine(format!("the prompt task failed: {e}")))?;
        drop(permit);
        log.prompt_tokens(ids.iter().map(Vec::len).sum());
        let jobs = plan_jobs(model, &gen, ids, "prompt", "logprobs")?;
        let constraint = constrain::compile(model, gen.grammar.as_ref()).await?;
        crate::metering::admit(model, &jobs, log).await?;
        let receivers =
            generate::submit(&model.engine, &mut places, &jobs, &gen, constraint.as_ref())?;
        Ok::<_, ApiError>((jobs, receivers, echoes))
    }
    .await;
    let (jobs, receivers, echoes) = match submitted {
        Ok(done) => done,
        Err(e) => {
            places.give_back();
            return Err(e);
        }
    };
    // The text each choice starts with: its prompt with `echo`, else nothing.
    let prefixes: Vec<String> = jobs
        .iter()
        .map(|j| {
            if echo {
                echoes[j.prompt_index].clone()
            } else {
                String::new()
            }
        })
        .collect();
    let header = Header {
        id,
        object: "text_completion",
        created: unix_now(),
        model: model.name.clone(),
        system_fingerprint: SYSTEM_FINGERPRINT,
    };
    let want_logprobs = gen.sampling.logprobs.is_some();
    if gen.stream {
        let format = CompletionFormat {
            header,
            include_usage: gen.include_usage,
            offsets: prefixes.iter().map(|p| p.chars().count()).collect(),
            prefixes,
            logprobs: want_logprobs.then(|| Arc::clone(&model.tokenizer)),
        };
        return Ok(sse::respond(
            format,
            receivers,
            jobs,
            gen.include_usage,
            log.detach(),
        ));
    }
    let outcomes = generate::collect(receivers).await;
    let usage = conclude(&jobs, &outcomes, log)?;
    let choices = outcomes
        .into_iter()
        .map(|o| {
            let prefix = &prefixes[o.index];
            let logprobs = want_logprobs.then(|| {
                logprobs::completion(&model.tokenizer, &o.tokens, prefix.chars().count()).0
            });
            CompletionChoice {
                index: o.index,
                text: format!("{prefix}{}", o.text),
                logprobs,
                finish_reason: Some(generate::finish_reason(&o.finished.reason)),
            }
        })
        .collect();
    log.status("200");
    let body = Completion {
        header,
        choices,
        usage: Some(Some(UsageBody::new(
            usage.prompt_tokens,
            usage.completion_tokens,
            usage.cached_tokens,
        ))),
    };
    Ok(axum::Json(body).into_response())
}

/// The chunks of a completions stream.
struct CompletionFormat {
    header: Header,
    include_usage: bool,
    /// Per choice: the echoed prompt, sent first.
    prefixes: Vec<String>,
    /// Per choice: the character offset of the next token (for `text_offset`).
    offsets: Vec<usize>,
    logprobs: Option<Arc<Tokenizer>>,
}

impl CompletionFormat {
    fn chunk(&self, choices: Vec<CompletionChoice>, usage: Option<UsageBody>) -> String {
        to_json(&Completion {
            header: self.header.clone(),
            choices,
            usage: self.include_usage.then_some(usage),
        })
    }

    fn choice(index: usize, text: String) -> CompletionChoice {
        CompletionChoice {
            index,
            text,
            logprobs: None,
            finish_reason: None,
        }
    }
}

impl ChunkFormat for CompletionFormat {
    fn opening(&mut self) -> Vec<String> {
        (0..self.prefixes.len())
            .filter(|&i| !self.prefixes[i].is_empty())
            .map(|i| self.chunk(vec![Self::choice(i, self.prefixes[i].clone())], None))
            .collect()
    }

    fn token(&mut self, index: usize, token: &TokenEvent) -> Vec<String> {
        let logprobs = self.logprobs.as_ref().map(|tok| {
            let (lp, next) =
                logprobs::completion(tok, std::slice::from_ref(token), self.offsets[index]);
            self.offsets[index] = next;
            lp
        });
        if token.text.is_empty() && logprobs.is_none() {
            return Vec::new();
        }
        let mut choice = Self::choice(index, token.text.clone());
        choice.logprobs = logprobs;
        vec![self.chunk(vec![choice], None)]
    }

    fn finish(&mut self, index: usize, text: &str, reason: &'static str) -> Vec<String> {
        let mut choice = Self::choice(index, text.to_string());
        choice.finish_reason = Some(reason);
        vec![self.chunk(vec![choice], None)]
    }

    fn usage(&mut self, usage: UsageBody) -> String {
        self.chunk(Vec::new(), Some(usage))
    }
}
