//! The token-aware sentinel render (separation method 3, see `segments.rs`): for templates that
//! test or cut message text around control tokens, e.g. `'</think>' in content`,
//! `content.split('</think>')[-1].lstrip('\n')`, `content.startswith('<tool_response>')`.
//!
//! Each untrusted string is cut at the control tokens it contains: the text between tokens
//! (runs) becomes run sentinels as in method 1, and each token stays as literal text, so
//! `in`, `split`, `startswith` and `endswith` on tokens behave as on the real text, with a tag
//! next to it: after the token, or before it when the token ends the string (so `endswith`
//! still sees it). In the output a token with its tag beside it came from the message (Content);
//! a tag without its token means the template consumed the token (`split`) and is dropped.
//! Runs are then aligned to the real render as in method 2.
//!
//! A template that cuts message text by length (`content[:n]`) exactly between a token and its
//! tag would make that token look like markup. This is detected when the token has a
//! predecessor in its string (the predecessor's sentinel followed by the bare token), and the
//! method then gives up. Residual risk: a token that *starts* its string cut off from its tag.
//! This method only runs when methods 1 and 2 failed, which for slicing needs a template that
//! also branches on the text; no template we know of slices message text at all.

use crate::segments::{parse_index, Piece};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Placement {
    /// The tag follows the token.
    After,
    /// The tag precedes the token (the token ends its string).
    Before,
}

/// The private-use characters that delimit run sentinels and token tags.
#[derive(Clone, Copy)]
pub(crate) struct Delimiters {
    pub run_open: char,
    pub run_close: char,
    pub tag_open: char,
    pub tag_close: char,
}

/// Records the runs and tokens cut out of the untrusted strings of one render.
pub(crate) struct TokenAwareEncoder<'t> {
    tokens: &'t [String],
    delimiters: Delimiters,
    pub runs: Vec<String>,
    tagged: Vec<(String, Placement)>,
    /// For each tag placed after its token: the encoded element just before the token in its
    /// string (a run sentinel or another tag), to detect a cut between token and tag.
    guards: Vec<Option<String>>,
}

/// Control-token occurrences in `text`, leftmost first, longest token at each position.
pub(crate) fn find_tokens<'t>(text: &str, tokens: &'t [String]) -> Vec<(usize, &'t str)> {
    let mut found = Vec::new();
    let mut pos = 0;
    while pos < text.len() {
        let rest = &text[pos..];
        match tokens
            .iter()
            .filter(|t| rest.starts_with(t.as_str()))
            .max_by_key(|t| t.len())
        {
            Some(token) => {
                found.push((pos, token.as_str()));
                pos += token.len();
            }
            None => pos += rest.chars().next().map_or(1, char::len_utf8),
        }
    }
    found
}

impl<'t> TokenAwareEncoder<'t> {
    pub fn new(tokens: &'t [String], delimiters: Delimiters) -> Self {
        TokenAwareEncoder {
            tokens,
            delimiters,
            runs: Vec::new(),
            tagged: Vec::new(),
            guards: Vec::new(),
        }
    }

    /// The stand-in for one untrusted string.
    pub fn encode(&mut self, text: &str) -> String {
        let d = self.delimiters;
        let mut out = String::new();
        // The encoded element written last in this string, if any.
        let mut previous: Option<String> = None;
        let push_run =
            |runs: &mut Vec<String>, out: &mut String, previous: &mut Option<String>, run: &str| {
                if !run.is_empty() {
                    let sentinel = format!("{}{}{}", d.run_open, runs.len(), d.run_close);
                    out.push_str(&sentinel);
                    *previous = Some(sentinel);
                    runs.push(run.to_string());
                }
            };
        let mut pos = 0;
        for (start, token) in find_tokens(text, self.tokens) {
            push_run(&mut self.runs, &mut out, &mut previous, &text[pos..start]);
            let end = start + token.len();
            let placement = if start > 0 && end == text.len() {
                Placement::Before
            } else {
                Placement::After
            };
            let tag = format!("{}{}{}", d.tag_open, self.tagged.len(), d.tag_close);
            self.tagged.push((token.to_string(), placement));
            self.guards.push(match placement {
                Placement::After => previous.clone(),
                Placement::Before => None,
            });
            match placement {
                Placement::After => {
                    out.push_str(token);
                    out.push_str(&tag);
                    previous = Some(tag);
                }
                Placement::Before => {
                    out.push_str(&tag);
                    out.push_str(token);
                }
            }
            pos = end;
        }
        push_run(&mut self.runs, &mut out, &mut previous, &text[pos..]);
        out
    }

