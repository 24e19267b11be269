//! Test databases: every test runs on a fresh SQLite file and on a fresh schema of a real
//! PostgreSQL (`KAIYUAN_TEST_POSTGRES`, else postgres://postgres@127.0.0.1:5432/test). When
//! the variable is set (as `scripts/with-postgres` does) an unreachable Postgres fails the
//! test; when it is not, the test says by name that it ran on SQLite only.

#![allow(dead_code)]

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};

use kaiyuan_metering::{Meter, PriceTable};
use sqlx::{Connection, Executor};

const DEFAULT_PG: &str = "postgres://postgres@127.0.0.1:5432/test";

pub const PRICES: &str =
    "[default]\ninput_cache_hit = 0.07\ninput_cache_miss = 0.27\noutput = 1.10\n\
    [models.\"big\"]\ninput_cache_hit = 0.14\ninput_cache_miss = 0.55\noutput = 2.19\n";

pub fn prices() -> PriceTable {
    PriceTable::parse(PRICES).unwrap()
}

fn unique(test: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "kaiyuan_test_{}_{}_{}_{}",
        test,
        std::process::id(),
        nanos % 1_000_000_000,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Runs `body(url)` on SQLite, then on Postgres.
pub async fn on_each_db<F, Fut>(test: &str, body: F)
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = ()>,
{
    let name = unique(test);
    let dir = std::env::temp_dir().join(&name);
    let url = format!("sqlite://{}/meter.db", dir.display());
    eprintln!("{test}: SQLite at {url}");
    body(url).await;
    let _ = std::fs::remove_dir_all(&dir);

    let explicit = std::env::var("KAIYUAN_TEST_POSTGRES").ok();
    let base = explicit.clone().unwrap_or_else(|| DEFAULT_PG.to_string());
    sqlx::any::install_default_drivers();
    let mut admin = match sqlx::AnyConnection::connect(&base).await {
        Ok(c) => c,
        Err(e) if explicit.is_none() => {
            eprintln!("{test}: SKIPPED on Postgres: unreachable at {base}: {e} (set KAIYUAN_TEST_POSTGRES, or run under scripts/with-postgres)");
            return;
        }
        Err(e) => panic!("{test}: Postgres unreachable at {base}: {e}"),
    };
    admin
        .execute(format!("CREATE SCHEMA {name}").as_str())
        .await
        .unwrap();
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options=-c%20search_path%3D{name}");
    eprintln!("{test}: Postgres schema {name}");
    body(url).await;
    // The meters' pools may still be closing: retry a drop that meets their locks.
    for attempt in 0.. {
        match admin
            .execute(format!("DROP SCHEMA {name} CASCADE").as_str())
            .await
        {
            Ok(_) => break,
            Err(e) if attempt < 5 => {
                eprintln!("{test}: dropping {name}: {e}; retrying");
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            Err(e) => panic!("{test}: cannot drop {name}: {e}"),
        }
    }
}

pub async fn open(url: &str) -> Meter {
    Meter::open(url, prices()).await.unwrap()
}
