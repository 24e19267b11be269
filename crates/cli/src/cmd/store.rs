//! The local model store's commands: `kaiyuan list` (a table of pulled models), `kaiyuan show
//! REF` (the store's record, the chat template's capabilities, then what `inspect` prints for
//! the file) and `kaiyuan rm REF` (the reference, and blobs no other reference needs).

use anyhow::Context;
use kaiyuan_chat::tools::ToolFormat;
use kaiyuan_hub::{human_bytes, human_params, Manifest, ModelRef, Store};
use kaiyuan_server::TemplateReasoning;
use serde_json::json;

use super::inspect;
use super::model_file::ModelFile;

#[derive(clap::Args)]
pub struct ListArgs {
    /// Print JSON (the manifests) instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args)]
pub struct ShowArgs {
    /// A reference in the store (`OWNER/REPO[:QUANT]`, `hf.co/…`, `OWNER/REPO/FILE.gguf`).
    pub reference: String,
    /// Print one JSON document instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args)]
pub struct RmArgs {
    /// The references to remove.
    #[arg(required = true)]
    pub references: Vec<String>,
}

pub fn list(args: &ListArgs) -> anyhow::Result<()> {
    let store = Store::from_env()?;
    let manifests = store.list()?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&manifests)?);
        return Ok(());
    }
    if manifests.is_empty() {
        eprintln!(
            "no models in {} (kaiyuan pull REF adds one)",
            store.root().display()
        );
        return Ok(());
    }
    let rows: Vec<[String; 6]> = manifests
        .iter()
        .map(|m| {
            let dash = || "-".to_string();
            [
                m.reference.clone(),
                human_bytes(m.size()),
                m.info.architecture.clone().unwrap_or_else(dash),
                m.info.quantization.clone().unwrap_or_else(dash),
                human_params(m.info.parameters),
                m.info.context_length.map_or_else(dash, |c| c.to_string()),
            ]
        })
        .collect();
    let header = ["NAME", "SIZE", "ARCH", "QUANT", "PARAMS", "CONTEXT"].map(String::from);
    let mut widths = [0usize; 6];
    for row in std::iter::once(&header).chain(&rows) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", cells.join("  ").trim_end());
    }
    Ok(())
}

fn find(store: &Store, reference: &str) -> anyhow::Result<(ModelRef, Manifest)> {
    let r = ModelRef::parse(reference)?;
    match store.manifest(&r)? {
        Some(m) => Ok((r, m)),
        None => anyhow::bail!(
            "{r} is not in the local store ({}); `kaiyuan list` shows what is, `kaiyuan pull {reference}` adds it",
            store.root().display()
        ),
    }
}

pub fn show(args: &ShowArgs) -> anyhow::Result<()> {
    let store = Store::from_env()?;
    let (_, m) = find(&store, &args.reference)?;
    let path = store.model_path_of(&m)?;
    let report = inspect::inspect(&path)?;
    let file = ModelFile::open(&path)?;
    let (template, note) = file
        .chat_template()
        .with_context(|| format!("cannot read the chat template of {}", m.reference))?;
    let tools = ToolFormat::detect(template.source());
    let reasoning = TemplateReasoning::of_template(&template);
    if args.json {
        let doc = json!({
            "manifest": m,
            "path": path,
            "capabilities": {
                "chat_template": if note.is_some() { "built-in" } else { "the model's own" },
                "tools": tools.name(),
                "reasoning": reasoning.thinks,
                "thinking_switch": reasoning.switch,
            },
            "inspect": report,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }
    println!("reference     {}", m.reference);
    println!("revision      {}", m.revision);
    for f in &m.files {
        println!(
            "file          {} ({}, sha256 {})",
            f.name,
            human_bytes(f.size),
            f.sha256
        );
    }
    println!("path          {}", path.display());
    println!("parameters    {}", human_params(m.info.parameters));
    let tools = match tools {
        ToolFormat::Generic => "generic JSON (the template has no tool-call markup)".to_string(),
        f => format!("yes ({} format)", f.name()),
    };
    println!("tools         {tools}");
    let thinking = match (reasoning.thinks, reasoning.switch) {
        (false, _) => "no".to_string(),
        (true, Some(switch)) => format!("yes (switched by `{}`)", switch.variable()),
        (true, None) => "yes (always)".to_string(),
    };
    println!("reasoning     {thinking}");
    if let Some(note) = note {
        println!("template      {note}");
    }
    println!();
    print!("{}", inspect::text::render(&report));
    Ok(())
}

pub fn rm(args: &RmArgs) -> anyhow::Result<()> {
    let store = Store::from_env()?;
    for reference in &args.references {
        let r = ModelRef::parse(reference)?;
        let freed = store
            .remove(&r)
            .with_context(|| format!("cannot remove {reference}"))?;
        println!("removed {r} ({} freed)", human_bytes(freed));
    }
    Ok(())
}
