//! The worker pool every parallel operation runs on: threads spawned once, woken per
//! operation through a generation counter, the caller taking part, and the work handed
//! out as tasks that whichever thread is free claims next.
//!
//! Method (written for this crate): an operation is `n_tasks` independent tasks. The
//! caller publishes a type-erased pointer to its closure, opens a *ticket* for the new
//! generation and bumps the generation counter; then it claims tasks from a shared
//! counter and runs them. A worker that sees the new generation *joins* by incrementing
//! the ticket's count (only while the ticket is still open for that generation), claims
//! and runs tasks the same way, and counts itself out in `finished`. When the caller
//! finds no task left it *closes* the ticket, which fixes how many workers joined, and
//! waits only for those. A worker that was descheduled (another process on the core) or
//! still asleep when the operation began therefore never holds the caller up: it either
//! joined and owns at most the task it is running, or it finds the ticket closed and skips
//! the operation. This is what keeps two threads on two shared cores from running at the
//! speed of the slowest one (a static split waited for every thread's fixed share).
//!
//! Waiting on either side spins for [`SPIN_TIME`] (operations arrive back-to-back during
//! inference) and then blocks on a condition variable, so an idle pool costs no CPU. A
//! dispatch allocates nothing.
//!
//! Panics: a panic in a task, on any thread, is caught there; the remaining tasks still
//! run, the caller waits for every joined worker and then re-raises the panic (its own if
//! it panicked, else the first worker's). Workers survive and the pool stays usable.
//!
//! Nesting: a call from inside a task (on any pool) runs inline on the calling thread
//! rather than deadlocking.

use std::any::Any;
use std::cell::{Cell, UnsafeCell};
use std::ops::Range;
use std::panic;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a waiting thread spins before blocking.
pub const SPIN_TIME: Duration = Duration::from_micros(50);

/// Tasks per thread that [`PoolCore::run_split_mut`] cuts its data into: enough that a
/// thread arriving late finds work left, few enough that claiming costs nothing.
pub const TASKS_PER_THREAD: usize = 4;

thread_local! {
    /// True while this thread is executing a task (always true on pool workers).
    static IN_JOB: Cell<bool> = const { Cell::new(false) };
}

/// The ticket word: generation (low 40 bits) above, then the closed flag, then the count
/// of joined workers (23 bits, far above any thread count).
const TICKET_GEN_SHIFT: u32 = 24;
const TICKET_CLOSED: u64 = 1 << 23;
const TICKET_COUNT: u64 = TICKET_CLOSED - 1;

fn open_ticket(generation: u64) -> u64 {
    generation << TICKET_GEN_SHIFT
}

fn ticket_generation(ticket: u64) -> u64 {
    ticket >> TICKET_GEN_SHIFT
}

/// A type-erased `&F` for the current generation.
#[derive(Clone, Copy)]
struct Job {
    /// Points at the caller's `F`, alive until the dispatch returns.
    data: *const (),
    /// `call_task::<F>`: casts `data` back to `&F` and calls it.
    call: unsafe fn(*const (), usize),
    n_tasks: usize,
}

/// Calls the `F` behind `data` on task `task`.
///
/// # Safety
/// `data` must point at a live `F` that may be shared between threads (`F: Sync`).
unsafe fn call_task<F: Fn(usize) + Sync>(data: *const (), task: usize) {
    // SAFETY: the caller guarantees `data` came from `&F` that is still alive.
    let f = unsafe { &*(data as *const F) };
    f(task);
}

fn no_task(_: *const (), _: usize) {}

/// State shared by the caller and the workers.
struct Shared {
    /// Bumped (under `run_lock`) once per dispatch; workers try to join each bump.
    generation: AtomicU64,
    /// The current generation's ticket (see [`TICKET_CLOSED`]).
    ticket: AtomicU64,
    /// Next unclaimed task of the current job.
    next_task: AtomicUsize,
    /// Joined workers that are done with the current job.
    finished: AtomicUsize,
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

// SAFETY: every field but `job` is Sync. `job` is written only by a dispatch, while it
// holds `run_lock`, before it opens the ticket and bumps `generation` (both after the
// write, the bump with Release); at that moment no worker uses `job`: the previous
// dispatch closed its ticket and waited until every worker that joined it had counted
// itself out in `finished` (Release, observed with Acquire), and a worker reads `job` only
// after joining an open ticket of the generation it observed (Acquire on the bump). The
// raw pointer inside `job` is only dereferenced under that protocol while the pointee is
// alive (see `dispatch`).
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

/// Claims and runs tasks of `job` until none is left, catching panics per task; returns
/// the first panic's payload.
///
/// # Safety
/// `job` is the current job and its closure stays alive until this returns (the caller
/// is the dispatching thread, or a worker counted in the open ticket).
unsafe fn run_tasks_of(s: &Shared, job: Job) -> Option<Box<dyn Any + Send>> {
    let mut first_panic = None;
    loop {
        let task = s.next_task.fetch_add(1, Ordering::Relaxed);
        if task >= job.n_tasks {
            return first_panic;
        }
        // SAFETY: `job.data` matches `job.call` and is alive (this function's contract).
        let result = panic::catch_unwind(|| unsafe { (job.call)(job.data, task) });
        if let Err(payload) = result {
            first_panic.get_or_insert(payload);
        }
    }
}

/// A fixed set of worker threads that run closures in parallel, the calling thread
/// taking part. A handle: with [`share_pools`] on, every `ThreadPool::new` in the process
/// hands out the same pool (see `shared.rs`); the methods are those of [`PoolCore`].
pub struct ThreadPool {
    core: Arc<PoolCore>,
}

/// The pool itself (its threads and the dispatch); reached through a [`ThreadPool`].
pub struct PoolCore {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
    n_threads: usize,
    /// Serialises concurrent dispatches from different threads.
    run_lock: Mutex<()>,
}

impl ThreadPool {
    /// A pool of `n_threads` threads in all, counting the caller of
    /// [`run`](PoolCore::run) (`0` is treated as `1`; `1` runs everything inline and spawns
    /// nothing). If the OS refuses to spawn a thread, the pool keeps the ones it got and
    /// says so on stderr. With [`share_pools`] on and `n_threads` at least its budget, the
    /// process's one shared pool instead.
    pub fn new(n_threads: usize) -> ThreadPool {
        match shared::shared_pool(n_threads) {
            Some(core) => ThreadPool { core },
            None => ThreadPool {
                core: Arc::new(PoolCore::new(n_threads)),
            },
        }
    }

