//! `POST /v1/chat/completions`: validate, render the conversation with the model's chat
//! template and tokenize it (on the blocking pool), submit one engine request per choice,
//! then answer whole or as a stream of `chat.completion.chunk`s.

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use kaiyuan_chat::RenderOptions;
use kaiyuan_engine::TokenEvent;
use kaiyuan_tokenizer::Tokenizer;

use super::common::{conclude, new_id, plan_jobs, SYSTEM_FINGERPRINT};
use crate::api::logprobs;
use crate::api::response::{
    AssistantMessage, ChatChoice, ChatChunk, ChatCompletion, ChunkChoice, Delta, Header, UsageBody,
};
use crate::api::validate::{self, ChatParams};
use crate::constrain;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::generate::{self, Job};
use crate::log::RequestLog;
use crate::prompt::encode_rendered;
use crate::routes::common::{into_response, resolve_model};
use crate::sse::{self, to_json, ChunkFormat};
use crate::state::{unix_now, AppState, ServedModel};

pub async fn handle(
    State(state): State<Arc<AppState>>,
    body: Result<ApiJson, ApiError>,
) -> Response {
    let id = new_id("chatcmpl");
    let mut log = RequestLog::new("chat", id.clone());
    let result = async {
        let ApiJson(body) = body?;
        let params = validate::chat(&body)?;
        let model = resolve_model(
            &state,
            params.model.as_deref(),
            params.gen.user.as_deref(),
            &mut log,
        )?;
        let result = run(&model, params, id, &mut log).await;
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
    params: ChatParams,
    id: String,
    log: &mut RequestLog,
) -> Result<Response, ApiError> {
    let ChatParams { messages, gen, .. } = params;
    let m = Arc::clone(model);
    let prompt = tokio::task::spawn_blocking(move || {
        let options = RenderOptions {
            add_generation_prompt: true,
            ..RenderOptions::default()
        };
        m.template
            .render(&messages, &options)
            .map(|rendered| encode_rendered(&m.tokenizer, &rendered).ids())
    })
    .await
    .map_err(|e| ApiError::Engine(format!("the prompt task failed: {e}")))?
    .map_err(|e| ApiError::invalid("messages", format!("cannot render the conversation: {e}")))?;
    log.prompt_tokens(prompt.len());
    let jobs = plan_jobs(model, &gen, vec![prompt], "messages", "top_logprobs")?;
    let constraint = constrain::compile(model, gen.grammar.as_ref()).await?;
    let receivers = generate::submit(&model.engine, &jobs, &gen, constraint.as_ref())?;
    let header = Header {
        id,
        object: "chat.completion",
        created: unix_now(),
        model: model.name.clone(),
        system_fingerprint: SYSTEM_FINGERPRINT,
    };
    let want_logprobs = gen.sampling.logprobs.is_some();
    if gen.stream {
        let format = ChatFormat {
            header: Header {
                object: "chat.completion.chunk",
                ..header
            },
            n: jobs.len(),
            include_usage: gen.include_usage,
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
    whole(model, header, &jobs, outcomes, want_logprobs, log)
}

fn whole(
    model: &ServedModel,
    header: Header,
    jobs: &[Job],
    outcomes: Vec<generate::ChoiceOutcome>,
    want_logprobs: bool,
    log: &mut RequestLog,
) -> Result<Response, ApiError> {
    let usage = conclude(jobs, &outcomes, log)?;
    let choices = outcomes
        .into_iter()
        .map(|o| ChatChoice {
            index: o.index,
            logprobs: want_logprobs.then(|| logprobs::chat(&model.tokenizer, &o.tokens)),
            finish_reason: generate::finish_reason(&o.finished.reason),
            message: AssistantMessage {
                role: "assistant",
                content: o.text,
                refusal: None,
            },
        })
        .collect();
    log.status("200");
    let body = ChatCompletion {
        header,
        choices,
        usage: UsageBody::new(
            usage.prompt_tokens,
            usage.completion_tokens,
            usage.cached_tokens,
        ),
    };
    Ok(axum::Json(body).into_response())
}

/// The chunks of a chat stream.
struct ChatFormat {
    header: Header,
    n: usize,
    include_usage: bool,
    /// The tokenizer, when the request asked for logprobs.
    logprobs: Option<Arc<Tokenizer>>,
}

impl ChatFormat {
    fn chunk(&self, choices: Vec<ChunkChoice>, usage: Option<UsageBody>) -> String {
        to_json(&ChatChunk {
            header: self.header.clone(),
            choices,
            usage: self.include_usage.then_some(usage),
        })
    }
}

impl ChunkFormat for ChatFormat {
    fn opening(&mut self) -> Vec<String> {
        (0..self.n)
            .map(|index| {
                let choice = ChunkChoice {
                    index,
                    delta: Delta {
                        role: Some("assistant"),
                        content: Some(String::new()),
                    },
                    logprobs: None,
                    finish_reason: None,
                };
                self.chunk(vec![choice], None)
            })
            .collect()
    }

    fn token(&mut self, index: usize, token: &TokenEvent) -> Option<String> {
        let logprobs = self
            .logprobs
            .as_ref()
            .map(|tok| logprobs::chat(tok, std::slice::from_ref(token)));
        if token.text.is_empty() && logprobs.is_none() {
            return None;
        }
        let choice = ChunkChoice {
            index,
            delta: Delta {
                role: None,
                content: Some(token.text.clone()),
            },
            logprobs,
            finish_reason: None,
        };
        Some(self.chunk(vec![choice], None))
    }

    fn finish(&mut self, index: usize, text: &str, reason: &'static str) -> String {
        let choice = ChunkChoice {
            index,
            delta: Delta {
                role: None,
                content: (!text.is_empty()).then(|| text.to_string()),
            },
            logprobs: None,
            finish_reason: Some(reason),
        };
        self.chunk(vec![choice], None)
    }

    fn usage(&mut self, usage: UsageBody) -> String {
        self.chunk(Vec::new(), Some(usage))
    }
}
