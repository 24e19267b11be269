//! The KV block pool as the scheduler sees it: which blocks are free, who holds each one
//! (reference counts, so sequences can share cached prefix blocks), and the prefix cache.
//!
//! Prefix caching follows vLLM v1's design: every *full* block of a sequence gets a key that
//! chains its tokens to the key of the block before it, so equal keys mean equal token
//! prefixes and therefore equal KV contents. Blocks stay cached after their last user
//! releases them, in an LRU queue; allocation takes never-cached free blocks first, then
//! evicts the least recently released cached block. The scheduler releases a sequence's
//! blocks tail first, so a cached chain is evicted from its end and what remains of it is
//! always a prefix that a lookup can reach.

use std::collections::{BTreeMap, HashMap};
use std::hash::{DefaultHasher, Hash, Hasher};

use kaiyuan_model::{BlockId, BLOCK_TOKENS};

/// The chain hash of a block's prefix: 128 bits (two independent 64-bit SipHash runs), so
/// that an accidental collision — which would silently reuse the wrong KV — is out of reach.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct ChainHash(u64, u64);

/// A full block's cache key: its parent's chain hash and its own tokens, compared exactly.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct BlockKey {
    parent: ChainHash,
    tokens: [u32; BLOCK_TOKENS],
}

/// Fixed SipHash keys: hashes must agree across the whole life of the pool (they never
/// leave the process).
fn hasher(seed: u64) -> DefaultHasher {
    let mut h = DefaultHasher::new();
    seed.hash(&mut h);
    h
}

impl BlockKey {
    fn chain(&self) -> ChainHash {
        let mut a = hasher(0x6b61_6979_7561_6e31);
        let mut b = hasher(0x6b61_6979_7561_6e32);
        self.hash(&mut a);
        self.hash(&mut b);
        ChainHash(a.finish(), b.finish())
    }
}

/// The chain hash of the block holding `tokens` (exactly [`BLOCK_TOKENS`]) after `parent`.
pub(crate) fn chain_hash(parent: ChainHash, tokens: &[u32]) -> ChainHash {
    key(parent, tokens).chain()
}

fn key(parent: ChainHash, tokens: &[u32]) -> BlockKey {
    let mut t = [0u32; BLOCK_TOKENS];
    t.copy_from_slice(tokens);
    BlockKey { parent, tokens: t }
}

pub(crate) struct BlockPool {
    refcount: Vec<u32>,
    /// The cache key of a block registered in `cached` (it holds that prefix's KV).
    key_of: Vec<Option<BlockKey>>,
    cached: HashMap<BlockKey, BlockId>,
    /// Free blocks holding nothing worth keeping.
    free: Vec<BlockId>,
    /// Free blocks that hold a cached prefix, by release time (oldest first).
    lru: BTreeMap<u64, BlockId>,
    /// A block's position in `lru`, while it is there.
    lru_tick: Vec<Option<u64>>,
    tick: u64,
}

impl BlockPool {
    pub fn new(num_blocks: usize) -> BlockPool {
        BlockPool {
            refcount: vec![0; num_blocks],
            key_of: vec![None; num_blocks],
            cached: HashMap::new(),
            // Reversed so that blocks are handed out from 0 upwards.
            free: (0..num_blocks as u32).rev().map(BlockId).collect(),
            lru: BTreeMap::new(),
            lru_tick: vec![None; num_blocks],
            tick: 0,
        }
    }

    pub fn num_blocks(&self) -> usize {
        self.refcount.len()
    }

    /// Blocks that can be handed out now (free, or cached but unused).
    pub fn num_available(&self) -> usize {
        self.free.len() + self.lru.len()
    }

    /// Free blocks still holding a cached prefix.
    pub fn num_cached_free(&self) -> usize {
        self.lru.len()
    }

    /// Blocks held by at least one sequence.
    pub fn num_used(&self) -> usize {
        self.num_blocks() - self.num_available()
    }

    /// A block for new KV, with one reference; evicts the least recently used cached block
    /// when no plain free block is left. `None` when every block is in use.
    pub fn allocate(&mut self) -> Option<BlockId> {
        let block = match self.free.pop() {
            Some(b) => b,
            None => {
                let (_, b) = self.lru.pop_first()?;
                self.lru_tick[b.index()] = None;
                if let Some(k) = self.key_of[b.index()].take() {
                    self.cached.remove(&k);
                }
                b
            }
        };
        debug_assert_eq!(self.refcount[block.index()], 0);
        self.refcount[block.index()] = 1;
        Some(block)
    }

    /// The cached block holding the full block `tokens` after `parent`, with a new
    /// reference taken on it.
    pub fn lookup(&mut self, parent: ChainHash, tokens: &[u32]) -> Option<BlockId> {
        let block = *self.cached.get(&key(parent, tokens))?;
        let i = block.index();
        if self.refcount[i] == 0 {
            if let Some(t) = self.lru_tick[i].take() {
                self.lru.remove(&t);
            }
        }
        self.refcount[i] += 1;
        Some(block)
    }

