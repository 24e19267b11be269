//! The settlement writer: one task that takes settled requests off a channel and writes
//! them in batches, one transaction per batch (group commit): for each, its usage record
//! (keyed by the request id, so a request is never recorded twice), then — only if that
//! record is new — the key's reservation released, its real cost added, its slot freed
//! and its generated tokens counted in its rate window.

use std::time::Duration;

use sqlx::AnyPool;
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
            eprintln!(
                "metering: writer stopped; usage of request {} (key {}) not recorded",
                job.request_id, job.key_id
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

async fn run(pool: AnyPool, mut rx: mpsc::UnboundedReceiver<Msg>) {
    let mut batches: u64 = 0;
    while let Some(first) = rx.recv().await {
        let mut msgs = vec![first];
        while msgs.len() < BATCH {
            match rx.try_recv() {
                Ok(m) => msgs.push(m),
                Err(_) => break,
            }
        }
        let jobs: Vec<&Job> = msgs
            .iter()
            .filter_map(|m| match m {
                Msg::Settle(job, _) => Some(job),
                Msg::Flush(_) => None,
            })
            .collect();
        let mut result = Ok(());
        if !jobs.is_empty() {
            for attempt in 0..TRIES {
                result = write(&pool, &jobs, batches.is_multiple_of(64))
                    .await
                    .map_err(|e| e.to_string());
                if result.is_ok() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
            }
            batches += 1;
        }
        if let Err(e) = &result {
            for job in &jobs {
                eprintln!(
                    "metering: usage of request {} (key {}) not recorded: {e}",
                    job.request_id, job.key_id
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

async fn write(pool: &AnyPool, jobs: &[&Job], sweep: bool) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    for job in jobs {
        let u = &job.usage;
        let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
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
        sqlx::query(
            "UPDATE api_keys SET \
               reserved_nano = CASE WHEN reserved_nano > $2 THEN reserved_nano - $2 ELSE 0 END, \
               spent_nano = spent_nano + $3, \
               in_flight = CASE WHEN in_flight > 0 THEN in_flight - 1 ELSE 0 END \
             WHERE id = $1",
        )
        .bind(&job.key_id)
        .bind(job.reserved_nano)
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
    if sweep {
        // Windows older than the previous one are never read again.
        let now = crate::now_ms();
        sqlx::query("DELETE FROM rate_windows WHERE window_ms < $1")
            .bind(now - 2 * WINDOW_MS)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await
}
