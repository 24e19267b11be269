//! Telling the template's markup from message text in a rendered prompt (prompt-injection
//! safety): the tokenizer recognises control tokens such as `<|im_end|>` only in
//! [`SegmentKind::Markup`], so a user who types `<|im_end|>` gets those characters as text.
//!
//! Untrusted strings are the conversation's free text: message content (plain, text parts or
//! other JSON), reasoning, string leaves of tool-call `arguments` and of `documents`, and tool
//! `description`s. Everything else the template sees is treated as trusted markup: roles,
//! `name`, `tool_call_id`, tool names and schemas, extra variables, BOS/EOS. A server must
//! validate those (e.g. allow only known roles and plain identifiers as names) before rendering.
//! The prompt itself always comes from a normal render (the "real" render); the methods below only label its spans,
//! tried in order, and [`RenderedPrompt::separation`] says which one succeeded:
//!
//! 1. [`Separation::Exact`] — render again with every non-empty untrusted string replaced by a
//!    sentinel (`OPEN index CLOSE`, with OPEN/CLOSE private-use characters that occur nowhere in
//!    the template, the messages or the options). The output splits into template text and
//!    sentinels; if putting each string back where its sentinel stands gives the real render
//!    exactly, every span is known.
//! 2. [`Separation::Aligned`] — templates often change the text they print (`| trim`,
//!    `.strip()`, `.split('</think>')[-1]`, slicing, `tojson`). Then the template text of the
//!    sentinel render is matched against the real render, piece by piece in order, requiring the
//!    text where a sentinel stood to be a substring of that string (or of its JSON-escaped form).
//!    Longest spans are tried first (a search with backtracking and a step budget), so text the
//!    user wrote is never taken for markup.
//! 3. [`Separation::TokenAware`] — if the caller gave the control tokens
//!    ([`crate::ChatTemplate::with_control_tokens`]) and the template tests or splits text at
//!    control tokens (`'</think>' in content`, `.split('</think>')`, `.startswith('<tool_response>')`):
//!    render with only the text *between* control tokens replaced by sentinels and the tokens left
//!    in place, each tagged, then align as in 2 (see `token_aware.rs`).
//! 4. [`Separation::MarkedControlTokens`] — if the sentinel render is broken (a template sliced a
//!    sentinel) or took another branch (it tested the text, e.g. `startswith`), and the caller gave
//!    the control tokens ([`crate::ChatTemplate::with_control_tokens`]): render again with every
//!    control token inside untrusted strings wrapped in two more private-use markers. Marked
//!    tokens become Content, everything else Markup; a marker left alone by string operations is
//!    dropped but still ends the segment, so the text around it cannot join into a token. This is
//!    accepted only if dropping the markers gives the real render exactly.
//! 5. Otherwise [`crate::ChatError::Unseparable`]: it is safer to refuse than to guess.

use serde::Serialize;

use crate::message::Message;
use crate::pyjson::json_escaped;
use crate::template::{ChatTemplate, RenderOptions};
use crate::token_aware::{Delimiters, TokenAwareEncoder};
use crate::ChatError;

/// Whether a span of the prompt was written by the template or came from the conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SegmentKind {
    /// Template text: tokenize with control tokens recognised.
    Markup,
    /// Conversation text: tokenize as plain text.
    Content,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Segment {
    pub text: String,
    pub kind: SegmentKind,
}

/// Which method separated markup from content (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Separation {
    Exact,
    Aligned,
    TokenAware,
    MarkedControlTokens,
}

/// A rendered prompt: its segments concatenate to the text the template renders.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RenderedPrompt {
    pub segments: Vec<Segment>,
    pub separation: Separation,
}

impl RenderedPrompt {
    /// The whole prompt as one string.
    pub fn text(&self) -> String {
        self.segments.iter().map(|s| s.text.as_str()).collect()
    }
}

/// Private-use characters to build sentinels and markers from: supplementary planes 15 and 16,
/// which no tokenizer we know of has tokens for and which real text practically never holds.
fn private_use_chars() -> impl Iterator<Item = char> {
    (0xF0000u32..=0xFFFFD)
        .chain(0x100000..=0x10FFFD)
        .filter_map(char::from_u32)
}

/// Picks `n` private-use characters that occur nowhere in `haystack`.
fn unused_chars(haystack: &str, n: usize) -> Result<Vec<char>, ChatError> {
    let used: std::collections::HashSet<char> =
        haystack.chars().filter(|c| *c as u32 >= 0xF0000).collect();
    let picked: Vec<char> = private_use_chars()
        .filter(|c| !used.contains(c))
        .take(n)
        .collect();
    if picked.len() < n {
        return Err(ChatError::Unseparable(
            "no unused private-use characters left for sentinels".into(),
        ));
    }
    Ok(picked)
}

