//! The model registry: every configured model (name, aliases, how to load it), which are
//! loaded, loading on first request, unloading after `keep_alive` idle, and the memory
//! budget (`max_loaded_bytes`) kept by unloading the least recently used idle model.
//!
//! One `std::sync::Mutex` guards the table and is never held across an `.await` or a load:
//! a load runs on a thread of its own and publishes its result through a `watch` channel
//! that every waiting request holds, so requests for other models keep being served.
//! A model is *busy* while a handler holds its `Arc<ServedModel>` (resolution to
//! submission; streams keep it to their end) or its engine has requests queued or running;
//! only idle models are unloaded, by keep-alive or to make room. Pinned models (`-m`, and
//! `pinned = true` in a models file) are never unloaded by either.

mod card;

pub use card::model_card;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::error::ApiError;
use crate::state::ServedModel;

/// Loads a model and starts its engine (blocking; runs on a thread of its own). The error
/// is shown to the requests that waited for the load.
pub type LoadFn = Arc<dyn Fn() -> Result<ServedModel, String> + Send + Sync>;

/// A model the server may serve.
pub struct ModelEntry {
    /// The name clients use and `/v1/models` lists.
    pub name: String,
    /// Other names that resolve to it (a file stem, short names).
    pub aliases: Vec<String>,
    /// Never unloaded by keep-alive or to make room.
    pub pinned: bool,
    /// Size of its file(s) (`size_bytes` in `/v1/models`).
    pub bytes: u64,
    /// What it holds in memory when loaded, counted against `max_loaded_bytes`: the
    /// weights plus the KV pool at its fullest.
    pub memory_bytes: u64,
    /// Positions one request may use, when known before loading (listed by `/v1/models`).
    pub context: Option<usize>,
    /// How to load it; `None` for a model only ever installed by `Server::set_models`.
    pub load: Option<LoadFn>,
}

/// How the registry keeps models loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegistryConfig {
    /// Idle time after which an unpinned model is unloaded; `None`: never.
    pub keep_alive: Option<Duration>,
    /// Bytes of loaded models at most (`ModelEntry::memory_bytes`); `None`: no limit.
    pub max_loaded_bytes: Option<u64>,
    /// How long a request waits for its model to load (or for room to load it) before
    /// it gets 503.
    pub load_wait: Duration,
}

impl Default for RegistryConfig {
    fn default() -> RegistryConfig {
        RegistryConfig {
            keep_alive: Some(Duration::from_secs(300)),
            max_loaded_bytes: None,
            load_wait: Duration::from_secs(120),
        }
    }
}

/// A load's outcome, as its waiters see it: the model as a `Weak`, so that the channel (which
/// lives as long as its sender or any receiver) never keeps a model counted busy after its
/// waiters are done; the table holds the model itself.
type LoadResult = Option<Result<Weak<ServedModel>, String>>;

enum Slot {
    Unloaded,
    Loading(watch::Receiver<LoadResult>),
    Loaded(Arc<ServedModel>),
}

struct Entry {
    spec: ModelEntry,
    slot: Slot,
    last_used: Instant,
}

impl Entry {
    fn answers_to(&self, name: &str) -> bool {
        self.spec.name == name || self.spec.aliases.iter().any(|a| a == name)
    }

    /// Bytes it holds or is about to hold.
    fn resident_bytes(&self) -> u64 {
        match self.slot {
            Slot::Unloaded => 0,
            _ => self.spec.memory_bytes,
        }
    }
}

/// Whether a loaded model is idle: nobody holds it but the registry, and its engine has
/// nothing queued or running.
fn is_idle(model: &Arc<ServedModel>) -> bool {
    if Arc::strong_count(model) > 1 {
        return false;
    }
    let m = model.engine.metrics();
    m.queued == 0 && m.running == 0
}

/// What one configured model looks like now (for `/v1/models` and the admin API).
pub struct ModelStatus {
    pub name: String,
    pub aliases: Vec<String>,
    pub pinned: bool,
    pub bytes: u64,
    pub memory_bytes: u64,
    pub context: Option<usize>,
    pub loading: bool,
    pub model: Option<Arc<ServedModel>>,
}

/// Why an unload happened (logged).
#[derive(Clone, Copy, Debug)]
enum UnloadReason {
    Idle,
    MakeRoom,
    Admin,
}

/// The table of configured models.
pub struct Registry {
    config: RegistryConfig,
    /// Shared with the loader threads, which put what they loaded in place.
    entries: Arc<Mutex<Vec<Entry>>>,
    /// Set at shutdown: a model that finishes loading after it is shut down at once.
    closed: Arc<AtomicBool>,
}

