//! The process-wide shared pool (`threads::share_pools`), in a test process of its own
//! because the switch is global: pools are separate until it is on, then every new pool
//! of the budget's size or more is one pool of the budget's size, which ends with its last handle and starts afresh.

use std::sync::atomic::{AtomicUsize, Ordering};

use kaiyuan_kernels::threads::{share_pools, shared_budget, ThreadPool};

#[test]
fn pools_are_shared_only_after_share_pools_and_keep_the_budget() {
    let a = ThreadPool::new(3);
    let b = ThreadPool::new(3);
    assert!(!a.same_pool(&b), "pools are separate by default");
    assert_eq!(shared_budget(), None);

    share_pools(2);
    assert_eq!(shared_budget(), Some(2));
    let c = ThreadPool::new(8);
    let d = ThreadPool::new(16);
    assert!(c.same_pool(&d), "with sharing on, engines get one pool");
    assert!(!c.same_pool(&a));
    assert_eq!(c.n_threads(), 2, "the budget, not what an engine asks for");
    let small = ThreadPool::new(1);
    assert!(
        !small.same_pool(&c),
        "fewer threads than the budget: a pool of its own"
    );
    assert_eq!(small.n_threads(), 1);

    // Both handles run work on it, from two threads at once.
    let count = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for pool in [&c, &d] {
            let count = &count;
            s.spawn(move || {
                for _ in 0..100 {
                    pool.run_tasks(8, |_| {
                        count.fetch_add(1, Ordering::Relaxed);
                    });
                }
            });
        }
    });
    assert_eq!(count.load(Ordering::Relaxed), 2 * 100 * 8);

    // When every handle is gone the pool ends; a later engine starts a fresh one.
    drop((c, d));
    let e = ThreadPool::new(4);
    assert_eq!(e.n_threads(), 2);
}
