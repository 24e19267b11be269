//! What every handler shares: the served models (set once loading ends), the server's
//! settings, and the counters the engines do not keep (requests refused before reaching
//! an engine).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kaiyuan_chat::ChatTemplate;
use kaiyuan_engine::EngineHandle;
use kaiyuan_grammar::GrammarVocab;
use kaiyuan_tokenizer::Tokenizer;

use crate::api::reasoning::{ReasoningFormat, TemplateReasoning};
use crate::error::ApiError;

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
            reasoning: TemplateReasoning::of_source(template.source()),
            template,
            grammar,
            counters: RefusalCounters::default(),
        }
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

    fn answers_to(&self, requested: &str) -> bool {
        requested == self.name || requested == self.stem
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
    /// The names of the models being served, in command-line order (known before loading).
    pub model_names: Vec<String>,
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
    models: OnceLock<Vec<Arc<ServedModel>>>,
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
        AppState {
            prompt_work: tokio::sync::Semaphore::new(config.prompt_workers.max(1)),
            config,
            models: OnceLock::new(),
            shutting_down: AtomicBool::new(false),
            started: unix_now(),
        }
    }

    /// Installs the loaded models; `false` if they were already set. Models that arrive
    /// after a shutdown began are shut down at once.
    pub fn set_models(&self, models: Vec<ServedModel>) -> bool {
        let set = self
            .models
            .set(models.into_iter().map(Arc::new).collect())
            .is_ok();
        if self.is_shutting_down() {
            self.begin_shutdown(Duration::ZERO);
        }
        set
    }

    /// The loaded models, or `None` while loading.
    pub fn models(&self) -> Option<&[Arc<ServedModel>]> {
        self.models.get().map(Vec::as_slice)
    }

    /// Picks the model a request names. With one model served, any name (or none) picks
    /// it, as llama-server does; with several, the name must match one (alias or file
    /// stem), or be absent for the first.
    pub fn resolve(&self, requested: Option<&str>) -> Result<Arc<ServedModel>, ApiError> {
        if self.is_shutting_down() {
            return Err(ApiError::ShuttingDown);
        }
        let models = self.models().ok_or(ApiError::Loading)?;
        let found = match (models, requested) {
            ([only], _) => Some(only),
            (all, None) => all.first(),
            (all, Some(name)) => all.iter().find(|m| m.answers_to(name)),
        };
        found
            .cloned()
            .ok_or_else(|| ApiError::ModelNotFound(requested.unwrap_or_default().to_string()))
    }

    /// Stops every engine (running requests get `grace` to finish); new requests get 503.
    pub fn begin_shutdown(&self, grace: Duration) {
        self.shutting_down.store(true, Ordering::Release);
        for model in self.models().unwrap_or_default() {
            model.engine.shutdown(grace);
        }
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Acquire)
    }

    /// The first served model whose engine thread has died, with why.
    pub fn engine_failure(&self) -> Option<EngineFailure> {
        self.models().unwrap_or_default().iter().find_map(|m| {
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