fn lock(m: &Mutex<Vec<Entry>>) -> MutexGuard<'_, Vec<Entry>> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Registry {
    pub fn new(config: RegistryConfig) -> Registry {
        Registry {
            config,
            entries: Arc::new(Mutex::new(Vec::new())),
            closed: Arc::new(AtomicBool::new(false)),
        }
    }

    pub fn config(&self) -> RegistryConfig {
        self.config
    }

    /// Adds a model (or replaces the entry of the same name, keeping what is loaded). A
    /// name or alias that another model already answers to is an error naming both.
    pub fn add(&self, spec: ModelEntry) -> Result<(), String> {
        let mut entries = lock(&self.entries);
        for name in std::iter::once(&spec.name).chain(&spec.aliases) {
            if let Some(other) = entries
                .iter()
                .find(|e| e.spec.name != spec.name && e.answers_to(name))
            {
                return Err(format!(
                    "the name {name:?} of model {:?} is already used by model {:?}",
                    spec.name, other.spec.name
                ));
            }
        }
        match entries.iter_mut().find(|e| e.spec.name == spec.name) {
            Some(e) => e.spec = spec,
            None => entries.push(Entry {
                spec,
                slot: Slot::Unloaded,
                last_used: Instant::now(),
            }),
        }
        Ok(())
    }

    /// Installs an already loaded model under its name (added, pinned, if not configured).
    pub fn install(&self, model: ServedModel) {
        let mut entries = lock(&self.entries);
        let model = Arc::new(model);
        // The file stem is accepted too, unless another model answers to it.
        let stem_free = !entries
            .iter()
            .any(|e| e.spec.name != model.name && e.answers_to(&model.stem));
        match entries.iter_mut().find(|e| e.spec.name == model.name) {
            Some(e) => {
                if stem_free && !e.answers_to(&model.stem) {
                    e.spec.aliases.push(model.stem.clone());
                }
                e.slot = Slot::Loaded(model);
                e.last_used = Instant::now();
            }
            None => entries.push(Entry {
                spec: ModelEntry {
                    name: model.name.clone(),
                    aliases: (stem_free && model.stem != model.name)
                        .then(|| model.stem.clone())
                        .into_iter()
                        .collect(),
                    pinned: true,
                    bytes: 0,
                    memory_bytes: 0,
                    context: Some(model.engine.info().context),
                    load: None,
                },
                slot: Slot::Loaded(model),
                last_used: Instant::now(),
            }),
        }
    }

    /// Configured names, in order.
    pub fn names(&self) -> Vec<String> {
        lock(&self.entries)
            .iter()
            .map(|e| e.spec.name.clone())
            .collect()
    }

    /// The canonical name `requested` resolves to (name or alias), or the first model's
    /// when `None`.
    pub fn canonical(&self, requested: Option<&str>) -> Option<String> {
        let entries = lock(&self.entries);
        let found = match requested {
            None => entries.first(),
            Some(name) => entries.iter().find(|e| e.answers_to(name)),
        };
        found.map(|e| e.spec.name.clone())
    }

    /// The models loaded now.
    pub fn loaded(&self) -> Vec<Arc<ServedModel>> {
        lock(&self.entries)
            .iter()
            .filter_map(|e| match &e.slot {
                Slot::Loaded(m) => Some(Arc::clone(m)),
                _ => None,
            })
            .collect()
    }

    /// Every configured model's state.
    pub fn status(&self) -> Vec<ModelStatus> {
        lock(&self.entries)
            .iter()
            .map(|e| ModelStatus {
                name: e.spec.name.clone(),
                aliases: e.spec.aliases.clone(),
                pinned: e.spec.pinned,
                bytes: e.spec.bytes,
                memory_bytes: e.spec.memory_bytes,
                context: e.spec.context,
                loading: matches!(e.slot, Slot::Loading(_)),
                model: match &e.slot {
                    Slot::Loaded(m) => Some(Arc::clone(m)),
                    _ => None,
                },
            })
            .collect()
    }

    /// The loaded model called `name` (canonical), loading it first if needed: waits at
    /// most `load_wait` for the load, or for room under the budget (503 after), and
    /// reports a failed load as 503 `model_load_failed`.
    pub async fn acquire(&self, name: &str) -> Result<Arc<ServedModel>, ApiError> {
        let deadline = tokio::time::Instant::now() + self.config.load_wait;
        loop {
            let mut waiting = match self.try_acquire(name)? {
                Acquired::Ready(m) => return Ok(m),
                Acquired::Wait(rx) => rx,
                Acquired::NoRoom(why) => {
                    if tokio::time::Instant::now() >= deadline {
                        return Err(unavailable(name, "model_no_room", why));
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let done = tokio::time::timeout_at(deadline, waiting.wait_for(Option::is_some)).await;
            let outcome = match done {
                Err(_) => {
                    return Err(unavailable(
                        name,
                        "model_loading",
                        format!(
                            "it is still loading after {:.0} s; retry later",
                            self.config.load_wait.as_secs_f64()
                        ),
                    ))
                }
                // The loader thread could not start: the table is unloaded again.
                Ok(Err(_)) => {
                    return Err(unavailable(
                        name,
                        "model_load_failed",
                        "its loader could not start".into(),
                    ))
                }
                Ok(Ok(r)) => r.clone(),
            };
            match outcome {
                // The waiter's `Arc` keeps it busy from here on; if it was unloaded in the
                // moment since the load ended, the next turn loads it again.
                Some(Ok(m)) => match m.upgrade() {
                    Some(m) => return Ok(m),
                    None => continue,
                },
                Some(Err(e)) => {
                    return Err(unavailable(
                        name,
                        "model_load_failed",
                        format!("it failed to load: {e}"),
                    ))
                }
                None => continue,
            }
        }
    }

    fn try_acquire(&self, name: &str) -> Result<Acquired, ApiError> {
        let mut entries = lock(&self.entries);
        let Some(idx) = entries.iter().position(|e| e.spec.name == name) else {
            return Err(ApiError::ModelNotFound {
                model: name.to_string(),
                available: available(&entries),
            });
        };
        match &entries[idx].slot {
            Slot::Loaded(m) => {
                let m = Arc::clone(m);
                entries[idx].last_used = Instant::now();
                return Ok(Acquired::Ready(m));
            }
            Slot::Loading(rx) => return Ok(Acquired::Wait(rx.clone())),
            Slot::Unloaded => {}
        }
        let Some(load) = entries[idx].spec.load.clone() else {
            return Err(ApiError::Loading);
        };
        let victims = match self.make_room(&mut entries, idx) {
            Ok(v) => v,
            Err(Room::Never(why)) => return Err(unavailable(name, "model_no_room", why)),
            Err(Room::NotNow(why)) => return Ok(Acquired::NoRoom(why)),
        };
        let (tx, rx) = watch::channel(None);
        entries[idx].slot = Slot::Loading(rx.clone());
        drop(entries);
        for (victim, model) in victims {
            retire(&victim, model, UnloadReason::MakeRoom, Duration::ZERO);
        }
        self.spawn_load(name.to_string(), load, tx);
        Ok(Acquired::Wait(rx))
    }

    /// Unloads least recently used idle unpinned models until `idx` fits the budget, and
    /// returns them (already marked unloaded) to be shut down outside the lock.
    fn make_room(
        &self,
        entries: &mut [Entry],
        idx: usize,
    ) -> Result<Vec<(String, Arc<ServedModel>)>, Room> {
        let Some(budget) = self.config.max_loaded_bytes else {
            return Ok(Vec::new());
        };
        let need = entries[idx].spec.memory_bytes;
        if need > budget {
            return Err(Room::Never(format!(
                "it needs {need} bytes, more than --max-loaded-bytes ({budget})"
            )));
        }
        let mut used: u64 = entries.iter().map(Entry::resident_bytes).sum();
        let mut candidates: Vec<usize> = (0..entries.len())
            .filter(|&i| {
                i != idx
                    && !entries[i].spec.pinned
                    && matches!(&entries[i].slot, Slot::Loaded(m) if is_idle(m))
            })
            .collect();
        candidates.sort_by_key(|&i| entries[i].last_used);
        let mut chosen = Vec::new();
        for i in candidates {
            if used + need <= budget {
                break;
            }
            used -= entries[i].spec.memory_bytes;
            chosen.push(i);
        }
        if used + need > budget {
            return Err(Room::NotNow(format!(
                "the loaded models that are busy or pinned leave less than the {need} bytes it needs under --max-loaded-bytes ({budget})"
            )));
        }
        Ok(chosen
            .into_iter()
            .filter_map(|i| take_loaded(&mut entries[i]))
            .collect())
    }

    /// Loads on a thread of its own; the thread puts the model in the table (or marks it
    /// unloaded again after a failure), then tells the waiting requests.
    fn spawn_load(&self, name: String, load: LoadFn, tx: watch::Sender<LoadResult>) {
        let entries = Arc::clone(&self.entries);
        let closed = Arc::clone(&self.closed);
        let started = Instant::now();
        let thread_name = format!("kaiyuan-load-{name}");
        let own_name = name.clone();
        let job = move || {
            let name = own_name;
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| load()))
                .unwrap_or_else(|_| Err("the loader panicked".to_string()))
                .map(Arc::new);
            match &result {
                Ok(_) => tracing::info!(
                    "loaded model {name} on request in {:.1} s",
                    started.elapsed().as_secs_f64()
                ),
                Err(e) => tracing::error!("cannot load model {name}: {e}"),
            }
            {
                let mut entries = lock(&entries);
                if let Some(e) = entries.iter_mut().find(|e| e.spec.name == name) {
                    e.last_used = Instant::now();
                    e.slot = match &result {
                        Ok(m) => {
                            if closed.load(Ordering::Acquire) {
                                m.engine.shutdown(Duration::ZERO);
                            }
                            Slot::Loaded(Arc::clone(m))
                        }
                        Err(_) => Slot::Unloaded,
                    };
                }
            }
            let outcome = result.as_ref().map(Arc::downgrade).map_err(Clone::clone);
            drop(result);
            let _ = tx.send(Some(outcome));
        };
        if let Err(e) = std::thread::Builder::new().name(thread_name).spawn(job) {
            // `job` (and with it `tx`) is dropped: the waiters see the channel close.
            tracing::error!(error = %e, "cannot start a thread to load a model");
            let mut entries = lock(&self.entries);
            if let Some(e) = entries.iter_mut().find(|e| e.spec.name == name) {
                e.slot = Slot::Unloaded;
            }
        }
    }

    /// Unloads unpinned models idle for longer than `keep_alive`; a busy model counts as
    /// used now.
    pub fn unload_idle(&self) {
        let Some(keep_alive) = self.config.keep_alive else {
            return;
        };
        let now = Instant::now();
        let mut retired = Vec::new();
        {
            let mut entries = lock(&self.entries);
            for e in entries.iter_mut().filter(|e| !e.spec.pinned) {
                let Slot::Loaded(m) = &e.slot else { continue };
                if !is_idle(m) {
                    e.last_used = now;
                } else if now.duration_since(e.last_used) >= keep_alive {
                    retired.extend(take_loaded(e));
                }
            }
        }
        for (name, model) in retired {
            retire(&name, model, UnloadReason::Idle, Duration::ZERO);
        }
    }

    /// Unloads `name` now (admin): its running requests get `grace` to finish. `false`
    /// if it was not loaded.
    pub fn unload(&self, name: &str, grace: Duration) -> bool {
        let taken = {
            let mut entries = lock(&self.entries);
            entries
                .iter_mut()
                .find(|e| e.spec.name == name)
                .and_then(take_loaded)
        };
        match taken {
            Some((name, model)) => {
                retire(&name, model, UnloadReason::Admin, grace);
                true
            }
            None => false,
        }
    }

    /// Shuts every loaded engine down (running requests get `grace`), leaving them in the
    /// table so that the server can join them.
    pub fn shutdown_all(&self, grace: Duration) {
        self.closed.store(true, Ordering::Release);
        for m in self.loaded() {
            m.engine.shutdown(grace);
        }
    }
}

