//! A request's grammar compiled against its model's vocabulary before anything queues: on
//! the blocking pool (compiling a large schema can take a while and must not stall the
//! async runtime), under a wall-clock limit, with every failure a 400 naming the field the
//! grammar came from. The engine then gets one fork of the result per choice.

use std::sync::Arc;
use std::time::Duration;

use kaiyuan_grammar::Constraint;

use crate::api::grammar::GrammarRequest;
use crate::error::ApiError;
use crate::state::ServedModel;

/// The longest a grammar may take to compile (documented in the README). A compilation that
/// runs past it is abandoned; its work is bounded by the compiler's own fuel limits.
pub const COMPILE_TIMEOUT: Duration = Duration::from_secs(5);

/// The constraint for `grammar`, or `None` when the request has none.
pub async fn compile(
    model: &Arc<ServedModel>,
    grammar: Option<&GrammarRequest>,
) -> Result<Option<Constraint>, ApiError> {
    let Some(g) = grammar else {
        return Ok(None);
    };
    // Not under the time limit: a vocabulary still being prepared is the server's delay.
    let m = Arc::clone(model);
    let vocab = match tokio::task::spawn_blocking(move || m.grammar_vocab()).await {
        Ok(Ok(v)) => v,
        Ok(Err(why)) => {
            return Err(ApiError::unsupported(
                &g.param,
                format!("structured output is not available for this model: {why}"),
            ))
        }
        Err(e) => return Err(ApiError::Engine(format!("the grammar task failed: {e}"))),
    };
    let spec = g.spec.clone();
    let task = tokio::task::spawn_blocking(move || vocab.compile(&spec));
    match tokio::time::timeout(COMPILE_TIMEOUT, task).await {
        Err(_) => Err(ApiError::invalid(
            &g.param,
            format!(
                "the grammar did not compile within {} s; simplify it",
                COMPILE_TIMEOUT.as_secs()
            ),
        )),
        Ok(Err(e)) => Err(ApiError::Engine(format!("the grammar task failed: {e}"))),
        Ok(Ok(Err(e))) => Err(ApiError::invalid(&g.param, format!("invalid grammar: {e}"))),
        Ok(Ok(Ok(c))) => Ok(Some(c)),
    }
}

/// `constraint` after a reasoning block that the prompt opened: free text until the model
/// writes the template's close tag (`</think>`; or `budget` tokens, then the tag is forced),
/// then the constraint.
pub fn after_reasoning(
    constraint: Constraint,
    model: &ServedModel,
    budget: Option<usize>,
) -> Result<Constraint, ApiError> {
    let close = &model.reasoning.tags.close;
    constraint
        .after_reasoning(close, model.tokenizer.encode(close, false), budget)
        .map_err(|e| ApiError::Engine(format!("cannot start the answer after reasoning: {e}")))
}

/// `constraint` applied lazily: free until the output writes one of `triggers`, then the
/// grammar of what follows (tool calls under `tool_choice: auto`).
pub fn lazy(
    constraint: Constraint,
    grammar: &GrammarRequest,
    triggers: &[String],
) -> Result<Constraint, ApiError> {
    constraint
        .lazy(triggers)
        .map_err(|e| ApiError::invalid(&grammar.param, format!("invalid grammar: {e}")))
}
