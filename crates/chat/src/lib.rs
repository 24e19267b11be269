//! Chat-template rendering for Kaiyuan: runs a model's `tokenizer.chat_template` (Jinja) with the
//! semantics of Hugging Face transformers' `apply_chat_template`, and returns the prompt split into
//! template markup and message content so that the tokenizer recognises control tokens only in
//! markup (prompt-injection safety).
//!
//! - [`ChatTemplate`]: compile once, [`ChatTemplate::render`] per request.
//! - [`Message`], [`Content`], [`RenderOptions`]: the inputs, as an OpenAI-style chat request has them.
//! - [`RenderedPrompt`]: the output as [`Segment`]s of kind [`SegmentKind::Markup`] or
//!   [`SegmentKind::Content`]; see `segments.rs` for how the two are told apart.
//! - [`encode_rendered`], [`encode_text`]: a rendered prompt (markup with control tokens,
//!   content as plain text) or a plain one into token ids, as every caller feeds the model.
//! - [`ReasoningSplitter`]: separates streamed reasoning (`<think>`…`</think>`, or the
//!   template's own [`ThinkTags`]) from the answer.
//! - [`tools`]: streaming tool-call parsers, one per model family ([`tools::ToolFormat`]), and
//!   the generic JSON format's schema and system prompt.
//! - [`ChatRequest`]: the JSON form of a render request (messages, tools, `chat_template_kwargs`).
//! - [`builtin`], [`pick_builtin`]: fallback templates (chatml, llama3, gemma) for models without one.
//!
//! Compatibility with transformers is checked against goldens rendered by transformers itself
//! (`tools/chat_template_golden.py`); known gaps of minijinja are listed in
//! `testdata/golden/chat_template/README.md` (`%` formatting, tuples, `swapcase`, `center`).
//! Printing follows Python's `str()`, but the `~` operator and `| string` use minijinja's own
//! text forms (`none`, `true`), a difference no template we know of relies on.

mod builtin;
mod encode;
mod environment;
mod message;
mod pyjson;
mod reasoning;
mod request;
mod segments;
mod strftime;
mod template;
mod think_tags;
mod token_aware;
pub mod tools;

pub use builtin::{builtin, pick_builtin, BuiltinChoice, BUILTIN_NAMES};
pub use encode::{encode_rendered, encode_text, PromptTokens};
pub use message::{Content, Message};
pub use reasoning::{ReasoningSplitter, SplitDelta, THINK_CLOSE, THINK_OPEN};
pub use request::ChatRequest;
pub use segments::{RenderedPrompt, Segment, SegmentKind, Separation};
pub use template::{ChatTemplate, RenderOptions};
pub use think_tags::ThinkTags;

/// Everything that can go wrong compiling or rendering a chat template.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    /// The template source is not valid Jinja (as minijinja understands it).
    #[error("chat template does not compile: {0}")]
    Compile(String),
    /// The template called `raise_exception(message)`; the message is the template's own words,
    /// usually about a conversation it does not accept (e.g. roles out of order).
    #[error("chat template raised an exception: {0}")]
    Raised(String),
    /// Rendering failed for another reason (type error, undefined method...).
    #[error("chat template failed to render: {0}")]
    Render(String),
    /// The rendered prompt could not be split into markup and message content with certainty, and
    /// no control-token list was given to fall back on (see [`ChatTemplate::with_control_tokens`]).
    /// Refusing is the safe answer: the alternative could let message text act as control tokens.
    #[error("cannot tell the chat template's markup from message text: {0}")]
    Unseparable(String),
}
