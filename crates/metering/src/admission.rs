//! Admission and settlement. At admission a request reserves its worst-case cost (every
//! prompt token a cache miss, every allowed token generated) and a `max_parallel` slot in
//! one conditional `UPDATE` (so concurrent requests — on any replica sharing the database —
//! can never reserve past the budget), then counts itself in the key's current one-minute
//! window for `rpm` / `tpm` in one conditional upsert, both in one transaction. A
//! [`Ticket`] stands for the admitted request; settling it (or dropping it) hands the real
//! usage to the writer, which releases the reservation, adds the real cost and writes the
//! one usage record of the request. Each reservation also has a row of its own with a
//! lease ([`LEASE_MS`]), so that what a dead server reserved is released in time.

use sqlx::Row;
use tokio::sync::oneshot;

use crate::keys::AuthKey;
use crate::prices::Price;
use crate::writer::Job;
use crate::{Meter, MeterError};

/// Length of a rate-limit window (`rpm`, `tpm`).
pub const WINDOW_MS: i64 = 60_000;

/// How long a reservation holds without being settled: after that (its server died, say)
/// any server on the database releases it (`writer.rs`). Longer than any request runs.
pub const LEASE_MS: i64 = 3_600_000;

/// What a request asks to be admitted for.
#[derive(Clone, Debug)]
pub struct Admission<'a> {
    pub key: &'a AuthKey,
    /// The served model's name (prices and the key's allowed models use it).
    pub model: &'a str,
    /// The request's id: its usage record's id.
    pub request_id: &'a str,
    /// Prompt tokens (each prompt once).
    pub prompt_tokens: u64,
    /// The most tokens it may generate, over all its choices.
    pub max_completion_tokens: u64,
}

/// Rate-limit state after an admission, for OpenAI's `x-ratelimit-*` headers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RateInfo {
    pub limit_requests: Option<i64>,
    pub remaining_requests: Option<i64>,
    pub limit_tokens: Option<i64>,
    pub remaining_tokens: Option<i64>,
    /// Milliseconds until the window resets.
    pub reset_ms: i64,
}

/// Why a request was not admitted.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("this key may not use the model `{0}`")]
    ModelNotAllowed(String),
    #[error("this key's budget is spent: {remaining_nano} nano-USD remain (with requests in flight), this request may cost up to {needed_nano}")]
    InsufficientQuota {
        remaining_nano: i64,
        needed_nano: i64,
    },
    #[error("rate limit reached: {limit} {what}; retry after {retry_after_s} s")]
    RateLimited {
        what: &'static str,
        limit: i64,
        retry_after_s: u64,
        rate: RateInfo,
    },
    /// The key was revoked or expired since it was authenticated.
    #[error("the key is no longer valid")]
    KeyInvalid,
    #[error(transparent)]
    Meter(#[from] MeterError),
}

impl From<sqlx::Error> for Refusal {
    fn from(e: sqlx::Error) -> Refusal {
        Refusal::Meter(MeterError::Db(e))
    }
}

/// Reserves and takes a parallel slot, resetting a budget period that is over; no row when
/// the key is revoked, at `max_parallel`, or over budget.
const RESERVE: &str = "UPDATE api_keys SET \
    period_start_ms = CASE WHEN budget_period_ms IS NOT NULL AND $2 >= period_start_ms + budget_period_ms \
        THEN period_start_ms + (($2 - period_start_ms) / budget_period_ms) * budget_period_ms \
        ELSE period_start_ms END, \
    spent_nano = CASE WHEN budget_period_ms IS NOT NULL AND $2 >= period_start_ms + budget_period_ms \
        THEN 0 ELSE spent_nano END, \
    reserved_nano = reserved_nano + $3, \
    in_flight = in_flight + 1 \
  WHERE id = $1 AND revoked_ms IS NULL AND (expires_ms IS NULL OR expires_ms > $2) \
    AND (max_parallel IS NULL OR in_flight < max_parallel) \
    AND (budget_nano IS NULL OR \
         (CASE WHEN budget_period_ms IS NOT NULL AND $2 >= period_start_ms + budget_period_ms \
               THEN 0 ELSE spent_nano END) + reserved_nano + $3 <= budget_nano) \
  RETURNING rpm, tpm";

