//! A per-thread cache of the ids of recently tokenized words (pre-tokenizer pieces, or
//! whitespace-delimited SentencePiece words). Natural text repeats words constantly, and a
//! word's ids never depend on its context, so cached ids are exact. Each tokenizer has a unique
//! owner number; a thread's cache is emptied when another tokenizer starts using it.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::hash::FastMap;

/// Entries kept before the cache is emptied and refilled.
const CAPACITY: usize = 1 << 15;
/// Longer words are not cached.
pub const MAX_WORD: usize = 48;

static NEXT_OWNER: AtomicU64 = AtomicU64::new(1);

/// A fresh owner number for a new tokenizer (never 0, the empty cache's owner).
pub fn new_owner() -> u64 {
    NEXT_OWNER.fetch_add(1, Ordering::Relaxed)
}

#[derive(Default)]
pub struct WordCache {
    owner: u64,
    map: FastMap<Box<[u8]>, Box<[u32]>>,
}

impl WordCache {
    /// Makes the cache serve `owner`, emptying it if it served another tokenizer.
    pub fn claim(&mut self, owner: u64) {
        if self.owner != owner {
            self.map.clear();
            self.owner = owner;
        }
    }

    #[inline]
    pub fn get(&self, word: &[u8]) -> Option<&[u32]> {
        if word.len() > MAX_WORD {
            return None;
        }
        self.map.get(word).map(|ids| &ids[..])
    }

    pub fn insert(&mut self, word: &[u8], ids: &[u32]) {
        if word.len() > MAX_WORD {
            return;
        }
        if self.map.len() >= CAPACITY {
            self.map.clear();
        }
        self.map.insert(word.into(), ids.into());
    }
}

/// Capacity of an [`IdMemo`] before it is emptied.
const MEMO_CAPACITY: usize = 1 << 16;

/// A per-thread memo of small integer lookups (a pair of token ids -> the token their texts
/// concatenate to, or `u32::MAX` for none), so that a string lookup in the big vocabulary table
/// (two dependent cache misses) becomes a lookup in a small, hot table. Exact: it stores what the
/// vocabulary says.
#[derive(Default)]
pub struct IdMemo {
    owner: u64,
    map: FastMap<u64, u32>,
}

impl IdMemo {
    pub fn claim(&mut self, owner: u64) {
        if self.owner != owner {
            self.map.clear();
            self.owner = owner;
        }
    }

    #[inline]
    pub fn get_or_insert_with(&mut self, key: u64, compute: impl FnOnce() -> u32) -> u32 {
        if let Some(&v) = self.map.get(&key) {
            return v;
        }
        let v = compute();
        if self.map.len() >= MEMO_CAPACITY {
            self.map.clear();
        }
        self.map.insert(key, v);
        v
    }
}
