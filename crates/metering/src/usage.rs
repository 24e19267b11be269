//! Reading usage back: records filtered by key, model and time; summaries grouped by key,
//! model or day; a key's balance.

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::{nano_to_usd, Meter, MeterError};

/// One request's usage, as `/admin/usage` shows it.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct UsageRecord {
    pub id: String,
    pub key_id: String,
    pub model: String,
    /// Unix seconds.
    pub created: i64,
    pub prompt_tokens: i64,
    pub cached_tokens: i64,
    pub completion_tokens: i64,
    pub reasoning_tokens: i64,
    /// USD.
    pub cost: f64,
    /// The same, exactly: nano-USD (10⁻⁹).
    pub cost_nano: i64,
    pub status: String,
}

/// Which records: all given conditions hold (times in Unix seconds, `to` exclusive).
#[derive(Clone, Debug, Default)]
pub struct UsageFilter {
    pub key_id: Option<String>,
    pub model: Option<String>,
    pub from: Option<i64>,
    pub to: Option<i64>,
    /// At most this many, newest first (default 1000, at most 10 000).
    pub limit: Option<i64>,
}

/// One group of a summary.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct SummaryRow {
    /// The key id, the model, or the day (`YYYY-MM-DD`, UTC).
    pub group: String,
    pub requests: i64,
    pub prompt_tokens: i64,
    pub cached_tokens: i64,
    pub completion_tokens: i64,
    pub cost: f64,
    pub cost_nano: i64,
}

/// A key's money: budget, spent in the current period, reserved by requests in flight.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Balance {
    pub key_id: String,
    pub budget_nano: Option<i64>,
    pub spent_nano: i64,
    pub reserved_nano: i64,
}

impl Balance {
    /// What may still be spent (`None`: no budget).
    pub fn remaining_nano(&self) -> Option<i64> {
        self.budget_nano
            .map(|b| (b - self.spent_nano - self.reserved_nano).max(0))
    }
}

fn record(row: &AnyRow) -> Result<UsageRecord, sqlx::Error> {
    let cost_nano: i64 = row.try_get("cost_nano")?;
    Ok(UsageRecord {
        id: row.try_get("id")?,
        key_id: row.try_get("key_id")?,
        model: row.try_get("model")?,
        created: row.try_get::<i64, _>("created_ms")? / 1000,
        prompt_tokens: row.try_get("prompt_tokens")?,
        cached_tokens: row.try_get("cached_tokens")?,
        completion_tokens: row.try_get("completion_tokens")?,
        reasoning_tokens: row.try_get("reasoning_tokens")?,
        cost: nano_to_usd(cost_nano),
        cost_nano,
        status: row.try_get("status")?,
    })
}

/// `WHERE …` for a filter, and its text parameters (bound in order after the numeric ones
/// are inlined: they are integers the server parsed, never client text).
fn conditions(f: &UsageFilter) -> (String, Vec<String>) {
    let mut sql = Vec::new();
    let mut params = Vec::new();
    if let Some(k) = &f.key_id {
        params.push(k.clone());
        sql.push(format!("key_id = ${}", params.len()));
    }
    if let Some(m) = &f.model {
        params.push(m.clone());
        sql.push(format!("model = ${}", params.len()));
    }
    if let Some(from) = f.from {
        sql.push(format!("created_ms >= {}", from.saturating_mul(1000)));
    }
    if let Some(to) = f.to {
        sql.push(format!("created_ms < {}", to.saturating_mul(1000)));
    }
    let clause = if sql.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", sql.join(" AND "))
    };
    (clause, params)
}

/// Days since 1970-01-01 → `YYYY-MM-DD` (proleptic Gregorian, Howard Hinnant's algorithm).
pub fn civil_date(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

impl Meter {
    pub async fn usage(&self, filter: &UsageFilter) -> Result<Vec<UsageRecord>, MeterError> {
        let (clause, params) = conditions(filter);
        let limit = filter.limit.unwrap_or(1000).clamp(1, 10_000);
        let sql = format!(
            "SELECT id, key_id, model, created_ms, prompt_tokens, cached_tokens, \
             completion_tokens, reasoning_tokens, cost_nano, status FROM usage_records{clause} \
             ORDER BY created_ms DESC, id LIMIT {limit}"
        );
        let mut q = sqlx::query(&sql);
        for p in &params {
            q = q.bind(p);
        }
        let rows = q.fetch_all(self.pool()).await?;
        Ok(rows.iter().map(record).collect::<Result<_, _>>()?)
    }

    /// Totals grouped by `key`, `model` or `day`; `None` for another grouping.
    pub async fn summary(
        &self,
        group_by: &str,
        filter: &UsageFilter,
    ) -> Result<Option<Vec<SummaryRow>>, MeterError> {
        let group = match group_by {
            "key" => "key_id",
            "model" => "model",
            "day" => "(created_ms / 86400000)",
            _ => return Ok(None),
        };
        let (clause, params) = conditions(filter);
        let sum = |c: &str| format!("CAST(COALESCE(SUM({c}), 0) AS BIGINT) AS {c}");
        let sql = format!(
            "SELECT {group} AS grp, CAST(COUNT(*) AS BIGINT) AS requests, {}, {}, {}, {} \
             FROM usage_records{clause} GROUP BY {group} ORDER BY {group}",
            sum("prompt_tokens"),
            sum("cached_tokens"),
            sum("completion_tokens"),
            sum("cost_nano"),
        );
        let mut q = sqlx::query(&sql);
        for p in &params {
            q = q.bind(p);
        }
        let rows = q.fetch_all(self.pool()).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let group = if group_by == "day" {
                civil_date(row.try_get::<i64, _>("grp")?)
            } else {
                row.try_get::<String, _>("grp")?
            };
            let cost_nano: i64 = row.try_get("cost_nano")?;
            out.push(SummaryRow {
                group,
                requests: row.try_get("requests")?,
                prompt_tokens: row.try_get("prompt_tokens")?,
                cached_tokens: row.try_get("cached_tokens")?,
                completion_tokens: row.try_get("completion_tokens")?,
                cost: nano_to_usd(cost_nano),
                cost_nano,
            });
        }
        Ok(Some(out))
    }

    /// A key's balance (`None`: no such key).
    pub async fn balance(&self, key_id: &str) -> Result<Option<Balance>, MeterError> {
        let Some(info) = self.get_key(key_id).await? else {
            return Ok(None);
        };
        Ok(Some(Balance {
            key_id: info.id,
            budget_nano: info.budget_nano,
            spent_nano: info.spent_nano,
            reserved_nano: info.reserved_nano,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(civil_date(0), "1970-01-01");
        assert_eq!(civil_date(20_454), "2026-01-01");
        assert_eq!(civil_date(11_016), "2000-02-29");
    }
}
