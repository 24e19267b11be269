//! Turning prompts into token ids, next to the templates that render them: a rendered chat
//! prompt ([`encode_rendered`]) keeps the template's markup and the conversation's text apart
//! — control tokens are recognised in markup only, so a user who types `<|im_end|>` gets those
//! characters, never the control token (`segments.rs`). A plain prompt ([`encode_text`]) is
//! one text. The server, `kaiyuan run`, `chat` and `template --tokens` all encode here, so
//! they feed a model the same ids.

use kaiyuan_tokenizer::Tokenizer;

use crate::{RenderedPrompt, SegmentKind};

/// A chat prompt's ids, segment by segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PromptTokens {
    /// The BOS the model's metadata asks for, when the template did not write it already.
    pub bos: Option<u32>,
    pub segments: Vec<(SegmentKind, Vec<u32>)>,
}

impl PromptTokens {
    /// All ids in order.
    pub fn ids(&self) -> Vec<u32> {
        let len = self
            .segments
            .iter()
            .map(|(_, ids)| ids.len())
            .sum::<usize>();
        let mut ids = Vec::with_capacity(len + 1);
        ids.extend(self.bos);
        for (_, seg) in &self.segments {
            ids.extend_from_slice(seg);
        }
        ids
    }
}

/// Tokenizes `rendered`: markup with control tokens recognised, content as plain text, and
/// a BOS first if the model wants one — unless the template's markup already begins with
/// it (templates that write `{{ bos_token }}` would otherwise give two).
pub fn encode_rendered(tok: &Tokenizer, rendered: &RenderedPrompt) -> PromptTokens {
    // Segments are parts of one text: a SentencePiece leading space goes only where the
    // whole text would have one (at the start or after a special token).
    let mut after_special = true;
    let segments: Vec<(SegmentKind, Vec<u32>)> = rendered
        .segments
        .iter()
        .filter(|seg| !seg.text.is_empty())
        .map(|seg| {
            let markup = seg.kind == SegmentKind::Markup;
            let mut ids = Vec::new();
            after_special = tok.encode_continuation(&seg.text, markup, after_special, &mut ids);
            (seg.kind, ids)
        })
        .collect();
    let first = segments.iter().find_map(|(_, ids)| ids.first().copied());
    let bos = match (tok.add_bos(), tok.bos_id()) {
        (true, Some(bos)) if first != Some(bos) => Some(bos),
        _ => None,
    };
    PromptTokens { bos, segments }
}

/// Tokenizes a plain prompt (a completion's, `kaiyuan run`'s): BOS/EOS as the model asks;
/// with `special`, control tokens written in the text are recognised (the caller writes the
/// whole prompt, as with llama-server's completions).
pub fn encode_text(tok: &Tokenizer, text: &str, special: bool) -> Vec<u32> {
    tok.encode_with_bos_eos(text, special)
}
