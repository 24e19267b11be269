//! The caller's side of an engine: [`Engine::start`] moves a loaded model onto its own
//! thread and returns an [`EngineHandle`]; requests go in by message and come back as an
//! [`EventReceiver`]. Dropping a receiver cancels its request.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use kaiyuan_model::{KvCache, Model, ModelConfig, ModelError};
use kaiyuan_tokenizer::Tokenizer;
use tokio::sync::mpsc as async_mpsc;

use crate::metrics::{EngineMetrics, MetricsSnapshot};
use crate::request::{Event, GenerateRequest, RequestId, SubmitError};
use crate::sampling::Sampler;
use crate::worker;

/// How an engine runs.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Worker threads of the forward pass.
    pub threads: usize,
    /// Positions one sequence may hold (prompt + generated).
    pub context: usize,
    /// Sequences in the running batch at most.
    pub max_seqs: usize,
    /// Token positions of the shared KV block pool (rounded up to whole blocks; at least
    /// `context`, so that any single request fits).
    pub kv_tokens: usize,
    /// Tokens one step may process across all sequences (decode tokens first, then prompt
    /// chunks): bounds how long a long prompt delays running streams.
    pub max_batch_tokens: usize,
    /// Requests waiting for a place in the running batch at most; more get
    /// [`SubmitError::QueueFull`].
    pub max_queue: usize,
}

impl EngineConfig {
    /// Defaults for `model`: its training context capped at 4096, 16 sequences, a KV pool
    /// of 4 full contexts, 256-token steps, 64 waiting requests.
    pub fn for_model(model: &Model) -> EngineConfig {
        EngineConfig::for_config(model.config())
    }

    /// [`EngineConfig::for_model`] from the model's configuration alone (before loading).
    pub fn for_config(config: &ModelConfig) -> EngineConfig {
        let context = config.context_length.clamp(1, 4096);
        EngineConfig {
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            context,
            max_seqs: 16,
            kv_tokens: 4 * context,
            max_batch_tokens: 256,
            max_queue: 64,
        }
    }
}

impl EngineConfig {
    /// Blocks of the KV pool the engine allocates: `kv_tokens`, at least one `context`.
    pub fn kv_blocks(&self) -> usize {
        KvCache::blocks_for(self.kv_tokens.max(self.context.max(1)))
    }

    /// Bytes of that pool once full, for a model of `config`'s geometry.
    pub fn kv_bytes(&self, config: &ModelConfig) -> u64 {
        KvCache::pool_bytes(config, self.kv_blocks())
    }
}

/// What callers need to know about the engine's model.
#[derive(Clone, Debug)]
pub struct EngineInfo {
    /// Positions one request may use (prompt + max_tokens).
    pub context: usize,
    pub vocab_size: usize,
    pub max_seqs: usize,
    pub kv_blocks: usize,
    pub threads: usize,
}

pub(crate) enum Command {
    Submit(Box<Submission>),
    Cancel(RequestId),
    Shutdown { deadline: Instant },
    // Test hook: the engine thread panics (`EngineHandle::inject_panic_for_tests`).
    InjectPanic,
}

pub(crate) struct Submission {
    pub id: RequestId,
    pub request: GenerateRequest,
    pub sampler: Sampler,
    pub events: async_mpsc::UnboundedSender<Event>,
    pub submitted: Instant,
}

/// The receiving end of one request's events. Dropping it cancels the request (the engine
/// notices within one step and frees its KV blocks).
pub struct EventReceiver {
    id: RequestId,
    rx: async_mpsc::UnboundedReceiver<Event>,
}

impl EventReceiver {
    pub fn id(&self) -> RequestId {
        self.id
    }

    /// The next event; `None` after `Finished` (or if the engine died).
    pub async fn recv(&mut self) -> Option<Event> {
        self.rx.recv().await
    }

    /// Blocking variant for non-async callers (must not be called inside an async runtime).
    pub fn blocking_recv(&mut self) -> Option<Event> {
        self.rx.blocking_recv()
    }
}

/// Queue places taken ahead of submission ([`EngineHandle::reserve`]). The places not used
/// go back to the queue either way, but how they are counted differs: a request refused
/// before submission ([`QueueReservation::give_back`]) is its caller's to count (an invalid
/// request, a budget refusal), while a reservation dropped with places left means the request
/// was abandoned during its prompt work (the client hung up): each place left counts as a
/// cancelled request, as a hang-up in the engine's queue does.
pub struct QueueReservation {
    inner: Arc<Inner>,
    places: usize,
}

impl QueueReservation {
    /// Gives the unused places back without counting them: the request was refused before
    /// submission, and whoever refused it counts that outcome.
    pub fn give_back(mut self) {
        self.release();
    }

    fn release(&mut self) -> u64 {
        let n = std::mem::take(&mut self.places) as u64;
        if n > 0 {
            self.inner.metrics.queued.fetch_sub(n, Ordering::AcqRel);
        }
        n
    }
}

