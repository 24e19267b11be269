//! [`Session`]: one sequence over a private KV cache whose blocks are used in order —
//! the simple driver for tests, `run`, and perplexity.

use crate::decoder::{BatchSeq, LogitsWanted, Model, Scratch};
use crate::error::ModelError;
use crate::kv::{BlockId, KvCache};
use kaiyuan_kernels::threads::ThreadPool;

pub struct Session<'m> {
    model: &'m Model,
    kv: KvCache,
    table: Vec<BlockId>,
    scratch: Scratch,
    position: usize,
    max_ctx: usize,
}

impl<'m> Session<'m> {
    /// A session holding at most `max_ctx` positions.
    ///
    /// # Panics
    /// If its KV cache cannot be allocated; [`Self::try_new`] returns that as an error.
    pub fn new(model: &'m Model, max_ctx: usize) -> Session<'m> {
        Self::try_new(model, max_ctx).unwrap_or_else(|e| panic!("{e}"))
    }

    /// A session holding at most `max_ctx` positions, or an error if its KV cache cannot
    /// be allocated (a context too large for memory).
    pub fn try_new(model: &'m Model, max_ctx: usize) -> Result<Session<'m>, ModelError> {
        let blocks = KvCache::blocks_for(max_ctx);
        Ok(Session {
            model,
            kv: KvCache::try_new(model.config(), blocks)?,
            table: (0..blocks as u32).map(BlockId).collect(),
            scratch: Scratch::new(),
            position: 0,
            max_ctx,
        })
    }

    /// Appends `tokens` and returns logits: `[tokens.len(), vocab]` if `all_logits`,
    /// else `[1, vocab]` for the last token (empty for no tokens).
    pub fn eval(
        &mut self,
        pool: &ThreadPool,
        tokens: &[u32],
        all_logits: bool,
    ) -> Result<Vec<f32>, ModelError> {
        let needed = self.position + tokens.len();
        if needed > self.max_ctx {
            return Err(ModelError::ContextOverflow {
                needed,
                capacity: self.max_ctx,
            });
        }
        let seq = BatchSeq {
            tokens,
            start_pos: self.position,
            block_table: &self.table,
            want_logits: if all_logits {
                LogitsWanted::All
            } else {
                LogitsWanted::Last
            },
        };
        let logits = self
            .model
            .forward(pool, &mut self.kv, &[seq], &mut self.scratch)?;
        self.position = needed;
        Ok(logits.into_vec())
    }

    /// Tokens evaluated so far.
    pub fn position(&self) -> usize {
        self.position
    }

    pub fn max_ctx(&self) -> usize {
        self.max_ctx
    }

    /// Forgets every token (the cache is overwritten by later calls).
    pub fn reset(&mut self) {
        self.position = 0;
    }

    /// Drops tokens after `position` (e.g. to re-evaluate from there).
    pub fn truncate(&mut self, position: usize) {
        self.position = self.position.min(position);
    }
}
