//! The `kaiyuan` binary: command-line parsing and the subcommands; the only place for
//! `anyhow`.

mod cmd;
mod logging;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "kaiyuan",
    version,
    about = "Serve open-weight language models from GGUF files"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// How log lines (request lines, shutdown, errors) are written to stderr: `text` for
    /// people, `json` (one object per line) for log pipelines. `RUST_LOG` filters them
    /// (default: `warn,kaiyuan=info`).
    #[arg(long, global = true, value_enum, default_value_t = logging::LogFormat::Text)]
    log_format: logging::LogFormat,
}

#[derive(Subcommand)]
enum Command {
    /// Show a GGUF file's architecture, hyper-parameters, tokenizer and tensors.
    Inspect(cmd::inspect::InspectArgs),
    /// Show the tokens a model's tokenizer makes of a text.
    Tokenize(cmd::tokenize::TokenizeArgs),
    /// Render a conversation (JSON) with a model's chat template and print the prompt.
    Template(cmd::template::TemplateArgs),
    /// Continue a prompt with a model, streaming the text.
    Run(cmd::run::RunArgs),
    /// Perplexity of a text file, by llama.cpp's method.
    Perplexity(cmd::perplexity::PerplexityArgs),
    /// Serve models over an OpenAI-compatible HTTP API.
    Serve(Box<cmd::serve::ServeArgs>),
    /// Chat with a model interactively, through its chat template.
    Chat(cmd::chat::ChatArgs),
    /// Prompt and generation speed (tokens/s), by llama-bench's method.
    Bench(cmd::bench::BenchArgs),
    /// Download a model from the Hugging Face Hub into the local store.
    Pull(cmd::pull::PullArgs),
    /// List the models in the local store.
    List(cmd::store::ListArgs),
    /// Show a stored model: its record, chat-template capabilities and GGUF summary.
    Show(cmd::store::ShowArgs),
    /// Remove models from the local store.
    Rm(cmd::store::RmArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = logging::init(cli.log_format) {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    let result = match cli.command {
        Command::Inspect(args) => cmd::inspect::run(&args),
        Command::Tokenize(args) => cmd::tokenize::run(&args),
        Command::Template(args) => cmd::template::run(&args),
        Command::Run(args) => cmd::run::run(&args),
        Command::Perplexity(args) => cmd::perplexity::run(&args),
        Command::Serve(args) => cmd::serve::run(*args),
        Command::Chat(args) => cmd::chat::run(&args),
        Command::Bench(args) => cmd::bench::run(&args),
        Command::Pull(args) => cmd::pull::run(&args),
        Command::List(args) => cmd::store::list(&args),
        Command::Show(args) => cmd::store::show(&args),
        Command::Rm(args) => cmd::store::rm(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // `{:#}` prints the context chain on one line ("cannot inspect F: cause").
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
