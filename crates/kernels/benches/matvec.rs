//! Mat-vec throughput per weight format, in GB/s of weights read, beside the memory
//! bandwidth this machine measures for data of the same size.
//!
//! `cargo bench -p kaiyuan-kernels --bench matvec [-- --threads 1,2 --quick --formats Q4_0,Q4_K
//! --shapes 576x1536,262144x640 --dram]`
//!
//! Small matrices (576×1536) stay in cache between calls, so they are compared with the
//! bandwidth of reading a cache-resident buffer of the same size; large ones (4096×4096)
//! are rotated through enough copies (≥ 512 MiB) that every call reads DRAM, and are
//! compared with the DRAM read bandwidth. Both bandwidths are measured by the same
//! multi-threaded read loop over the same worker pool (`kaiyuan_kernels::probe`, also behind
//! `kaiyuan bench --bandwidth`). `--dram` rotates copies of every shape, small ones too, as a
//! decoded MoE token reads its small expert matrices (none of them in cache).

use kaiyuan_kernels::ops::{matvec, WeightMatrix};
use kaiyuan_kernels::probe::{best_time, probe_buffer, read_bandwidth};
use kaiyuan_kernels::quant::simd_description;
use kaiyuan_kernels::quant::testing::{random_blocks, Rng};
use kaiyuan_kernels::threads::ThreadPool;
use kaiyuan_kernels::DType;
use std::hint::black_box;
use std::time::Duration;

const DRAM_BYTES: usize = 512 << 20;

struct Args {
    threads: Vec<usize>,
    quick: bool,
    formats: Vec<DType>,
    /// Matrix shapes, rows × columns.
    shapes: Vec<(usize, usize)>,
    /// Read every shape from DRAM (rotating copies), small ones too: a decoded MoE token
    /// reads many small expert matrices, none of them in cache.
    dram: bool,
}

fn parse_args() -> Args {
    let mut args = Args {
        threads: vec![1, 2],
        quick: false,
        formats: [
            DType::Q4_0,
            DType::Q4_1,
            DType::Q5_0,
            DType::Q5_1,
            DType::Q8_0,
            DType::Q2_K,
            DType::Q3_K,
            DType::Q4_K,
            DType::Q5_K,
            DType::Q6_K,
            DType::F16,
            DType::BF16,
            DType::F32,
        ]
        .to_vec(),
        shapes: vec![(576, 1536), (4096, 4096)],
        dram: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => args.quick = true,
            "--dram" => args.dram = true,
            "--threads" => {
                let v = it.next().expect("--threads needs a list, e.g. 1,2");
                args.threads = v
                    .split(',')
                    .map(|s| s.parse().expect("thread count"))
                    .collect();
            }
            "--formats" => {
                let v = it.next().expect("--formats needs a list, e.g. Q4_0,Q4_K");
                args.formats = v
                    .split(',')
                    .map(|s| {
                        DType::all()
                            .find(|t| t.name().eq_ignore_ascii_case(s))
                            .unwrap_or_else(|| panic!("unknown format {s}"))
                    })
                    .collect();
            }
            "--shapes" => {
                let v = it
                    .next()
                    .expect("--shapes needs a list, e.g. 576x1536,262144x640");
                args.shapes = v
                    .split(',')
                    .map(|s| {
                        let (r, c) = s.split_once('x').expect("shape ROWSxCOLS");
                        (r.parse().expect("rows"), c.parse().expect("columns"))
                    })
                    .collect();
            }
            "--bench" => {} // passed by cargo bench
            other => panic!("unknown argument {other}"),
        }
    }
    args
}

fn main() {
    let args = parse_args();
    let budget = Duration::from_millis(if args.quick { 300 } else { 1500 });
    let mut rng = Rng::new(7);
    println!("SIMD level: {}", simd_description());
    let dram = probe_buffer(DRAM_BYTES);

    println!("| format | matrix | threads | GB/s | bandwidth GB/s (where the data lives) | % of bandwidth |");
    println!("|---|---|---|---|---|---|");
    for &threads in &args.threads {
        let pool = ThreadPool::new(threads);
        let dram_bw = read_bandwidth(&pool, &dram, budget * 2);
        println!(
            "| (DRAM read) | {} MiB | {threads} | {dram_bw:.1} | | |",
            DRAM_BYTES >> 20
        );
        for &dtype in &args.formats {
            for &(rows, cols) in &args.shapes {
                let row_blocks = cols / dtype.block_size();
                let bytes = rows * row_blocks * dtype.type_size();
                let large = args.dram || bytes * 4 > 32 << 20 || rows >= 4096;
                let copies = if large {
                    (DRAM_BYTES / bytes).max(2)
                } else {
                    1
                };
                let data: Vec<Vec<u8>> = (0..copies)
                    .map(|_| random_blocks(dtype, rows * row_blocks, &mut rng).expect("generator"))
                    .collect();
                let mats: Vec<WeightMatrix> = data
                    .iter()
                    .map(|d| WeightMatrix::new(dtype, rows, cols, d).expect("valid matrix"))
                    .collect();
                let x = rng.vec_f32(cols, 1.0);
                let mut y = vec![0f32; rows];
                let mut k = 0;
                let t = best_time(budget, || {
                    matvec(&pool, &mats[k % copies], &x, &mut y);
                    k += 1;
                    black_box(&y);
                });
                let gbs = bytes as f64 / t.as_secs_f64() / 1e9;
                let bw = if large {
                    dram_bw
                } else {
                    let cached = probe_buffer(bytes);
                    read_bandwidth(&pool, &cached, budget)
                };
                println!(
                    "| {dtype} | {rows}×{cols} | {threads} | {gbs:.1} | {bw:.1} ({}) | {:.0}% |",
                    if large { "DRAM" } else { "cache" },
                    100.0 * gbs / bw
                );
            }
        }
    }
}
