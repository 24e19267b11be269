//! Continuous batching: which tokens of which sequences run in the next forward pass.
//!
//! As in vLLM v1, a sequence has no prefill or decode phase, only tokens and a count of
//! those already computed; each step fills one token budget. Sequences that need a single
//! token (decoding) go first, so a long prompt never stalls running streams; prompts then
//! take the rest of the budget in chunks; waiting requests are admitted last, oldest first,
//! after a prefix-cache lookup. When a sequence needs KV blocks and none are left, the
//! newest sequence that arrived after it is preempted (even one already planned for this
//! step, which gives its chunk back): its blocks are released (full ones stay in the
//! prefix cache) and it waits again at the front of the queue, to be recomputed. A sequence
//! never takes blocks from an older one: if no newer one is left, it is preempted itself.
//! So the oldest sequence always progresses (the pool holds at least one full context).

use std::collections::VecDeque;

use kaiyuan_model::{BlockId, KvCache, BLOCK_TOKENS};

use crate::block_pool::{chain_hash, BlockPool, ChainHash};
use crate::request::RequestId;

/// One sequence as the scheduler tracks it.
pub(crate) struct SeqState {
    pub id: RequestId,
    /// Prompt followed by the generated tokens.
    pub tokens: Vec<u32>,
    /// Tokens whose KV is in `blocks`.
    pub num_computed: usize,
    /// Block table: block `i` holds positions `16·i..16·(i+1)`.
    pub blocks: Vec<BlockId>,
    /// Leading blocks registered in (or taken from) the prefix cache.
    hashed_blocks: usize,
    /// Chain hash after `hashed_blocks` blocks.
    chain: ChainHash,
    /// Prompt tokens found in the prefix cache at first admission (`None` until admitted).
    pub cached_tokens: Option<usize>,
    /// Arrival order (set by [`Scheduler::add`]); kept through preemption. Preemption only
    /// takes blocks from sequences that arrived later than the one that needs them.
    arrival: u64,
}

impl SeqState {
    pub fn new(id: RequestId, prompt: Vec<u32>) -> SeqState {
        SeqState {
            id,
            tokens: prompt,
            num_computed: 0,
            blocks: Vec::new(),
            hashed_blocks: 0,
            chain: ChainHash::default(),
            cached_tokens: None,
            arrival: 0,
        }
    }

    fn remaining(&self) -> usize {
        self.tokens.len() - self.num_computed
    }
}

/// Tokens `num_computed..num_computed + len` of running sequence `seq` run this step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Chunk {
    /// Index into [`Scheduler::running`].
    pub seq: usize,
    pub len: usize,
    /// The chunk ends at the sequence's last token: its logits give the next token.
    pub wants_logits: bool,
}

/// The outcome of [`Scheduler::schedule`].
#[derive(Debug, Default)]
pub(crate) struct StepPlan {
    pub chunks: Vec<Chunk>,
    /// Requests that entered the running batch for the first time, with their cached
    /// prompt tokens.
    pub admitted: Vec<(RequestId, usize)>,
    /// Requests sent back to the queue for lack of KV blocks.
    pub preempted: Vec<RequestId>,
}

pub(crate) struct Scheduler {
    pool: BlockPool,
    waiting: VecDeque<SeqState>,
    running: Vec<SeqState>,
    max_seqs: usize,
    max_batch_tokens: usize,
    /// The next [`SeqState::arrival`].
    arrivals: u64,
}

impl Scheduler {
    pub fn new(num_blocks: usize, max_seqs: usize, max_batch_tokens: usize) -> Scheduler {
        Scheduler {
            pool: BlockPool::new(num_blocks),
            waiting: VecDeque::new(),
            running: Vec::new(),
            max_seqs: max_seqs.max(1),
            max_batch_tokens: max_batch_tokens.max(1),
            arrivals: 0,
        }
    }

    /// Queues a new sequence behind every one added before it.
    pub fn add(&mut self, mut seq: SeqState) {
        seq.arrival = self.arrivals;
        self.arrivals += 1;
        self.waiting.push_back(seq);
    }

    pub fn running(&self) -> &[SeqState] {
        &self.running
    }

    pub fn running_mut(&mut self) -> &mut [SeqState] {
        &mut self.running
    }