pub(crate) fn render_separated(
    template: &ChatTemplate,
    messages: &[Message],
    opts: &RenderOptions,
) -> Result<RenderedPrompt, ChatError> {
    let real = template.render_with(messages, opts, &mut |s: &str| s.to_string())?;
    let all_inputs = every_input_text(template, messages, opts);
    let chars = unused_chars(&all_inputs, 6)?;
    let (open, close, mark_open, mark_close) = (chars[0], chars[1], chars[2], chars[3]);

    let mut contents: Vec<String> = Vec::new();
    let with_sentinels = template.render_with(messages, opts, &mut |s: &str| {
        if s.is_empty() {
            return String::new();
        }
        contents.push(s.to_string());
        format!("{open}{}{close}", contents.len() - 1)
    });
    let plain_sentinel_render = with_sentinels.ok();
    if let Some(with_sentinels) = &plain_sentinel_render {
        if let Some(pieces) = parse_sentinels(with_sentinels, open, close, contents.len()) {
            if let Some(segments) = exact(&pieces, &contents, &real) {
                return Ok(finish(segments, Separation::Exact, &real));
            }
            if let Some(segments) = align(&pieces, &contents, &real) {
                return Ok(finish(segments, Separation::Aligned, &real));
            }
        }
    }

    let tokens = template.control_tokens();
    if tokens.is_empty() {
        return Err(ChatError::Unseparable(
            "the template changes or tests message text in a way the sentinel render cannot follow, \
             and no control tokens were given to mark instead"
                .into(),
        ));
    }
    if plain_sentinel_render.is_some() {
        let delimiters = Delimiters {
            run_open: open,
            run_close: close,
            tag_open: chars[4],
            tag_close: chars[5],
        };
        if let Some(segments) = token_aware(template, messages, opts, &real, delimiters) {
            return Ok(finish(segments, Separation::TokenAware, &real));
        }
    }
    let marked = template.render_with(messages, opts, &mut |s: &str| {
        mark_tokens(s, tokens, mark_open, mark_close)
    })?;
    let segments = split_marked(&marked, tokens, mark_open, mark_close);
    let joined: String = segments.iter().map(|s| s.text.as_str()).collect();
    if joined != real {
        return Err(ChatError::Unseparable(
            "rendering with control tokens marked changed the prompt beyond the markers".into(),
        ));
    }
    Ok(RenderedPrompt {
        segments,
        separation: Separation::MarkedControlTokens,
    })
}

/// Method 3: see `token_aware.rs`.
fn token_aware(
    template: &ChatTemplate,
    messages: &[Message],
    opts: &RenderOptions,
    real: &str,
    delimiters: Delimiters,
) -> Option<Vec<Segment>> {
    let tokens = template.control_tokens();
    let mut encoder = TokenAwareEncoder::new(tokens, delimiters);
    let rendered = template
        .render_with(messages, opts, &mut |s: &str| encoder.encode(s))
        .ok()?;
    let pieces = encoder.parse(&rendered)?;
    let segments =
        exact(&pieces, &encoder.runs, real).or_else(|| align(&pieces, &encoder.runs, real))?;
    Some(segments)
}

/// All text the render can see, to choose sentinel characters that cannot be forged.
fn every_input_text(template: &ChatTemplate, messages: &[Message], opts: &RenderOptions) -> String {
    let mut text = template.source().to_string();
    for part in [template.bos_token(), template.eos_token()]
        .into_iter()
        .flatten()
    {
        text.push_str(part);
    }
    // serde_json writes private-use characters raw, so they show up in the serialised form.
    text.push_str(&serde_json::to_string(messages).unwrap_or_default());
    for value in [&opts.tools, &opts.documents].into_iter().flatten() {
        text.push_str(&value.to_string());
    }
    text.push_str(&serde_json::Value::Object(opts.extra.clone()).to_string());
    for token in template.control_tokens() {
        text.push_str(token);
    }
    text
}

pub(crate) enum Piece {
    /// Template text.
    Markup(String),
    /// Where untrusted string `i` (or run `i`) stood: its real text is a substring of it.
    Slot(usize),
    /// A control token that came from an untrusted string (token-aware render): exact text, Content.
    Token(String),
}

