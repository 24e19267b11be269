//! [`ReasoningSplitter`]: separates a model's reasoning (`<think>` … `</think>`) from its answer
//! while the text streams in, for `kaiyuan chat` and the server's `reasoning_content`. No IO.
//!
//! The rules, chosen to match how reasoning models write and how DeepSeek's API reports them:
//! - Reasoning is one block at the very start of the output (leading whitespace allowed). An open
//!   tag anywhere later is answer text, so an answer that talks about `<think>` tags stays whole.
//! - Templates of DeepSeek-R1 distills end the prompt inside an open `<think>`: the model writes
//!   only the closing tag. Construct with `starts_in_reasoning` (see
//!   [`ReasoningSplitter::for_tags`]); a repeated open tag at the start is then dropped.
//! - Whitespace around the reasoning is not kept: the reasoning is trimmed at both ends and the
//!   answer after `</think>` loses its leading whitespace. Output with no reasoning block is passed
//!   through unchanged.
//! - A tag split across chunks is held back until it is complete or proven not to be a tag, so a
//!   delta never contains part of a tag; trailing whitespace of reasoning is held the same way.
//! - Reasoning left open when the stream ends (the model hit a length limit) is still reasoning.

use crate::segments::{RenderedPrompt, SegmentKind};
use crate::think_tags::ThinkTags;

/// The open tag of reasoning models (DeepSeek-R1, Qwen3, QwQ).
pub const THINK_OPEN: &str = "<think>";
/// The close tag matching [`THINK_OPEN`].
pub const THINK_CLOSE: &str = "</think>";

/// The text one [`ReasoningSplitter::push`] released, by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SplitDelta {
    /// New reasoning text (without tags).
    pub reasoning: String,
    /// New answer text.
    pub content: String,
}

impl SplitDelta {
    pub fn is_empty(&self) -> bool {
        self.reasoning.is_empty() && self.content.is_empty()
    }

    /// `(reasoning_delta, content_delta)`.
    pub fn into_parts(self) -> (String, String) {
        (self.reasoning, self.content)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Only whitespace so far: the output may still open with the open tag.
    Start,
    /// Inside the reasoning block.
    Reasoning,
    /// Just after the close tag: the answer's leading whitespace is dropped.
    AfterReasoning,
    /// Answer text; everything from here on is content.
    Content,
}

/// Streaming splitter of reasoning and answer text; see the module documentation for the rules.
#[derive(Debug, Clone)]
pub struct ReasoningSplitter {
    open: String,
    close: String,
    state: State,
    /// Text received but not yet released (a possible partial tag, held whitespace).
    pending: String,
    /// Some reasoning text was released (until then its leading whitespace is dropped).
    reasoning_started: bool,
    saw_reasoning: bool,
}

impl ReasoningSplitter {
    /// A splitter for `<think>`/`</think>`. `starts_in_reasoning`: the prompt already opened the
    /// reasoning block, so the output starts inside it.
    pub fn new(starts_in_reasoning: bool) -> ReasoningSplitter {
        ReasoningSplitter::with_tags(THINK_OPEN, THINK_CLOSE, starts_in_reasoning)
    }

    /// A splitter for other tags. Empty tags are replaced by the `<think>` ones.
    pub fn with_tags(open: &str, close: &str, starts_in_reasoning: bool) -> ReasoningSplitter {
        let pick =
            |tag: &str, default: &str| if tag.is_empty() { default } else { tag }.to_string();
        ReasoningSplitter {
            open: pick(open, THINK_OPEN),
            close: pick(close, THINK_CLOSE),
            state: if starts_in_reasoning {
                State::Reasoning
            } else {
                State::Start
            },
            pending: String::new(),
            reasoning_started: false,
            saw_reasoning: starts_in_reasoning,
        }
    }

    /// A splitter for `tags`, for the output that follows `prompt` (starts inside reasoning when
    /// the prompt's markup left `tags.open` open).
    pub fn for_tags(tags: &ThinkTags, prompt: &RenderedPrompt) -> ReasoningSplitter {
        ReasoningSplitter::with_tags(&tags.open, &tags.close, prompt.ends_inside(&tags.open))
    }

    /// True while the text being received is reasoning.
    pub fn in_reasoning(&self) -> bool {
        self.state == State::Reasoning
    }

    /// True once the output has (or started with) a reasoning block.
    pub fn saw_reasoning(&self) -> bool {
        self.saw_reasoning
    }

    /// Adds a chunk of generated text; returns what can be released now.
    pub fn push(&mut self, chunk: &str) -> SplitDelta {
        self.pending.push_str(chunk);
        let mut out = SplitDelta::default();
        self.process(&mut out);
        out
    }

