//! Mat-mat throughput per weight format (prefill and batched decode), in billions of
//! multiply-accumulates per second, for `m` activation rows against one weight matrix.
//!
//! `cargo bench -p kaiyuan-kernels --bench matmul [-- --threads 1,2 --quick --formats Q4_1,Q5_0
//! --shapes 576x1536,640x2048 --rows 16,64]`
//!
//! The matrices are small enough to stay in cache: this measures the kernels' compute
//! rate, which bounds prefill and many-stream serving, not memory bandwidth (the `matvec`
//! bench covers that).

use kaiyuan_kernels::ops::{matmul, WeightMatrix};
use kaiyuan_kernels::probe::best_time;
use kaiyuan_kernels::quant::simd_description;
use kaiyuan_kernels::quant::testing::{random_blocks, Rng};
use kaiyuan_kernels::threads::ThreadPool;
use kaiyuan_kernels::DType;
use std::hint::black_box;
use std::time::Duration;

fn list<T>(it: &mut impl Iterator<Item = String>, what: &str, f: impl Fn(&str) -> T) -> Vec<T> {
    let v = it
        .next()
        .unwrap_or_else(|| panic!("{what} needs a comma-separated list"));
    v.split(',').map(f).collect()
}

fn main() {
    let mut threads = vec![1];
    let mut quick = false;
    let mut formats = vec![
        DType::Q4_0,
        DType::Q4_1,
        DType::Q5_0,
        DType::Q8_0,
        DType::Q4_K,
        DType::Q6_K,
    ];
    let mut shapes = vec![(576, 1536), (640, 2048)];
    let mut batch = vec![16, 64];
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => quick = true,
            "--threads" => {
                threads = list(&mut it, "--threads", |s| s.parse().expect("thread count"))
            }
            "--rows" => batch = list(&mut it, "--rows", |s| s.parse().expect("row count")),
            "--formats" => {
                formats = list(&mut it, "--formats", |s| {
                    DType::all()
                        .find(|t| t.name().eq_ignore_ascii_case(s))
                        .unwrap_or_else(|| panic!("unknown format {s}"))
                })
            }
            "--shapes" => {
                shapes = list(&mut it, "--shapes", |s| {
                    let (r, c) = s.split_once('x').expect("shape ROWSxCOLS");
                    (r.parse().expect("rows"), c.parse().expect("columns"))
                })
            }
            "--bench" => {} // passed by cargo bench
            other => panic!("unknown argument {other}"),
        }
    }
    let budget = Duration::from_millis(if quick { 300 } else { 1500 });
    let mut rng = Rng::new(7);
    println!("SIMD level: {}", simd_description());
    println!("| format | matrix | activation rows | threads | GMAC/s |");
    println!("|---|---|---|---|---|");
    for &n_threads in &threads {
        let pool = ThreadPool::new(n_threads);
        for &dtype in &formats {
            for &(rows, cols) in &shapes {
                let blocks = rows * cols / dtype.block_size();
                let data = random_blocks(dtype, blocks, &mut rng).expect("generator");
                let w = WeightMatrix::new(dtype, rows, cols, &data).expect("valid matrix");
                for &m in &batch {
                    let x = rng.vec_f32(m * cols, 1.0);
                    let mut y = vec![0f32; m * rows];
                    let t = best_time(budget, || {
                        matmul(&pool, &w, &x, &mut y);
                        black_box(&y);
                    });
                    let gmacs = (m * rows * cols) as f64 / t.as_secs_f64() / 1e9;
                    println!("| {dtype} | {rows}×{cols} | {m} | {n_threads} | {gmacs:.2} |");
                }
            }
        }
    }
}
