//! Tests of the worker pool: every share of a job runs exactly once, results are
//! visible to the caller, panics propagate, nesting and concurrent callers work, and
//! idle pools drop cleanly.

use super::*;
use std::panic::AssertUnwindSafe;
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
    // Seven units, at most TASKS_PER_THREAD parts per thread: one unit each.
    assert_eq!(seen, (0..7).map(|u| (u, 1)).collect::<Vec<_>>());
    assert!(data.iter().enumerate().all(|(k, v)| *v as usize == k));

    // More units than parts: 3 threads × TASKS_PER_THREAD contiguous, balanced parts.
    let mut data = vec![0u32; 100 * 2];
    let seen = Mutex::new(Vec::new());
    pool.run_split_mut(&mut data, 2, |first_unit, part| {
        seen.lock().unwrap().push((first_unit, part.len() / 2));
    });
    let mut seen = seen.into_inner().unwrap();
    seen.sort_unstable();
    assert_eq!(seen.len(), 3 * TASKS_PER_THREAD);
    let mut next = 0;
    for (first, len) in seen {
        assert_eq!(first, next);
        assert!(len == 100 / (3 * TASKS_PER_THREAD) || len == 100 / (3 * TASKS_PER_THREAD) + 1);
        next += len;
    }
    assert_eq!(next, 100);
}

#[test]
fn run_tasks_runs_each_task_once_even_with_a_stalled_worker() {
    let pool = ThreadPool::new(3);
    for n_tasks in [0usize, 1, 2, 5, 64] {
        let hits: Vec<AtomicUsize> = (0..n_tasks).map(|_| AtomicUsize::new(0)).collect();
        pool.run_tasks(n_tasks, |t| {
            hits[t].fetch_add(1, Ordering::Relaxed);
        });
        assert!(
            hits.iter().all(|h| h.load(Ordering::Relaxed) == 1),
            "{n_tasks} tasks"
        );
    }
    // One task blocks until every other task has run: only possible if the others are
    // not stuck behind it, i.e. other threads (or the caller) claim them.
    let done = AtomicUsize::new(0);
    pool.run_tasks(40, |t| {
        if t == 0 {
            let start = Instant::now();
            while done.load(Ordering::Acquire) < 39 {
                assert!(
                    start.elapsed() < Duration::from_secs(20),
                    "tasks were not claimed"
                );
                std::thread::yield_now();
            }
        } else {
            done.fetch_add(1, Ordering::Release);
        }
    });
    assert_eq!(done.into_inner(), 39);
}

#[test]
fn caller_does_not_wait_for_workers_that_never_joined() {
    // Workers asleep on the condition variable: the caller may finish every task before
    // any wakes; results must be complete either way, many times over.
    let pool = ThreadPool::new(4);
    for _ in 0..50 {
        std::thread::sleep(SPIN_TIME * 3);
        let sum = AtomicUsize::new(0);
        pool.run_tasks(8, |t| {
            sum.fetch_add(t, Ordering::Relaxed);
        });
        assert_eq!(sum.into_inner(), 28);
    }
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
fn runs_inline_inside_a_task_or_with_one_thread() {
    assert!(ThreadPool::new(1).runs_inline());
    let pool = ThreadPool::new(2);
    assert!(!pool.runs_inline());
    let inside = AtomicUsize::new(0);
    pool.run_tasks(4, |_| {
        if pool.runs_inline() {
            inside.fetch_add(1, Ordering::Relaxed);
        }
    });
    assert_eq!(inside.into_inner(), 4);
    assert!(!pool.runs_inline(), "the caller is outside a task again");
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
