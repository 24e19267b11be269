//! `kaiyuan serve`: binds the address first (so `/health` answers 503 "loading" at once),
//! loads the pinned models (every `-m`, and `pinned` ones of `--models FILE`) and starts
//! their engines on a background thread, then serves the OpenAI-compatible API until
//! SIGINT/SIGTERM, when it shuts down gracefully and exits 0. The other models of a models
//! file load on their first request and unload after `--keep-alive` idle or to stay
//! within `--max-loaded-bytes` (the server's registry does that). All engines share one
//! worker pool of `--threads` threads.
//! If an engine thread dies, `/health` reports it and the server shuts down the same way
//! but exits 1, so that a supervisor restarts it (unless `--keep-running-on-engine-failure`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use kaiyuan_engine::Engine;
use kaiyuan_server::{EngineFailure, ReasoningFormat, ServedModel, Server, ServerConfig};

use kaiyuan_server::{ModelEntry, RegistryConfig};

use super::mapped::{self, FileWatch};
use super::model_file::{LoadArgs, ModelFile};
use super::model_ref::RefArgs;
use super::serve_metering::{self, MeteringArgs};
use super::serve_models::{parse_bytes, parse_keep_alive};
use super::serve_specs::{engine_config, file_specs, model_specs, thread_budget, ModelSpec};

/// The model served when no `-m` is given, looked up in `$KAIYUAN_MODELS` or `models/`.
pub const DEFAULT_MODEL: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