    /// Records that `block` now holds the full block `tokens` after `parent`. A no-op if
    /// that prefix is already cached in another block (this one then stays private).
    pub fn register(&mut self, block: BlockId, parent: ChainHash, tokens: &[u32]) {
        let k = key(parent, tokens);
        if self.cached.contains_key(&k) || self.key_of[block.index()].is_some() {
            return;
        }
        self.cached.insert(k.clone(), block);
        self.key_of[block.index()] = Some(k);
    }

    /// Drops one reference; a block nobody holds becomes free (kept in the LRU cache if it
    /// holds a registered prefix).
    pub fn release(&mut self, block: BlockId) {
        let i = block.index();
        debug_assert!(self.refcount[i] > 0, "release of a free block");
        self.refcount[i] = self.refcount[i].saturating_sub(1);
        if self.refcount[i] > 0 {
            return;
        }
        if self.key_of[i].is_some() {
            self.tick += 1;
            self.lru.insert(self.tick, block);
            self.lru_tick[i] = Some(self.tick);
        } else {
            self.free.push(block);
        }
    }

    #[cfg(test)]
    pub fn refcount(&self, block: BlockId) -> u32 {
        self.refcount[block.index()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(base: u32) -> Vec<u32> {
        (base..base + BLOCK_TOKENS as u32).collect()
    }

    #[test]
    fn allocates_every_block_once_then_runs_out() {
        let mut p = BlockPool::new(3);
        let got: Vec<_> = (0..3).map(|_| p.allocate().unwrap()).collect();
        assert_eq!(got, vec![BlockId(0), BlockId(1), BlockId(2)]);
        assert_eq!(p.allocate(), None);
        assert_eq!(p.num_used(), 3);
        p.release(BlockId(1));
        assert_eq!(p.allocate(), Some(BlockId(1)));
    }

    #[test]
    fn registered_block_survives_release_and_is_found_again() {
        let mut p = BlockPool::new(2);
        let b = p.allocate().unwrap();
        let root = ChainHash::default();
        p.register(b, root, &toks(0));
        p.release(b);
        assert_eq!(p.num_cached_free(), 1);
        assert_eq!(p.num_available(), 2);
        assert_eq!(p.lookup(root, &toks(0)), Some(b));
        assert_eq!(p.refcount(b), 1);
        assert_eq!(p.num_cached_free(), 0);
        // Different tokens or a different parent do not match.
        assert_eq!(p.lookup(root, &toks(1)), None);
        assert_eq!(p.lookup(chain_hash(root, &toks(0)), &toks(0)), None);
    }

    #[test]
    fn shared_block_is_freed_after_its_last_user() {
        let mut p = BlockPool::new(1);
        let b = p.allocate().unwrap();
        let root = ChainHash::default();
        p.register(b, root, &toks(5));
        assert_eq!(p.lookup(root, &toks(5)), Some(b));
        assert_eq!(p.refcount(b), 2);
        p.release(b);
        assert_eq!(p.num_available(), 0);
        p.release(b);
        assert_eq!(p.num_available(), 1);
    }

    #[test]
    fn eviction_prefers_plain_free_blocks_then_oldest_cached() {
        let mut p = BlockPool::new(3);
        let root = ChainHash::default();
        let a = p.allocate().unwrap();
        let b = p.allocate().unwrap();
        p.register(a, root, &toks(0));
        p.register(b, root, &toks(100));
        p.release(a); // cached, older
        p.release(b); // cached, newer
                      // The never-used block 2 goes first.
        assert_eq!(p.allocate(), Some(BlockId(2)));
        // Then the least recently released cached block, whose cache entry disappears.
        assert_eq!(p.allocate(), Some(a));
        assert_eq!(p.lookup(root, &toks(0)), None);
        assert_eq!(p.lookup(root, &toks(100)), Some(b));
    }

    #[test]
    fn duplicate_registration_keeps_the_first_block() {
        let mut p = BlockPool::new(2);
        let root = ChainHash::default();
        let a = p.allocate().unwrap();
        let b = p.allocate().unwrap();
        p.register(a, root, &toks(0));
        p.register(b, root, &toks(0));
        p.release(b);
        // b was not registered, so it is plainly free; a is still the cached one.
        assert_eq!(p.num_cached_free(), 0);
        assert_eq!(p.lookup(root, &toks(0)), Some(a));
    }

    #[test]
    fn chain_hash_depends_on_parent_and_tokens() {
        let root = ChainHash::default();
        let h1 = chain_hash(root, &toks(0));
        assert_eq!(h1, chain_hash(root, &toks(0)));
        assert_ne!(h1, chain_hash(root, &toks(1)));
        assert_ne!(chain_hash(h1, &toks(0)), h1);
    }
}