    #[cfg(test)]
    pub fn num_waiting(&self) -> usize {
        self.waiting.len()
    }

    pub fn is_idle(&self) -> bool {
        self.running.is_empty() && self.waiting.is_empty()
    }

    pub fn pool(&self) -> &BlockPool {
        &self.pool
    }

    /// The request at the head of the queue.
    pub fn first_waiting(&self) -> Option<RequestId> {
        self.waiting.front().map(|s| s.id)
    }

    /// Whether `id` is waiting (not yet or no longer running).
    #[cfg(test)]
    pub fn is_waiting(&self, id: RequestId) -> bool {
        self.waiting.iter().any(|s| s.id == id)
    }

    /// Removes a sequence wherever it is and frees its blocks.
    pub fn remove(&mut self, id: RequestId) -> Option<SeqState> {
        let seq = if let Some(i) = self.running.iter().position(|s| s.id == id) {
            self.running.remove(i)
        } else {
            let i = self.waiting.iter().position(|s| s.id == id)?;
            self.waiting.remove(i)?
        };
        release_blocks(&mut self.pool, &seq.blocks);
        Some(seq)
    }

    /// Plans the next step.
    pub fn schedule(&mut self) -> StepPlan {
        let mut plan = StepPlan::default();
        let mut budget = self.max_batch_tokens;
        let mut planned = vec![false; self.running.len()];
        let mut preempted = vec![false; self.running.len()];
        for decoding_pass in [true, false] {
            for i in 0..self.running.len() {
                if budget == 0 {
                    break;
                }
                if planned[i] || preempted[i] || (self.running[i].remaining() == 1) != decoding_pass
                {
                    continue;
                }
                let len = self.running[i].remaining().min(budget);
                let positions = self.running[i].num_computed + len;
                // Make room by preempting the newest sequences that arrived after this one
                // (a planned one gives its chunk back); with none left, this one waits.
                let fits = loop {
                    if self.grow(i, positions) {
                        break true;
                    }
                    let victim = self.newest_after(i, &preempted).unwrap_or(i);
                    if planned[victim] {
                        planned[victim] = false;
                        if let Some(k) = plan.chunks.iter().position(|c| c.seq == victim) {
                            budget += plan.chunks.remove(k).len;
                        }
                    }
                    self.release_all(victim);
                    preempted[victim] = true;
                    plan.preempted.push(self.running[victim].id);
                    if victim == i {
                        break false;
                    }
                };
                if fits {
                    planned[i] = true;
                    budget -= len;
                    plan.chunks.push(Chunk {
                        seq: i,
                        len,
                        wants_logits: positions == self.running[i].tokens.len(),
                    });
                }
            }
        }
        let any_preempted = !plan.preempted.is_empty();
        self.requeue_preempted(&preempted, &mut plan.chunks);
        if !any_preempted {
            self.admit(&mut budget, &mut plan);
        }
        plan
    }

    /// Moves preempted sequences to the front of the queue (keeping their order) and renumbers
    /// the chunks' sequence indices.
    fn requeue_preempted(&mut self, preempted: &[bool], chunks: &mut [Chunk]) {
        if !preempted.iter().any(|&p| p) {
            return;
        }
        let mut new_index = vec![usize::MAX; self.running.len()];
        let mut kept = Vec::with_capacity(self.running.len());
        let mut back = Vec::new();
        for (i, seq) in std::mem::take(&mut self.running).into_iter().enumerate() {
            if preempted[i] {
                back.push(seq);
            } else {
                new_index[i] = kept.len();
                kept.push(seq);
            }
        }
        self.running = kept;
        for seq in back.into_iter().rev() {
            self.waiting.push_front(seq);
        }
        for c in chunks {
            c.seq = new_index[c.seq];
        }
    }