enum Acquired {
    Ready(Arc<ServedModel>),
    Wait(watch::Receiver<LoadResult>),
    NoRoom(String),
}

enum Room {
    /// The model can never fit.
    Never(String),
    /// Not while the loaded models are busy.
    NotNow(String),
}

fn take_loaded(e: &mut Entry) -> Option<(String, Arc<ServedModel>)> {
    match std::mem::replace(&mut e.slot, Slot::Unloaded) {
        Slot::Loaded(m) => Some((e.spec.name.clone(), m)),
        other => {
            e.slot = other;
            None
        }
    }
}

/// Shuts an unloaded model's engine down (running requests get `grace`) and joins it on a
/// thread of its own (its memory is freed when the engine thread ends and the last handle
/// is dropped).
fn retire(name: &str, model: Arc<ServedModel>, why: UnloadReason, grace: Duration) {
    model.engine.shutdown(grace);
    let why = match why {
        UnloadReason::Idle => "idle for the keep-alive time",
        UnloadReason::MakeRoom => "to make room under --max-loaded-bytes",
        UnloadReason::Admin => "by the admin API",
    };
    tracing::info!("unloading model {name} ({why})");
    let _ = std::thread::Builder::new()
        .name("kaiyuan-unload".into())
        .spawn(move || model.engine.join());
}

fn available(entries: &[Entry]) -> String {
    entries
        .iter()
        .map(|e| e.spec.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn unavailable(model: &str, code: &'static str, reason: String) -> ApiError {
    ApiError::ModelUnavailable {
        model: model.to_string(),
        code,
        reason,
    }
}