/// Counts a request (and its prompt tokens) in the key's window, unless the window is full.
const COUNT: &str = "INSERT INTO rate_windows (key_id, window_ms, requests, tokens) \
    VALUES ($1, $2, 1, $3) \
  ON CONFLICT (key_id, window_ms) DO UPDATE SET \
    requests = rate_windows.requests + 1, tokens = rate_windows.tokens + $3 \
  WHERE rate_windows.requests < $4 AND rate_windows.tokens < $5 \
  RETURNING requests, tokens";

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Meter {
    /// Admits a request, or says why not. The returned ticket must be settled with what the
    /// request used (dropping it settles it as used nothing, status `dropped`).
    pub async fn admit(&self, a: Admission<'_>, now_ms: i64) -> Result<Ticket, Refusal> {
        if !a.key.allows(a.model) {
            return Err(Refusal::ModelNotAllowed(a.model.to_string()));
        }
        let price = self.prices().for_model(a.model);
        let reserve = price.cost(a.prompt_tokens, 0, a.max_completion_tokens);
        let mut tx = self.pool().begin().await?;
        let row = sqlx::query(RESERVE)
            .bind(&a.key.id)
            .bind(now_ms)
            .bind(reserve)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            tx.rollback().await?;
            return Err(self.why_not_reserved(&a.key.id, reserve, now_ms).await);
        };
        // Its own row, so that a reservation whose server dies can be found and released.
        sqlx::query(
            "INSERT INTO reservations (request_id, key_id, amount_nano, expires_ms) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(a.request_id)
        .bind(&a.key.id)
        .bind(reserve)
        .bind(now_ms.saturating_add(LEASE_MS))
        .execute(&mut *tx)
        .await?;
        let rpm: Option<i64> = row.try_get("rpm")?;
        let tpm: Option<i64> = row.try_get("tpm")?;
        let mut rate = RateInfo::default();
        let mut window = None;
        if rpm.is_some() || tpm.is_some() {
            let w = now_ms - now_ms.rem_euclid(WINDOW_MS);
            rate.reset_ms = w + WINDOW_MS - now_ms;
            let counted = sqlx::query(COUNT)
                .bind(&a.key.id)
                .bind(w)
                .bind(to_i64(a.prompt_tokens))
                .bind(rpm.unwrap_or(i64::MAX))
                .bind(tpm.unwrap_or(i64::MAX))
                .fetch_optional(&mut *tx)
                .await?;
            let Some(counted) = counted else {
                tx.rollback().await?;
                return Err(self.rate_refusal(&a.key.id, w, rpm, tpm, rate).await);
            };
            let requests: i64 = counted.try_get("requests")?;
            let tokens: i64 = counted.try_get("tokens")?;
            rate.limit_requests = rpm;
            rate.remaining_requests = rpm.map(|l| (l - requests).max(0));
            rate.limit_tokens = tpm;
            rate.remaining_tokens = tpm.map(|l| (l - tokens).max(0));
            window = Some(w);
        }
        tx.commit().await?;
        Ok(Ticket {
            job: Some(Job {
                request_id: a.request_id.to_string(),
                key_id: a.key.id.clone(),
                model: a.model.to_string(),
                reserved_nano: reserve,
                window_ms: window,
                created_ms: now_ms,
                cost_nano: 0,
                usage: Settlement::default(),
            }),
            price,
            meter: self.clone(),
            rate,
        })
    }

    async fn why_not_reserved(&self, key_id: &str, needed: i64, now_ms: i64) -> Refusal {
        let row = sqlx::query(
            "SELECT revoked_ms, expires_ms, max_parallel, in_flight, budget_nano, spent_nano, \
             reserved_nano FROM api_keys WHERE id = $1",
        )
        .bind(key_id)
        .fetch_optional(self.pool())
        .await;
        let row = match row {
            Ok(Some(row)) => row,
            Ok(None) => return Refusal::KeyInvalid,
            Err(e) => return e.into(),
        };
        let get = |c: &str| row.try_get::<Option<i64>, _>(c).ok().flatten();
        if get("revoked_ms").is_some() || get("expires_ms").is_some_and(|e| e <= now_ms) {
            return Refusal::KeyInvalid;
        }
        if let Some(max) = get("max_parallel") {
            if get("in_flight").unwrap_or(0) >= max {
                return Refusal::RateLimited {
                    what: "parallel requests",
                    limit: max,
                    retry_after_s: 1,
                    rate: RateInfo::default(),
                };
            }
        }
        let budget = get("budget_nano").unwrap_or(i64::MAX);
        let used = get("spent_nano").unwrap_or(0) + get("reserved_nano").unwrap_or(0);
        Refusal::InsufficientQuota {
            remaining_nano: (budget - used).max(0),
            needed_nano: needed,
        }
    }

    async fn rate_refusal(
        &self,
        key_id: &str,
        window: i64,
        rpm: Option<i64>,
        tpm: Option<i64>,
        mut rate: RateInfo,
    ) -> Refusal {
        let row = sqlx::query(
            "SELECT requests, tokens FROM rate_windows WHERE key_id = $1 AND window_ms = $2",
        )
        .bind(key_id)
        .bind(window)
        .fetch_optional(self.pool())
        .await;
        let (requests, tokens) = match row {
            Ok(Some(r)) => (
                r.try_get::<i64, _>("requests").unwrap_or(0),
                r.try_get::<i64, _>("tokens").unwrap_or(0),
            ),
            Ok(None) => (0, 0),
            Err(e) => return e.into(),
        };
        rate.limit_requests = rpm;
        rate.remaining_requests = rpm.map(|l| (l - requests).max(0));
        rate.limit_tokens = tpm;
        rate.remaining_tokens = tpm.map(|l| (l - tokens).max(0));
        let (what, limit) = match (rpm, tpm) {
            (Some(l), _) if requests >= l => ("requests per minute", l),
            (_, Some(l)) => ("tokens per minute", l),
            (Some(l), None) => ("requests per minute", l),
            (None, None) => ("requests per minute", 0),
        };
        Refusal::RateLimited {
            what,
            limit,
            retry_after_s: (rate.reset_ms as u64).div_ceil(1000).max(1),
            rate,
        }
    }
}