    /// Admits waiting sequences while budget, sequence slots and blocks allow.
    fn admit(&mut self, budget: &mut usize, plan: &mut StepPlan) {
        while *budget > 0 && self.running.len() < self.max_seqs {
            let Some(mut seq) = self.waiting.pop_front() else {
                break;
            };
            self.match_prefix(&mut seq);
            let len = seq.remaining().min(*budget);
            let positions = seq.num_computed + len;
            if !grow_blocks(&mut self.pool, &mut seq, positions) {
                // Not enough free blocks: undo and wait for running sequences to finish.
                release_blocks(&mut self.pool, &seq.blocks);
                seq.blocks.clear();
                seq.num_computed = 0;
                seq.hashed_blocks = 0;
                seq.chain = ChainHash::default();
                self.waiting.push_front(seq);
                break;
            }
            if seq.cached_tokens.is_none() {
                seq.cached_tokens = Some(seq.num_computed);
                plan.admitted.push((seq.id, seq.num_computed));
            }
            *budget -= len;
            plan.chunks.push(Chunk {
                seq: self.running.len(),
                len,
                wants_logits: positions == seq.tokens.len(),
            });
            self.running.push(seq);
        }
    }

    /// Takes the longest cached run of full blocks of `seq`'s tokens, leaving at least its
    /// last token to compute (its logits are needed).
    fn match_prefix(&mut self, seq: &mut SeqState) {
        debug_assert!(seq.blocks.is_empty());
        let max_blocks = (seq.tokens.len() - 1) / BLOCK_TOKENS;
        let mut chain = ChainHash::default();
        for b in 0..max_blocks {
            let toks = &seq.tokens[b * BLOCK_TOKENS..(b + 1) * BLOCK_TOKENS];
            match self.pool.lookup(chain, toks) {
                Some(block) => {
                    seq.blocks.push(block);
                    chain = chain_hash(chain, toks);
                }
                None => break,
            }
        }
        seq.hashed_blocks = seq.blocks.len();
        seq.chain = chain;
        seq.num_computed = seq.blocks.len() * BLOCK_TOKENS;
    }

    /// The running sequence that arrived last, if it arrived after sequence `i`, skipping
    /// those already preempted.
    fn newest_after(&self, i: usize, preempted: &[bool]) -> Option<usize> {
        let arrival = self.running[i].arrival;
        (0..self.running.len())
            .filter(|&j| !preempted[j] && self.running[j].arrival > arrival)
            .max_by_key(|&j| self.running[j].arrival)
    }

    fn grow(&mut self, i: usize, positions: usize) -> bool {
        grow_blocks(&mut self.pool, &mut self.running[i], positions)
    }

    fn release_all(&mut self, i: usize) {
        let seq = &mut self.running[i];
        release_blocks(&mut self.pool, &seq.blocks);
        seq.blocks.clear();
        seq.num_computed = 0;
        seq.hashed_blocks = 0;
        seq.chain = ChainHash::default();
    }

    /// Records that the planned chunks ran: advances each sequence and registers its newly
    /// completed blocks in the prefix cache.
    pub fn complete(&mut self, chunks: &[Chunk]) {
        for c in chunks {
            let seq = &mut self.running[c.seq];
            seq.num_computed += c.len;
            while (seq.hashed_blocks + 1) * BLOCK_TOKENS <= seq.num_computed {
                let b = seq.hashed_blocks;
                let toks = &seq.tokens[b * BLOCK_TOKENS..(b + 1) * BLOCK_TOKENS];
                self.pool.register(seq.blocks[b], seq.chain, toks);
                seq.chain = chain_hash(seq.chain, toks);
                seq.hashed_blocks += 1;
            }
        }
    }
}

/// Releases a sequence's block table tail first, as vLLM does: the LRU queue then evicts a
/// cached chain from its end, so what stays cached is always a reachable prefix. (Head
/// first, eviction would take block 0 first and strand the rest of the chain: cached, in
/// memory, and unreachable, since a lookup walks the chain from its start.)
fn release_blocks(pool: &mut BlockPool, blocks: &[BlockId]) {
    for &b in blocks.iter().rev() {
        pool.release(b);
    }
}

/// Allocates blocks until `seq` covers `positions`; false (keeping what it got) if the pool
/// runs dry.
fn grow_blocks(pool: &mut BlockPool, seq: &mut SeqState, positions: usize) -> bool {
    while seq.blocks.len() < KvCache::blocks_for(positions) {
        match pool.allocate() {
            Some(b) => seq.blocks.push(b),
            None => return false,
        }
    }
    true
}

#[cfg(test)]
#[path = "scheduler_tests.rs"]
mod tests;
