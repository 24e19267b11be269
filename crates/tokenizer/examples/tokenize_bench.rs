//! Tokenization throughput (MB/s) of both test models on two large mixed texts: "mixed" is the
//! golden corpus (English, code, whitespace, CJK, Arabic, emoji...) interleaved with prose,
//! repeated (repeated words, as real text has); "random" is seeded random words over Latin,
//! digits, punctuation, Cyrillic and CJK (few repeats: the word cache rarely helps).
//! Not a test: `cargo run --release -p kaiyuan-tokenizer --example tokenize_bench [MB] [MODEL]`
//! (MODEL: smollm2 or gemma3; default both). With `KAIYUAN_BENCH_DUMP=DIR` the two texts are
//! also written to DIR/mixed.txt and DIR/random.txt.

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
    let random = random_words(text.len());
    // To time other tokenizers on the very same texts.
    if let Some(dir) = std::env::var_os("KAIYUAN_BENCH_DUMP") {
        let dir = std::path::PathBuf::from(dir);
        std::fs::write(dir.join("mixed.txt"), &text).expect("write mixed.txt");
        std::fs::write(dir.join("random.txt"), &random).expect("write random.txt");
    }
    let only = std::env::args().nth(2);
    for (name, file) in [("smollm2", support::SMOLLM2), ("gemma3", support::GEMMA3)] {
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        let t0 = Instant::now();
        let tok = Tokenizer::from_vocab(&support::read_vocab(file)).expect("tokenizer");
        let load = t0.elapsed().as_secs_f64();
        println!("{name}: metadata read + build {load:.2} s");
        for (kind, text) in [("mixed", &text), ("random", &random)] {
            let _ = tok.encode(&text[..text.len().min(100_000)], false); // warm up
            let (t, cpu0) = (Instant::now(), thread_cpu_seconds());
            let ids = tok.encode(text, false);
            let secs = t.elapsed().as_secs_f64();
            if let Some(dir) = std::env::var_os("KAIYUAN_BENCH_DUMP") {
                let path = std::path::PathBuf::from(dir).join(format!("{name}-{kind}.ids"));
                let list: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
                std::fs::write(path, list.join("\n")).expect("write ids");
            }
            let cpu = thread_cpu_seconds().zip(cpu0).map(|(b, a)| b - a);
            let mb = text.len() as f64 / 1e6;
            println!(
                "  {kind:6}: {mb:.2} MB -> {} ids in {secs:.3} s = {:.1} MB/s wall{}",
                ids.len(),
                mb / secs,
                cpu.map_or(String::new(), |c| format!(
                    ", {:.1} MB/s of thread CPU time",
                    mb / c
                ))
            );
        }
    }
}

/// CPU time of this thread (Linux `/proc/thread-self/schedstat`), which a shared machine's
/// load does not inflate the way it does wall time.
fn thread_cpu_seconds() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: f64 = s.split_whitespace().next()?.parse().ok()?;
    Some(ns / 1e9)
}

/// About `bytes` bytes of seeded random words (xorshift), mostly Latin, some of everything.
fn random_words(bytes: usize) -> String {
    let alphabets: [&[char]; 5] = [
        &[
            'a', 'e', 'i', 'o', 'u', 'n', 's', 't', 'r', 'l', 'c', 'd', 'p', 'm', 'h', 'g', 'b',
            'y', 'k', 'w',
        ],
        &['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'],
        &['.', ',', ';', '(', ')', '-', '"', '!', '?', '/'],
        &['а', 'е', 'и', 'о', 'н', 'т', 'с', 'р', 'в', 'л'],
        &[
            '的', '一', '是', '不', '了', '人', '我', '在', '有', '他', '这', '中',
        ],
    ];
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move |n: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % n
    };
    let mut s = String::with_capacity(bytes + 64);
    while s.len() < bytes {
        let a = match next(20) {
            0..=13 => 0,
            14..=15 => 1,
            16..=17 => 2,
            18 => 3,
            _ => 4,
        };
        for _ in 0..1 + next(10) {
            s.push(alphabets[a][next(alphabets[a].len() as u64) as usize]);
        }
        s.push(if next(12) == 0 { '\n' } else { ' ' });
    }
    s
}