/// What a request used, reported when it ends.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settlement {
    pub prompt_tokens: u64,
    pub cached_tokens: u64,
    pub completion_tokens: u64,
    pub reasoning_tokens: u64,
    /// `ok`, `cancelled`, `error`, `refused`, … (shown in the usage record).
    pub status: String,
}

/// An admitted request. Settle it once with what it used; dropped unsettled, it settles
/// as having used nothing (status `dropped`) so that its reservation is released.
pub struct Ticket {
    job: Option<Job>,
    price: Price,
    meter: Meter,
    /// The rate-limit state at admission (for response headers).
    pub rate: RateInfo,
}

impl Ticket {
    /// What the request would cost with `usage` (nano-USD).
    pub fn cost(&self, usage: &Settlement) -> i64 {
        self.price.cost(
            usage.prompt_tokens,
            usage.cached_tokens,
            usage.completion_tokens,
        )
    }

    /// The model the request was admitted for.
    pub fn model(&self) -> &str {
        self.job.as_ref().map_or("", |j| j.model.as_str())
    }

    /// The key the request was admitted for.
    pub fn key_id(&self) -> &str {
        self.job.as_ref().map_or("", |j| j.key_id.as_str())
    }

    /// The reserved worst case (nano-USD).
    pub fn reserved_nano(&self) -> i64 {
        self.job.as_ref().map_or(0, |j| j.reserved_nano)
    }

    fn job_for(&mut self, usage: Settlement) -> Option<Job> {
        let cost = self.cost(&usage);
        let mut job = self.job.take()?;
        job.cost_nano = cost;
        job.usage = usage;
        Some(job)
    }

    /// Settles and waits until the usage record is committed.
    pub async fn settle(mut self, usage: Settlement) -> Result<(), MeterError> {
        let Some(job) = self.job_for(usage) else {
            return Ok(());
        };
        let (tx, rx) = oneshot::channel();
        self.meter.writer().send(job, Some(tx));
        match rx.await {
            Ok(r) => r.map_err(MeterError::Config),
            Err(_) => Err(MeterError::Config("the metering writer stopped".into())),
        }
    }

    /// Settles without waiting for the commit.
    pub fn settle_detached(mut self, usage: Settlement) {
        if let Some(job) = self.job_for(usage) {
            self.meter.writer().send(job, None);
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let usage = Settlement {
            status: "dropped".into(),
            ..Settlement::default()
        };
        if let Some(job) = self.job_for(usage) {
            self.meter.writer().send(job, None);
        }
    }
}
