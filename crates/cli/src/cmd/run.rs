//! `kaiyuan run -m MODEL -p PROMPT`: continues a prompt with the model and streams the text
//! to stdout; speed goes to stderr. `--json-schema FILE` / `--grammar FILE` constrain the
//! output (structured output, as the server's `response_format` does).

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context};
use kaiyuan_engine::sampling::{Sampler, TokenHistory};
use kaiyuan_grammar::{Constraint, GrammarSpec, GrammarVocab};
use kaiyuan_kernels::threads::ThreadPool;
use kaiyuan_model::Session;

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
    let path = resolve_model(&args.model, args.source)?;
    let file = ModelFile::open_for_inference(&path, args.load)?;
    let model = file.load_model()?;
    let tok = &file.tokenizer;
    let prompt = tok.encode_with_bos_eos(&args.prompt, args.special);
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
    let mut constraint = constraint(args, &file.tokenizer)?;
    let params = args.sampling.params();
    let mut sampler = Sampler::new(params, model.config().vocab_size)?;
    let n_threads = threads(args.threads)?;
    let pool = ThreadPool::new(n_threads);
    let mut session = Session::try_new(&model, ctx)?;
    let mut history = TokenHistory::new();
    history.push_prompt(&prompt);
    let mut decoder = tok.stream_decoder(false);
    for &id in &prompt {
        decoder.push(id)?;
    }
    // The engine's end-of-generation ids (EOS, EOT and end-of-turn markers).
    let stop = tok.end_of_generation_ids();

    let mut out = std::io::stdout().lock();
    write!(out, "{}", args.prompt)?;
    out.flush()?;
    let start = Instant::now();
    let mut logits = session.eval(&pool, &prompt, false)?;
    let prefill = start.elapsed();
    let mut generated = 0usize;
    while generated < args.n_predict {
        let mask = match &mut constraint {
            Some(c) => Some(c.compute_mask()?),
            None => None,
        };
        let next = sampler
            .sample_masked(&mut logits, &history, mask.as_ref())?
            .token;
        generated += 1;
        if stop.contains(&next) {
            break;
        }
        history.push(next);
        write!(out, "{}", decoder.push(next)?)?;
        out.flush()?;
        if let Some(c) = &mut constraint {
            c.commit(next)?;
            if c.is_finished() {
                break;
            }
        }
        if generated == args.n_predict {
            break;
        }
        logits = session.eval(&pool, &[next], false)?;
    }
    writeln!(out, "{}", decoder.finish())?;
    let decode = start.elapsed() - prefill;
    eprintln!(
        "prompt: {} tokens in {:.2} s ({:.1} tokens/s); generated: {generated} tokens in {:.2} s ({:.1} tokens/s); {n_threads} threads, seed {}",
        prompt.len(),
        prefill.as_secs_f64(),
        prompt.len() as f64 / prefill.as_secs_f64(),
        decode.as_secs_f64(),
        generated as f64 / decode.as_secs_f64().max(1e-9),
        sampler.seed()
    );
    Ok(())
}

/// The grammar `--json-schema` or `--grammar` asks for, compiled for this vocabulary.
fn constraint(
    args: &RunArgs,
    tok: &std::sync::Arc<kaiyuan_tokenizer::Tokenizer>,
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
    let vocab = GrammarVocab::new(std::sync::Arc::clone(tok), &tok.end_of_generation_ids())?;
    let c = vocab
        .compile(&spec)
        .with_context(|| format!("invalid {flag} {}", path.display()))?;
    Ok(Some(c))
}