impl Drop for QueueReservation {
    fn drop(&mut self) {
        let abandoned = self.release();
        if abandoned > 0 {
            self.inner
                .metrics
                .requests_cancelled
                .fetch_add(abandoned, Ordering::Relaxed);
        }
    }
}

/// A cheap, cloneable handle to a running engine.
#[derive(Clone)]
pub struct EngineHandle {
    inner: Arc<Inner>,
}

struct Inner {
    commands: mpsc::Sender<Command>,
    metrics: Arc<EngineMetrics>,
    info: EngineInfo,
    eog: Vec<u32>,
    max_queue: usize,
    next_id: AtomicU64,
    shutting_down: AtomicBool,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// Why the engine thread died, written by the thread itself (see [`crate::failure`]).
    failure: Arc<OnceLock<String>>,
}

/// Entry point: [`Engine::start`].
pub struct Engine;

impl Engine {
    /// Starts the engine thread for `model`. The tokenizer is shared with callers (it is
    /// immutable); the engine uses it for end-of-generation tokens, detokenization and stop
    /// strings. Fails (before any thread starts) if the KV block pool cannot be allocated.
    pub fn start(
        model: Model,
        tokenizer: Arc<Tokenizer>,
        config: EngineConfig,
    ) -> Result<EngineHandle, ModelError> {
        let mut config = config;
        config.threads = config.threads.max(1);
        config.context = config.context.max(1);
        config.max_seqs = config.max_seqs.max(1);
        config.max_batch_tokens = config.max_batch_tokens.max(1);
        let kv_blocks = config.kv_blocks();
        let kv = KvCache::try_new(model.config(), kv_blocks)?;
        let info = EngineInfo {
            context: config.context,
            vocab_size: model.config().vocab_size,
            max_seqs: config.max_seqs,
            kv_blocks,
            threads: config.threads,
        };
        let metrics = Arc::new(EngineMetrics::default());
        metrics
            .kv_blocks_total
            .store(kv_blocks as u64, Ordering::Relaxed);
        let eog = tokenizer.end_of_generation_ids();
        let config_max_queue = config.max_queue;
        let (tx, rx) = mpsc::channel();
        let failure = Arc::new(OnceLock::new());
        let thread = {
            let metrics = Arc::clone(&metrics);
            let eog = eog.clone();
            let failure = Arc::clone(&failure);
            std::thread::Builder::new()
                .name("kaiyuan-engine".into())
                .spawn(move || {
                    crate::failure::run_catching(&failure, || {
                        worker::run(model, kv, tokenizer, config, eog, rx, metrics)
                    })
                })
                .expect("invariant: the OS can start one more thread at start-up")
        };
        Ok(EngineHandle {
            inner: Arc::new(Inner {
                commands: tx,
                metrics,
                info,
                eog,
                max_queue: config_max_queue,
                next_id: AtomicU64::new(1),
                shutting_down: AtomicBool::new(false),
                thread: Mutex::new(Some(thread)),
                failure,
            }),
        })
    }
}

impl EngineHandle {
    pub fn info(&self) -> &EngineInfo {
        &self.inner.info
    }

    pub fn metrics(&self) -> MetricsSnapshot {
        self.inner.metrics.snapshot()
    }

    /// The model's end-of-generation token ids (EOS, EOT and end-of-turn markers).
    pub fn end_of_generation_ids(&self) -> &[u32] {
        &self.inner.eog
    }

    /// Validates `request` and queues it. Errors are the caller's fault (400) except
    /// `QueueFull` (429) and `ShuttingDown` (503).
    pub fn submit(&self, request: GenerateRequest) -> Result<EventReceiver, SubmitError> {
        let sampler = self.validate(&request)?;
        // Admission control: count the request as queued before sending, undo on refusal.
        let mut place = self.reserve(1)?;
        place.places = 0;
        self.send(request, sampler)
    }

    /// Takes `places` queue places ahead of submission, for a request that still has work to
    /// do before it can submit (rendering and tokenizing its prompt): they count as queued
    /// requests, in the metrics and against `max_queue` (so that work is admitted or refused
    /// like queued requests), until [`EngineHandle::submit_reserved`] uses them or the
    /// reservation is given back (request refused) or dropped (request abandoned).
    pub fn reserve(&self, places: usize) -> Result<QueueReservation, SubmitError> {
        let inner = &self.inner;
        if inner.shutting_down.load(Ordering::Acquire) {
            return Err(SubmitError::ShuttingDown);
        }
        let capacity = inner.max_queue;
        let n = places as u64;
        let queued = inner.metrics.queued.fetch_add(n, Ordering::AcqRel);
        if queued + n > capacity as u64 {
            inner.metrics.queued.fetch_sub(n, Ordering::AcqRel);
            return Err(SubmitError::QueueFull { capacity });
        }
        Ok(QueueReservation {
            inner: Arc::clone(inner),
            places,
        })
    }

