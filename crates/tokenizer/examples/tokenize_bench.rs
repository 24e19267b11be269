//! Tokenization throughput (MB/s) of both test models on a large mixed text built from the
//! golden corpus (English, code, whitespace, CJK, Arabic, emoji...). Not a test: run with
//! `cargo run --release -p kaiyuan-tokenizer --example tokenize_bench [MB]`.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::Instant;

use kaiyuan_tokenizer::Tokenizer;

fn main() {
    let mb: f64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(4.0);
    let g = support::read_golden("smollm2");
    let prose =
        "The committee reviewed the proposal on Tuesday and, after a long discussion about \
                 costs, schedules and the 2025 budget, agreed to fund 3 of the 7 projects. ";
    let mut text = String::new();
    'fill: loop {
        for c in &g.cases {
            text.push_str(prose);
            text.push_str(&c.text);
            text.push('\n');
            if text.len() as f64 >= mb * 1e6 {
                break 'fill;
            }
        }
    }
    for (name, file) in [("smollm2", support::SMOLLM2), ("gemma3", support::GEMMA3)] {
        let t0 = Instant::now();
        let tok = Tokenizer::from_vocab(&support::read_vocab(file)).expect("tokenizer");
        let load = t0.elapsed().as_secs_f64();
        let _ = tok.encode(&text[..text.len().min(100_000)], false); // warm up
        let t = Instant::now();
        let ids = tok.encode(&text, false);
        let secs = t.elapsed().as_secs_f64();
        println!(
            "{name}: {:.2} MB -> {} ids in {:.3} s = {:.1} MB/s (metadata read + build {:.2} s)",
            text.len() as f64 / 1e6,
            ids.len(),
            secs,
            text.len() as f64 / 1e6 / secs,
            load
        );
    }
}
