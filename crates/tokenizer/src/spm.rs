//! SentencePiece-style tokenization (`tokenizer.ggml.model = llama`, used by Gemma and Llama 2):
//! spaces become U+2581 `▁` (with one prefixed when `add_space_prefix` says so), the text starts
//! as one symbol per character, and the adjacent pair whose concatenation is a vocabulary token
//! with the highest score is merged first (leftmost among equal scores), until no pair forms a
//! token. Symbols that are not tokens fall back to `<0xNN>` byte tokens. This is SentencePiece's
//! BPE encoding as llama.cpp's SPM tokenizer runs it on a GGUF vocabulary.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use crate::cache::{new_owner, IdMemo, WordCache};
use crate::error::{Error, Result};
use crate::hash::FastMap;

const NIL: u32 = u32::MAX;
/// Words up to this many characters use the candidate scan instead of the heap.
const SMALL_WORD: usize = 32;

pub struct Spm {
    by_text: FastMap<Box<str>, u32>,
    scores: Vec<f32>,
    byte_token: [Option<u32>; 256],
    unk: Option<u32>,
    /// Tokens with a `▁` after their first character, with the byte offsets of those `▁`:
    /// the only merges that can join text across a `▁` (see [`Spm::encode`]).
    cross: Vec<(Box<str>, usize)>,
    /// This tokenizer's number in the per-thread word cache.
    owner: u64,
    /// Id of each ASCII character's token (`NIL` if none).
    ascii: [u32; 128],
}

/// A symbol of the short-word merge loop: byte span in the word and token id (`NIL`: the
/// text is not a token).
#[derive(Clone, Copy)]
struct Sym {
    start: u32,
    len: u32,
    id: u32,
}

/// A candidate merge of the symbols `left` and `right` into a token of `score`.
#[derive(Clone, Copy)]
struct Bigram {
    score: f32,
    left: u32,
    right: u32,
    /// Byte length of the merged text: a symbol that changed since makes the entry stale.
    len: u32,
}

impl PartialEq for Bigram {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Bigram {}
impl PartialOrd for Bigram {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Bigram {
    /// Max-heap order: higher score first, then the leftmost.
    fn cmp(&self, other: &Self) -> Ordering {
        self.score
            .total_cmp(&other.score)
            .then_with(|| other.left.cmp(&self.left))
    }
}

/// Reusable buffers of one encode call.
#[derive(Default)]
pub struct SpmScratch {
    text: String,
    start: Vec<u32>,
    len: Vec<u32>,
    next: Vec<u32>,
    prev: Vec<u32>,
    heap: BinaryHeap<Bigram>,
    cache: WordCache,
    syms: Vec<Sym>,
    cands: Vec<Option<(f32, u32)>>,
    memo: IdMemo,
}

impl Spm {
    pub fn new(
        tokens: &[String],
        scores: &[f32],
        is_byte: impl Fn(usize) -> bool,
        unk: Option<u32>,
    ) -> Result<Self> {
        if scores.len() != tokens.len() {
            return Err(Error::InvalidVocab(format!(
                "{} scores for {} tokens (tokenizer.ggml.scores)",
                scores.len(),
                tokens.len()
            )));
        }
        let mut by_text = FastMap::default();
        by_text.reserve(tokens.len());
        let mut byte_token = [None; 256];
        for (id, t) in tokens.iter().enumerate() {
            by_text.insert(t.clone().into_boxed_str(), id as u32);
            if is_byte(id) {
                if let Some(b) = parse_byte_token(t) {
                    byte_token[b as usize] = Some(id as u32);
                }
            }
        }
        if unk.is_none() && byte_token.contains(&None) {
            return Err(Error::InvalidVocab(
                "SentencePiece vocabulary lacks some <0xNN> byte token and has no unknown token"
                    .into(),
            ));
        }
        let mut cross = Vec::new();
        for t in tokens {
            for (k, c) in t.char_indices().skip(1) {
                if c == '\u{2581}' {
                    cross.push((t.clone().into_boxed_str(), k));
                }
            }
        }
        let mut ascii = [NIL; 128];
        for (b, slot) in ascii.iter_mut().enumerate() {
            let c = [b as u8];
            if let Some(&id) = std::str::from_utf8(&c).ok().and_then(|t| by_text.get(t)) {
                *slot = id;
            }
        }
        Ok(Spm {
            by_text,
            scores: scores.to_vec(),
            byte_token,
            unk,
            cross,
            owner: new_owner(),
            ascii,
        })
    }

