//! What every handler shares: the model registry (the configured models, loaded on
//! demand; ready once the start-up models are installed), the server's settings, and the
//! counters the engines do not keep (requests refused before reaching an engine).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kaiyuan_chat::ChatTemplate;
use kaiyuan_engine::EngineHandle;
use kaiyuan_grammar::GrammarVocab;
use kaiyuan_tokenizer::Tokenizer;

use crate::api::reasoning::{ReasoningFormat, TemplateReasoning};
use crate::error::ApiError;
use crate::models::{ModelEntry, Registry, RegistryConfig};

/// One loaded model with its engine.
pub struct ServedModel {
    /// The name clients use: the alias given on the command line, else the file stem.
    pub name: String,
    /// The file stem (also accepted as `model`).
    pub stem: String,
    pub engine: EngineHandle,
    pub tokenizer: Arc<Tokenizer>,
    pub template: ChatTemplate,
    /// Whether the template can think, and be switched (read from its source).
    pub reasoning: TemplateReasoning,
    /// The vocabulary prepared for structured output (or why it could not be): prepared on
    /// a thread of its own from start-up (Gemma 3's 262k tokens take about a second), so
    /// that neither loading nor the first constrained request waits for all of it.
    grammar: Arc<OnceLock<Result<Arc<GrammarVocab>, String>>>,
    /// Requests refused for this model before or at the engine's door.
    pub counters: RefusalCounters,
    /// Request fields (`temperature`, `top_p`, `max_tokens`…) used where a chat or
    /// completion request leaves them out (a models file's `sampling`).
    pub sampling_defaults: serde_json::Map<String, serde_json::Value>,
}

impl ServedModel {
    pub fn new(
        name: String,
        stem: String,
        engine: EngineHandle,
        tokenizer: Arc<Tokenizer>,
        template: ChatTemplate,
    ) -> ServedModel {
        let grammar = Arc::new(OnceLock::new());
        {
            let (grammar, tokenizer) = (Arc::clone(&grammar), Arc::clone(&tokenizer));
            let eog = engine.end_of_generation_ids().to_vec();
            // If the thread cannot start, the first constrained request prepares it.
            let _ = std::thread::Builder::new()
                .name("kaiyuan-grammar-vocab".into())
                .spawn(move || {
                    grammar.get_or_init(|| prepare_grammar(tokenizer, &eog));
                });
        }
        ServedModel {
            name,
            stem,
            engine,
            tokenizer,
            reasoning: TemplateReasoning::of_template(&template),
            template,
            grammar,
            counters: RefusalCounters::default(),
            sampling_defaults: serde_json::Map::new(),
        }
    }

    /// Sets the default sampling fields (see [`ServedModel::sampling_defaults`]).
    pub fn with_defaults(mut self, defaults: serde_json::Map<String, serde_json::Value>) -> Self {
        self.sampling_defaults = defaults;
        self
    }

    /// `body` with the default sampling fields it lacks, or `None` when there is nothing to
    /// add (no defaults, or the body is not an object: validation reports that).
    /// `max_tokens` is not added when the body has `max_completion_tokens`.
    pub fn with_sampling_defaults(&self, body: &serde_json::Value) -> Option<serde_json::Value> {
        let obj = body.as_object()?;
        let missing: Vec<_> = self
            .sampling_defaults
            .iter()
            .filter(|(k, _)| !obj.contains_key(k.as_str()))
            .filter(|(k, _)| {
                !(k.as_str() == "max_tokens" && obj.contains_key("max_completion_tokens"))
            })
            .collect();
        if missing.is_empty() {
            return None;
        }
        let mut obj = obj.clone();
        for (k, v) in missing {
            obj.insert(k.clone(), v.clone());
        }
        Some(serde_json::Value::Object(obj))
    }

    /// The vocabulary prepared for structured output; blocks until it is ready (call it
    /// off the async runtime's threads).
    pub fn grammar_vocab(&self) -> Result<Arc<GrammarVocab>, String> {
        self.grammar
            .get_or_init(|| {
                prepare_grammar(
                    Arc::clone(&self.tokenizer),
                    self.engine.end_of_generation_ids(),
                )
            })
            .clone()
    }
}

fn prepare_grammar(tokenizer: Arc<Tokenizer>, eog: &[u32]) -> Result<Arc<GrammarVocab>, String> {
    GrammarVocab::new(tokenizer, eog)
        .map(Arc::new)
        .map_err(|e| e.to_string())
}

/// Requests that never ran, by why.
#[derive(Default)]
pub struct RefusalCounters {
    pub queue_full: AtomicU64,
    pub invalid: AtomicU64,
    pub shutting_down: AtomicU64,
}

