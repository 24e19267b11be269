//! Plain-text rendering of an `inspect` [`Report`]: aligned sections for people; the
//! `--json` output carries the same content for programs.

use std::fmt::Write;

use serde_json::Value as Json;

use super::{Entry, Report};

/// Longest string value shown in full; longer ones are cut with their length noted.
const MAX_SHOWN_STRING: usize = 100;

/// `1234567` → `1.23 M`.
fn count(n: u64) -> String {
    match n {
        0..=9_999 => n.to_string(),
        10_000..=999_999 => format!("{:.2} K", n as f64 / 1e3),
        1_000_000..=999_999_999 => format!("{:.2} M", n as f64 / 1e6),
        _ => format!("{:.2} B", n as f64 / 1e9),
    }
}

/// `98362432` → `93.81 MiB`.
fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut x = n as f64;
    let mut unit = 0;
    while x >= 1024.0 && unit + 1 < UNITS.len() {
        x /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{x:.2} {}", UNITS[unit])
    }
}

fn shorten(s: &str) -> String {
    let escaped = format!("{s:?}");
    if escaped.chars().count() <= MAX_SHOWN_STRING {
        escaped
    } else {
        let cut: String = escaped.chars().take(MAX_SHOWN_STRING).collect();
        format!("{cut}... ({} bytes)", s.len())
    }
}

fn show_value(v: &Json) -> String {
    match v {
        Json::String(s) => shorten(s),
        Json::Object(o) => {
            let first: Vec<String> = o
                .get("first")
                .and_then(Json::as_array)
                .map(|f| f.iter().map(show_value).collect())
                .unwrap_or_default();
            let len = o.get("length").and_then(Json::as_u64).unwrap_or(0);
            let more = if len as usize > first.len() {
                ", ..."
            } else {
                ""
            };
            format!("[{}{more}] ({len} element(s))", first.join(", "))
        }
        other => other.to_string(),
    }
}

fn entries(out: &mut String, list: &[Entry]) {
    let width = list.iter().map(|e| e.key.len()).max().unwrap_or(0);
    for e in list {
        let _ = writeln!(
            out,
            "  {:width$}  {:<18} {}",
            e.key,
            e.value_type,
            show_value(&e.value)
        );
    }
}

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref()
        .map_or_else(|| "(absent)".to_owned(), T::to_string)
}

pub fn render(r: &Report) -> String {
    let mut out = String::new();
    let o = &mut out;
    let _ = writeln!(
        o,
        "File:          {} ({}, {} bytes)",
        r.file,
        bytes(r.file_size),
        r.file_size
    );
    let _ = writeln!(
        o,
        "Format:        GGUF v{}, alignment {}, tensor data at offset {}",
        r.gguf_version, r.alignment, r.data_offset
    );
    let _ = writeln!(o, "Architecture:  {}", opt(&r.architecture));
    if let Some(m) = &r.model {
        super::model::render(o, m);
    }
    let _ = writeln!(o, "Name:          {}", opt(&r.name));
    let file_type = r
        .file_type
        .as_ref()
        .map(|f| format!("{} ({})", f.name.unwrap_or("unknown"), f.id));
    let _ = writeln!(o, "File type:     {}", opt(&file_type));
    let _ = writeln!(o, "Quantization version: {}", opt(&r.quantization_version));

    let arch = r.architecture.as_deref().unwrap_or("?");
    let _ = writeln!(o, "\nHyper-parameters ({arch}.*)");
    entries(o, &r.hyperparameters);
    let _ = writeln!(o, "\nGeneral (general.*)");
    entries(o, &r.general);

    if let Some(t) = &r.tokenizer {
        let _ = writeln!(o, "\nTokenizer");
        let _ = writeln!(o, "  model           {}", opt(&t.model));
        let _ = writeln!(o, "  pre-tokenizer   {}", opt(&t.pre));
        let _ = writeln!(o, "  vocab size      {}", opt(&t.vocab_size));
        let _ = writeln!(o, "  merges          {}", opt(&t.merges));
        let _ = writeln!(
            o,
            "  scores          {}",
            if t.has_scores { "yes" } else { "no" }
        );
        let _ = writeln!(
            o,
            "  token types     {}",
            if t.has_token_types { "yes" } else { "no" }
        );
        for s in &t.special_tokens {
            let token = s
                .token
                .as_deref()
                .map_or_else(|| "(outside vocabulary)".to_owned(), |t| format!("{t:?}"));
            let _ = writeln!(o, "  {:<15} {} {}", format!("{} id", s.role), s.id, token);
        }
        let _ = writeln!(o, "  add_bos_token   {}", opt(&t.add_bos_token));
        let _ = writeln!(o, "  add_eos_token   {}", opt(&t.add_eos_token));
        match &t.chat_template {
            Some(c) => {
                let _ = writeln!(
                    o,
                    "  chat template   {} bytes, {} lines; first line: {}",
                    c.bytes,
                    c.lines,
                    shorten(&c.first_line)
                );
            }
            None => {
                let _ = writeln!(o, "  chat template   (absent)");
            }
        }
        entries(o, &t.other);
    }
    if !r.other_metadata.is_empty() {
        let _ = writeln!(o, "\nOther metadata");
        entries(o, &r.other_metadata);
    }

    let t = &r.totals;
    let _ = writeln!(o, "\nTotals");
    let _ = writeln!(o, "  tensors     {}", t.tensors);
    let _ = writeln!(
        o,
        "  parameters  {} ({})",
        count(t.parameters),
        t.parameters
    );
    let _ = writeln!(o, "  bytes       {} ({})", bytes(t.bytes), t.bytes);
    let _ = writeln!(
        o,
        "  {:<8} {:>7} {:>14} {:>12}",
        "type", "tensors", "parameters", "bytes"
    );
    for b in &t.by_type {
        let mark = if b.supported { "" } else { "  UNSUPPORTED" };
        let _ = writeln!(
            o,
            "  {:<8} {:>7} {:>14} {:>12}{mark}",
            b.dtype,
            b.tensors,
            b.parameters,
            bytes(b.bytes)
        );
    }

    let _ = writeln!(
        o,
        "\nTensors (shape in PyTorch order, outermost dimension first)"
    );
    let width = r
        .tensors
        .iter()
        .map(|t| t.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let _ = writeln!(
        o,
        "  {:width$}  {:<8} {:<22} {:>12}",
        "name", "type", "shape", "bytes"
    );
    for t in &r.tensors {
        let shape = format!("{:?}", t.shape);
        let mark = if t.supported { "" } else { "  UNSUPPORTED" };
        let _ = writeln!(
            o,
            "  {:width$}  {:<8} {:<22} {:>12}{mark}",
            t.name, t.dtype, shape, t.bytes
        );
    }
    if !r.unsupported_tensors.is_empty() {
        let _ = writeln!(
            o,
            "\n{} tensor(s) have types this engine cannot compute with: {}",
            r.unsupported_tensors.len(),
            r.unsupported_tensors.join(", ")
        );
    }
    out
}
