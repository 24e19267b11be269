//! Paged key/value cache: a fixed pool of blocks of [`BLOCK_TOKENS`] positions, each
//! holding every layer's keys and values for those positions in f16 (IEEE binary16).
//! Sequences own blocks through block tables managed by the caller (the engine's block
//! allocator, or [`crate::Session`]); the model only reads and writes the blocks it is
//! given. Paging as in Kwon et al., "Efficient Memory Management for Large Language Model
//! Serving with PagedAttention" (vLLM, 2023).
//!
//! Layout per layer: `[block][kv_head][slot][head_dim]`, so one head's keys of one block
//! are contiguous (`BLOCK_TOKENS × head_dim` values), and so are all the heads of a block.
//! For multi-head latent attention the values are the keys themselves (each cached row is
//! one token's latent, read as both; see `mla.rs`), so only keys are stored.
//! Keys and values each sit in one zeroed allocation whose pages the OS commits as they
//! are first written, so a pool sized for many contexts costs memory only as it fills.
//! (2 MiB huge pages were tried: decode at depth 1024 ran ~8% faster, but the kernel
//! committed and zeroed the pool 2 MiB at a time, which took `kaiyuan run` from 0.16 to
//! 0.48 s before its first token and added ~48 MB resident in the serving benchmark.)

use crate::config::ModelConfig;
use crate::error::ModelError;
use kaiyuan_kernels::half::f32_to_f16;

/// Positions per KV block.
pub const BLOCK_TOKENS: usize = 16;

/// Index of a block in a [`KvCache`] pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlockId(pub u32);

impl BlockId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// The KV block pool of one model.
pub struct KvCache {
    num_blocks: usize,
    num_layers: usize,
    num_kv_heads: usize,
    head_dim: usize,
    /// Values of one layer (`num_blocks · num_kv_heads · BLOCK_TOKENS · head_dim`).
    per_layer: usize,
    /// `[layer][block][kv_head][slot][head_dim]` f16 bits.
    keys: Vec<u16>,
    /// As `keys`; empty when the values are the keys.
    values: Vec<u16>,
    values_are_keys: bool,
}

