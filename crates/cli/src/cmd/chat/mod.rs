//! `kaiyuan chat -m MODEL`: an interactive conversation with a model through its chat
//! template, on a terminal or a pipe, answered by the engine the server runs (each turn a
//! request with the same seed and sampling settings). Input rules and commands are in `input.rs`, the
//! conversation and its KV-cache reuse in `conversation.rs`, how replies are shown in
//! `display.rs`.

mod conversation;
mod display;
mod input;

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context};
use kaiyuan_server::TemplateReasoning;

use super::local_engine::{seeded, LocalEngine};
use super::model_file::{LoadArgs, ModelFile};
use super::model_ref::{resolve_model, RefArgs};
use super::sampling_args::{threads, SamplingArgs};
use conversation::{Conversation, Limits, StopReason, Turn};
use display::ReplyWriter;
use input::{read_input, Input, PromptKind, HELP};

#[derive(clap::Args)]
pub struct ChatArgs {
    /// The GGUF model: a file, or a Hugging Face reference (`OWNER/REPO[:QUANT]`,
    /// `hf.co/…`, `OWNER/REPO/FILE.gguf`) taken from the local store, pulled when absent.
    #[arg(short, long)]
    pub model: String,
    /// A system prompt, kept across /reset.
    #[arg(long)]
    pub system: Option<String>,
    /// Tokens per reply at most.
    #[arg(short = 'n', long, default_value_t = 512)]
    pub n_predict: usize,
    #[command(flatten)]
    pub sampling: SamplingArgs,
    /// Threads (default: all cores).
    #[arg(short, long)]
    pub threads: Option<usize>,
    /// Context size in tokens, the whole conversation included (default: the model's
    /// training context, capped at 4096).
    #[arg(long)]
    pub ctx: Option<usize>,
    /// Use a built-in chat template (chatml, llama3, gemma) instead of the model's own.
    #[arg(long, value_name = "NAME", conflicts_with = "chat_template_file")]
    pub chat_template: Option<String>,
    /// Use this Jinja chat template (a file) instead of the model's own.
    #[arg(long, value_name = "FILE")]
    pub chat_template_file: Option<PathBuf>,
    /// Thinking on or off, for templates with a switch (`enable_thinking`, `thinking`, Hy3's
    /// `reasoning_effort`), as `kaiyuan serve --thinking` sets it for a request that does not
    /// say.
    #[arg(long, value_name = "on|off", default_value = "on", value_parser = ["on", "off"])]
    pub thinking: String,
    /// Before each reply, print the rendered prompt and its token counts (reused from the
    /// cache, evaluated) to stderr; after it, the speed.
    #[arg(long)]
    pub show_prompt: bool,
    #[command(flatten)]
    pub load: LoadArgs,
    #[command(flatten)]
    pub source: RefArgs,
}

pub fn run(args: &ChatArgs) -> anyhow::Result<()> {
    if args.n_predict == 0 {
        bail!("-n 0: a reply needs at least one token");
    }
    let path = resolve_model(&args.model, args.source)?;
    let file = ModelFile::open_for_inference(&path, args.load)?;
    let model = file.load_model()?;
    let template = match (&args.chat_template, &args.chat_template_file) {
        (Some(name), _) => {
            eprintln!("note: using the built-in {name:?} chat template (--chat-template)");
            file.builtin_template(name)?
        }
        (None, Some(path)) => file.template_from_file(path)?,
        (None, None) => {
            let (template, note) = file.chat_template()?;
            if let Some(note) = note {
                eprintln!("note: {note}");
            }
            template
        }
    };
    let ctx = args.ctx.unwrap_or(model.config().context_length.min(4096));
    if ctx < 2 {
        bail!("--ctx {ctx}: the context must hold at least 2 tokens");
    }
    let n_threads = threads(args.threads)?;
    let sampling = seeded(args.sampling.params()?, model.config().vocab_size)?;
    let seed = sampling.seed.unwrap_or_default();
    let architecture = model.config().architecture;
    let engine = LocalEngine::start(model, Arc::clone(&file.tokenizer), n_threads, ctx)?;
    let limits = Limits {
        max_reply_tokens: args.n_predict,
    };
    // The variables `kaiyuan serve` gives a request that says nothing about reasoning.
    let variables =
        TemplateReasoning::of_template(&template).default_variables(args.thinking == "on");
    let mut conversation = Conversation::new(
        &file.tokenizer,
        &template,
        &engine,
        sampling,
        limits,
        args.system.clone(),
    )
    .with_variables(variables);

    let stdin = io::stdin();
    let interactive = stdin.is_terminal();
    let mut reader = stdin.lock();
    let stdout = io::stdout();
    let mut writer = ReplyWriter::new(stdout.lock(), stdout.is_terminal());
    eprintln!(
        "kaiyuan chat: {} ({}), context {ctx} tokens, {n_threads} threads, seed {seed}",
        args.model, architecture,
    );
    eprintln!(
        "/help for help; end a line with \\ to continue it, or put lines between two \"\"\" lines; /reset clears, /exit quits"
    );
    let mut prompt_marker = |kind: PromptKind| {
        if interactive {
            let p = match kind {
                PromptKind::First => "> ",
                PromptKind::Continuation => ". ",
            };
            let mut out = io::stdout();
            // A prompt that cannot be written is not worth failing over; the reply would fail.
            let _ = out.write_all(p.as_bytes()).and_then(|()| out.flush());
        }
    };
    loop {
        let input = read_input(&mut reader, &mut prompt_marker).context("reading input")?;
        match input {
            None | Some(Input::Exit) => break,
            Some(Input::Reset) => {
                conversation.reset();
                eprintln!("(conversation cleared)");
            }
            Some(Input::Help) => eprintln!("{HELP}"),
            Some(Input::UnknownCommand(c)) => {
                eprintln!("unknown command {c}: /help lists the commands (put text starting with / after a \\ line or in a \"\"\" block)")
            }
            Some(Input::Message(text)) => {
                let mut stderr = io::stderr();
                let debug: Option<&mut dyn Write> = if args.show_prompt {
                    Some(&mut stderr)
                } else {
                    None
                };
                let turn = conversation.reply(&text, &mut |d| writer.write(d), debug)?;
                match turn {
                    Turn::Refused(why) => eprintln!("error: {why}"),
                    Turn::Answered(stats) => {
                        writer.end_reply().context("writing the reply")?;
                        match stats.stop {
                            StopReason::ContextFull { capacity } => eprintln!(
                                "note: the reply stopped because the context is full: it needed {} positions, the context holds {capacity}; use /reset, or a larger --ctx",
                                capacity + 1
                            ),
                            StopReason::Length => eprintln!(
                                "note: the reply stopped at -n {} tokens",
                                args.n_predict
                            ),
                            StopReason::EndOfTurn => {}
                        }
                        if args.show_prompt {
                            eprintln!(
                                "--- reply: {} tokens; prompt {} tokens ({} reused) in {:.2} s, reply at {:.1} tokens/s ---",
                                stats.generated,
                                stats.prompt_tokens,
                                stats.reused,
                                stats.prefill.as_secs_f64(),
                                stats.generated as f64 / stats.decode.as_secs_f64().max(1e-9)
                            );
                        }
                    }
                }
            }
        }
    }
    Ok(())
}
