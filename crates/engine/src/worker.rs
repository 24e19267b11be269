//! The engine thread: owns the model, the KV cache, the scheduler and every active
//! request's sampler and output state. Each iteration takes the commands that arrived,
//! drops requests whose receiver is gone, plans a step, runs one forward pass for the whole
//! batch (computing the grammar masks of constrained sequences on a second thread while it
//! runs), samples, and streams the resulting events.

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{mpsc, Arc};
use std::time::Instant;

use kaiyuan_grammar::{Constraint, GrammarError, TokenMask};
use kaiyuan_kernels::threads::ThreadPool;
use kaiyuan_model::{BatchSeq, KvCache, LogitsWanted, Model, Scratch};
use kaiyuan_tokenizer::Tokenizer;
use tokio::sync::mpsc::UnboundedSender;

use crate::handle::{Command, EngineConfig, Submission};
use crate::metrics::EngineMetrics;
use crate::output::Output;
use crate::request::{Event, FinishReason, Finished, RequestId, TokenEvent, Usage};
use crate::sampling::{Sampler, TokenHistory};
use crate::scheduler::{Chunk, Scheduler, SeqState};

/// A request the engine is working on, apart from its scheduler state.
struct Active<'t> {
    output: Output<'t>,
    sampler: Sampler,
    /// Structured output: the grammar state, and the mask of the next sample once computed.
    constraint: Option<Constraint>,
    mask: Option<Result<TokenMask, GrammarError>>,
    history: TokenHistory,
    events: UnboundedSender<Event>,
    submitted: Instant,
    first_token: Option<Instant>,
    last_token: Option<Instant>,
    prompt_tokens: usize,
    cached_tokens: usize,
    /// Still counted in the `queued` gauge (never admitted yet).
    queued: bool,
}

struct Worker<'a> {
    model: &'a Model,
    tok: &'a Tokenizer,
    eog: Vec<u32>,
    pool: ThreadPool,
    kv: KvCache,
    scratch: Scratch,
    sched: Scheduler,
    active: HashMap<RequestId, Active<'a>>,
    metrics: Arc<EngineMetrics>,
    /// Set by a shutdown command: requests still running then end with `Shutdown`.
    deadline: Option<Instant>,
    logits: Vec<f32>,
}

pub(crate) fn run(
    model: Model,
    kv: KvCache,
    tok: Arc<Tokenizer>,
    config: EngineConfig,
    eog: Vec<u32>,
    rx: mpsc::Receiver<Command>,
    metrics: Arc<EngineMetrics>,
) {
    let num_blocks = kv.num_blocks();
    let mut w = Worker {
        model: &model,
        tok: &tok,
        eog,
        pool: ThreadPool::new(config.threads),
        kv,
        scratch: Scratch::new(),
        sched: Scheduler::new(num_blocks, config.max_seqs, config.max_batch_tokens),
        active: HashMap::new(),
        metrics,
        deadline: None,
        logits: Vec::new(),
    };
    w.run(rx);
}

impl<'a> Worker<'a> {
    fn run(&mut self, rx: mpsc::Receiver<Command>) {
        loop {
            if !self.take_commands(&rx) {
                // Every handle is gone: nobody can receive events any more.
                self.end_all(FinishReason::Cancelled);
                return;
            }
            self.drop_abandoned();
            if let Some(deadline) = self.deadline {
                if self.sched.is_idle() {
                    return;
                }
                if Instant::now() >= deadline {
                    self.end_all(FinishReason::Shutdown);
                    return;
                }
            }
            if !self.sched.is_idle() {
                self.step();
            }
            self.update_gauges();
        }
    }

    /// Applies the pending commands; blocks for one when there is nothing to do. False when
    /// the channel is closed.
    fn take_commands(&mut self, rx: &mpsc::Receiver<Command>) -> bool {
        if self.sched.is_idle() && self.deadline.is_none() {
            match rx.recv() {
                Ok(cmd) => self.apply(cmd),
                Err(_) => return false,
            }
        }
        loop {
            match rx.try_recv() {
                Ok(cmd) => self.apply(cmd),
                Err(mpsc::TryRecvError::Empty) => return true,
                Err(mpsc::TryRecvError::Disconnected) => return !self.sched.is_idle(),
            }
        }
    }

    fn apply(&mut self, cmd: Command) {
        match cmd {
            Command::Submit(s) => self.accept(*s),
            Command::Cancel(id) => self.end(id, FinishReason::Cancelled, String::new()),
            Command::Shutdown { deadline } => self.deadline = Some(deadline),
            Command::InjectPanic => panic!("injected engine failure (test hook)"),
        }
    }