impl KvCache {
    /// A pool of `num_blocks` blocks for `config`'s geometry (zero-filled; pages are
    /// committed as they are first written).
    ///
    /// # Panics
    /// If the OS refuses the memory, as a `Vec` of that size would abort; see
    /// [`Self::try_new`] for sizes that come from a user.
    pub fn new(config: &ModelConfig, num_blocks: usize) -> KvCache {
        Self::try_new(config, num_blocks).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Self::new`], or an error naming the pool's size if it overflows or the allocator
    /// refuses the memory.
    pub fn try_new(config: &ModelConfig, num_blocks: usize) -> Result<KvCache, ModelError> {
        let fail = |reason: String| ModelError::KvCacheAlloc {
            blocks: num_blocks,
            positions: num_blocks.saturating_mul(BLOCK_TOKENS),
            reason,
        };
        let per_layer = [config.num_kv_heads, BLOCK_TOKENS, config.head_dim]
            .into_iter()
            .try_fold(num_blocks, usize::checked_mul);
        let len = per_layer.and_then(|n| n.checked_mul(config.num_layers));
        let (Some(per_layer), Some(len)) = (per_layer, len) else {
            return Err(fail("its size overflows".into()));
        };
        let values_are_keys = config.mla.is_some();
        let buffer = |len: usize| {
            zeroed_u16(len).ok_or_else(|| fail(format!("the allocator refused {len} f16 values")))
        };
        Ok(KvCache {
            num_blocks,
            num_layers: config.num_layers,
            num_kv_heads: config.num_kv_heads,
            head_dim: config.head_dim,
            per_layer,
            keys: buffer(len)?,
            values: buffer(if values_are_keys { 0 } else { len })?,
            values_are_keys,
        })
    }

    /// Blocks needed to hold `positions` positions.
    pub fn blocks_for(positions: usize) -> usize {
        positions.div_ceil(BLOCK_TOKENS)
    }

    /// Bytes a pool of `num_blocks` blocks for `config`'s geometry holds once every page is
    /// written (keys and values, f16; keys only for MLA, whose values are the keys), without
    /// allocating it: what a memory budget must allow for the pool at its fullest. Saturates
    /// instead of overflowing.
    pub fn pool_bytes(config: &ModelConfig, num_blocks: usize) -> u64 {
        let buffers: u64 = if config.mla.is_some() { 1 } else { 2 };
        [
            config.num_layers,
            config.num_kv_heads,
            BLOCK_TOKENS,
            config.head_dim,
        ]
        .into_iter()
        .fold(num_blocks as u64, |n, d| n.saturating_mul(d as u64))
        .saturating_mul(buffers * 2)
    }

    pub fn num_blocks(&self) -> usize {
        self.num_blocks
    }

    /// Bytes of KV storage held.
    pub fn bytes(&self) -> usize {
        (self.keys.len() + self.values.len()) * 2
    }

    pub(crate) fn matches(&self, config: &ModelConfig) -> bool {
        self.num_layers == config.num_layers
            && self.num_kv_heads == config.num_kv_heads
            && self.head_dim == config.head_dim
            && self.values_are_keys == config.mla.is_some()
    }

    fn head_offset(&self, layer: usize, block: BlockId, head: usize) -> usize {
        layer * self.per_layer
            + (block.index() * self.num_kv_heads + head) * BLOCK_TOKENS * self.head_dim
    }

    /// Stores position `slot` of `block` for `layer`: `k` and `v` are `[kv_heads, head_dim]`
    /// (`v` is ignored when the values are the keys).
    pub(crate) fn write(
        &mut self,
        layer: usize,
        block: BlockId,
        slot: usize,
        k: &[f32],
        v: &[f32],
    ) {
        let d = self.head_dim;
        for head in 0..self.num_kv_heads {
            let at = self.head_offset(layer, block, head) + slot * d;
            let src = head * d..(head + 1) * d;
            let keys = &mut self.keys[at..at + d];
            for (dst, &x) in keys.iter_mut().zip(&k[src.clone()]) {
                *dst = f32_to_f16(x);
            }
            if self.values_are_keys {
                continue;
            }
            let values = &mut self.values[at..at + d];
            for (dst, &x) in values.iter_mut().zip(&v[src]) {
                *dst = f32_to_f16(x);
            }
        }
    }

    /// Keys of `block` for `layer`, KV head `head`: `BLOCK_TOKENS × head_dim` f16 bits,
    /// slot-major.
    pub(crate) fn key_head(&self, layer: usize, block: BlockId, head: usize) -> &[u16] {
        let at = self.head_offset(layer, block, head);
        &self.keys[at..at + BLOCK_TOKENS * self.head_dim]
    }

    /// Values of `block` for `layer`, KV head `head`, laid out as in [`Self::key_head`].
    pub(crate) fn value_head(&self, layer: usize, block: BlockId, head: usize) -> &[u16] {
        let at = self.head_offset(layer, block, head);
        let values = if self.values_are_keys {
            &self.keys
        } else {
            &self.values
        };
        &values[at..at + BLOCK_TOKENS * self.head_dim]
    }
}

/// `len` zeros, or `None` if the allocator refuses them (where `vec![0; len]` would abort
/// the process). Like `vec!`, this asks for zeroed memory rather than writing zeros, so a
/// large buffer's pages are committed only when written.
fn zeroed_u16(len: usize) -> Option<Vec<u16>> {
    let layout = std::alloc::Layout::array::<u16>(len).ok()?;
    if layout.size() == 0 {
        return Some(Vec::new());
    }
    // SAFETY: the layout has a non-zero size.
    let ptr = unsafe { std::alloc::alloc_zeroed(layout) } as *mut u16;
    if ptr.is_null() {
        return None;
    }
    // SAFETY: `ptr` comes from the global allocator with the layout of `[u16; len]` (the
    // alignment and capacity of a `Vec<u16>` of capacity `len`), and all `len` values are
    // initialised: zero bits are a valid u16.
    Some(unsafe { Vec::from_raw_parts(ptr, len, len) })
}
