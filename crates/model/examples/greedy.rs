//! Ad hoc greedy decoding and timing: `cargo run --release -p kaiyuan-model --example
//! greedy -- MODEL THREADS N_GEN TOKEN...` prints the generated token ids and the
//! prompt / decode speed on stderr; `DUMP_PROMPT_LOGITS=FILE` also writes the prompt's
//! logits (`[n, vocab]` little-endian f32). (The product's `run`/`bench` live in the CLI.)

use kaiyuan_kernels::threads::ThreadPool;
use kaiyuan_model::{Model, Session};
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 4 {
        return Err("usage: greedy MODEL THREADS N_GEN TOKEN...".into());
    }
    let model = Model::open(&args[0])?;
    let pool = ThreadPool::new(args[1].parse()?);
    let n_gen: usize = args[2].parse()?;
    let prompt: Vec<u32> = args[3..]
        .iter()
        .map(|t| t.parse())
        .collect::<Result<_, _>>()?;
    let mut session = Session::new(&model, prompt.len() + n_gen + 1);
    let argmax = |l: &[f32]| {
        (0..l.len())
            .max_by(|&a, &b| l[a].total_cmp(&l[b]))
            .unwrap_or(0)
    };

    let t0 = Instant::now();
    let all = session.eval(&pool, &prompt, true)?;
    let prefill = t0.elapsed();
    let vocab = model.config().vocab_size;
    if let Ok(path) = std::env::var("DUMP_PROMPT_LOGITS") {
        let bytes: Vec<u8> = all.iter().flat_map(|v| v.to_le_bytes()).collect();
        std::fs::write(path, bytes)?;
    }
    let mut logits = all[all.len() - vocab..].to_vec();
    let t1 = Instant::now();
    let mut out = Vec::new();
    for _ in 0..n_gen {
        let next = argmax(&logits) as u32;
        out.push(next);
        logits = session.eval(&pool, &[next], false)?;
    }
    let decode = t1.elapsed();
    println!(
        "{}",
        out.iter().map(u32::to_string).collect::<Vec<_>>().join(" ")
    );
    eprintln!(
        "prompt {} tokens: {:.1} tok/s; decode {n_gen} tokens: {:.1} tok/s",
        prompt.len(),
        prompt.len() as f64 / prefill.as_secs_f64(),
        n_gen as f64 / decode.as_secs_f64()
    );
    Ok(())
}