    fn lookup(&self, text: &str) -> Option<u32> {
        self.by_text.get(text).copied()
    }

    /// Appends the ids of `text` (a fragment without special tokens) to `out`.
    ///
    /// The escaped text is cut into words before each `▁`, where no merge can cross: a merge
    /// across position p (a `▁`) makes a token with a `▁` after its first character that
    /// occurs in the text around p, and those few tokens are checked. Merges in disjoint words
    /// do not interact (each word's merge order is the global order restricted to it), so
    /// encoding words apart is exact, and lets repeated words come from the cache.
    pub fn encode(&self, text: &str, space_prefix: bool, s: &mut SpmScratch, out: &mut Vec<u32>) {
        let mut escaped = std::mem::take(&mut s.text);
        escaped.clear();
        if space_prefix {
            escaped.push('\u{2581}');
        }
        for c in text.chars() {
            escaped.push(if c == ' ' { '\u{2581}' } else { c });
        }
        s.cache.claim(self.owner);
        s.memo.claim(self.owner);
        let mut word_start = 0;
        for (p, c) in escaped.char_indices() {
            if c == '\u{2581}' && p > word_start && self.can_cut_before(&escaped, p) {
                self.encode_word(&escaped[word_start..p], s, out);
                word_start = p;
            }
        }
        self.encode_word(&escaped[word_start..], s, out);
        s.text = escaped;
    }

    fn can_cut_before(&self, text: &str, p: usize) -> bool {
        !self
            .cross
            .iter()
            .any(|(tok, k)| p >= *k && text.as_bytes()[p - k..].starts_with(tok.as_bytes()))
    }

    fn encode_word(&self, word: &str, s: &mut SpmScratch, out: &mut Vec<u32>) {
        if let Some(ids) = s.cache.get(word.as_bytes()) {
            out.extend_from_slice(ids);
            return;
        }
        let start = out.len();
        self.merge(word, s, out);
        s.cache.insert(word.as_bytes(), &out[start..]);
    }

    fn char_id(&self, c: char, memo: &mut IdMemo) -> u32 {
        if (c as u32) < 128 {
            return self.ascii[c as usize];
        }
        // Keys with a left half of NIL are characters; pair keys never have one.
        memo.get_or_insert_with(((NIL as u64) << 32) | c as u64, || {
            let mut buf = [0u8; 4];
            self.lookup(c.encode_utf8(&mut buf)).unwrap_or(NIL)
        })
    }

    /// The token two adjacent symbols merge into, with its score.
    fn merge_of(&self, t: &str, a: Sym, b: Sym, memo: &mut IdMemo) -> Option<(f32, u32)> {
        let text = || &t[a.start as usize..(b.start + b.len) as usize];
        let merged = if a.id != NIL && b.id != NIL {
            let key = ((a.id as u64) << 32) | b.id as u64;
            memo.get_or_insert_with(key, || self.lookup(text()).unwrap_or(NIL))
        } else {
            // A character that is not a token may still start or end one.
            self.lookup(text()).unwrap_or(NIL)
        };
        (merged != NIL).then(|| (self.scores[merged as usize], merged))
    }

