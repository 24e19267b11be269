//! `kaiyuan pull REF`: downloads a model from the Hugging Face Hub (`HF_ENDPOINT`, default
//! huggingface.co; `HF_TOKEN` or `--token`) into the local store and prints what it got.

use anyhow::Context;
use kaiyuan_hub::{
    human_bytes, pull_blocking, HubClient, HubConfig, ModelRef, Progress, PullOptions, Store,
};

#[derive(clap::Args)]
pub struct PullArgs {
    /// `hf.co/OWNER/REPO[:QUANT]`, `OWNER/REPO[:QUANT]` (default quant Q4_K_M) or
    /// `OWNER/REPO/FILE.gguf`.
    pub reference: String,
    /// Hugging Face access token for gated or private repositories (default: $HF_TOKEN).
    #[arg(long)]
    pub token: Option<String>,
    /// Plain progress lines even on a terminal.
    #[arg(long)]
    pub no_progress_bar: bool,
}

pub fn run(args: &PullArgs) -> anyhow::Result<()> {
    let r = ModelRef::parse(&args.reference)?;
    let store = Store::from_env()?;
    let client = HubClient::new(HubConfig::from_env(args.token.clone()))?;
    let progress = if args.no_progress_bar {
        Progress::Lines
    } else {
        Progress::Auto
    };
    let m = pull_blocking(&client, &store, &r, PullOptions { progress })
        .with_context(|| format!("cannot pull {} from {}", args.reference, client.endpoint()))?;
    println!(
        "pulled {} ({}, {} {}) at revision {}",
        m.reference,
        human_bytes(m.size()),
        m.info
            .architecture
            .as_deref()
            .unwrap_or("unknown architecture"),
        m.info
            .quantization
            .as_deref()
            .unwrap_or("unknown quantization"),
        m.revision,
    );
    match store.model_path_of(&m) {
        Ok(path) => println!("{}", path.display()),
        Err(e) => eprintln!("note: {e}"),
    }
    Ok(())
}
