//! The `kaiyuan` binary: command-line parsing and the subcommands; the only place for
//! `anyhow`.

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
}

#[derive(Subcommand)]
enum Command {}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {}
}