    /// [`EngineHandle::submit`] into one of `reservation`'s places (an ordinary submission
    /// once they are used up). A request refused for its content gives its place back.
    pub fn submit_reserved(
        &self,
        reservation: &mut QueueReservation,
        request: GenerateRequest,
    ) -> Result<EventReceiver, SubmitError> {
        if reservation.places == 0 || !Arc::ptr_eq(&reservation.inner, &self.inner) {
            return self.submit(request);
        }
        let sampler = self.validate(&request)?;
        if self.inner.shutting_down.load(Ordering::Acquire) {
            return Err(SubmitError::ShuttingDown);
        }
        // The place is the submission's now: `send` or the worker gives it back.
        reservation.places -= 1;
        self.send(request, sampler)
    }

    fn validate(&self, request: &GenerateRequest) -> Result<Sampler, SubmitError> {
        let inner = &self.inner;
        if inner.shutting_down.load(Ordering::Acquire) {
            return Err(SubmitError::ShuttingDown);
        }
        let info = &inner.info;
        if request.prompt.is_empty() {
            return Err(SubmitError::EmptyPrompt);
        }
        if request.max_tokens == 0 {
            return Err(SubmitError::ZeroMaxTokens);
        }
        if request.prompt.len().saturating_add(request.max_tokens) > info.context {
            return Err(SubmitError::ContextExceeded {
                prompt_tokens: request.prompt.len(),
                max_tokens: request.max_tokens,
                context: info.context,
            });
        }
        let vocab_size = info.vocab_size;
        if let Some(&token) = request
            .prompt
            .iter()
            .chain(&request.stop_token_ids)
            .find(|&&t| t as usize >= vocab_size)
        {
            return Err(SubmitError::TokenOutOfRange { token, vocab_size });
        }
        Sampler::new(request.sampling.clone(), vocab_size).map_err(|e| match e {
            crate::sampling::SamplingError::InvalidParams(p) => SubmitError::InvalidSampling(p),
            // Only parameter validation can fail in `Sampler::new`.
            other => SubmitError::InvalidSampling(crate::sampling::ParamError {
                field: "sampling",
                value: other.to_string(),
                expected: "valid parameters".into(),
            }),
        })
    }

    /// Sends a validated request whose queue place is already counted.
    fn send(
        &self,
        request: GenerateRequest,
        sampler: Sampler,
    ) -> Result<EventReceiver, SubmitError> {
        let inner = &self.inner;
        let id = RequestId(inner.next_id.fetch_add(1, Ordering::Relaxed));
        let (events, rx) = async_mpsc::unbounded_channel();
        let submission = Submission {
            id,
            request,
            sampler,
            events,
            submitted: Instant::now(),
        };
        if inner
            .commands
            .send(Command::Submit(Box::new(submission)))
            .is_err()
        {
            inner.metrics.queued.fetch_sub(1, Ordering::AcqRel);
            return Err(self
                .failure()
                .map_or(SubmitError::ShuttingDown, SubmitError::EngineFailed));
        }
        Ok(EventReceiver { id, rx })
    }

    /// Cancels a request (same as dropping its receiver, but immediate).
    pub fn cancel(&self, id: RequestId) {
        let _ = self.inner.commands.send(Command::Cancel(id));
    }

    /// Stops accepting requests; running and queued ones may finish within `grace`, then
    /// end with [`crate::FinishReason::Shutdown`]. Returns at once; see [`Self::join`].
    pub fn shutdown(&self, grace: Duration) {
        self.inner.shutting_down.store(true, Ordering::Release);
        let _ = self.inner.commands.send(Command::Shutdown {
            deadline: Instant::now() + grace,
        });
    }

    /// Why the engine thread died, if it did: it panicked (the panic message), or it ended
    /// without [`Self::shutdown`] having been called. `None` while it runs and after a
    /// requested shutdown. A dead engine refuses every request (`EngineFailed`).
    pub fn failure(&self) -> Option<String> {
        let thread = self.inner.thread.lock().ok();
        let finished = thread
            .as_ref()
            .and_then(|t| t.as_ref())
            .is_some_and(JoinHandle::is_finished);
        crate::failure::reason(&self.inner.failure, finished, self.is_shutting_down())
    }

    /// Whether [`Self::shutdown`] was called.
    pub fn is_shutting_down(&self) -> bool {
        self.inner.shutting_down.load(Ordering::Acquire)
    }

    /// Test hook, not API: makes the engine thread panic at its next command, to test what
    /// callers do when an engine dies.
    #[doc(hidden)]
    pub fn inject_panic_for_tests(&self) {
        let _ = self.inner.commands.send(Command::InjectPanic);
    }

    /// Waits for the engine thread to end (after [`Self::shutdown`]).
    pub fn join(&self) {
        let thread = self
            .inner
            .thread
            .lock()
            .map(|mut t| t.take())
            .unwrap_or(None);
        if let Some(t) = thread {
            let _ = t.join();
        }
    }
}