    /// Short words: the same merge order as the heap loop (highest score, then leftmost),
    /// found by scanning the kept candidate of every adjacent pair; only the two candidates
    /// next to a merge are looked up again.
    fn merge_small(&self, t: &str, s: &mut SpmScratch, out: &mut Vec<u32>) {
        let memo = &mut s.memo;
        s.syms.clear();
        s.syms.extend(t.char_indices().map(|(off, c)| Sym {
            start: off as u32,
            len: c.len_utf8() as u32,
            id: self.char_id(c, memo),
        }));
        let syms = &mut s.syms;
        let cands = &mut s.cands;
        cands.clear();
        cands.extend(syms.windows(2).map(|w| self.merge_of(t, w[0], w[1], memo)));
        loop {
            let mut best: Option<(usize, f32, u32)> = None;
            for (i, c) in cands.iter().enumerate() {
                if let Some((score, id)) = *c {
                    // Strictly greater: the leftmost of equal scores wins.
                    if best.is_none_or(|(_, b, _)| score > b) {
                        best = Some((i, score, id));
                    }
                }
            }
            let Some((i, _, id)) = best else { break };
            syms[i] = Sym {
                start: syms[i].start,
                len: syms[i].len + syms[i + 1].len,
                id,
            };
            syms.remove(i + 1);
            cands.remove(i);
            if i < cands.len() {
                cands[i] = self.merge_of(t, syms[i], syms[i + 1], memo);
            }
            if i > 0 {
                cands[i - 1] = self.merge_of(t, syms[i - 1], syms[i], memo);
            }
        }
        for sym in syms.iter() {
            if sym.id != NIL {
                out.push(sym.id);
            } else {
                let piece = &t.as_bytes()[sym.start as usize..(sym.start + sym.len) as usize];
                self.byte_fallback(piece, out);
            }
        }
    }

    fn byte_fallback(&self, piece: &[u8], out: &mut Vec<u32>) {
        for &b in piece {
            if let Some(id) = self.byte_token[b as usize].or(self.unk) {
                out.push(id);
            }
        }
    }

    fn merge(&self, t: &str, s: &mut SpmScratch, out: &mut Vec<u32>) {
        if t.is_empty() {
            return;
        }
        if t.len() <= SMALL_WORD || t.chars().count() <= SMALL_WORD {
            return self.merge_small(t, s, out);
        }
        s.start.clear();
        s.len.clear();
        for (off, c) in t.char_indices() {
            s.start.push(off as u32);
            s.len.push(c.len_utf8() as u32);
        }
        let n = s.start.len();
        s.next.clear();
        s.prev.clear();
        s.next
            .extend((1..=n as u32).map(|i| if i as usize == n { NIL } else { i }));
        s.prev
            .extend((0..n as u32).map(|i| if i == 0 { NIL } else { i - 1 }));
        s.heap.clear();
        for i in 0..n.saturating_sub(1) {
            self.try_bigram(t, s, i as u32, i as u32 + 1);
        }
        while let Some(bg) = s.heap.pop() {
            let (l, r) = (bg.left as usize, bg.right as usize);
            if s.len[l] == 0
                || s.len[r] == 0
                || s.len[l] + s.len[r] != bg.len
                || s.next[l] != bg.right
            {
                continue;
            }
            s.len[l] += s.len[r];
            s.len[r] = 0;
            let after = s.next[r];
            s.next[l] = after;
            if after != NIL {
                s.prev[after as usize] = bg.left;
            }
            if s.prev[l] != NIL {
                self.try_bigram(t, s, s.prev[l], bg.left);
            }
            if after != NIL {
                self.try_bigram(t, s, bg.left, after);
            }
        }
        let mut i = 0u32;
        while i != NIL {
            let (a, len) = (s.start[i as usize] as usize, s.len[i as usize] as usize);
            let piece = &t[a..a + len];
            match self.lookup(piece) {
                Some(id) => out.push(id),
                None => self.byte_fallback(piece.as_bytes(), out),
            }
            i = s.next[i as usize];
        }
    }

    fn try_bigram(&self, t: &str, s: &mut SpmScratch, left: u32, right: u32) {
        let a = s.start[left as usize] as usize;
        let len = s.len[left as usize] + s.len[right as usize];
        if let Some(id) = self.lookup(&t[a..a + len as usize]) {
            s.heap.push(Bigram {
                score: self.scores[id as usize],
                left,
                right,
                len,
            });
        }
    }
}

/// The byte of a `<0xNN>` token text.
pub fn parse_byte_token(text: &str) -> Option<u8> {
    let hex = text.strip_prefix("<0x")?.strip_suffix('>')?;
    if hex.len() != 2 {
        return None;
    }
    u8::from_str_radix(hex, 16).ok()
}
