//! The worker pool every parallel operation runs on: threads spawned once, woken per
//! operation through a generation counter, and the caller taking part as thread 0.
//!
//! Method (a textbook fork-join barrier, written for this crate): the caller publishes a
//! type-erased pointer to its closure, bumps a generation counter and runs its own share;
//! each worker, having seen the new generation, runs its share and counts down a
//! `remaining` counter; the caller returns only after `remaining` reaches zero. Waiting on
//! either side spins for [`SPIN_TIME`] (operations arrive back-to-back during inference)
//! and then blocks on a condition variable, so an idle pool costs no CPU. A dispatch
//! allocates nothing.
//!
//! Panics: a panic in the closure, on any thread, is caught on that thread; the caller
//! still waits for every other thread to finish and then re-raises the panic (its own if
//! it panicked, else the first worker's). Workers survive and the pool stays usable.
//!
//! Nesting: `run` called from inside a job (on any pool) runs the closure inline as a
//! single thread (`f(0, 1)`) rather than deadlocking.

use std::any::Any;
use std::cell::{Cell, UnsafeCell};
use std::ops::Range;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a waiting thread spins before blocking.
pub const SPIN_TIME: Duration = Duration::from_micros(50);

thread_local! {
    /// True while this thread is executing a job closure (always true on pool workers).
    static IN_JOB: Cell<bool> = const { Cell::new(false) };
}

/// A type-erased `&F` for the current generation.
#[derive(Clone, Copy)]
struct Job {
    /// Points at the caller's `F`, alive until `run` returns.
    data: *const (),
    /// `call_job::<F>`: casts `data` back to `&F` and calls it.
    call: unsafe fn(*const (), usize, usize),
    n_threads: usize,
}

/// Calls the `F` behind `data`.
///
/// # Safety
/// `data` must point at a live `F` that may be shared between threads (`F: Sync`).
unsafe fn call_job<F: Fn(usize, usize) + Sync>(data: *const (), idx: usize, n: usize) {
    // SAFETY: the caller guarantees `data` came from `&F` that is still alive.
    let f = unsafe { &*(data as *const F) };
    f(idx, n);
}

fn no_job(_: *const (), _: usize, _: usize) {}

/// State shared by the caller and the workers.
struct Shared {
    /// Bumped (under `run_lock`) once per dispatch; workers run one job per bump.
    generation: AtomicU64,
    /// Workers still running the current job.
    remaining: AtomicUsize,
    /// The current job; see the `Sync` impl for who may touch it when.
    job: UnsafeCell<Job>,
    shutdown: AtomicBool,
    /// Workers blocked (or about to block) on `wake`.
    sleeping_workers: AtomicUsize,
    /// The caller is blocked (or about to block) on `done`.
    caller_sleeping: AtomicBool,
    /// Guards the two condition variables (holds no data).
    lock: Mutex<()>,
    wake: Condvar,
    done: Condvar,
    /// The first panic payload from a worker in the current run.
    worker_panic: Mutex<Option<Box<dyn Any + Send>>>,
}

// SAFETY: every field but `job` is Sync. `job` is written only by `run`, while it holds
// `run_lock` and before it bumps `generation` (Release); at that moment every worker has
// finished the previous generation (`remaining` was 0, observed with Acquire) and waits
// for the bump, so no one reads `job`. Workers read it only after observing the bump
// (Acquire), and stop using it before decrementing `remaining` (Release), which `run`
// waits for before returning or writing `job` again. The raw pointer inside `job` is only
// dereferenced under that same protocol while the pointee is alive (see `run`).
unsafe impl Sync for Shared {}
// SAFETY: `Shared` owns nothing tied to a thread; the raw pointer in `job` is only used
// under the protocol described for `Sync`.
unsafe impl Send for Shared {}

fn lock_ignoring_poison<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing inside our mutexes can be left half-updated by a panic.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Spins for up to [`SPIN_TIME`] until `ready()` holds; returns whether it did.
fn spin_until(ready: impl Fn() -> bool) -> bool {
    let start = Instant::now();
    loop {
        for _ in 0..64 {
            if ready() {
                return true;
            }
            std::hint::spin_loop();
        }
        if start.elapsed() > SPIN_TIME {
            return ready();
        }
    }
}

/// A fixed set of worker threads that run closures in parallel, the calling thread
/// taking part as thread 0.
pub struct ThreadPool {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
    n_threads: usize,
    /// Serialises concurrent `run` calls from different threads.
    run_lock: Mutex<()>,
}

