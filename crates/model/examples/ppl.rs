//! Ad hoc perplexity with llama.cpp's method (non-overlapping windows of `n_ctx` tokens,
//! BOS replacing each window's first token when asked, positions `n_ctx/2 .. n_ctx-2`
//! scored against the next token): `cargo run --release -p kaiyuan-model --example ppl --
//! MODEL THREADS N_CTX BOS|- TOKENS_FILE` (whitespace-separated ids). The product's
//! `perplexity` command lives in the CLI.

use kaiyuan_kernels::threads::ThreadPool;
use kaiyuan_model::{Model, Session};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() != 5 {
        return Err("usage: ppl MODEL THREADS N_CTX BOS|- TOKENS_FILE".into());
    }
    let model = Model::open(&args[0])?;
    let pool = ThreadPool::new(args[1].parse()?);
    let n_ctx: usize = args[2].parse()?;
    let bos: Option<u32> = if args[3] == "-" {
        None
    } else {
        Some(args[3].parse()?)
    };
    let tokens: Vec<u32> = std::fs::read_to_string(&args[4])?
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    let vocab = model.config().vocab_size;
    let mut session = Session::new(&model, n_ctx);
    let (mut nll_sum, mut count) = (0f64, 0usize);
    for (c, window) in tokens.chunks_exact(n_ctx).enumerate() {
        let mut w = window.to_vec();
        if let Some(b) = bos {
            w[0] = b;
        }
        session.reset();
        let logits = session.eval(&pool, &w, true)?;
        let mut chunk = 0f64;
        for p in n_ctx / 2..n_ctx - 1 {
            let l = &logits[p * vocab..(p + 1) * vocab];
            let max = l.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let sum: f64 = l.iter().map(|&x| f64::from(x - max).exp()).sum();
            chunk += sum.ln() + f64::from(max) - f64::from(l[w[p + 1] as usize]);
        }
        nll_sum += chunk;
        count += n_ctx - 1 - n_ctx / 2;
        eprintln!(
            "[{}] mean nll {:.5} running ppl {:.4}",
            c + 1,
            chunk / (n_ctx - 1 - n_ctx / 2) as f64,
            (nll_sum / count as f64).exp()
        );
    }
    println!("ppl {:.6}", (nll_sum / count as f64).exp());
    Ok(())
}
