//! `kaiyuan template -m MODEL FILE.json [--tokens]`: renders a conversation with the
//! model's chat template and prints the prompt exactly as the model would receive it.
//!
//! FILE.json is a chat request: `{"messages": [...], "tools": ..., "add_generation_prompt":
//! true, "chat_template_kwargs": {...}}` (the OpenAI `messages` shape). With `--tokens`, the
//! prompt is tokenized the way Kaiyuan feeds it to a model: the template's markup with
//! control tokens recognised, message text as plain text, so a user who writes
//! `<|im_end|>` gets those characters, not the control token. The ids are the ones the
//! server feeds the model (`kaiyuan_chat::encode_rendered`).

use std::path::PathBuf;

use anyhow::Context;
use kaiyuan_chat::{encode_rendered, ChatRequest, SegmentKind};

use super::model_file::ModelFile;

#[derive(clap::Args)]
pub struct TemplateArgs {
    /// The GGUF model whose chat template to use.
    #[arg(short, long)]
    pub model: PathBuf,
    /// A JSON chat request (`{"messages": [...]}`); `-` reads standard input.
    pub file: PathBuf,
    /// Also print the token ids of the prompt, marking where message text begins and ends.
    #[arg(long)]
    pub tokens: bool,
}

pub fn run(args: &TemplateArgs) -> anyhow::Result<()> {
    let model = ModelFile::open(&args.model)?;
    let json = if args.file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).context("reading standard input")?
    } else {
        std::fs::read_to_string(&args.file)
            .with_context(|| format!("cannot read {}", args.file.display()))?
    };
    let request: ChatRequest = serde_json::from_str(&json)
        .with_context(|| format!("{} is not a chat request", args.file.display()))?;
    let (template, note) = model.chat_template()?;
    if let Some(note) = note {
        eprintln!("note: {note}");
    }
    let rendered = template
        .render(&request.messages, &request.options())
        .context("cannot render the chat template")?;
    print!("{}", rendered.text());
    if args.tokens {
        let tokens = encode_rendered(&model.tokenizer, &rendered);
        println!("\n--- tokens (markup with control tokens; [content] as plain text) ---");
        let mut line: Vec<String> = tokens.bos.iter().map(u32::to_string).collect();
        for (kind, ids) in &tokens.segments {
            let shown: Vec<String> = ids.iter().map(u32::to_string).collect();
            if *kind == SegmentKind::Markup {
                line.extend(shown);
            } else {
                line.push(format!("[{}]", shown.join(" ")));
            }
        }
        println!("{}", line.join(" "));
        eprintln!("{} tokens", tokens.ids().len());
    }
    Ok(())
}