#[derive(clap::Args)]
#[command(after_help = "\
Endpoints: POST /v1/chat/completions, POST /v1/completions, GET /v1/models,
GET /v1/models/{id}, POST /tokenize, POST /detokenize, GET /v1/usage, GET /user/balance
(these need a key when --api-key or --admin-key is set), /admin/keys, /admin/usage and
POST /admin/models/{id}/load|unload (the admin key),
GET /health and GET /metrics (always open, for probes and scrapers); the web UI at
GET / (chat) and GET /admin (keys and usage) unless --no-ui.")]
pub struct ServeArgs {
    /// A GGUF model to serve, optionally with the name clients use (`-m FILE=NAME`);
    /// repeat for several (one engine each). A Hugging Face reference (`OWNER/REPO[:QUANT]`,
    /// `hf.co/…`, `OWNER/REPO/FILE.gguf`) is taken from the local store, pulled when absent. Default: SmolLM2-135M-Instruct.Q4_1.gguf
    /// in $KAIYUAN_MODELS or models/.
    /// -m models are loaded at start and never unloaded (pinned).
    #[arg(short, long = "model", value_name = "MODEL[=ALIAS]")]
    pub models: Vec<String>,
    /// A models file (TOML, `[[models]]` tables: name, path or ref, aliases, context,
    /// threads, pinned, sampling); besides any -m. Without -m, the default model is not
    /// added.
    #[arg(long = "models", value_name = "FILE")]
    pub models_file: Option<PathBuf>,
    /// Unload a model that is not pinned after this long without requests (`5m`, `30s`,
    /// `0`: as soon as it is idle, `-1`: never).
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "5m",
        allow_hyphen_values = true
    )]
    pub keep_alive: String,
    /// Loaded models may hold this many bytes together (`8G`, `800M`): each its file(s)
    /// plus its KV pool at its fullest. To load another, the least recently used idle model
    /// that is not pinned is unloaded. Default: no limit.
    #[arg(long, value_name = "BYTES")]
    pub max_loaded_bytes: Option<String>,
    /// Seconds a request waits for its model to load (or for room to load it) before it
    /// gets 503.
    #[arg(long, value_name = "SECS", default_value_t = 120.0)]
    pub load_timeout: f64,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port to listen on (0: any free port, printed at start).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Threads of the worker pool that every engine's forward pass shares (default: all
    /// cores).
    #[arg(short, long)]
    pub threads: Option<usize>,
    /// Positions one request may use, prompt + generated (default: the model's training
    /// context, capped at 4096).
    #[arg(long)]
    pub ctx: Option<usize>,
    /// Sequences in a running batch at most (default 16).
    #[arg(long)]
    pub max_seqs: Option<usize>,
    /// Token positions of the KV cache pool (default: 4 contexts).
    #[arg(long)]
    pub kv_tokens: Option<usize>,
    /// Tokens one engine step processes at most (default 256).
    #[arg(long)]
    pub max_batch_tokens: Option<usize>,
    /// Requests waiting for a place in the batch at most, those still rendering their
    /// prompt included; more get 429 (default 64).
    #[arg(long)]
    pub max_queue: Option<usize>,
    /// Prompts rendered and tokenized at once, across models; more wait in the queue
    /// (default: the number of CPUs).
    #[arg(long, value_name = "N")]
    pub prompt_workers: Option<usize>,
    /// Require `Authorization: Bearer KEY` on the API routes (not on /health, /metrics).
    #[arg(long, conflicts_with = "api_key_file")]
    pub api_key: Option<String>,
    /// Like --api-key, with the keys read from a file, one per line.
    #[arg(long, value_name = "FILE")]
    pub api_key_file: Option<PathBuf>,
    /// Seconds running requests may take to finish after SIGTERM/SIGINT.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub grace_period: f64,
    /// Largest request body in bytes; larger ones get 413.
    #[arg(long, value_name = "BYTES", default_value_t = 4 * 1024 * 1024)]
    pub body_limit: usize,
    /// When a model's engine dies, keep serving (its requests get 503, /health reports
    /// it) instead of draining and exiting with status 1.
    #[arg(long)]
    pub keep_running_on_engine_failure: bool,
    /// Use this Jinja chat template (a file) for every served model instead of the model's own.
    #[arg(long, value_name = "FILE")]
    pub chat_template_file: Option<PathBuf>,
    /// Chat: `deepseek` splits the reasoning block (`<think>`, or the template's own tags)
    /// into `reasoning_content`; `none` leaves it in `content`.
    #[arg(long, value_name = "FORMAT", default_value = "deepseek", value_parser = ["deepseek", "none"])]
    pub reasoning_format: String,
    /// Chat: thinking when a request does not say (`thinking`, `chat_template_kwargs`), for
    /// templates with a switch (`enable_thinking`, `thinking`, Hy3's `reasoning_effort`).
    #[arg(long, value_name = "on|off", default_value = "on", value_parser = ["on", "off"])]
    pub thinking: String,
    /// Do not serve the web UI (the chat page at `/`, the admin page at `/admin`).
    #[arg(long)]
    pub no_ui: bool,
    #[command(flatten)]
    pub load: LoadArgs,
    #[command(flatten)]
    pub source: RefArgs,
    #[command(flatten)]
    pub metering: MeteringArgs,
}

fn api_keys(args: &ServeArgs) -> anyhow::Result<Vec<String>> {
    if let Some(key) = &args.api_key {
        if key.trim().is_empty() {
            bail!("--api-key is empty");
        }
        return Ok(vec![key.trim().to_string()]);
    }
    let Some(file) = &args.api_key_file else {
        return Ok(Vec::new());
    };
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read the API key file {}", file.display()))?;
    let keys: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    if keys.is_empty() {
        bail!("the API key file {} has no keys", file.display());
    }
    Ok(keys)
}

