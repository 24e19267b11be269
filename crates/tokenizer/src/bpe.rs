//! Byte-level BPE (`tokenizer.ggml.model = gpt2`): text is cut by the pre-tokenizer, each piece
//! is spelled as bytes, and adjacent symbols are merged by the rank of their pair in the merge
//! list (lowest rank first, leftmost first among equal ranks) until no listed pair remains —
//! the algorithm of GPT-2's encoder as implemented by llama.cpp and Hugging Face `tokenizers`.
//! Symbols are token ids from the start (each byte is the id of its one-character token), so
//! merges are lookups of id pairs.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::bytelevel::{byte_to_char_table, char_to_byte};
use crate::cache::{new_owner, WordCache};
use crate::error::{Error, Result};
use crate::hash::FastMap;
use crate::pretokenize::{Ch, PreTokenizer};

/// Id used for a byte whose token is missing from the vocabulary: it never merges and is
/// emitted as the unknown token, or dropped when the vocabulary has none — as llama.cpp and
/// Hugging Face `tokenizers` do (Falcon's vocabulary has no token for 14 ASCII control bytes
/// nor an unknown token: both references drop those characters).
const NO_TOKEN: u32 = u32::MAX;
const NIL: u32 = u32::MAX;
/// Pieces up to this many bytes use the quadratic scan (faster for short words).
const SMALL_PIECE: usize = 32;

pub struct Bpe {
    pre: PreTokenizer,
    byte_token: [u32; 256],
    /// `(left << 32) | right` -> (rank, merged id).
    merges: FastMap<u64, (u32, u32)>,
    /// Raw bytes of each normal token -> id (for pre-tokenizers that skip merges of whole tokens).
    whole: FastMap<Box<[u8]>, u32>,
    unk: Option<u32>,
    /// This tokenizer's number in the per-thread word cache.
    owner: u64,
}

/// A candidate merge in the heap: (rank, left position, left id, right id, merged id).
type Candidate = Reverse<(u32, u32, u32, u32, u32)>;

/// Reusable buffers of one encode call.
#[derive(Default)]
pub struct BpeScratch {
    chars: Vec<Ch>,
    pieces: Vec<(usize, usize)>,
    ids: Vec<u32>,
    pairs: Vec<(u32, u32)>,
    next: Vec<u32>,
    prev: Vec<u32>,
    heap: BinaryHeap<Candidate>,
    cache: WordCache,
}

/// Decodes a token's byte-level spelling to raw bytes; `None` if it uses other characters.
pub fn decode_spelling(token: &str) -> Option<Vec<u8>> {
    token.chars().map(char_to_byte).collect()
}

impl Bpe {
    pub fn new(
        pre_name: Option<&str>,
        tokens: &[String],
        normal: impl Fn(usize) -> bool,
        merges: &[String],
        unk: Option<u32>,
    ) -> Result<Self> {
        let pre_name = pre_name.ok_or_else(|| {
            Error::UnknownPreTokenizer("(missing tokenizer.ggml.pre)".to_string())
        })?;
        let pre = PreTokenizer::from_name(pre_name)?;
        let mut by_text: FastMap<&str, u32> = FastMap::default();
        for (id, t) in tokens.iter().enumerate() {
            by_text.insert(t.as_str(), id as u32);
        }
        let table = byte_to_char_table();
        let mut byte_token = [NO_TOKEN; 256];
        let mut buf = [0u8; 4];
        for b in 0..256 {
            if let Some(&id) = by_text.get(table[b].encode_utf8(&mut buf) as &str) {
                byte_token[b] = id;
            }
        }
        let mut merge_map = FastMap::default();
        merge_map.reserve(merges.len());
        let mut joined = String::new();
        for (rank, m) in merges.iter().enumerate() {
            let (left, right) = m.split_once(' ').ok_or_else(|| {
                Error::InvalidVocab(format!("merge {rank} ({m:?}) is not \"left right\""))
            })?;
            joined.clear();
            joined.push_str(left);
            joined.push_str(right);
            // A merge whose parts or result are not tokens can never apply; skip it.
            let (Some(&l), Some(&r), Some(&j)) = (
                by_text.get(left),
                by_text.get(right),
                by_text.get(joined.as_str()),
            ) else {
                continue;
            };
            merge_map
                .entry(((l as u64) << 32) | r as u64)
                .or_insert((rank as u32, j));
        }
        let mut whole = FastMap::default();
        if pre.ignores_merges() {
            for (id, t) in tokens.iter().enumerate() {
                if normal(id) {
                    if let Some(raw) = decode_spelling(t) {
                        whole.insert(raw.into_boxed_slice(), id as u32);
                    }
                }
            }
        }
        Ok(Bpe {
            pre,
            byte_token,
            merges: merge_map,
            whole,
            unk,
            owner: new_owner(),
        })
    }