impl ThreadPool {
    /// A pool of `n_threads` threads in all, counting the caller of [`run`](Self::run)
    /// (`0` is treated as `1`; `1` runs everything inline and spawns nothing). If the OS
    /// refuses to spawn a thread, the pool keeps the ones it got and says so on stderr.
    pub fn new(n_threads: usize) -> ThreadPool {
        let wanted = n_threads.max(1);
        let shared = Arc::new(Shared {
            generation: AtomicU64::new(0),
            remaining: AtomicUsize::new(0),
            job: UnsafeCell::new(Job {
                data: std::ptr::null(),
                call: no_job,
                n_threads: 1,
            }),
            shutdown: AtomicBool::new(false),
            sleeping_workers: AtomicUsize::new(0),
            caller_sleeping: AtomicBool::new(false),
            lock: Mutex::new(()),
            wake: Condvar::new(),
            done: Condvar::new(),
            worker_panic: Mutex::new(None),
        });
        let mut workers = Vec::with_capacity(wanted - 1);
        for idx in 1..wanted {
            let s = Arc::clone(&shared);
            let spawned = std::thread::Builder::new()
                .name(format!("kaiyuan-worker-{idx}"))
                .spawn(move || worker_loop(&s, idx));
            match spawned {
                Ok(h) => workers.push(h),
                Err(e) => {
                    eprintln!(
                        "kaiyuan: could not spawn worker thread {idx} ({e}); using {idx} threads"
                    );
                    break;
                }
            }
        }
        let n_threads = workers.len() + 1;
        ThreadPool {
            shared,
            workers,
            n_threads,
            run_lock: Mutex::new(()),
        }
    }

    /// Threads in the pool, counting the caller.
    pub fn n_threads(&self) -> usize {
        self.n_threads
    }

    /// Runs `f(thread_index, n_threads)` once on every thread of the pool (the caller is
    /// index 0) and returns when all have finished. Called from inside a job, it runs
    /// `f(0, 1)` inline instead. A panic in `f` on any thread is re-raised here after
    /// every thread has finished.
    pub fn run<F: Fn(usize, usize) + Sync>(&self, f: F) {
        // `try_with`: a thread-local that is already destroyed (run from a TLS
        // destructor) just means "not inside a job".
        if self.n_threads == 1 || IN_JOB.try_with(Cell::get).unwrap_or(false) {
            f(0, 1);
            return;
        }
        let _serial = lock_ignoring_poison(&self.run_lock);
        let s = &*self.shared;
        let n_workers = self.n_threads - 1;

        // Publish the job. No worker is reading `job` (all finished the previous
        // generation before the previous `run` returned).
        // SAFETY: see `impl Sync for Shared`: we hold `run_lock` and every worker is
        // waiting for the next generation, so this write races with nothing.
        unsafe {
            *s.job.get() = Job {
                data: &f as *const F as *const (),
                call: call_job::<F>,
                n_threads: self.n_threads,
            };
        }
        s.remaining.store(n_workers, Ordering::Relaxed);
        // SeqCst pairs with the SeqCst increment of `sleeping_workers` in `worker_loop`:
        // either the worker sees the new generation or we see it sleeping and notify.
        s.generation.fetch_add(1, Ordering::SeqCst);
        // From here on `f` must outlive the workers' use of it. The guard waits for them
        // when dropped, so even an unexpected unwind out of this frame cannot free `f`
        // early (the job's own panics are caught below and re-raised after the wait).
        let wait_for_workers = WaitForWorkers(s);
        if s.sleeping_workers.load(Ordering::SeqCst) > 0 {
            // Taking the lock orders us after any worker between its check and its wait.
            drop(lock_ignoring_poison(&s.lock));
            s.wake.notify_all();
        }

        let _ = IN_JOB.try_with(|c| c.set(true));
        let own = panic::catch_unwind(AssertUnwindSafe(|| f(0, self.n_threads)));
        let _ = IN_JOB.try_with(|c| c.set(false));
        drop(wait_for_workers);

        let worker_panic = lock_ignoring_poison(&s.worker_panic).take();
        if let Err(payload) = own {
            panic::resume_unwind(payload);
        }
        if let Some(payload) = worker_panic {
            panic::resume_unwind(payload);
        }
    }

    /// Splits `data` into one contiguous part per thread, each a whole number of `unit`
    /// elements and as equal as possible (see [`split_range`]), and runs
    /// `f(first_unit, part)` on each thread with its own part. `data.len()` must be a
    /// multiple of `unit`. Threads whose part would be empty are not called.
    pub fn run_split_mut<T, F>(&self, data: &mut [T], unit: usize, f: F)
    where
        T: Send,
        F: Fn(usize, &mut [T]) + Sync,
    {
        assert!(unit > 0, "run_split_mut: unit must be positive");
        assert_eq!(
            data.len() % unit,
            0,
            "run_split_mut: {} elements are not whole units of {unit}",
            data.len()
        );
        let n_units = data.len() / unit;
        let base = SyncMutPtr(data.as_mut_ptr());
        self.run(|idx, n| {
            let units = split_range(n_units, n, idx);
            if units.is_empty() {
                return;
            }
            // SAFETY: `split_range` gives pairwise disjoint ranges for distinct `idx` that
            // lie within `0..n_units`, so these parts are disjoint and inside `data`,
            // which is exclusively borrowed for the whole `run` (which returns only after
            // every thread is done). `T: Send` lets each part be used on another thread.
            let part = unsafe {
                std::slice::from_raw_parts_mut(
                    base.get().add(units.start * unit),
                    units.len() * unit,
                )
            };
            f(units.start, part);
        });
    }
}