    /// Ends the stream: releases what was held (a partial tag that never completed is text).
    pub fn finish(&mut self) -> SplitDelta {
        let mut out = SplitDelta::default();
        self.process(&mut out);
        let rest = std::mem::take(&mut self.pending);
        match self.state {
            State::Start | State::Content => out.content.push_str(&rest),
            State::Reasoning => {
                let text = if self.reasoning_started {
                    rest.trim_end()
                } else {
                    rest.trim()
                };
                out.reasoning.push_str(text);
            }
            State::AfterReasoning => {} // only whitespace is ever held here
        }
        out
    }

    fn process(&mut self, out: &mut SplitDelta) {
        loop {
            match self.state {
                State::Start => {
                    let trimmed = self.pending.trim_start();
                    if trimmed.is_empty() {
                        return;
                    }
                    if trimmed.starts_with(self.open.as_str()) {
                        let cut = self.pending.len() - trimmed.len() + self.open.len();
                        self.pending.drain(..cut);
                        self.state = State::Reasoning;
                        self.saw_reasoning = true;
                    } else if self.open.starts_with(trimmed) {
                        return; // maybe the open tag, split across chunks
                    } else {
                        self.state = State::Content;
                    }
                }
                State::Reasoning => {
                    if !self.reasoning_started {
                        let lead = self.pending.len() - self.pending.trim_start().len();
                        self.pending.drain(..lead);
                        // A model may repeat the open tag the prompt already wrote.
                        if self.pending.starts_with(self.open.as_str()) {
                            self.pending.drain(..self.open.len());
                            continue;
                        }
                        if !self.pending.is_empty()
                            && self.open.starts_with(self.pending.as_str())
                            && !self.close.starts_with(self.pending.as_str())
                        {
                            return;
                        }
                    }
                    if let Some(at) = self.pending.find(self.close.as_str()) {
                        let keep = self.pending[..at].trim_end().len();
                        self.emit_reasoning(keep, out);
                        self.pending.drain(..at - keep + self.close.len());
                        self.state = State::AfterReasoning;
                        continue;
                    }
                    // Hold a possible partial close tag and the whitespace before it.
                    let keep_from = partial_tag_start(&self.pending, &self.close);
                    let releasable = self.pending[..keep_from].trim_end().len();
                    self.emit_reasoning(releasable, out);
                    return;
                }
                State::AfterReasoning => {
                    let lead = self.pending.len() - self.pending.trim_start().len();
                    self.pending.drain(..lead);
                    if self.pending.is_empty() {
                        return;
                    }
                    self.state = State::Content;
                }
                State::Content => {
                    out.content.push_str(&self.pending);
                    self.pending.clear();
                    return;
                }
            }
        }
    }

