//! Finds control and user-defined tokens written literally in text, so they become single ids
//! instead of being tokenized as characters. A byte trie over the token texts; at each position
//! the longest allowed token wins (leftmost-longest, as Hugging Face's added-token matcher does).
//! User-defined tokens are always matched (llama.cpp does); control and unknown tokens only
//! when the caller allows special tokens.

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

    /// The longest allowed token starting at `bytes[0]`: (id, length in bytes).
    fn longest_at(&self, bytes: &[u8], allow_special: bool) -> Option<(u32, usize)> {
        let mut node = self.root[bytes[0] as usize];
        let mut best = None;
        let mut len = 1;
        while node != NONE {
            let n = &self.nodes[node as usize];
            if let Some((id, needs_allow)) = n.token {
                if allow_special || !needs_allow {
                    best = Some((id, len));
                }
            }
            let Some(&b) = bytes.get(len) else { break };
            node = match n.children.binary_search_by_key(&b, |&(k, _)| k) {
                Ok(i) => n.children[i].1,
                Err(_) => NONE,
            };
            len += 1;
        }
        best
    }

    /// Cuts `text` into text fragments and recognised tokens, appending them to `out`.
    pub fn partition<'a>(&self, text: &'a str, allow_special: bool, out: &mut Vec<Fragment<'a>>) {
        let bytes = text.as_bytes();
        let mut start = 0;
        let mut i = 0;
        while i < bytes.len() {
            if self.root[bytes[i] as usize] != NONE {
                if let Some((id, len)) = self.longest_at(&bytes[i..], allow_special) {
                    // Token texts are valid UTF-8 and so is `text`, so a match of a token whose
                    // first byte is a char boundary ends on one; check rather than assume.
                    if text.is_char_boundary(i) && text.is_char_boundary(i + len) {
                        if start < i {
                            out.push(Fragment::Text(&text[start..i]));
                        }
                        out.push(Fragment::Token(id));
                        i += len;
                        start = i;
                        continue;
                    }
                }
            }
            i += 1;
        }
        if start < bytes.len() {
            out.push(Fragment::Text(&text[start..]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leftmost_longest_and_permission() {
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
    }
}