/// Loads one model and starts its engine; a mapped file's watch goes into
/// [`mapped::watches`].
pub(super) fn load(spec: &ModelSpec, args: &ServeArgs) -> anyhow::Result<ServedModel> {
    let file = ModelFile::open_for_inference(&spec.path, args.load)?;
    if file.mapped {
        mapped::report_sigbus();
        let watch = FileWatch::new(&spec.path)
            .with_context(|| format!("cannot read {}", spec.path.display()))?;
        mapped::watches()
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(watch);
    }
    let model = file.load_model()?;
    let (template, note) = match &args.chat_template_file {
        None => file.chat_template()?,
        Some(path) => (file.template_from_file(path)?, None),
    };
    if let Some(note) = note {
        tracing::warn!(model = %spec.name, "{}: {note}", spec.name);
    }
    let config = engine_config(spec, args, model.config());
    let tokenizer = Arc::clone(&file.tokenizer);
    let engine = Engine::start(model, Arc::clone(&tokenizer), config)
        .context("cannot start the engine (a smaller --kv-tokens needs less memory)")?;
    let info = engine.info();
    tracing::info!(
        model = %spec.name,
        path = %spec.path.display(),
        context = info.context,
        max_seqs = info.max_seqs,
        kv_blocks = info.kv_blocks,
        threads = info.threads,
        "loaded {} ({}): context {}, {} sequences, {} KV blocks, {} threads",
        spec.name,
        spec.path.display(),
        info.context,
        info.max_seqs,
        info.kv_blocks,
        info.threads
    );
    Ok(ServedModel::new(
        spec.name.clone(),
        spec.stem.clone(),
        engine,
        tokenizer,
        template,
    )
    .with_defaults(spec.sampling.clone()))
}

/// `--keep-alive`, `--max-loaded-bytes` and `--load-timeout`.
fn registry_config(args: &ServeArgs) -> anyhow::Result<RegistryConfig> {
    let keep_alive =
        parse_keep_alive(&args.keep_alive).map_err(|e| anyhow::anyhow!("--keep-alive: {e}"))?;
    let max_loaded_bytes = args
        .max_loaded_bytes
        .as_deref()
        .map(parse_bytes)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--max-loaded-bytes: {e}"))?;
    if !(args.load_timeout.is_finite() && args.load_timeout > 0.0) {
        bail!("--load-timeout must be a positive number of seconds");
    }
    Ok(RegistryConfig {
        keep_alive,
        max_loaded_bytes,
        load_wait: Duration::from_secs_f64(args.load_timeout),
    })
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let mut specs = model_specs(&args)?;
    let more = file_specs(&args, &specs)?;
    specs.extend(more);
    let registry = registry_config(&args)?;
    // One worker pool for every engine: two loaded models never run two machine-sized
    // pools (ARCHITECTURE.md, "serve: many models").
    kaiyuan_kernels::threads::share_pools(thread_budget(&args));
    if !(args.grace_period.is_finite() && args.grace_period >= 0.0) {
        bail!("--grace-period must be a non-negative number of seconds");
    }
    // The engine would quietly raise a 0 to 1 (a one-position context, say): refuse it.
    for (flag, value) in [
        ("--threads", args.threads),
        ("--ctx", args.ctx),
        ("--max-seqs", args.max_seqs),
        ("--kv-tokens", args.kv_tokens),
        ("--max-batch-tokens", args.max_batch_tokens),
    ] {
        if value == Some(0) {
            bail!("{flag} 0: must be at least 1");
        }
    }
    let metering = serve_metering::plan(&args.metering)?;
    let config = ServerConfig {
        registry,
        api_keys: api_keys(&args)?,
        metering: None,
        body_limit: args.body_limit,
        grace_period: Duration::from_secs_f64(args.grace_period),
        reasoning_format: match args.reasoning_format.as_str() {
            "none" => ReasoningFormat::None,
            _ => ReasoningFormat::Deepseek,
        },
        thinking: args.thinking == "on",
        ui: !args.no_ui,
        ..ServerConfig::default()
    };
    let config = match args.prompt_workers {
        Some(0) => bail!("--prompt-workers must be at least 1"),
        Some(n) => ServerConfig {
            prompt_workers: n,
            ..config
        },
        None => config,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let mut config = config;
        if let Some(plan) = metering {
            config.metering = Some(serve_metering::open(plan).await?);
        }
        serve(args, specs, config).await
    })
}