    /// Releases the first `len` bytes of `pending` as reasoning.
    fn emit_reasoning(&mut self, len: usize, out: &mut SplitDelta) {
        if len == 0 {
            return;
        }
        out.reasoning.push_str(&self.pending[..len]);
        self.pending.drain(..len);
        self.reasoning_started = true;
    }
}

/// Where the longest suffix of `text` that is a proper prefix of `tag` starts (`text.len()` if
/// none): the part that could still become `tag` when more text arrives.
fn partial_tag_start(text: &str, tag: &str) -> usize {
    (1..tag.len())
        .rev()
        .filter(|&k| tag.is_char_boundary(k))
        .find(|&k| text.ends_with(&tag[..k]))
        .map_or(text.len(), |k| text.len() - k)
}

impl RenderedPrompt {
    /// Whether the template's generation prompt left the reasoning block open (its text, without
    /// trailing whitespace, ends with `open`: `<think>` or the template's [`ThinkTags`]), so the
    /// model's output starts inside reasoning: DeepSeek-R1 distills end in
    /// `<｜Assistant｜><think>\n`; Qwen3 with thinking off opens and closes it
    /// (`<think>\n\n</think>\n\n`), which does not count. Only markup counts: a user message
    /// ending in `<think>` is not a tag.
    pub fn ends_inside(&self, open: &str) -> bool {
        self.segments
            .iter()
            .rev()
            .find(|s| !s.text.trim().is_empty())
            .is_some_and(|s| s.kind == SegmentKind::Markup && s.text.trim_end().ends_with(open))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segments::{Segment, Separation};

    /// Feeds `chunks`, returns the concatenated (reasoning, content).
    fn run(starts_in_reasoning: bool, chunks: &[&str]) -> (String, String) {
        let mut s = ReasoningSplitter::new(starts_in_reasoning);
        let (mut r, mut c) = (String::new(), String::new());
        for chunk in chunks {
            let d = s.push(chunk);
            r.push_str(&d.reasoning);
            c.push_str(&d.content);
        }
        let d = s.finish();
        r.push_str(&d.reasoning);
        c.push_str(&d.content);
        (r, c)
    }

    fn owned(r: &str, c: &str) -> (String, String) {
        (r.to_string(), c.to_string())
    }

    /// Every way of cutting `text` into two and into three chunks, and one char per chunk.
    fn all_splits(text: &str) -> Vec<Vec<&str>> {
        let cuts: Vec<usize> = (0..=text.len())
            .filter(|&i| text.is_char_boundary(i))
            .collect();
        let mut out = vec![vec![text]];
        for &i in &cuts {
            out.push(vec![&text[..i], &text[i..]]);
            for &j in cuts.iter().filter(|&&j| j >= i) {
                out.push(vec![&text[..i], &text[i..j], &text[j..]]);
            }
        }
        let mut chars = Vec::new();
        let mut start = 0;
        for (i, _) in text.char_indices().skip(1) {
            chars.push(&text[start..i]);
            start = i;
        }
        chars.push(&text[start..]);
        out.push(chars);
        out
    }

    fn check_all_splits(starts_in_reasoning: bool, text: &str, want: (&str, &str)) {
        for chunks in all_splits(text) {
            assert_eq!(
                run(starts_in_reasoning, &chunks),
                owned(want.0, want.1),
                "chunks {chunks:?}"
            );
        }
    }

    #[test]
    fn reasoning_then_answer_at_every_split() {
        check_all_splits(
            false,
            "<think>\nLet me see.\n</think>\n\nThe answer is 4.",
            ("Let me see.", "The answer is 4."),
        );
    }

    #[test]
    fn deepseek_prompt_opened_the_block() {
        check_all_splits(
            true,
            "Okay, 2+2.\n</think>\n\n**4**",
            ("Okay, 2+2.", "**4**"),
        );
    }

    #[test]
    fn repeated_open_tag_after_an_opened_prompt_is_dropped() {
        check_all_splits(true, "<think>\nhm</think>yes", ("hm", "yes"));
    }

    #[test]
    fn output_without_tags_passes_through_unchanged() {
        check_all_splits(
            false,
            "  Hello <b>world</b> < 3\n",
            ("", "  Hello <b>world</b> < 3\n"),
        );
        check_all_splits(false, "<thin air", ("", "<thin air"));
    }

    #[test]
    fn an_open_tag_after_the_answer_began_is_text() {
        check_all_splits(false, "Use <think> tags.", ("", "Use <think> tags."));
        check_all_splits(
            false,
            "<think>a</think>b <think>c</think>",
            ("a", "b <think>c</think>"),
        );
    }

    #[test]
    fn unicode_around_the_tags() {
        check_all_splits(
            false,
            " <think>思考 ü</think>答え 🙂",
            ("思考 ü", "答え 🙂"),
        );
    }

    #[test]
    fn unfinished_reasoning_stays_reasoning() {
        check_all_splits(false, "<think>still thinking  ", ("still thinking", ""));
        check_all_splits(true, "partial </thi", ("partial </thi", ""));
        check_all_splits(false, "<think>", ("", ""));
    }

    #[test]
    fn a_partial_open_tag_at_the_end_is_content() {
        check_all_splits(false, "\n<thi", ("", "\n<thi"));
    }

    #[test]
    fn empty_reasoning_and_empty_answer() {
        check_all_splits(false, "<think>\n\n</think>\n\nHi", ("", "Hi"));
        check_all_splits(true, "</think>", ("", ""));
    }

    #[test]
    fn text_is_released_as_soon_as_it_cannot_be_a_tag() {
        let mut s = ReasoningSplitter::new(false);
        assert_eq!(s.push("<thi"), SplitDelta::default());
        let d = s.push("nk>Hello wor");
        assert_eq!(d.reasoning, "Hello wor");
        assert!(s.in_reasoning() && s.saw_reasoning());
        // Trailing whitespace and a possible tag start are held; the rest is not.
        assert_eq!(s.push("ld \n</").reasoning, "ld");
        let d = s.push("think>  ");
        assert_eq!(d.into_parts(), (String::new(), String::new()));
        assert!(!s.in_reasoning());
        assert_eq!(s.push(" Ok").content, "Ok");
        let d = s.push(" </think>");
        assert_eq!(d.content, " </think>");
    }

    #[test]
    fn random_texts_split_anywhere_give_the_same_result() {
        // Texts built from tag pieces, whitespace and multi-byte characters, cut at random
        // char boundaries, must split exactly as when pushed whole.
        const PIECES: [&str; 10] = [
            "<think>", "</think>", "<", "</", "think>", " ", "\n", "é", "🙂", "x",
        ];
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        for _ in 0..2000 {
            let text: String = (0..next(12)).map(|_| PIECES[next(PIECES.len())]).collect();
            let starts = next(2) == 1;
            let whole = run(starts, &[&text]);
            let cuts: Vec<usize> = (0..=text.len())
                .filter(|&i| text.is_char_boundary(i))
                .collect();
            let mut points: Vec<usize> = (0..next(5)).map(|_| cuts[next(cuts.len())]).collect();
            points.sort_unstable();
            let mut chunks = Vec::new();
            let mut from = 0;
            for p in points {
                chunks.push(&text[from..p]);
                from = p;
            }
            chunks.push(&text[from..]);
            assert_eq!(run(starts, &chunks), whole, "{text:?} as {chunks:?}");
        }
    }

    #[test]
    fn custom_tags() {
        let mut s = ReasoningSplitter::with_tags("[THINK]", "[/THINK]", false);
        let mut r = String::new();
        let mut c = String::new();
        for ch in "[THINK]x[/THINK]y".chars() {
            let d = s.push(&ch.to_string());
            r.push_str(&d.reasoning);
            c.push_str(&d.content);
        }
        let d = s.finish();
        r.push_str(&d.reasoning);
        c.push_str(&d.content);
        assert_eq!((r.as_str(), c.as_str()), ("x", "y"));
    }

    #[test]
    fn partial_tag_start_finds_the_longest_suffix() {
        assert_eq!(partial_tag_start("ab</thi", "</think>"), 2);
        assert_eq!(partial_tag_start("ab<", "</think>"), 2);
        assert_eq!(partial_tag_start("ab", "</think>"), 2);
        assert_eq!(partial_tag_start("", "</think>"), 0);
    }

    #[test]
    fn prompt_tail_detection() {
        let markup = |text: &str| prompt(&[(SegmentKind::Markup, text)]);
        assert!(markup("<｜User｜>hi<｜Assistant｜><think>\n").ends_inside(THINK_OPEN));
        assert!(!markup("<|im_start|>assistant\n<think>\n\n</think>\n\n").ends_inside(THINK_OPEN));
        assert!(!markup("<|im_start|>assistant\n").ends_inside(THINK_OPEN));
        assert!(!markup("").ends_inside(THINK_OPEN));
    }

    fn prompt(parts: &[(SegmentKind, &str)]) -> RenderedPrompt {
        RenderedPrompt {
            segments: parts
                .iter()
                .map(|&(kind, text)| Segment {
                    text: text.to_string(),
                    kind,
                })
                .collect(),
            separation: Separation::Exact,
        }
    }

    #[test]
    fn only_markup_can_open_the_block() {
        use SegmentKind::{Content, Markup};
        let opened = prompt(&[
            (Markup, "<|User|>"),
            (Content, "hi"),
            (Markup, "<|Assistant|><think>\n"),
        ]);
        let think = ThinkTags::default();
        assert!(opened.ends_inside(THINK_OPEN));
        assert!(ReasoningSplitter::for_tags(&think, &opened).in_reasoning());
        let injected = prompt(&[
            (Markup, "<|User|>"),
            (Content, "say <think>"),
            (Markup, "\n"),
        ]);
        assert!(!injected.ends_inside(THINK_OPEN));
        assert!(!ReasoningSplitter::for_tags(&think, &injected).in_reasoning());
    }

    #[test]
    fn a_template_s_own_tags_open_and_close_the_block() {
        use SegmentKind::{Content, Markup};
        let tags = ThinkTags {
            open: "<think:x>".into(),
            close: "</think:x>".into(),
        };
        let opened = prompt(&[(Content, "hi"), (Markup, "<|A|><think:x>")]);
        assert!(!opened.ends_inside(THINK_OPEN));
        let mut s = ReasoningSplitter::for_tags(&tags, &opened);
        assert!(s.in_reasoning());
        let mut got = s.push("Let me see.</think:x>\n\nIt is 4. <think> stays");
        let rest = s.finish();
        got.reasoning.push_str(&rest.reasoning);
        got.content.push_str(&rest.content);
        assert_eq!(got.reasoning, "Let me see.");
        assert_eq!(got.content, "It is 4. <think> stays");
        let closed = prompt(&[(Markup, "<|A|><think:x></think:x>")]);
        assert!(!ReasoningSplitter::for_tags(&tags, &closed).in_reasoning());
    }
}
