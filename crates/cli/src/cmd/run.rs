//! `kaiyuan run -m MODEL -p PROMPT`: continues a prompt with the model and streams the text
//! to stdout; speed goes to stderr. `--json-schema FILE` / `--grammar FILE` constrain the
//! output (structured output, as the server's `response_format` does). Generation runs
//! through the engine (`local_engine.rs`): the same sampler, end-of-generation ids and
//! detokenizer as the server, so greedy or seeded output equals a server completion's.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use kaiyuan_chat::encode_text;
use kaiyuan_engine::{Event, FinishReason, GenerateRequest};
use kaiyuan_grammar::{Constraint, GrammarSpec, GrammarVocab};

use super::local_engine::{seeded, LocalEngine};
use super::model_file::{LoadArgs, ModelFile};
use super::model_ref::{resolve_model, RefArgs};
use super::sampling_args::{threads, SamplingArgs};

#[derive(clap::Args)]
pub struct RunArgs {
    /// The GGUF model: a file, or a Hugging Face reference (`OWNER/REPO[:QUANT]`,
    /// `hf.co/…`, `OWNER/REPO/FILE.gguf`) taken from the local store, pulled when absent.
    #[arg(short, long)]
    pub model: String,
    /// The prompt to continue.
    #[arg(short, long)]
    pub prompt: String,
    /// Tokens to generate at most.
    #[arg(short = 'n', long, default_value_t = 128)]
    pub n_predict: usize,
    #[command(flatten)]
    pub sampling: SamplingArgs,
    /// Threads (default: all cores).
    #[arg(short, long)]
    pub threads: Option<usize>,
    /// Context size in tokens (default: the model's training context, capped at 4096).
    #[arg(long)]
    pub ctx: Option<usize>,
    /// Recognise control tokens written in the prompt (e.g. `<|im_start|>`).
    #[arg(long)]
    pub special: bool,
    /// Constrain the output to JSON that validates against the schema in FILE (keywords
    /// that cannot be enforced are an error).
    #[arg(long, value_name = "FILE", conflicts_with = "grammar")]
    pub json_schema: Option<PathBuf>,
    /// Constrain the output to the Lark grammar in FILE (llguidance's dialect).
    #[arg(long, value_name = "FILE")]
    pub grammar: Option<PathBuf>,
    #[command(flatten)]
    pub load: LoadArgs,
    #[command(flatten)]
    pub source: RefArgs,
}

pub fn run(args: &RunArgs) -> anyhow::Result<()> {
    if args.n_predict == 0 {
        bail!("-n 0: at least one token must be generated");
    }
    let path = resolve_model(&args.model, args.source)?;
    let file = ModelFile::open_for_inference(&path, args.load)?;
    let model = file.load_model()?;
    let tok = &file.tokenizer;
    let prompt = encode_text(tok, &args.prompt, args.special);
    if prompt.is_empty() {
        bail!("the prompt is empty");
    }
    let ctx = args.ctx.unwrap_or(model.config().context_length.min(4096));
    let needed = prompt.len() + args.n_predict;
    if needed > ctx {
        bail!(
            "the prompt ({} tokens) plus -n {} needs {needed} positions, but the context holds {ctx} (raise --ctx or lower -n)",
            prompt.len(),
            args.n_predict
        );
    }
    let constraint = constraint(args, tok)?;
    let sampling = seeded(args.sampling.params()?, model.config().vocab_size)?;
    let seed = sampling.seed.unwrap_or_default();
    let n_threads = threads(args.threads)?;
    let prompt_tokens = prompt.len();
    let engine = LocalEngine::start(model, Arc::clone(tok), n_threads, ctx)?;
    // Times count from submission, as the engine's time to first token does.
    let start = Instant::now();
    // The engine stops on the model's end-of-generation ids (EOS, EOT, end-of-turn markers)
    // and when the grammar is complete, exactly as for the server's requests.
    let mut events = engine.submit(GenerateRequest {
        prompt,
        sampling,
        max_tokens: args.n_predict,
        stop: Vec::new(),
        stop_token_ids: Vec::new(),
        ignore_eos: false,
        constraint,
    })?;

    let mut out = std::io::stdout().lock();
    write!(out, "{}", args.prompt)?;
    out.flush()?;
    let finished = loop {
        match events.recv()? {
            Event::Scheduled { .. } => {}
            Event::Token(t) => {
                write!(out, "{}", t.text)?;
                out.flush()?;
            }
            Event::Finished(f) => break f,
        }
    };
    writeln!(out, "{}", finished.text)?;
    match &finished.reason {
        FinishReason::Stop | FinishReason::Length => {}
        FinishReason::Error(e) => bail!("generation failed: {e}"),
        other => bail!("generation ended early ({})", other.as_str()),
    }
    let total = start.elapsed();
    let prefill = finished.time_to_first_token.unwrap_or(total);
    let decode = total.saturating_sub(prefill);
    let generated = finished.usage.completion_tokens;
    eprintln!(
        "prompt: {prompt_tokens} tokens in {:.2} s ({:.1} tokens/s); generated: {generated} tokens in {:.2} s ({:.1} tokens/s); {n_threads} threads, seed {seed}",
        prefill.as_secs_f64(),
        prompt_tokens as f64 / prefill.as_secs_f64().max(1e-9),
        decode.as_secs_f64(),
        generated as f64 / decode.as_secs_f64().max(1e-9),
    );
    Ok(())
}

/// The grammar `--json-schema` or `--grammar` asks for, compiled for this vocabulary.
fn constraint(
    args: &RunArgs,
    tok: &Arc<kaiyuan_tokenizer::Tokenizer>,
) -> anyhow::Result<Option<Constraint>> {
    let (flag, path, spec) = match (&args.json_schema, &args.grammar) {
        (Some(path), _) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read --json-schema {}", path.display()))?;
            let schema: serde_json::Value = serde_json::from_str(&text)
                .with_context(|| format!("--json-schema {} is not JSON", path.display()))?;
            let spec = GrammarSpec::JsonSchema {
                schema,
                strict: true,
            };
            ("--json-schema", path, spec)
        }
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read --grammar {}", path.display()))?;
            ("--grammar", path, GrammarSpec::Lark(text))
        }
        (None, None) => return Ok(None),
    };
    let vocab = GrammarVocab::new(Arc::clone(tok), &tok.end_of_generation_ids())?;
    let c = vocab
        .compile(&spec)
        .with_context(|| format!("invalid {flag} {}", path.display()))?;
    Ok(Some(c))
}
