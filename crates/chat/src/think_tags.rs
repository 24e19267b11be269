//! [`ThinkTags`]: the pair of tags a chat template writes around a reply's reasoning
//! (`<think>`…`</think>` for most families, Hunyuan Hy3's `<think:opensource>`, Seed-OSS's
//! `<seed:think>`), read from what the template renders rather than from a list of families.

use crate::message::Message;
use crate::reasoning::{THINK_CLOSE, THINK_OPEN};
use crate::template::{ChatTemplate, RenderOptions};

/// The open and close tag of a reasoning block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThinkTags {
    pub open: String,
    pub close: String,
}

impl Default for ThinkTags {
    /// `<think>` and `</think>` (DeepSeek-R1, Qwen3, QwQ, GLM…).
    fn default() -> Self {
        ThinkTags {
            open: THINK_OPEN.to_string(),
            close: THINK_CLOSE.to_string(),
        }
    }
}

/// The reasoning text of the probe conversation: no template writes it on its own.
const PROBE: &str = "kaiyuan-reasoning-probe";

impl ThinkTags {
    /// The tags `template` writes around reasoning, if it is known to write any: `<think>` when
    /// its source has that tag literally; otherwise the tags it renders around the reasoning of
    /// a probe conversation (a user turn, then an assistant turn that carries
    /// `reasoning_content`), when they are a pair `<NAME>` … `</NAME>`. `None` when the template
    /// writes no reasoning of that shape, or refuses the probe.
    pub(crate) fn of_template(template: &ChatTemplate) -> Option<ThinkTags> {
        if template.source().contains(THINK_OPEN) {
            return Some(ThinkTags::default());
        }
        if !template.source().contains("reasoning") && !template.source().contains("thinking") {
            return None;
        }
        let mut reply = Message::text("assistant", "ok");
        reply.reasoning_content = Some(PROBE.to_string());
        let messages = [Message::text("user", "hi"), reply];
        let text = template
            .render_text(&messages, &RenderOptions::default())
            .ok()?;
        around(&text, PROBE)
    }
}

/// The tag pair written right around `probe` in `text` (whitespace between tag and text allowed).
fn around(text: &str, probe: &str) -> Option<ThinkTags> {
    let at = text.find(probe)?;
    let before = text[..at].trim_end();
    let after = text[at + probe.len()..].trim_start();
    let open = &before[before.rfind('<')?..];
    let close = &after[..after.find('>')? + 1];
    let open_name = open.strip_prefix('<')?.strip_suffix('>')?;
    let close_name = close.strip_prefix("</")?.strip_suffix('>')?;
    let plain =
        |name: &str| !name.is_empty() && !name.contains(|c: char| c.is_whitespace() || c == '<');
    (open_name == close_name && plain(open_name)).then(|| ThinkTags {
        open: open.to_string(),
        close: close.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags_of(source: &str) -> Option<ThinkTags> {
        ThinkTags::of_template(&ChatTemplate::new(source, None, None).unwrap())
    }

    fn pair(open: &str, close: &str) -> Option<ThinkTags> {
        Some(ThinkTags {
            open: open.into(),
            close: close.into(),
        })
    }

    #[test]
    fn a_literal_think_tag_is_the_default_pair() {
        assert_eq!(tags_of("{{ '<think>' }}"), Some(ThinkTags::default()));
    }

    #[test]
    fn tags_built_by_the_template_are_read_from_its_render() {
        let hy3 = "{%- set T = ':x' %}{%- for m in messages %}{%- if m.reasoning_content %}\
                   {{ '<think{}>'.format(T) }}{{ m.reasoning_content }}{{ '</think{}>'.format(T) }}\
                   {%- endif %}{{ m.content }}{%- endfor %}";
        assert_eq!(tags_of(hy3), pair("<think:x>", "</think:x>"));
        let seed = "{%- for m in messages %}{%- if m.reasoning_content %}<seed:think>\n\
                    {{ m.reasoning_content }}\n</seed:think>{%- endif %}{{ m.content }}{%- endfor %}";
        assert_eq!(tags_of(seed), pair("<seed:think>", "</seed:think>"));
    }

    #[test]
    fn no_pair_no_tags() {
        // Reasoning written without tags, with mismatched ones, or not at all.
        let bare = "{%- for m in messages %}{{ m.reasoning_content }}{{ m.content }}{%- endfor %}";
        assert_eq!(tags_of(bare), None);
        let odd =
            "{%- for m in messages %}{%- if m.reasoning_content %}<a>{{ m.reasoning_content }}</b>\
                   {%- endif %}{%- endfor %}";
        assert_eq!(tags_of(odd), None);
        assert_eq!(tags_of("{{ messages[0].content }}"), None);
        let raises = "{{ raise_exception('no reasoning') }}";
        assert_eq!(tags_of(raises), None);
    }

    #[test]
    fn around_needs_the_tags_next_to_the_text() {
        assert_eq!(around("<r> x </r>", "x"), pair("<r>", "</r>"));
        assert_eq!(around("<r>a x</r>", "x"), None);
        assert_eq!(around("<r>x a</r>", "x"), None);
        assert_eq!(around("<r x>x</r x>", "x"), None);
        assert_eq!(around("x", "x"), None);
    }
}
