//! One worker pool for the whole process: the thread budget that engines share when a
//! server runs several models (`kaiyuan serve --models`).
//!
//! Each engine creates its pool with [`ThreadPool::new`](super::ThreadPool::new). Once
//! [`share_pools`] has been called, a request for the budget's size or more returns a
//! handle to one pool of the budget's size instead of a new pool per engine, so two loaded
//! models never run two pools as big as the machine. A request for fewer threads (a model
//! given its own `threads`) still gets a small pool of its own: an explicit choice. Their operations take turns on the pool (its dispatch lock serialises
//! callers), which keeps the number of busy threads at the budget. The pool lives while a
//! handle does: when the last engine is dropped its threads stop, and the next engine
//! starts a fresh one.

use std::sync::{Arc, Mutex, Weak};

use super::{lock_ignoring_poison, PoolCore};

struct Sharing {
    /// Threads of the shared pool; `None`: every pool is its own.
    budget: Option<usize>,
    pool: Weak<PoolCore>,
}

static SHARING: Mutex<Sharing> = Mutex::new(Sharing {
    budget: None,
    pool: Weak::new(),
});

/// From now on every [`ThreadPool::new`](super::ThreadPool::new) in this process that asks
/// for `threads` threads or more returns a handle to one pool of `threads` threads (at
/// least 1). A pool already shared keeps its size until its last handle is dropped.
pub fn share_pools(threads: usize) {
    lock_ignoring_poison(&SHARING).budget = Some(threads.max(1));
}

/// The shared pool's size, if pools are shared.
pub fn shared_budget() -> Option<usize> {
    lock_ignoring_poison(&SHARING).budget
}

/// The shared pool (started now if no handle is alive), or `None` when pools are not
/// shared or `wanted` is below the budget.
pub(super) fn shared_pool(wanted: usize) -> Option<Arc<PoolCore>> {
    let mut sharing = lock_ignoring_poison(&SHARING);
    let budget = sharing.budget.filter(|&b| wanted >= b)?;
    if let Some(pool) = sharing.pool.upgrade() {
        return Some(pool);
    }
    let pool = Arc::new(PoolCore::new(budget));
    sharing.pool = Arc::downgrade(&pool);
    Some(pool)
}
