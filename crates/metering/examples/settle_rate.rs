//! How many requests per second the meter admits and records: `concurrency` tasks each
//! admit a request (reserve + rate window) and settle it (waiting for the commit of its
//! usage record), `n` in all, against one key with a budget and an rpm limit that never
//! refuse. Prints one JSON line.
//!
//!     cargo run --release -p kaiyuan-metering --example settle_rate -- [URL] [N] [CONCURRENCY]
//!
//! URL defaults to a fresh SQLite file in the temporary directory; for Postgres give a
//! database (or `?options=-c%20search_path%3DSCHEMA`) the example may create tables in.

use std::time::Instant;

use kaiyuan_metering::{now_ms, Admission, KeySpec, Meter, PriceTable, Settlement};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = std::env::temp_dir().join(format!("kaiyuan-settle-rate-{}", std::process::id()));
    let url = args
        .first()
        .cloned()
        .unwrap_or_else(|| format!("sqlite://{}/meter.db", dir.display()));
    let n: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(5000);
    let concurrency: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(16);
    let prices = PriceTable::parse(
        "[default]\ninput_cache_hit = 0.07\ninput_cache_miss = 0.27\noutput = 1.10\n",
    )
    .expect("prices");
    let meter = Meter::open(&url, prices).await.expect("open the database");
    let spec = KeySpec::from_json(&serde_json::json!({
        "name": "bench", "budget_usd": 1e6, "rpm": 1_000_000_000, "max_parallel": 1_000_000
    }))
    .expect("spec");
    let issued = meter.create_key(&spec, now_ms()).await.expect("key");
    let key = meter
        .authenticate(&issued.key, now_ms())
        .await
        .expect("db")
        .expect("key");
    let start = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|t| {
            let (meter, key) = (meter.clone(), key.clone());
            tokio::spawn(async move {
                for i in (t..n).step_by(concurrency) {
                    let id = format!("bench-{}-{i}", issued_suffix());
                    let admission = Admission {
                        key: &key,
                        model: "m",
                        request_id: &id,
                        prompt_tokens: 100,
                        max_completion_tokens: 128,
                    };
                    let ticket = meter.admit(admission, now_ms()).await.expect("admitted");
                    let usage = Settlement {
                        prompt_tokens: 100,
                        cached_tokens: 32,
                        completion_tokens: 128,
                        reasoning_tokens: 0,
                        status: "ok".into(),
                    };
                    ticket.settle(usage).await.expect("settled");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task");
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{{\"backend\": \"{:?}\", \"requests\": {n}, \"concurrency\": {concurrency}, \"seconds\": {secs:.3}, \"requests_per_s\": {:.0}}}",
        meter.backend(),
        n as f64 / secs
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Distinguishes runs against one database.
fn issued_suffix() -> u32 {
    std::process::id()
}
