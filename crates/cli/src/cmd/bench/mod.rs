//! `kaiyuan bench -m MODEL`: prompt-processing and generation speed by llama.cpp's
//! `llama-bench` method, so the two can be compared number for number.
//!
//! - `ppP`: one forward pass over P tokens (logits of the last only) on a fresh cache, or after
//!   D tokens already in it with `-d D`.
//! - `tgN`: N forward passes of one token each (logits every time, no sampling), after D
//!   tokens with `-d D`.
//!
//! Tokens are random ids of normal (not control) tokens. The D context tokens are evaluated
//! once per test, untimed; each run then truncates the cache back to them (llama-bench
//! restores a saved state instead: the same cache contents). One warm-up run precedes the
//! `-r` timed runs. Reported: tokens/s mean ± sample standard deviation over the runs.
//! `--bandwidth` instead measures the memory read bandwidth (the decode ceiling) with the
//! kernels' probe. The report itself is in `report.rs`.

mod report;

use std::io::{self, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use kaiyuan_kernels::probe::{probe_buffer, read_bandwidth};
use kaiyuan_kernels::simd_level;
use kaiyuan_kernels::threads::ThreadPool;
use kaiyuan_model::{Model, Session};
use kaiyuan_tokenizer::TokenType;

use super::model_file::{LoadArgs, ModelFile};
use super::sampling_args::threads;
use report::{BandwidthRecord, ModelInfo, Record, TestKind};

#[derive(clap::Args)]
pub struct BenchArgs {
    /// The GGUF model.
    #[arg(short, long, required_unless_present = "bandwidth")]
    pub model: Option<PathBuf>,
    /// Prompt sizes for pp tests (comma list).
    #[arg(
        short = 'p',
        long = "n-prompt",
        value_delimiter = ',',
        default_value = "512"
    )]
    pub n_prompt: Vec<usize>,
    /// Generated tokens for tg tests (comma list).
    #[arg(
        short = 'n',
        long = "n-gen",
        value_delimiter = ',',
        default_value = "128"
    )]
    pub n_gen: Vec<usize>,
    /// Tokens already in the context before each test (comma list).
    #[arg(
        short = 'd',
        long = "n-depth",
        value_delimiter = ',',
        default_value = "0"
    )]
    pub n_depth: Vec<usize>,
    /// Thread counts (comma list; default: all cores).
    #[arg(short, long, value_delimiter = ',')]
    pub threads: Vec<usize>,
    /// Timed runs per test.
    #[arg(short = 'r', long = "repetitions", default_value_t = 5)]
    pub reps: usize,
    /// Run only the prompt (pp) or only the generation (tg) tests.
    #[arg(long, value_parser = ["pp", "tg"])]
    pub only: Option<String>,
    /// Print JSON (an array of records, one per test, with every sample) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Measure the memory read bandwidth instead of a model (per thread count).
    #[arg(long)]
    pub bandwidth: bool,
    /// Size of the bandwidth probe's buffer, in MiB (far above the last-level cache: DRAM).
    #[arg(long, default_value_t = 512, value_name = "MIB")]
    pub probe_mib: usize,
    #[command(flatten)]
    pub load: LoadArgs,
}

pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    let thread_counts = if args.threads.is_empty() {
        vec![threads(None)?]
    } else {
        args.threads
            .iter()
            .map(|&t| threads(Some(t)))
            .collect::<anyhow::Result<_>>()?
    };
    if args.bandwidth {
        return bandwidth(args, &thread_counts);
    }
    let tests = plan(args)?;
    let Some(path) = &args.model else {
        bail!("-m MODEL is required (or --bandwidth)");
    };
    let file = ModelFile::open_for_inference(path, args.load)?;
    let model = file.load_model()?;
    let info = ModelInfo::new(path, &model);
    let ids: Vec<u32> = (0..file.tokenizer.vocab_size() as u32)
        .filter(|&id| file.tokenizer.token_type(id) == Some(TokenType::Normal))
        .filter(|&id| (id as usize) < model.config().vocab_size)
        .collect();
    if ids.is_empty() {
        bail!("{} has no normal tokens to benchmark with", path.display());
    }
    let mut rng = SplitMix64(0x006b_6169_7975_616e);
    let mut random_tokens = |n: usize| -> Vec<u32> {
        (0..n)
            .map(|_| ids[(rng.next() % ids.len() as u64) as usize])
            .collect()
    };

    let mut records = Vec::new();
    let stdout = io::stdout();
    let mut out = stdout.lock();
    if !args.json {
        report::write_header(&mut out)?;
    }
    for &n_threads in &thread_counts {
        let pool = ThreadPool::new(n_threads);
        for &depth in &args.n_depth {
            for &(kind, size) in &tests {
                let samples = time_test(
                    &model,
                    &pool,
                    kind,
                    size,
                    depth,
                    args.reps,
                    &mut random_tokens,
                )?;
                let record = Record::new(&info, &model, n_threads, kind, size, depth, &samples);
                if !args.json {
                    report::write_row(&mut out, &record)?;
                }
                records.push(record);
            }
        }
    }
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&records)?)?;
    }
    Ok(())
}