    /// Whether `self` and `other` are handles to the same pool.
    pub fn same_pool(&self, other: &ThreadPool) -> bool {
        Arc::ptr_eq(&self.core, &other.core)
    }
}

impl std::ops::Deref for ThreadPool {
    type Target = PoolCore;
    fn deref(&self) -> &PoolCore {
        &self.core
    }
}

impl PoolCore {
    fn new(n_threads: usize) -> PoolCore {
        let wanted = n_threads.max(1);
        let shared = Arc::new(Shared {
            generation: AtomicU64::new(0),
            ticket: AtomicU64::new(open_ticket(0) | TICKET_CLOSED),
            next_task: AtomicUsize::new(0),
            finished: AtomicUsize::new(0),
            job: UnsafeCell::new(Job {
                data: std::ptr::null(),
                call: no_task,
                n_tasks: 0,
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
                .spawn(move || worker_loop(&s));
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
        PoolCore {
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

    /// Runs `f(task)` once for every `task` in `0..n_tasks`, spread over the threads of
    /// the pool as they become free, and returns when all have finished. Which thread
    /// runs which task is not fixed. Called from inside a task, or with fewer than two
    /// tasks, it runs them in order on the calling thread. A panic in `f` is re-raised
    /// here after every task has run.
    pub fn run_tasks<F: Fn(usize) + Sync>(&self, n_tasks: usize, f: F) {
        if n_tasks < 2 || self.runs_inline() {
            (0..n_tasks).for_each(f);
            return;
        }
        self.dispatch(n_tasks, &f);
    }

    /// Whether work handed to this pool now runs on the calling thread alone (a pool of
    /// one thread, or a call from inside a task): cutting it into tasks then buys no
    /// balance.
    pub fn runs_inline(&self) -> bool {
        // `try_with`: a thread-local that is already destroyed (run from a TLS
        // destructor) just means "not inside a job".
        self.n_threads == 1 || IN_JOB.try_with(Cell::get).unwrap_or(false)
    }

    /// Runs `f(i, n)` for every `i` in `0..n`, `n` being the pool's thread count: the
    /// same share-per-thread interface as a fork-join, but the shares are tasks, so a
    /// thread may run several. Called from inside a task it runs `f(0, 1)` inline.
    pub fn run<F: Fn(usize, usize) + Sync>(&self, f: F) {
        if self.runs_inline() {
            f(0, 1);
            return;
        }
        let n = self.n_threads;
        self.dispatch(n, &|task| f(task, n));
    }

    fn dispatch<F: Fn(usize) + Sync>(&self, n_tasks: usize, f: &F) {
        let _serial = lock_ignoring_poison(&self.run_lock);
        let s = &*self.shared;
        let job = Job {
            data: f as *const F as *const (),
            call: call_task::<F>,
            n_tasks,
        };
        // SAFETY: see `impl Sync for Shared`: we hold `run_lock`, the previous ticket is
        // closed and every worker that joined it has finished, so this races with nothing.
        unsafe { *s.job.get() = job };
        s.next_task.store(0, Ordering::Relaxed);
        s.finished.store(0, Ordering::Relaxed);
        let generation = s.generation.load(Ordering::Relaxed) + 1;
        s.ticket.store(open_ticket(generation), Ordering::SeqCst);
        // SeqCst pairs with the SeqCst increment of `sleeping_workers` in `worker_loop`:
        // either the worker sees the new generation or we see it sleeping and notify.
        s.generation.store(generation, Ordering::SeqCst);
        // From here on `f` must outlive the workers' use of it. The guard closes the
        // ticket and waits for the joined workers when dropped, so even an unexpected
        // unwind out of this frame cannot free `f` early.
        let wait_for_workers = CloseAndWait(s);
        if s.sleeping_workers.load(Ordering::SeqCst) > 0 {
            // Taking the lock orders us after any worker between its check and its wait.
            drop(lock_ignoring_poison(&s.lock));
            s.wake.notify_all();
        }

        let _ = IN_JOB.try_with(|c| c.set(true));
        // SAFETY: `f` is alive for this whole frame; `job` is the current job.
        let own = unsafe { run_tasks_of(s, job) };
        let _ = IN_JOB.try_with(|c| c.set(false));
        drop(wait_for_workers);

        let worker_panic = lock_ignoring_poison(&s.worker_panic).take();
        if let Some(payload) = own.or(worker_panic) {
            panic::resume_unwind(payload);
        }
    }

    /// Splits `data` into contiguous parts, each a whole number of `unit` elements and as
    /// equal as possible (see [`split_range`]), about [`TASKS_PER_THREAD`] per thread,
    /// and runs `f(first_unit, part)` on each part as a task. `data.len()` must be a
    /// multiple of `unit`. Empty parts are not passed to `f`.
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
        let n_parts = n_units.min(self.n_threads * TASKS_PER_THREAD).max(1);
        let base = SyncMutPtr(data.as_mut_ptr());
        self.run_tasks(n_parts, |task| {
            let units = split_range(n_units, n_parts, task);
            if units.is_empty() {
                return;
            }
            // SAFETY: `split_range` gives pairwise disjoint ranges for distinct tasks that
            // lie within `0..n_units`, each task runs once, so these parts are disjoint and
            // inside `data`, which is exclusively borrowed for the whole call (which
            // returns only after every task is done). `T: Send` lets each part be used on
            // another thread.
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

/// Closes the current ticket and waits, when dropped, until every worker that joined
/// it has finished.
struct CloseAndWait<'a>(&'a Shared);

impl Drop for CloseAndWait<'_> {
    fn drop(&mut self) {
        let s = self.0;
        // No task is left unclaimed when this runs normally; after an unwind the workers
        // still only run what they claim, so stop handing out tasks first.
        s.next_task.store(usize::MAX / 2, Ordering::Relaxed);
        let joined = (s.ticket.fetch_or(TICKET_CLOSED, Ordering::SeqCst) & TICKET_COUNT) as usize;
        let all_done = || s.finished.load(Ordering::Acquire) == joined;
        if spin_until(all_done) {
            return;
        }
        let mut guard = lock_ignoring_poison(&s.lock);
        // SeqCst pairs with the workers' SeqCst increment of `finished`: either we see
        // the last one here or that worker sees this flag and notifies (after taking the
        // lock, so after we are waiting). A `swap` rather than a `store`: the same under
        // the Rust memory model, but a read-modify-write is also a full fence under
        // emulators (qemu-user on an x86-64 host can let an aarch64 `stlr` pass the
        // following `ldar`, which loses this wake-up).
        s.caller_sleeping.swap(true, Ordering::SeqCst);
        while s.finished.load(Ordering::SeqCst) != joined {
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

/// Joins the open ticket of `generation`; false if it is closed or already newer.
fn try_join(s: &Shared, generation: u64) -> bool {
    let mut ticket = s.ticket.load(Ordering::SeqCst);
    loop {
        if ticket_generation(ticket) != generation || ticket & TICKET_CLOSED != 0 {
            return false;
        }
        match s
            .ticket
            .compare_exchange_weak(ticket, ticket + 1, Ordering::SeqCst, Ordering::SeqCst)
        {
            Ok(_) => return true,
            Err(now) => ticket = now,
        }
    }
}

fn worker_loop(s: &Shared) {
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
        if !try_join(s, seen) {
            // The caller already ran every task (or a newer job started: the next turn
            // of the loop sees its generation).
            continue;
        }
        // SAFETY: we joined the open ticket of the generation we observed with Acquire, so
        // the job written before that bump is visible, and the dispatch neither returns
        // nor writes `job` again until we count ourselves out in `finished` below.
        let job = unsafe { *s.job.get() };
        // SAFETY: as above, the closure behind `job` stays alive until we finish.
        if let Some(payload) = unsafe { run_tasks_of(s, job) } {
            let mut slot = lock_ignoring_poison(&s.worker_panic);
            if slot.is_none() {
                *slot = Some(payload);
            }
        }
        // Release: our tasks' writes happen-before the caller's return.
        s.finished.fetch_add(1, Ordering::SeqCst);
        if s.caller_sleeping.load(Ordering::SeqCst) {
            drop(lock_ignoring_poison(&s.lock));
            s.done.notify_one();
        }
    }
}

impl Drop for PoolCore {
    /// Stops and joins the workers (they are idle: `run` borrows the pool).
    fn drop(&mut self) {
        let s = &*self.shared;
        s.shutdown.store(true, Ordering::Release);
        let generation = s.generation.load(Ordering::Relaxed) + 1;
        s.generation.store(generation, Ordering::SeqCst);
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
            .field("n_threads", &self.core.n_threads)
            .finish()
    }
}

mod shared;
pub use shared::{share_pools, shared_budget};

#[cfg(test)]
mod tests;