impl RefusalCounters {
    /// Counts `e` under its kind (errors that are not refusals are not counted).
    pub fn count(&self, e: &ApiError) {
        let counter = match e {
            ApiError::QueueFull { .. } => &self.queue_full,
            ApiError::ShuttingDown => &self.shutting_down,
            ApiError::Invalid { .. } | ApiError::Unsupported { .. } => &self.invalid,
            _ => return,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// The server's settings.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Models installed at start by `Server::set_models` (known before loading), in
    /// command-line order; more come with `Server::add_models`.
    pub model_names: Vec<String>,
    /// Keep-alive, memory budget and load wait of the models loaded on demand.
    pub registry: RegistryConfig,
    /// Accepted bearer keys (unmetered); empty and no metering: no authentication.
    pub api_keys: Vec<String>,
    /// Issued keys, usage, budgets and limits, and the admin API (`--admin-key`); `None`:
    /// off.
    pub metering: Option<crate::metering::MeteringConfig>,
    /// Largest request body in bytes.
    pub body_limit: usize,
    /// How long running requests may take to finish after a shutdown signal.
    pub grace_period: Duration,
    /// Chat: split reasoning into `reasoning_content`, or leave it in `content`.
    pub reasoning_format: ReasoningFormat,
    /// Chat: whether templates that can switch thinking render with it on when a request
    /// does not say (`--thinking on|off`).
    pub thinking: bool,
    /// Prompts rendered and tokenized at once (CPU work before a request reaches the
    /// engine); more wait. Default: the number of CPUs.
    pub prompt_workers: usize,
    /// Serve the web UI (`/`, `/admin`, `/ui/*`); `--no-ui` turns it off.
    pub ui: bool,
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            model_names: Vec::new(),
            registry: RegistryConfig::default(),
            api_keys: Vec::new(),
            metering: None,
            body_limit: 4 * 1024 * 1024,
            grace_period: Duration::from_secs(10),
            reasoning_format: ReasoningFormat::Deepseek,
            thinking: true,
            prompt_workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
            ui: true,
        }
    }
}

/// Shared by all handlers.
pub struct AppState {
    pub config: ServerConfig,
    /// Every configured model and which are loaded.
    pub registry: Registry,
    /// The start-up models are installed (`/health` 200).
    ready: AtomicBool,
    shutting_down: AtomicBool,
    /// Unix seconds when the server started (`created` of the model list).
    pub started: u64,
    /// Bounds the prompt work running at once (`ServerConfig::prompt_workers`). Requests
    /// waiting for it already hold their engine queue places, so a flood of large prompts
    /// is refused by the queue limit instead of piling up CPU work.
    pub prompt_work: tokio::sync::Semaphore,
}

impl AppState {
    pub fn new(config: ServerConfig) -> AppState {
        let registry = Registry::new(config.registry);
        for name in &config.model_names {
            // Names are unique here (the CLI checked); a duplicate just stays one entry.
            let _ = registry.add(ModelEntry {
                name: name.clone(),
                aliases: Vec::new(),
                pinned: true,
                bytes: 0,
                memory_bytes: 0,
                context: None,
                load: None,
            });
        }
        AppState {
            prompt_work: tokio::sync::Semaphore::new(config.prompt_workers.max(1)),
            config,
            registry,
            ready: AtomicBool::new(false),
            shutting_down: AtomicBool::new(false),
            started: unix_now(),
        }
    }

    /// Installs the start-up models (loaded, under their names) and opens for requests;
    /// `false` if that already happened. Models that arrive after a shutdown began are
    /// shut down at once.
    pub fn set_models(&self, models: Vec<ServedModel>) -> bool {
        if self.ready.load(Ordering::Acquire) {
            return false;
        }
        for m in models {
            self.registry.install(m);
        }
        self.ready.store(true, Ordering::Release);
        if self.is_shutting_down() {
            self.begin_shutdown(Duration::ZERO);
        }
        true
    }

    /// The loaded models, or `None` while the start-up models load.
    pub fn models(&self) -> Option<Vec<Arc<ServedModel>>> {
        self.ready
            .load(Ordering::Acquire)
            .then(|| self.registry.loaded())
    }

    /// Picks the model a request names (a configured name or alias; absent: the first
    /// configured model), loading it if needed. An unknown name is 404 `model_not_found`
    /// naming the models there are, also when only one is served.
    pub async fn resolve(&self, requested: Option<&str>) -> Result<Arc<ServedModel>, ApiError> {
        if self.is_shutting_down() {
            return Err(ApiError::ShuttingDown);
        }
        if !self.ready.load(Ordering::Acquire) {
            return Err(ApiError::Loading);
        }
        let Some(name) = self.registry.canonical(requested) else {
            return Err(ApiError::ModelNotFound {
                model: requested.unwrap_or_default().to_string(),
                available: self.registry.names().join(", "),
            });
        };
        crate::metering::check_model_allowed(&name)?;
        self.registry.acquire(&name).await
    }

    /// Stops every engine (running requests get `grace` to finish); new requests get 503.
    pub fn begin_shutdown(&self, grace: Duration) {
        self.shutting_down.store(true, Ordering::Release);
        self.registry.shutdown_all(grace);
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Acquire)
    }

    /// The first loaded model whose engine thread has died, with why.
    pub fn engine_failure(&self) -> Option<EngineFailure> {
        self.registry.loaded().iter().find_map(|m| {
            m.engine.failure().map(|reason| EngineFailure {
                model: m.name.clone(),
                reason,
            })
        })
    }
}

/// A served model whose engine died (it panicked or exited without a shutdown request):
/// its requests get 503 and `/health` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineFailure {
    /// The model's name as clients use it.
    pub model: String,
    /// Why, from the engine (the panic message).
    pub reason: String,
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
