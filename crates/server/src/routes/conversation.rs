//! A validated chat request from prompt to submitted engine requests, shared by the OpenAI
//! (`chat.rs`) and Anthropic (`messages.rs`) front ends: tool preparation, rendering with the
//! model's template (on the blocking pool), prefix completion, tokenization, the context
//! check, the reply's constraint (response format or tool grammar, after reasoning, lazy from
//! a call trigger) and submission. The front ends only shape the answer.

use std::sync::Arc;

use kaiyuan_chat::{RenderOptions, Segment, SegmentKind};
use kaiyuan_engine::{EventReceiver, QueueReservation};

use super::common::plan_jobs;
use crate::api::reasoning;
use crate::api::validate::ChatParams;
use crate::constrain;
use crate::error::ApiError;
use crate::generate::{self, Job};
use crate::log::RequestLog;
use crate::prompt::encode_rendered;
use crate::state::{AppState, ServedModel};
use crate::tools::{self, ToolPlan};

/// A chat request's engine requests, submitted.
pub struct Started {
    pub jobs: Vec<Job>,
    pub receivers: Vec<(usize, EventReceiver)>,
    /// The prompt (with any prefix) left a `<think>` block open.
    pub starts_in_reasoning: bool,
    /// What tools do to the reply (`None`: no tools offered).
    pub plan: Option<ToolPlan>,
}

/// The prompt's token ids, and whether it leaves a reasoning block open.
pub async fn prompt(
    model: &Arc<ServedModel>,
    state: &AppState,
    params: &mut ChatParams,
) -> Result<(Vec<u32>, bool, Option<ToolPlan>), ApiError> {
    let config = &state.config;
    let source = model.template.source();
    let format = tools::format_of(source);
    let mut messages = std::mem::take(&mut params.messages);
    let plan = tools::prepare(
        format,
        source,
        &model.tokenizer,
        params.tools.as_ref(),
        params.gen.grammar.as_ref(),
        &mut messages,
    )?;
    let m = Arc::clone(model);
    let extra = reasoning::template_variables(&params.reasoning, &model.reasoning, config.thinking);
    let template_tools = plan.as_ref().and_then(|p| p.template_tools.clone());
    let prefix = params.prefix.take();
    let _permit = state
        .prompt_work
        .acquire()
        .await
        .map_err(|_| ApiError::ShuttingDown)?;
    let (ids, starts_in_reasoning) = tokio::task::spawn_blocking(move || {
        let options = RenderOptions {
            add_generation_prompt: true,
            tools: template_tools,
            extra,
            ..RenderOptions::default()
        };
        m.template.render(&messages, &options).map(|mut rendered| {
            let tags = &m.reasoning.tags;
            let mut in_reasoning = rendered.ends_inside(&tags.open);
            // Prefix completion: the reply starts with the given text, as conversation text.
            if let Some(prefix) = prefix.filter(|p| !p.is_empty()) {
                in_reasoning = reasoning::still_open(tags, in_reasoning, &prefix);
                rendered.segments.push(Segment {
                    text: prefix,
                    kind: SegmentKind::Content,
                });
            }
            let ids = encode_rendered(&m.tokenizer, &rendered).ids();
            (ids, in_reasoning)
        })
    })
    .await
    .map_err(|e| ApiError::Engine(format!("the prompt task failed: {e}")))?
    .map_err(|e| ApiError::invalid("messages", format!("cannot render the conversation: {e}")))?;
    Ok((ids, starts_in_reasoning, plan))
}

/// Renders, checks and submits `params`. The request's engine queue places are taken
/// first, so prompt work waits (and is refused) like queued requests.
pub async fn start(
    model: &Arc<ServedModel>,
    state: &AppState,
    params: ChatParams,
    log: &mut RequestLog,
) -> Result<Started, ApiError> {
    let mut places = model.engine.reserve(params.gen.n)?;
    let started = start_reserved(model, state, params, log, &mut places).await;
    if started.is_err() {
        // Refused, and counted as such by the caller (a hang-up drops `places` instead).
        places.give_back();
    }
    started
}

async fn start_reserved(
    model: &Arc<ServedModel>,
    state: &AppState,
    mut params: ChatParams,
    log: &mut RequestLog,
    places: &mut QueueReservation,
) -> Result<Started, ApiError> {
    let (prompt, starts_in_reasoning, plan) = prompt(model, state, &mut params).await?;
    let ChatParams { gen, reasoning, .. } = params;
    log.prompt_tokens(prompt.len());
    let jobs = plan_jobs(model, &gen, vec![prompt], "messages", "top_logprobs")?;
    // Tools constrain the reply (calls, or a lazy grammar from the call trigger on) in place
    // of a response format (`tools::prepare` refuses the combinations that would need both).
    let grammar = plan.as_ref().map(|p| &p.grammar).or(gen.grammar.as_ref());
    let mut constraint = constrain::compile(model, grammar).await?;
    // A response format constrains the answer: after a prompt that left `<think>` open, the
    // model reasons freely first (at most `thinking.budget_tokens`), then answers under it.
    if starts_in_reasoning && grammar.is_some_and(|g| g.answer_only) {
        constraint = constraint
            .map(|c| constrain::after_reasoning(c, model, reasoning.budget_tokens))
            .transpose()?;
    }
    if let Some(p) = plan.as_ref().filter(|p| !p.triggers.is_empty()) {
        constraint = constraint
            .map(|c| constrain::lazy(c, &p.grammar, &p.triggers))
            .transpose()?;
    }
    crate::metering::admit(model, &jobs, log).await?;
    let receivers = generate::submit(&model.engine, places, &jobs, &gen, constraint.as_ref())?;
    Ok(Started {
        jobs,
        receivers,
        starts_in_reasoning,
        plan,
    })
}
