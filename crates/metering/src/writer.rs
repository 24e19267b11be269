//! The settlement writer: one task that takes settled requests off a channel and writes
//! them in batches, one transaction per batch (group commit): for each, its reservation row
//! deleted and — only if it was still there — the key's reservation and parallel slot
//! released; its usage record (keyed by the request id, so a request is never recorded
//! twice) and — only if that record is new — its real cost added and its generated tokens
//! counted in its rate window. Now and then it also releases reservations whose lease ran
//! out (their server died): on Postgres, any replica cleans up after another.

use std::time::Duration;

use sqlx::{Any, AnyPool, Row, Transaction};
use tokio::sync::{mpsc, oneshot};

use crate::admission::{Settlement, WINDOW_MS};

/// Most settlements in one transaction.
const BATCH: usize = 256;
/// Tries of a batch before its settlements are reported as failed.
const TRIES: u32 = 5;

/// One admitted request's settlement.
#[derive(Clone, Debug)]
pub struct Job {
    pub request_id: String,
    pub key_id: String,
    pub model: String,
    pub reserved_nano: i64,
    pub window_ms: Option<i64>,
    pub created_ms: i64,
    pub cost_nano: i64,
    pub usage: Settlement,
}

type Ack = oneshot::Sender<Result<(), String>>;

enum Msg {
    Settle(Job, Option<Ack>),
    Flush(oneshot::Sender<()>),
}

pub struct WriterHandle {
    tx: mpsc::UnboundedSender<Msg>,
}

impl WriterHandle {
    pub fn send(&self, job: Job, ack: Option<Ack>) {
        if let Err(mpsc::error::SendError(Msg::Settle(job, _))) =
            self.tx.send(Msg::Settle(job, ack))
        {
            tracing::error!(
                req = %job.request_id,
                key = %job.key_id,
                "metering: writer stopped; usage not recorded"
            );
        }
    }

    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Flush(tx)).is_ok() {
            let _ = rx.await;
        }
    }
}

pub fn start(pool: AnyPool) -> WriterHandle {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(run(pool, rx));
    WriterHandle { tx }
}

/// How often expired reservations are looked for, traffic or not.
const SWEEP_EVERY: Duration = Duration::from_secs(30);

async fn run(pool: AnyPool, mut rx: mpsc::UnboundedReceiver<Msg>) {
    // The first sweep is `Meter::open`'s own.
    let mut sweep =
        tokio::time::interval_at(tokio::time::Instant::now() + SWEEP_EVERY, SWEEP_EVERY);
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let first = tokio::select! {
            m = rx.recv() => match m {
                Some(m) => m,
                None => return,
            },
            _ = sweep.tick() => {
                if let Err(e) = sweep_now(&pool).await {
                    tracing::warn!("metering: cannot release expired reservations: {e}");
                }
                continue;
            }
        };
        let mut msgs = vec![first];
        while msgs.len() < BATCH {
            match rx.try_recv() {
                Ok(m) => msgs.push(m),
                Err(_) => break,
            }
        }
        let mut jobs: Vec<&Job> = msgs
            .iter()
            .filter_map(|m| match m {
                Msg::Settle(job, _) => Some(job),
                Msg::Flush(_) => None,
            })
            .collect();
        // Rows locked in one order by every writer and replica: no deadlocks between them.
        jobs.sort_by(|a, b| a.key_id.cmp(&b.key_id));
        let mut result = Ok(());
        if !jobs.is_empty() {
            for attempt in 0..TRIES {
                result = write(&pool, &jobs).await.map_err(|e| e.to_string());
                if result.is_ok() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
            }
        }
        if let Err(e) = &result {
            for job in &jobs {
                tracing::error!(
                    req = %job.request_id,
                    key = %job.key_id,
                    "metering: usage not recorded: {e}"
                );
            }
        }
        for m in msgs {
            match m {
                Msg::Settle(_, Some(ack)) => {
                    let _ = ack.send(result.clone());
                }
                Msg::Settle(_, None) => {}
                Msg::Flush(done) => {
                    let _ = done.send(());
                }
            }
        }
    }
}

async fn write(pool: &AnyPool, jobs: &[&Job]) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    for job in jobs {
        let u = &job.usage;
        let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        let held =
            sqlx::query("DELETE FROM reservations WHERE request_id = $1 RETURNING amount_nano")
                .bind(&job.request_id)
                .fetch_optional(&mut *tx)
                .await?;
        if held.is_some() {
            release(&mut tx, &job.key_id, job.reserved_nano).await?;
        }
        let inserted = sqlx::query(
            "INSERT INTO usage_records (id, key_id, model, created_ms, prompt_tokens, \
             cached_tokens, completion_tokens, reasoning_tokens, cost_nano, status) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (id) DO NOTHING \
             RETURNING id",
        )
        .bind(&job.request_id)
        .bind(&job.key_id)
        .bind(&job.model)
        .bind(job.created_ms)
        .bind(n(u.prompt_tokens))
        .bind(n(u.cached_tokens.min(u.prompt_tokens)))
        .bind(n(u.completion_tokens))
        .bind(n(u.reasoning_tokens))
        .bind(job.cost_nano)
        .bind(&u.status)
        .fetch_optional(&mut *tx)
        .await?;
        if inserted.is_none() {
            continue;
        }
        sqlx::query("UPDATE api_keys SET spent_nano = spent_nano + $2 WHERE id = $1")
            .bind(&job.key_id)
            .bind(job.cost_nano)
            .execute(&mut *tx)
            .await?;
        if let Some(w) = job.window_ms {
            sqlx::query(
                "UPDATE rate_windows SET tokens = tokens + $3 WHERE key_id = $1 AND window_ms = $2",
            )
            .bind(&job.key_id)
            .bind(w)
            .bind(n(u.completion_tokens))
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await
}

/// Releases expired reservations and forgets old rate windows, in one transaction.
pub async fn sweep_now(pool: &AnyPool) -> Result<usize, sqlx::Error> {
    let now = crate::now_ms();
    let mut tx = pool.begin().await?;
    // Windows older than the previous one are never read again.
    sqlx::query("DELETE FROM rate_windows WHERE window_ms < $1")
        .bind(now - 2 * WINDOW_MS)
        .execute(&mut *tx)
        .await?;
    let released = release_expired(&mut tx, now).await?;
    tx.commit().await?;
    Ok(released)
}

/// Gives back a reservation and a parallel slot.
async fn release(
    tx: &mut Transaction<'_, Any>,
    key_id: &str,
    amount: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE api_keys SET \
           reserved_nano = CASE WHEN reserved_nano > $2 THEN reserved_nano - $2 ELSE 0 END, \
           in_flight = CASE WHEN in_flight > 0 THEN in_flight - 1 ELSE 0 END \
         WHERE id = $1",
    )
    .bind(key_id)
    .bind(amount)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Releases every reservation whose lease ran out; how many.
pub async fn release_expired(
    tx: &mut Transaction<'_, Any>,
    now_ms: i64,
) -> Result<usize, sqlx::Error> {
    let rows =
        sqlx::query("DELETE FROM reservations WHERE expires_ms < $1 RETURNING key_id, amount_nano")
            .bind(now_ms)
            .fetch_all(&mut **tx)
            .await?;
    for row in &rows {
        let key_id: String = row.try_get("key_id")?;
        let amount: i64 = row.try_get("amount_nano")?;
        release(tx, &key_id, amount).await?;
    }
    Ok(rows.len())
}
