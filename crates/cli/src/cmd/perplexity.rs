//! `kaiyuan perplexity -m MODEL -f TEXT [-c 512]`: perplexity of a text by llama.cpp's
//! method (see `kaiyuan_model::perplexity`), so the numbers compare with `llama-perplexity`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use kaiyuan_kernels::threads::ThreadPool;

use super::model_file::{LoadArgs, ModelFile};
use super::sampling_args::threads;

#[derive(clap::Args)]
pub struct PerplexityArgs {
    /// The GGUF model.
    #[arg(short, long)]
    pub model: PathBuf,
    /// The text file to score.
    #[arg(short, long)]
    pub file: PathBuf,
    /// Window size in tokens.
    #[arg(short = 'c', long, default_value_t = 512)]
    pub ctx: usize,
    /// Threads (default: all cores).
    #[arg(short, long)]
    pub threads: Option<usize>,
    #[command(flatten)]
    pub load: LoadArgs,
}

pub fn run(args: &PerplexityArgs) -> anyhow::Result<()> {
    let file = ModelFile::open_for_inference(&args.model, args.load)?;
    let model = file.load_model()?;
    let mut text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    // llama-perplexity's -f drops one trailing newline.
    if text.ends_with('\n') {
        text.pop();
    }
    let tok = &file.tokenizer;
    let tokens = tok.encode_with_bos_eos(&text, false);
    let bos = if tok.add_bos() { tok.bos_id() } else { None };
    let pool = ThreadPool::new(threads(args.threads)?);
    let start = Instant::now();
    let result = kaiyuan_model::perplexity(&model, &pool, &tokens, args.ctx, bos)?;
    for (i, nll) in result.window_mean_nll.iter().enumerate() {
        eprintln!("[{}] window mean NLL {nll:.4}", i + 1);
    }
    println!(
        "perplexity {:.4} over {} scored tokens ({} windows of {}; {} tokens in the text)",
        result.ppl,
        result.scored_tokens,
        result.window_mean_nll.len(),
        args.ctx,
        tokens.len()
    );
    eprintln!("{:.1} s", start.elapsed().as_secs_f64());
    Ok(())
}
