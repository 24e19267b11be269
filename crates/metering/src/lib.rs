//! Kaiyuan's metering layer: API keys, prices, budgets, rate limits and usage records, kept
//! in a database through `sqlx` (an embedded SQLite file by default, Postgres for several
//! replicas sharing one). It knows nothing of HTTP or the engine: the server asks it to
//! authenticate a key, to admit a request ([`Meter::admit`]: reserve the worst-case cost and
//! a rate-limit slot atomically in the database) and reports the outcome ([`Ticket::settle`]:
//! the real cost, one usage record, written in grouped commits).
//!
//! - `db.rs`: connecting and migrations (one code path for both databases: the Any driver);
//! - `keys.rs`: issuing (random, shown once, stored as a SHA-256 hash), listing, changing,
//!   revoking and authenticating keys;
//! - `prices.rs`: the price table, exact integer nano-USD per token;
//! - `admission.rs`: budgets, `max_parallel`, `rpm` / `tpm` at admission; tickets;
//! - `writer.rs`: settlements and usage records in batched transactions;
//! - `usage.rs`: reading usage back (records, summaries, a key's balance).

mod admission;
mod db;
mod keys;
mod prices;
mod usage;
mod writer;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::AnyPool;

pub use admission::{Admission, RateInfo, Refusal, Settlement, Ticket, LEASE_MS};
pub use db::{redact, Backend};
pub use keys::{
    generate_key, hash_key, parse_period, AuthKey, FieldError, IssuedKey, KeyInfo, KeyPatch,
    KeySpec, KEY_PREFIX,
};
pub use prices::{usd_per_million_to_nano, Price, PriceTable};
pub use usage::{Balance, SummaryRow, UsageFilter, UsageRecord};

/// Nano-USD in one USD.
pub const NANO_PER_USD: i64 = 1_000_000_000;

/// Why the meter could not do something.
#[derive(Debug, thiserror::Error)]
pub enum MeterError {
    #[error("metering database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("metering database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{0}")]
    Config(String),
    #[error("price file: {0}")]
    Prices(String),
}

/// The meter: a pool on the database, the prices, and the writer of settlements.
#[derive(Clone)]
pub struct Meter {
    inner: Arc<Inner>,
}

struct Inner {
    pool: AnyPool,
    backend: Backend,
    prices: PriceTable,
    writer: writer::WriterHandle,
}

impl Meter {
    /// Connects to `url` (`sqlite://PATH`, created with its directory if absent, or
    /// `postgres://…`), applies the migrations, and starts the settlement writer (on the
    /// current tokio runtime).
    pub async fn open(url: &str, prices: PriceTable) -> Result<Meter, MeterError> {
        let (pool, backend) = db::connect(url).await?;
        if backend == Backend::Sqlite {
            // One server owns a SQLite file: whatever was reserved or in flight when it last
            // stopped (a crash) can never settle, so it is released.
            let mut tx = pool.begin().await?;
            sqlx::query("DELETE FROM reservations")
                .execute(&mut *tx)
                .await?;
            sqlx::query("UPDATE api_keys SET reserved_nano = 0, in_flight = 0")
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        }
        // Reservations of servers that died long enough ago are released at once.
        writer::sweep_now(&pool).await?;
        let writer = writer::start(pool.clone());
        Ok(Meter {
            inner: Arc::new(Inner {
                pool,
                backend,
                prices,
                writer,
            }),
        })
    }

    pub fn backend(&self) -> Backend {
        self.inner.backend
    }

    pub fn prices(&self) -> &PriceTable {
        &self.inner.prices
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.inner.pool
    }

    pub(crate) fn writer(&self) -> &writer::WriterHandle {
        &self.inner.writer
    }

    /// Releases the reservations whose lease ([`admission::LEASE_MS`]) ended before
    /// `now_ms` (their server died without settling them); how many. The writer does this
    /// every 30 s on its own.
    pub async fn release_expired(&self, now_ms: i64) -> Result<usize, MeterError> {
        let mut tx = self.pool().begin().await?;
        let n = writer::release_expired(&mut tx, now_ms).await?;
        tx.commit().await?;
        Ok(n)
    }

    /// Waits until every settlement handed over so far is committed.
    pub async fn flush(&self) {
        self.inner.writer.flush().await;
    }
}

/// Unix time in milliseconds.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// nano-USD as USD (for the API's `cost` and budget fields).
pub fn nano_to_usd(nano: i64) -> f64 {
    nano as f64 / NANO_PER_USD as f64
}
