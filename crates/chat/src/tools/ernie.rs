//! ERNIE 4.5 tool calls: the Hermes shape,
//!
//! ```text
//! <tool_call>
//! {"name": "get_weather", "arguments": {"city": "Paris"}}
//! </tool_call>
//! ```
//!
//! and answers that may be wrapped in `<response>…</response>`, whose tags are removed from the
//! content. The thinking variant writes `…</think>\n\n\n<tool_call>`: the reasoning is split off
//! first by [`crate::ReasoningSplitter`]. Source: Baidu's ERNIE 4.5 model cards and chat
//! templates (tool-call section), as summarised in the project's platform notes.
//!
//! Streamed like Hermes: arguments as they arrive when the call object starts with `name`.

use super::hermes::TaggedJsonParser;

/// The ERNIE 4.5 parser: Hermes tags, with `<response>` and `</response>` stripped from content.
pub fn ernie_parser() -> TaggedJsonParser {
    TaggedJsonParser::new(
        "<tool_call>",
        "</tool_call>",
        &["<response>", "</response>"],
    )
}