    fn accept(&mut self, s: Submission) {
        let Submission {
            id,
            mut request,
            sampler,
            events,
            submitted,
        } = s;
        let mut history = TokenHistory::new();
        history.push_prompt(&request.prompt);
        let active = Active {
            output: Output::new(self.tok, &request, &self.eog),
            sampler,
            constraint: request.constraint.take(),
            mask: None,
            history,
            events,
            submitted,
            first_token: None,
            last_token: None,
            prompt_tokens: request.prompt.len(),
            cached_tokens: 0,
            queued: true,
        };
        self.active.insert(id, active);
        self.sched.add(SeqState::new(id, request.prompt));
    }

    /// Cancels requests whose receiver was dropped (client gone).
    fn drop_abandoned(&mut self) {
        let gone: Vec<RequestId> = self
            .active
            .iter()
            .filter(|(_, a)| a.events.is_closed())
            .map(|(&id, _)| id)
            .collect();
        for id in gone {
            self.end(id, FinishReason::Cancelled, String::new());
        }
    }

    fn end_all(&mut self, reason: FinishReason) {
        let ids: Vec<RequestId> = self.active.keys().copied().collect();
        for id in ids {
            self.end(id, reason.clone(), String::new());
        }
    }

    /// Finishes a request: frees its blocks, sends `Finished`, counts it.
    fn end(&mut self, id: RequestId, reason: FinishReason, text: String) {
        self.sched.remove(id);
        let Some(a) = self.active.remove(&id) else {
            return;
        };
        let m = &self.metrics;
        if a.queued {
            m.queued.fetch_sub(1, Relaxed);
        }
        let counter = match reason {
            FinishReason::Stop | FinishReason::Length => &m.requests_finished,
            FinishReason::Cancelled | FinishReason::Shutdown => &m.requests_cancelled,
            FinishReason::Error(_) => &m.requests_failed,
        };
        counter.fetch_add(1, Relaxed);
        // Gauges first, so that whoever sees `Finished` sees the blocks freed.
        self.update_gauges();
        let _ = a.events.send(Event::Finished(Finished {
            reason,
            text,
            usage: Usage {
                prompt_tokens: a.prompt_tokens,
                completion_tokens: a.output.generated(),
                cached_tokens: a.cached_tokens,
            },
            time_to_first_token: a.first_token.map(|t| t - a.submitted),
            stop_index: a.output.matched_stop(),
        }));
    }

    /// One scheduling step and forward pass.
    fn step(&mut self) {
        let plan = self.sched.schedule();
        self.metrics
            .preemptions
            .fetch_add(plan.preempted.len() as u64, Relaxed);
        for &(id, cached) in &plan.admitted {
            if let Some(a) = self.active.get_mut(&id) {
                a.queued = false;
                a.cached_tokens = cached;
                self.metrics.queued.fetch_sub(1, Relaxed);
                self.metrics
                    .prompt_tokens
                    .fetch_add(a.prompt_tokens as u64, Relaxed);
                self.metrics
                    .cached_prompt_tokens
                    .fetch_add(cached as u64, Relaxed);
                let _ = a.events.send(Event::Scheduled {
                    cached_tokens: cached,
                });
            }
        }
        if plan.chunks.is_empty() {
            self.unblock();
            return;
        }
        // Grammar masks for the rows about to be sampled: they depend only on tokens already
        // committed, so a second thread computes them while the forward pass runs.
        let constrained: Vec<(RequestId, Constraint)> = plan
            .chunks
            .iter()
            .filter(|c| c.wants_logits)
            .filter_map(|c| {
                let id = self.sched.running()[c.seq].id;
                let constraint = self.active.get_mut(&id)?.constraint.take()?;
                Some((id, constraint))
            })
            .collect();
        let (result, masks) = std::thread::scope(|scope| {
            let masker = (!constrained.is_empty()).then(|| {
                scope.spawn(move || {
                    constrained
                        .into_iter()
                        .map(|(id, mut c)| {
                            let mask = c.compute_mask();
                            (id, c, mask)
                        })
                        .collect::<Vec<_>>()
                })
            });
            let running = self.sched.running();
            let batch: Vec<BatchSeq> = plan
                .chunks
                .iter()
                .map(|c| {
                    let s = &running[c.seq];
                    BatchSeq {
                        tokens: &s.tokens[s.num_computed..s.num_computed + c.len],
                        start_pos: s.num_computed,
                        block_table: &s.blocks,
                        want_logits: if c.wants_logits {
                            LogitsWanted::Last
                        } else {
                            LogitsWanted::None
                        },
                    }
                })
                .collect();
            let result = self
                .model
                .forward(&self.pool, &mut self.kv, &batch, &mut self.scratch);
            // A panic in the mask thread propagates: the matcher catches its own.
            let masks = masker.map(|h| match h.join() {
                Ok(masks) => masks,
                Err(panic) => std::panic::resume_unwind(panic),
            });
            (result, masks)
        });
        for (id, constraint, mask) in masks.into_iter().flatten() {
            if let Some(a) = self.active.get_mut(&id) {
                a.constraint = Some(constraint);
                a.mask = Some(mask);
            }
        }
        self.metrics.steps.fetch_add(1, Relaxed);
        let computed: usize = plan.chunks.iter().map(|c| c.len).sum();
        self.metrics
            .computed_tokens
            .fetch_add(computed as u64, Relaxed);
        let logits = match result {
            Ok(l) => l,
            Err(e) => {
                let ids: Vec<RequestId> = plan
                    .chunks
                    .iter()
                    .map(|c| self.sched.running()[c.seq].id)
                    .collect();
                for id in ids {
                    self.end(
                        id,
                        FinishReason::Error(format!("forward pass failed: {e}")),
                        String::new(),
                    );
                }
                return;
            }
        };
        self.sched.complete(&plan.chunks);
        let mut finished = Vec::new();
        for (batch_index, c) in plan.chunks.iter().enumerate() {
            if !c.wants_logits {
                continue;
            }
            let Some(row) = logits.get(batch_index, c.len - 1) else {
                continue;
            };
            self.logits.clear();
            self.logits.extend_from_slice(row);
            if let Some(done) = self.sample(c) {
                finished.push(done);
            }
        }
        for (id, reason, text) in finished {
            self.end(id, reason, text);
        }
    }

