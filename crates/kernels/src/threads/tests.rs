//! Tests of the worker pool: every thread runs every job exactly once, results are
//! visible to the caller, panics propagate, nesting and concurrent callers work, and
//! idle pools drop cleanly.

use super::*;
use std::sync::atomic::AtomicU32;

#[test]
fn split_range_covers_everything_once_and_is_balanced() {
    for total in [0usize, 1, 2, 5, 37, 64, 100] {
        for parts in 1..=7 {
            let mut next = 0;
            let mut lens = Vec::new();
            for idx in 0..parts {
                let r = split_range(total, parts, idx);
                assert_eq!(r.start, next, "total {total} parts {parts} idx {idx}");
                next = r.end;
                lens.push(r.len());
            }
            assert_eq!(next, total);
            let (lo, hi) = (lens.iter().min().unwrap(), lens.iter().max().unwrap());
            assert!(hi - lo <= 1, "unbalanced {lens:?}");
        }
    }
}

#[test]
fn zero_threads_means_one() {
    let pool = ThreadPool::new(0);
    assert_eq!(pool.n_threads(), 1);
    let calls = AtomicUsize::new(0);
    pool.run(|i, n| {
        assert_eq!((i, n), (0, 1));
        calls.fetch_add(1, Ordering::Relaxed);
    });
    assert_eq!(calls.into_inner(), 1);
}

#[test]
fn every_thread_runs_every_job_once() {
    for n in 1..=4 {
        let pool = ThreadPool::new(n);
        assert_eq!(pool.n_threads(), n);
        let hits: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
        for round in 0..2000 {
            pool.run(|i, nt| {
                assert_eq!(nt, n);
                hits[i].fetch_add(1, Ordering::Relaxed);
            });
            // `run` returned, so every thread's increment for this round is visible.
            for (i, h) in hits.iter().enumerate() {
                assert_eq!(h.load(Ordering::Relaxed), round + 1, "thread {i} n {n}");
            }
        }
    }
}

#[test]
fn plain_writes_through_split_are_visible_after_run() {
    for n in 1..=4 {
        let pool = ThreadPool::new(n);
        for len in [0usize, 1, 3, 37, 1000] {
            let mut data = vec![0u64; len];
            for round in 1..50u64 {
                pool.run_split_mut(&mut data, 1, |first, part| {
                    for (k, v) in part.iter_mut().enumerate() {
                        *v += (first + k) as u64 * round;
                    }
                });
            }
            let sum_rounds: u64 = (1..50).sum();
            for (k, v) in data.iter().enumerate() {
                assert_eq!(*v, k as u64 * sum_rounds, "n {n} len {len} k {k}");
            }
        }
    }
}

#[test]
fn split_respects_units() {
    let pool = ThreadPool::new(3);
    let mut data = vec![0u32; 7 * 5];
    let seen = Mutex::new(Vec::new());
    pool.run_split_mut(&mut data, 5, |first_unit, part| {
        assert_eq!(part.len() % 5, 0);
        for (k, v) in part.iter_mut().enumerate() {
            *v = (first_unit * 5 + k) as u32;
        }
        seen.lock().unwrap().push((first_unit, part.len() / 5));
    });
    let mut seen = seen.into_inner().unwrap();
    seen.sort_unstable();
    assert_eq!(seen, vec![(0, 3), (3, 2), (5, 2)]);
    assert!(data.iter().enumerate().all(|(k, v)| *v as usize == k));
}

#[test]
fn borrowed_stack_data_is_read_correctly() {
    let pool = ThreadPool::new(4);
    for round in 0..500usize {
        let input: Vec<usize> = (0..round % 97 + 1).map(|k| k * 3 + round).collect();
        let total = AtomicUsize::new(0);
        pool.run(|i, n| {
            let r = split_range(input.len(), n, i);
            let s: usize = input[r].iter().sum();
            total.fetch_add(s, Ordering::Relaxed);
        });
        assert_eq!(total.into_inner(), input.iter().sum::<usize>());
    }
}

#[test]
fn nested_run_runs_inline() {
    let pool = ThreadPool::new(3);
    let inner_calls = AtomicUsize::new(0);
    pool.run(|_, _| {
        pool.run(|i, n| {
            assert_eq!((i, n), (0, 1));
            inner_calls.fetch_add(1, Ordering::Relaxed);
        });
    });
    assert_eq!(inner_calls.into_inner(), 3);
    // The pool still works normally afterwards, on the caller too.
    let outer = AtomicUsize::new(0);
    pool.run(|_, n| {
        assert_eq!(n, 3);
        outer.fetch_add(1, Ordering::Relaxed);
    });
    assert_eq!(outer.into_inner(), 3);
}

#[test]
fn worker_panic_reaches_caller_and_pool_survives() {
    let pool = ThreadPool::new(3);
    let finished = AtomicUsize::new(0);
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        pool.run(|i, _| {
            if i == 2 {
                panic!("boom in worker");
            }
            std::thread::sleep(Duration::from_millis(5));
            finished.fetch_add(1, Ordering::Relaxed);
        })
    }));
    let payload = result.expect_err("panic must propagate");
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"boom in worker"));
    // The other threads were waited for before the panic was re-raised.
    assert_eq!(finished.load(Ordering::Relaxed), 2);

    let count = AtomicUsize::new(0);
    pool.run(|_, _| {
        count.fetch_add(1, Ordering::Relaxed);
    });
    assert_eq!(count.into_inner(), 3);
}

#[test]
fn caller_panic_waits_for_workers() {
    let pool = ThreadPool::new(2);
    let worker_done = AtomicBool::new(false);
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        pool.run(|i, _| {
            if i == 0 {
                panic!("boom in caller");
            }
            std::thread::sleep(Duration::from_millis(20));
            worker_done.store(true, Ordering::Relaxed);
        })
    }));
    assert!(result.is_err());
    assert!(worker_done.load(Ordering::Relaxed));
}

#[test]
fn concurrent_callers_are_serialised() {
    let pool = Arc::new(ThreadPool::new(3));
    let handles: Vec<_> = (0..3u32)
        .map(|t| {
            let pool = Arc::clone(&pool);
            std::thread::spawn(move || {
                for round in 0..300u32 {
                    let cells: Vec<AtomicU32> = (0..3).map(|_| AtomicU32::new(0)).collect();
                    pool.run(|i, _| {
                        cells[i].store(t * 1000 + round, Ordering::Relaxed);
                    });
                    for c in &cells {
                        assert_eq!(c.load(Ordering::Relaxed), t * 1000 + round);
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn idle_pools_sleep_and_drop_cleanly() {
    for n in 1..=4 {
        let pool = ThreadPool::new(n);
        drop(pool);
    }
    // Let workers go past the spin phase into a blocking wait, then wake them.
    let pool = ThreadPool::new(4);
    let count = AtomicUsize::new(0);
    for _ in 0..3 {
        std::thread::sleep(SPIN_TIME * 20);
        pool.run(|_, _| {
            count.fetch_add(1, Ordering::Relaxed);
        });
    }
    assert_eq!(count.load(Ordering::Relaxed), 12);
    std::thread::sleep(SPIN_TIME * 20);
    drop(pool);
}

#[test]
fn pool_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<ThreadPool>();
}
