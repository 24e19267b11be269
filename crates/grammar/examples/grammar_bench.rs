//! Structured output's own costs on a real vocabulary, outside the engine: preparing the
//! vocabulary, compiling each schema of the end-to-end table (p50/p99 over repetitions), and
//! one mask per token (p50/p99) while walking each grammar with seeded random choices among
//! the allowed tokens.
//!
//!     cargo run --release -p kaiyuan-grammar --example grammar_bench -- MODEL.gguf [SCHEMAS.json]

use std::sync::Arc;
use std::time::{Duration, Instant};

use kaiyuan_gguf::GgufFile;
use kaiyuan_grammar::{GrammarSpec, GrammarVocab};
use kaiyuan_tokenizer::{Tokenizer, Vocab};

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(model) = args.first() else {
        eprintln!("usage: grammar_bench MODEL.gguf [SCHEMAS.json]");
        std::process::exit(2);
    };
    let schemas_path = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| "tests/e2e/schemas.json".into());
    let gguf = GgufFile::open(model).expect("model opens");
    let tok = Arc::new(Tokenizer::from_vocab(&Vocab::from_gguf(&gguf).unwrap()).unwrap());
    let eog = tok.end_of_generation_ids();
    let t = Instant::now();
    let vocab = GrammarVocab::new(Arc::clone(&tok), &eog).expect("vocabulary");
    println!(
        "vocabulary: {} tokens, prepared in {:.1} ms",
        tok.vocab_size(),
        ms(t.elapsed())
    );
    let table: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&schemas_path).expect("schemas file"))
            .expect("schemas JSON");
    let mut compiles = Vec::new();
    let mut masks = Vec::new();
    let mut rng: u64 = 0x9E37_79B9_7F4A_7C15;
    for case in table.as_array().expect("a list") {
        let spec = GrammarSpec::JsonSchema {
            schema: case["schema"].clone(),
            strict: true,
        };
        for _ in 0..20 {
            let t = Instant::now();
            vocab.compile(&spec).expect("compiles");
            compiles.push(t.elapsed());
        }
        for _ in 0..5 {
            let mut c = vocab.compile(&spec).unwrap();
            // The first mask comes from compile; time the rest.
            let mut first = true;
            for _ in 0..300 {
                let t = Instant::now();
                let mask = c.compute_mask().expect("mask");
                if !first {
                    masks.push(t.elapsed());
                }
                first = false;
                let allowed: Vec<u32> = (0..tok.vocab_size() as u32)
                    .filter(|&id| mask.allows(id) && !eog.contains(&id))
                    .collect();
                if allowed.is_empty() {
                    break;
                }
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                c.commit(allowed[(rng % allowed.len() as u64) as usize])
                    .unwrap();
                if c.is_finished() {
                    break;
                }
            }
        }
    }
    compiles.sort();
    masks.sort();
    println!(
        "compile ({} schemas x 20): p50 {:.2} ms, p99 {:.2} ms",
        table.as_array().unwrap().len(),
        ms(percentile(&compiles, 0.5)),
        ms(percentile(&compiles, 0.99))
    );
    println!(
        "mask per token ({} masks): p50 {:.3} ms, p99 {:.3} ms",
        masks.len(),
        ms(percentile(&masks, 0.5)),
        ms(percentile(&masks, 0.99))
    );
}