/// Splits the sentinel render into template text and sentinels; `None` if any sentinel is
/// malformed (a template cut it) or a stray sentinel character is left.
fn parse_sentinels(text: &str, open: char, close: char, count: usize) -> Option<Vec<Piece>> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find([open, close]) {
        if rest[start..].starts_with(close) {
            return None;
        }
        pieces.push(Piece::Markup(rest[..start].to_string()));
        let (index, after) = parse_index(&rest[start + open.len_utf8()..], close, count)?;
        pieces.push(Piece::Slot(index));
        rest = after;
    }
    pieces.push(Piece::Markup(rest.to_string()));
    Some(pieces)
}

/// Reads `digits close` at the start of `text`: the index (< count) and the text after.
pub(crate) fn parse_index(text: &str, close: char, count: usize) -> Option<(usize, &str)> {
    let end = text.find(close)?;
    let digits = &text[..end];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let index: usize = digits.parse().ok()?;
    (index < count).then_some((index, &text[end + close.len_utf8()..]))
}

pub(crate) fn exact(pieces: &[Piece], contents: &[String], real: &str) -> Option<Vec<Segment>> {
    let segments: Vec<Segment> = pieces
        .iter()
        .map(|piece| match piece {
            Piece::Markup(text) => Segment {
                text: text.clone(),
                kind: SegmentKind::Markup,
            },
            Piece::Slot(i) => Segment {
                text: contents[*i].clone(),
                kind: SegmentKind::Content,
            },
            Piece::Token(text) => Segment {
                text: text.clone(),
                kind: SegmentKind::Content,
            },
        })
        .collect();
    let joined: String = segments.iter().map(|s| s.text.as_str()).collect();
    (joined == real).then_some(segments)
}

/// Search steps (candidate spans checked) before alignment gives up.
const ALIGN_BUDGET: usize = 200_000;

/// Most slots alignment handles: its search recurses once per slot, and must stay well inside
/// a 2 MiB thread stack. Longer conversations that need alignment fall through to the next method.
const ALIGN_MAX_SLOTS: usize = 2_000;

struct Aligner<'a> {
    real: &'a str,
    /// `fixed_text[k]` (exact text) precedes slot `k`; the last one follows the last slot.
    fixed_text: Vec<String>,
    slots: Vec<usize>,
    contents: &'a [String],
    escaped: &'a [String],
    ends: Vec<usize>,
    budget: usize,
}

impl Aligner<'_> {
    fn search(&mut self, k: usize, pos: usize) -> bool {
        if k == self.slots.len() {
            return pos == self.real.len();
        }
        let next_len = self.fixed_text[k + 1].len();
        let content = &self.contents[self.slots[k]];
        let escaped = &self.escaped[self.slots[k]];
        let longest = content.len().max(escaped.len());
        let last = k + 1 == self.slots.len();
        let window_end = self.real.len().min(pos + longest);
        let mut q = window_end;
        loop {
            let candidate = self.real.is_char_boundary(q)
                && self.real[q..].starts_with(self.fixed_text[k + 1].as_str())
                && (!last || q + next_len == self.real.len());
            if candidate {
                if self.budget == 0 {
                    return false;
                }
                self.budget -= 1;
                let span = &self.real[pos..q];
                if (span.is_empty() || content.contains(span) || escaped.contains(span)) && {
                    self.ends[k] = q;
                    self.search(k + 1, q + next_len)
                } {
                    return true;
                }
            }
            if q == pos {
                return false;
            }
            q -= 1;
        }
    }
}

pub(crate) fn align(pieces: &[Piece], contents: &[String], real: &str) -> Option<Vec<Segment>> {
    // Normalise to fixed, slot, fixed, ..., fixed; a fixed group is the exact-text pieces
    // (markup and content tokens) between two slots, possibly none.
    let mut fixed: Vec<Vec<Segment>> = vec![Vec::new()];
    let mut slots = Vec::new();
    for piece in pieces {
        let group = fixed.last_mut().expect("invariant: fixed starts non-empty");
        match piece {
            Piece::Markup(text) => group.push(Segment {
                text: text.clone(),
                kind: SegmentKind::Markup,
            }),
            Piece::Token(text) => group.push(Segment {
                text: text.clone(),
                kind: SegmentKind::Content,
            }),
            Piece::Slot(i) => {
                slots.push(*i);
                fixed.push(Vec::new());
            }
        }
    }
    if slots.len() > ALIGN_MAX_SLOTS {
        return None;
    }
    let fixed_text: Vec<String> = fixed
        .iter()
        .map(|group| group.iter().map(|s| s.text.as_str()).collect())
        .collect();
    if !real.starts_with(fixed_text[0].as_str()) {
        return None;
    }
    let escaped: Vec<String> = contents.iter().map(|c| json_escaped(c)).collect();
    let start = fixed_text[0].len();
    let mut aligner = Aligner {
        real,
        escaped: &escaped,
        ends: vec![0; slots.len()],
        fixed_text,
        slots,
        contents,
        budget: ALIGN_BUDGET,
    };
    if !aligner.search(0, start) {
        return None;
    }
    let mut groups = fixed.into_iter();
    let mut segments = groups.next().expect("invariant: first group");
    let mut pos = start;
    for (k, group) in groups.enumerate() {
        let end = aligner.ends[k];
        segments.push(Segment {
            text: real[pos..end].to_string(),
            kind: SegmentKind::Content,
        });
        pos = end + aligner.fixed_text[k + 1].len();
        segments.extend(group);
    }
    Some(segments)
}