/// The (kind, size) tests the arguments ask for, checked.
fn plan(args: &BenchArgs) -> anyhow::Result<Vec<(TestKind, usize)>> {
    if args.reps == 0 {
        bail!("-r 0: at least one timed run is needed");
    }
    let mut tests = Vec::new();
    if args.only.as_deref() != Some("tg") {
        for &p in &args.n_prompt {
            if p == 0 {
                bail!("-p 0: a prompt test needs at least 1 token (use --only tg to skip prompt tests)");
            }
            tests.push((TestKind::Prompt, p));
        }
    }
    if args.only.as_deref() != Some("pp") {
        for &n in &args.n_gen {
            if n == 0 {
                bail!("-n 0: a generation test needs at least 1 token (use --only pp to skip generation tests)");
            }
            tests.push((TestKind::Generation, n));
        }
    }
    Ok(tests)
}

/// One test: its context evaluated once, a warm-up run, then `reps` timed runs.
fn time_test(
    model: &Model,
    pool: &ThreadPool,
    kind: TestKind,
    size: usize,
    depth: usize,
    reps: usize,
    random_tokens: &mut dyn FnMut(usize) -> Vec<u32>,
) -> anyhow::Result<Vec<Duration>> {
    let positions = depth
        .checked_add(size)
        .context("-d plus the test size overflows")?;
    let trained = model.config().context_length;
    if positions > trained {
        eprintln!(
            "note: {} positions exceed the model's training context ({trained}); timing them anyway",
            positions
        );
    }
    let mut session = Session::try_new(model, positions)?;
    let context = random_tokens(depth);
    for chunk in context.chunks(512) {
        session
            .eval(pool, chunk, false)
            .context("evaluating the -d context")?;
    }
    let mut samples = Vec::with_capacity(reps);
    for run in 0..=reps {
        session.truncate(depth);
        let tokens = random_tokens(size);
        let start = Instant::now();
        match kind {
            TestKind::Prompt => {
                session.eval(pool, &tokens, false)?;
            }
            TestKind::Generation => {
                for &t in &tokens {
                    session.eval(pool, &[t], false)?;
                }
            }
        }
        let elapsed = start.elapsed();
        if run > 0 {
            samples.push(elapsed); // run 0 is the warm-up
        }
    }
    Ok(samples)
}

fn bandwidth(args: &BenchArgs, thread_counts: &[usize]) -> anyhow::Result<()> {
    if args.probe_mib == 0 {
        bail!("--probe-mib 0: the probe needs a buffer");
    }
    let bytes = args
        .probe_mib
        .checked_mul(1 << 20)
        .context("--probe-mib is too large")?;
    let buf = probe_buffer(bytes);
    let mut records = Vec::new();
    let stdout = io::stdout();
    let mut out = stdout.lock();
    if !args.json {
        writeln!(out, "| test | buffer | threads | GB/s |\n|---|---|---|---|")?;
    }
    for &n_threads in thread_counts {
        let pool = ThreadPool::new(n_threads);
        let gbs = read_bandwidth(&pool, &buf, Duration::from_secs(2));
        let record = BandwidthRecord {
            test: "read_bandwidth",
            buffer_bytes: buf.len() * 8,
            n_threads,
            simd: simd_level().name(),
            gbs,
        };
        if !args.json {
            writeln!(
                out,
                "| read | {} MiB | {n_threads} | {gbs:.2} |",
                record.buffer_bytes >> 20
            )?;
        }
        records.push(record);
    }
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&records)?)?;
    }
    Ok(())
}

/// The benchmark's token source: fixed seed, so runs draw the same tokens.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}