async fn serve(args: ServeArgs, specs: Vec<ModelSpec>, config: ServerConfig) -> anyhow::Result<()> {
    let args = Arc::new(args);
    let addr = format!("{}:{}", args.host, args.port);
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local: SocketAddr = listener.local_addr()?;
    let pinned: Vec<ModelSpec> = specs.iter().filter(|s| s.pinned).cloned().collect();
    tracing::info!(
        addr = %local,
        pinned = pinned.len(),
        models = specs.len(),
        "kaiyuan listening on http://{local} (loading {} pinned model(s) of {})",
        pinned.len(),
        specs.len()
    );
    let server = Server::new(config);
    let mut entries: Vec<ModelEntry> = Vec::new();
    for spec in specs {
        let mut e = spec.entry(&args);
        // A file stem is a convenience alias: two `-m` of one file keep only the first's.
        e.aliases.retain(|a| {
            !entries
                .iter()
                .any(|o| &o.name == a || o.aliases.contains(a))
        });
        entries.push(e);
    }
    server.add_models(entries).map_err(anyhow::Error::msg)?;
    let keep_running = args.keep_running_on_engine_failure;
    let (failed_tx, failed_rx) = tokio::sync::oneshot::channel::<anyhow::Error>();
    {
        let server = server.clone();
        let args = Arc::clone(&args);
        std::thread::Builder::new()
            .name("kaiyuan-loader".into())
            .spawn(move || {
                let loaded: anyhow::Result<Vec<ServedModel>> =
                    pinned.iter().map(|s| load(s, &args)).collect();
                match loaded {
                    Ok(models) => {
                        server.set_models(models);
                        tracing::info!(
                            url = %format_args!("http://{local}/v1"),
                            "ready: http://{local}/v1 (GET /health answers 200)"
                        );
                    }
                    Err(e) => {
                        let _ = failed_tx.send(e);
                    }
                }
            })
            .context("cannot start the loader thread")?;
    }
    let (load_error_tx, load_error_rx) = tokio::sync::oneshot::channel::<anyhow::Error>();
    let (engine_failed_tx, engine_failed_rx) = tokio::sync::oneshot::channel::<EngineFailure>();
    let engine_died = engine_failure(server.clone(), keep_running);
    let shutdown = async move {
        tokio::select! {
            () = signal() => {}
            Ok(e) = failed_rx => { let _ = load_error_tx.send(e); }
            f = engine_died => { let _ = engine_failed_tx.send(f); }
        }
    };
    server
        .run(listener, shutdown)
        .await
        .context("the server failed")?;
    if let Ok(e) = load_error_rx.await {
        return Err(e.context("cannot serve the models"));
    }
    if let Ok(f) = engine_failed_rx.await {
        bail!(
            "the engine of model {} failed ({}); exiting so that it can be restarted",
            f.model,
            f.reason
        );
    }
    tracing::info!("stopped");
    Ok(())
}

/// Completes when a served model's engine has died (checked every 200 ms), after logging it;
/// never, with `keep_running` (the failure is still logged, once). A mapped model file
/// changed in place (checked at the same pace) ends the process at once with status 1:
/// its weights are no longer the ones loaded, so nothing more is served from them.
async fn engine_failure(server: Server, keep_running: bool) -> EngineFailure {
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    let failure = loop {
        tick.tick().await;
        if let Some(f) = server.engine_failure() {
            break f;
        }
        let changed = mapped::watches()
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .find_map(FileWatch::changed);
        if let Some(why) = changed {
            tracing::error!(
                "{why}; exiting (replace a mapped model file by renaming a new file over it)"
            );
            std::process::exit(1);
        }
    };
    tracing::error!(
        model = %failure.model,
        reason = %failure.reason,
        "the engine of model {} died: {}",
        failure.model,
        failure.reason
    );
    if keep_running {
        tracing::info!("--keep-running-on-engine-failure: still serving; /health answers 503");
        std::future::pending::<()>().await;
    }
    tracing::info!("shutting down after the engine failure; the exit status will be 1");
    failure
}

/// Completes on SIGINT or SIGTERM.
async fn signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!("cannot listen for SIGTERM: {e}");
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