    pub fn pre(&self) -> PreTokenizer {
        self.pre
    }

    #[inline]
    fn merge_of(&self, left: u32, right: u32) -> Option<(u32, u32)> {
        self.merges
            .get(&(((left as u64) << 32) | right as u64))
            .copied()
    }

    /// Appends the ids of `text` (a fragment without special tokens) to `out`.
    pub fn encode(&self, text: &str, s: &mut BpeScratch, out: &mut Vec<u32>) {
        s.cache.claim(self.owner);
        let mut pieces = std::mem::take(&mut s.pieces);
        pieces.clear();
        self.pre.split(text, &mut s.chars, &mut pieces);
        for &(a, b) in &pieces {
            self.encode_piece(&text.as_bytes()[a..b], s, out);
        }
        s.pieces = pieces;
    }

    fn encode_piece(&self, bytes: &[u8], s: &mut BpeScratch, out: &mut Vec<u32>) {
        if !self.whole.is_empty() {
            if let Some(&id) = self.whole.get(bytes) {
                out.push(id);
                return;
            }
        }
        s.ids.clear();
        s.ids
            .extend(bytes.iter().map(|&b| self.byte_token[b as usize]));
        if s.ids.len() <= SMALL_PIECE {
            self.merge_small(&mut s.ids, &mut s.pairs);
            self.emit(&s.ids, out);
        } else {
            self.merge_large(s, out);
        }
    }

    fn emit(&self, ids: &[u32], out: &mut Vec<u32>) {
        for &id in ids {
            if id != NO_TOKEN {
                out.push(id);
            } else if let Some(unk) = self.unk {
                out.push(unk);
            }
        }
    }

    /// Merge loop over a short word: the rank of every adjacent pair is kept in `pairs`
    /// (`NO_MERGE` where none), the minimum found by a scan, and only the two pairs next to a
    /// merge looked up again.
    fn merge_small(&self, ids: &mut Vec<u32>, pairs: &mut Vec<(u32, u32)>) {
        const NO_MERGE: (u32, u32) = (u32::MAX, 0);
        let pair = |l: u32, r: u32| self.merge_of(l, r).unwrap_or(NO_MERGE);
        pairs.clear();
        pairs.extend(ids.windows(2).map(|w| pair(w[0], w[1])));
        loop {
            let mut best = 0;
            for i in 1..pairs.len() {
                // Strictly smaller: the leftmost of equal ranks wins.
                if pairs[i].0 < pairs[best].0 {
                    best = i;
                }
            }
            if pairs.get(best).is_none_or(|p| p.0 == u32::MAX) {
                break;
            }
            ids[best] = pairs[best].1;
            ids.remove(best + 1);
            pairs.remove(best);
            if best < pairs.len() {
                pairs[best] = pair(ids[best], ids[best + 1]);
            }
            if best > 0 {
                pairs[best - 1] = pair(ids[best - 1], ids[best]);
            }
        }
    }

    /// Heap-driven merge loop over a linked list of symbols (long words: O(n log n)).
    fn merge_large(&self, s: &mut BpeScratch, out: &mut Vec<u32>) {
        let n = s.ids.len();
        s.next.clear();
        s.prev.clear();
        s.next
            .extend((1..=n as u32).map(|i| if i as usize == n { NIL } else { i }));
        s.prev
            .extend((0..n as u32).map(|i| if i == 0 { NIL } else { i - 1 }));
        s.heap.clear();
        for i in 0..n - 1 {
            if let Some((rank, merged)) = self.merge_of(s.ids[i], s.ids[i + 1]) {
                s.heap
                    .push(Reverse((rank, i as u32, s.ids[i], s.ids[i + 1], merged)));
            }
        }
        while let Some(Reverse((_, left, left_id, right_id, merged))) = s.heap.pop() {
            let l = left as usize;
            let right = s.next[l];
            // Stale entries: the left symbol changed or its right neighbour did.
            if s.ids[l] != left_id || right == NIL || s.ids[right as usize] != right_id {
                continue;
            }
            s.ids[l] = merged;
            let after = s.next[right as usize];
            s.next[l] = after;
            s.ids[right as usize] = NO_TOKEN; // dead
            if after != NIL {
                s.prev[after as usize] = left;
                if let Some((rank, m)) = self.merge_of(merged, s.ids[after as usize]) {
                    s.heap
                        .push(Reverse((rank, left, merged, s.ids[after as usize], m)));
                }
            }
            let before = s.prev[l];
            if before != NIL {
                if let Some((rank, m)) = self.merge_of(s.ids[before as usize], merged) {
                    s.heap
                        .push(Reverse((rank, before, s.ids[before as usize], merged, m)));
                }
            }
        }
        let mut i = 0u32;
        while i != NIL {
            self.emit(&s.ids[i as usize..i as usize + 1], out);
            i = s.next[i as usize];
        }
    }
}
