//! Finds control and user-defined tokens written literally in text, so they become single ids
//! instead of being tokenized as characters. User-defined tokens are always matched (llama.cpp
//! does); control and unknown tokens only when the caller allows special tokens.
//!
//! Which occurrences win follows llama.cpp: tokens are taken longest first (equal lengths:
//! lower id first), each claiming its non-overlapping occurrences from left to right in the
//! text not yet claimed. (Hugging Face matches leftmost-longest instead; the two differ only
//! when occurrences of different tokens overlap, e.g. `ab` and `bcd` in `abcd`.) All
//! occurrences are found in one pass with a byte trie over the token texts, then resolved.

use crate::vocab::TokenType;

const NONE: u32 = u32::MAX;

struct Node {
    /// Sorted by byte.
    children: Vec<(u8, u32)>,
    /// The token ending here and whether it needs `allow_special`.
    token: Option<(u32, bool)>,
}

pub struct SpecialMatcher {
    /// Children of the root, indexed by byte (`NONE` if absent): the hot first step.
    root: Box<[u32; 256]>,
    nodes: Vec<Node>,
}

/// A piece of text to tokenize, or a special token already recognised.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fragment<'a> {
    Text(&'a str),
    Token(u32),
}

impl SpecialMatcher {
    pub fn new<'a>(tokens: impl Iterator<Item = (u32, &'a str, TokenType)>) -> Self {
        let mut m = SpecialMatcher {
            root: Box::new([NONE; 256]),
            nodes: Vec::new(),
        };
        for (id, text, ty) in tokens {
            let needs_allow = match ty {
                TokenType::UserDefined => false,
                TokenType::Control | TokenType::Unknown => true,
                _ => continue,
            };
            if text.is_empty() {
                continue;
            }
            m.insert(text.as_bytes(), id, needs_allow);
        }
        m
    }

    fn new_node(&mut self) -> u32 {
        self.nodes.push(Node {
            children: Vec::new(),
            token: None,
        });
        (self.nodes.len() - 1) as u32
    }

    fn insert(&mut self, bytes: &[u8], id: u32, needs_allow: bool) {
        let mut node = self.root[bytes[0] as usize];
        if node == NONE {
            node = self.new_node();
            self.root[bytes[0] as usize] = node;
        }
        for &b in &bytes[1..] {
            let children = &self.nodes[node as usize].children;
            node = match children.binary_search_by_key(&b, |&(k, _)| k) {
                Ok(i) => children[i].1,
                Err(i) => {
                    let child = self.new_node();
                    self.nodes[node as usize].children.insert(i, (b, child));
                    child
                }
            };
        }
        // On duplicate texts the later id wins, as in llama.cpp's text-to-id map.
        self.nodes[node as usize].token = Some((id, needs_allow));
    }

    /// Calls `found(id, length)` for every allowed token that starts at `bytes[0]`.
    fn tokens_at(&self, bytes: &[u8], allow_special: bool, mut found: impl FnMut(u32, usize)) {
        let mut node = self.root[bytes[0] as usize];
        let mut len = 1;
        while node != NONE {
            let n = &self.nodes[node as usize];
            if let Some((id, needs_allow)) = n.token {
                if allow_special || !needs_allow {
                    found(id, len);
                }
            }
            let Some(&b) = bytes.get(len) else { break };
            node = match n.children.binary_search_by_key(&b, |&(k, _)| k) {
                Ok(i) => n.children[i].1,
                Err(_) => NONE,
            };
            len += 1;
        }
    }

    /// Cuts `text` into text fragments and recognised tokens, appending them to `out`.
    pub fn partition<'a>(&self, text: &'a str, allow_special: bool, out: &mut Vec<Fragment<'a>>) {
        let bytes = text.as_bytes();
        // Every occurrence: (length, id, start).
        let mut found: Vec<(usize, u32, usize)> = Vec::new();
        for i in 0..bytes.len() {
            if self.root[bytes[i] as usize] != NONE && text.is_char_boundary(i) {
                self.tokens_at(&bytes[i..], allow_special, |id, len| {
                    if text.is_char_boundary(i + len) {
                        found.push((len, id, i));
                    }
                });
            }
        }
        if found.is_empty() {
            if !text.is_empty() {
                out.push(Fragment::Text(text));
            }
            return;
        }
        found.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
        let mut claimed = vec![false; bytes.len()];
        let mut accepted: Vec<(usize, usize, u32)> = Vec::new();
        for (len, id, start) in found {
            let span = &mut claimed[start..start + len];
            if span.iter().all(|&c| !c) {
                span.fill(true);
                accepted.push((start, len, id));
            }
        }
        accepted.sort_unstable();
        let mut at = 0;
        for (start, len, id) in accepted {
            if at < start {
                out.push(Fragment::Text(&text[at..start]));
            }
            out.push(Fragment::Token(id));
            at = start + len;
        }
        if at < bytes.len() {
            out.push(Fragment::Text(&text[at..]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_token_first_and_permission() {
        let toks = [
            (10, "<a>", TokenType::Control),
            (11, "<a><b>", TokenType::Control),
            (12, "  ", TokenType::UserDefined),
            (13, "   ", TokenType::UserDefined),
            (14, "ab", TokenType::Normal),
        ];
        let m = SpecialMatcher::new(toks.iter().copied());
        let run = |s: &'static str, allow| {
            let mut out = Vec::new();
            m.partition(s, allow, &mut out);
            out
        };
        use Fragment::{Text, Token};
        assert_eq!(
            run("x<a><b>y<a>", true),
            [Text("x"), Token(11), Text("y"), Token(10)]
        );
        assert_eq!(run("x<a><b>y", false), [Text("x<a><b>y")]);
        assert_eq!(
            run("a     b", false),
            [Text("a"), Token(13), Token(12), Text("b")]
        );
        assert_eq!(run("ab", true), [Text("ab")]);
        assert_eq!(run("", true), []);
        // Longest first, not leftmost first: llama.cpp gives "a" + <bcd> here.
        let m = SpecialMatcher::new(
            [
                (1, "ab", TokenType::Control),
                (2, "bcd", TokenType::Control),
            ]
            .into_iter(),
        );
        let mut out = Vec::new();
        m.partition("abcd ab", true, &mut out);
        assert_eq!(out, [Text("a"), Token(2), Text(" "), Token(1)]);
    }
}