/// Merges neighbours of the same kind, drops empty segments, and checks the invariant that the
/// segments spell the real render.
fn finish(segments: Vec<Segment>, separation: Separation, real: &str) -> RenderedPrompt {
    let mut merged: Vec<Segment> = Vec::new();
    for segment in segments.into_iter().filter(|s| !s.text.is_empty()) {
        match merged.last_mut() {
            Some(last) if last.kind == segment.kind => last.text.push_str(&segment.text),
            _ => merged.push(segment),
        }
    }
    let prompt = RenderedPrompt {
        segments: merged,
        separation,
    };
    debug_assert_eq!(prompt.text(), real);
    prompt
}

/// Wraps every control token in `text` (leftmost, longest first) in the two markers, after
/// removing any marker characters the text might already hold.
fn mark_tokens(text: &str, tokens: &[String], open: char, close: char) -> String {
    let text: String = text.chars().filter(|c| *c != open && *c != close).collect();
    let mut out = String::with_capacity(text.len());
    let mut pos = 0;
    while pos < text.len() {
        let rest = &text[pos..];
        let hit = tokens
            .iter()
            .filter(|t| rest.starts_with(t.as_str()))
            .max_by_key(|t| t.len());
        match hit {
            Some(token) => {
                out.push(open);
                out.push_str(token);
                out.push(close);
                pos += token.len();
            }
            None => {
                let c = rest.chars().next().expect("invariant: pos < len");
                out.push(c);
                pos += c.len_utf8();
            }
        }
    }
    out
}

/// Splits a marked render: `open token close` → Content; any other marker is dropped and ends the
/// current Markup segment (neighbouring Markup segments are deliberately not merged).
fn split_marked(text: &str, tokens: &[String], open: char, close: char) -> Vec<Segment> {
    let mut segments = Vec::new();
    let mut markup = String::new();
    let mut rest = text;
    let flush = |markup: &mut String, segments: &mut Vec<Segment>| {
        if !markup.is_empty() {
            segments.push(Segment {
                text: std::mem::take(markup),
                kind: SegmentKind::Markup,
            });
        }
    };
    while let Some(at) = rest.find([open, close]) {
        markup.push_str(&rest[..at]);
        let marker = rest[at..]
            .chars()
            .next()
            .expect("invariant: found a marker");
        let after = &rest[at + marker.len_utf8()..];
        flush(&mut markup, &mut segments);
        if marker == open {
            if let Some(end) = after.find(close) {
                let inner = &after[..end];
                if tokens.iter().any(|t| t == inner) {
                    segments.push(Segment {
                        text: inner.to_string(),
                        kind: SegmentKind::Content,
                    });
                    rest = &after[end + close.len_utf8()..];
                    continue;
                }
            }
        }
        rest = after;
    }
    markup.push_str(rest);
    flush(&mut markup, &mut segments);
    segments
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marking_wraps_longest_tokens_and_drops_forged_markers() {
        let tokens = vec!["<a>".to_string(), "<a>b".to_string()];
        let marked = mark_tokens("x<a>b<a>\u{F0002}", &tokens, '\u{F0002}', '\u{F0003}');
        assert_eq!(marked, "x\u{F0002}<a>b\u{F0003}\u{F0002}<a>\u{F0003}");
        let segments = split_marked(&marked, &tokens, '\u{F0002}', '\u{F0003}');
        let kinds: Vec<_> = segments.iter().map(|s| (s.text.as_str(), s.kind)).collect();
        assert_eq!(
            kinds,
            [
                ("x", SegmentKind::Markup),
                ("<a>b", SegmentKind::Content),
                ("<a>", SegmentKind::Content)
            ]
        );
    }

    #[test]
    fn lone_markers_split_markup() {
        let tokens = vec!["<t>".to_string()];
        let segments = split_marked("a<\u{F0002}t>b", &tokens, '\u{F0002}', '\u{F0003}');
        assert_eq!(segments.len(), 2, "{segments:?}");
    }
}