    /// Samples the next token of the sequence of chunk `c` from `self.logits`, streams it,
    /// and says whether (and how) the request ended.
    fn sample(&mut self, c: &Chunk) -> Option<(RequestId, FinishReason, String)> {
        let seq = &mut self.sched.running_mut()[c.seq];
        let id = seq.id;
        let a = self.active.get_mut(&id)?;
        let mask = match a.mask.take() {
            None => None,
            Some(Ok(mask)) => Some(mask),
            Some(Err(e)) => return Some((id, FinishReason::Error(e.to_string()), String::new())),
        };
        let sampled = match a
            .sampler
            .sample_masked(&mut self.logits, &a.history, mask.as_ref())
        {
            Ok(s) => s,
            Err(e) => return Some((id, FinishReason::Error(e.to_string()), String::new())),
        };
        if let Some(constraint) = &mut a.constraint {
            if let Err(e) = constraint.commit(sampled.token) {
                return Some((id, FinishReason::Error(e.to_string()), String::new()));
            }
        }
        let now = Instant::now();
        match a.last_token {
            None => {
                a.first_token = Some(now);
                self.metrics.time_to_first_token.observe(now - a.submitted);
            }
            Some(prev) => self.metrics.inter_token_latency.observe(now - prev),
        }
        a.last_token = Some(now);
        self.metrics.generated_tokens.fetch_add(1, Relaxed);
        a.history.push(sampled.token);
        seq.tokens.push(sampled.token);
        let mut step = a.output.push(sampled.token);
        if step.finish.is_none() && a.constraint.as_ref().is_some_and(Constraint::is_finished) {
            // The grammar is complete: nothing may follow.
            let (rest, reason) = a.output.end_here();
            step.text.push_str(&rest);
            step.finish = Some(reason);
        }
        let mut tail = step.text;
        if step.visible {
            let _ = a.events.send(Event::Token(TokenEvent {
                id: sampled.token,
                text: std::mem::take(&mut tail),
                logprob: sampled.logprob,
                top_logprobs: sampled.top,
            }));
        }
        // A token that ended the request by id is not shown; what the decoder still held
        // goes out with `Finished`.
        step.finish.map(|r| (id, r, tail))
    }

    /// Nothing could be scheduled although requests wait. Running sequences would have
    /// been planned, so the queue's head needs more KV blocks than the whole pool frees:
    /// fail it rather than spin.
    fn unblock(&mut self) {
        if self.sched.running().is_empty() {
            if let Some(id) = self.sched.first_waiting() {
                self.end(
                    id,
                    FinishReason::Error(
                        "the request needs more KV cache blocks than the pool holds (raise --kv-tokens)"
                            .into(),
                    ),
                    String::new(),
                );
            }
        }
    }

    fn update_gauges(&self) {
        let m = &self.metrics;
        let pool = self.sched.pool();
        m.running.store(self.sched.running().len() as u64, Relaxed);
        m.kv_blocks_used.store(pool.num_used() as u64, Relaxed);
        m.kv_blocks_cached
            .store(pool.num_cached_free() as u64, Relaxed);
    }
}