    /// Splits a render made with [`Self::encode`] into pieces; `None` if a sentinel or tag is
    /// malformed.
    pub fn parse(&self, text: &str) -> Option<Vec<Piece>> {
        let d = self.delimiters;
        // A token printed right after its predecessor but without its own tag was cut from the
        // tag (slicing by length): it would pass for markup, so give up.
        for (index, guard) in self.guards.iter().enumerate() {
            if let Some(guard) = guard {
                let bare = format!("{guard}{}", self.tagged[index].0);
                let tagged = format!("{bare}{}{index}{}", d.tag_open, d.tag_close);
                if text.matches(bare.as_str()).count() > text.matches(tagged.as_str()).count() {
                    return None;
                }
            }
        }
        let mut pieces = Vec::new();
        let mut markup = String::new();
        let mut rest = text;
        let specials = [d.run_open, d.run_close, d.tag_open, d.tag_close];
        while let Some(at) = rest.find(specials) {
            markup.push_str(&rest[..at]);
            let c = rest[at..].chars().next().expect("invariant: found a char");
            let after = &rest[at + c.len_utf8()..];
            if c == d.run_open {
                let (index, after) = parse_index(after, d.run_close, self.runs.len())?;
                pieces.push(Piece::Markup(std::mem::take(&mut markup)));
                pieces.push(Piece::Slot(index));
                rest = after;
            } else if c == d.tag_open {
                let (index, after) = parse_index(after, d.tag_close, self.tagged.len())?;
                let (token, placement) = &self.tagged[index];
                rest = after;
                match placement {
                    Placement::After if markup.ends_with(token.as_str()) => {
                        markup.truncate(markup.len() - token.len());
                        pieces.push(Piece::Markup(std::mem::take(&mut markup)));
                        pieces.push(Piece::Token(token.clone()));
                    }
                    Placement::Before if after.starts_with(token.as_str()) => {
                        pieces.push(Piece::Markup(std::mem::take(&mut markup)));
                        pieces.push(Piece::Token(token.clone()));
                        rest = &after[token.len()..];
                    }
                    _ => {} // the template consumed the token; the tag is dropped
                }
            } else {
                return None; // a closing delimiter without its opening one
            }
        }
        markup.push_str(rest);
        pieces.push(Piece::Markup(markup));
        Some(pieces)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_sit_inside_the_string_and_parse_back() {
        let tokens = vec!["<a>".to_string(), "</a>".to_string()];
        let d = Delimiters {
            run_open: '\u{F0000}',
            run_close: '\u{F0001}',
            tag_open: '\u{F0002}',
            tag_close: '\u{F0003}',
        };
        let mut enc = TokenAwareEncoder::new(&tokens, d);
        let encoded = enc.encode("<a>x</a>");
        assert_eq!(
            encoded,
            "<a>\u{F0002}0\u{F0003}\u{F0000}0\u{F0001}\u{F0002}1\u{F0003}</a>"
        );
        assert!(encoded.starts_with("<a>") && encoded.ends_with("</a>"));
        assert_eq!(enc.runs, ["x"]);
        // The template printed the encoded string after "[" and consumed nothing.
        let pieces = enc.parse(&format!("[{encoded}")).expect("parses");
        let kinds: Vec<String> = pieces
            .iter()
            .map(|p| match p {
                Piece::Markup(t) => format!("M{t}"),
                Piece::Slot(i) => format!("S{i}"),
                Piece::Token(t) => format!("T{t}"),
            })
            .collect();
        assert_eq!(kinds, ["M[", "T<a>", "M", "S0", "M", "T</a>", "M"]);
        // A token cut off from its tag after its predecessor is refused.
        let mut enc2 = TokenAwareEncoder::new(&tokens, d);
        let encoded = enc2.encode("x<a>y");
        assert_eq!(
            encoded,
            "\u{F0000}0\u{F0001}<a>\u{F0002}0\u{F0003}\u{F0000}1\u{F0001}"
        );
        assert!(enc2.parse(&encoded).is_some());
        assert!(enc2.parse("\u{F0000}0\u{F0001}<a>").is_none());
        // A tag whose token was split away is dropped.
        let pieces = enc.parse("\u{F0002}1\u{F0003}!").expect("parses");
        assert!(matches!(pieces.as_slice(), [Piece::Markup(t)] if t == "!"));
    }
}