/// Waits, when dropped, until every worker has finished the current job.
struct WaitForWorkers<'a>(&'a Shared);

impl Drop for WaitForWorkers<'_> {
    fn drop(&mut self) {
        let s = self.0;
        if spin_until(|| s.remaining.load(Ordering::Acquire) == 0) {
            return;
        }
        let mut guard = lock_ignoring_poison(&s.lock);
        // SeqCst pairs with the workers' SeqCst decrement of `remaining`: either we see
        // 0 here or the last worker sees this flag and notifies (after taking the lock,
        // so after we are waiting). A `swap` rather than a `store`: the same under the
        // Rust memory model, but a read-modify-write is also a full fence under emulators
        // (qemu-user on an x86-64 host can let an aarch64 `stlr` pass the following `ldar`,
        // which loses this wake-up; a test under qemu hung here with the caller on `done`
        // and every worker back on `wake`).
        s.caller_sleeping.swap(true, Ordering::SeqCst);
        while s.remaining.load(Ordering::SeqCst) != 0 {
            guard = s.done.wait(guard).unwrap_or_else(|e| e.into_inner());
        }
        s.caller_sleeping.store(false, Ordering::Relaxed);
    }
}

/// A pointer that may be shared between the pool's threads; only `run_split_mut` makes
/// one, and it derives disjoint parts from it.
struct SyncMutPtr<T>(*mut T);

impl<T> SyncMutPtr<T> {
    /// A method (not field access) so closures capture the whole `Sync` wrapper.
    fn get(&self) -> *mut T {
        self.0
    }
}

// SAFETY: the pointer is only used by `run_split_mut` to build disjoint `&mut [T]` parts,
// one per thread; handing a `&mut [T]` to another thread needs exactly `T: Send`.
unsafe impl<T: Send> Sync for SyncMutPtr<T> {}

/// Part `idx` of `0..total` cut into `parts` contiguous ranges whose lengths differ by
/// at most one (the first `total % parts` ranges get the extra element).
pub fn split_range(total: usize, parts: usize, idx: usize) -> Range<usize> {
    assert!(idx < parts, "split_range: part {idx} of {parts}");
    let base = total / parts;
    let extra = total % parts;
    let start = idx * base + idx.min(extra);
    let len = base + usize::from(idx < extra);
    start..start + len
}

fn worker_loop(s: &Shared, idx: usize) {
    let _ = IN_JOB.try_with(|c| c.set(true));
    let mut seen = 0u64;
    loop {
        // Wait for the next generation (or shutdown).
        let fresh = || s.generation.load(Ordering::Acquire) != seen;
        if !spin_until(fresh) {
            let mut guard = lock_ignoring_poison(&s.lock);
            s.sleeping_workers.fetch_add(1, Ordering::SeqCst);
            while s.generation.load(Ordering::SeqCst) == seen {
                guard = s.wake.wait(guard).unwrap_or_else(|e| e.into_inner());
            }
            s.sleeping_workers.fetch_sub(1, Ordering::Relaxed);
        }
        seen = s.generation.load(Ordering::Acquire);
        if s.shutdown.load(Ordering::Acquire) {
            return;
        }
        // SAFETY: we observed the new generation with Acquire, so the job written before
        // the Release bump is visible, and `run` does not write it again until we have
        // decremented `remaining` below.
        let job = unsafe { *s.job.get() };
        let result = panic::catch_unwind(|| {
            // SAFETY: `job.data` points at the `F` of the `run` that published this job,
            // matching `job.call`; that `run` does not return before `remaining` is 0,
            // which cannot happen before our decrement below.
            unsafe { (job.call)(job.data, idx, job.n_threads) }
        });
        if let Err(payload) = result {
            let mut slot = lock_ignoring_poison(&s.worker_panic);
            if slot.is_none() {
                *slot = Some(payload);
            }
        }
        // Release: our use of the job (and its writes) happen-before the caller's return.
        if s.remaining.fetch_sub(1, Ordering::SeqCst) == 1
            && s.caller_sleeping.load(Ordering::SeqCst)
        {
            drop(lock_ignoring_poison(&s.lock));
            s.done.notify_one();
        }
    }
}

impl Drop for ThreadPool {
    /// Stops and joins the workers (they are idle: `run` borrows the pool).
    fn drop(&mut self) {
        let s = &*self.shared;
        s.shutdown.store(true, Ordering::Release);
        s.generation.fetch_add(1, Ordering::SeqCst);
        drop(lock_ignoring_poison(&s.lock));
        s.wake.notify_all();
        for h in self.workers.drain(..) {
            // Workers catch job panics, so a join error would be a bug in this file.
            if h.join().is_err() {
                eprintln!("kaiyuan: a worker thread ended abnormally");
            }
        }
    }
}

impl std::fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreadPool")
            .field("n_threads", &self.n_threads)
            .finish()
    }
}

#[cfg(test)]
mod tests;
