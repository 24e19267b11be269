//! API keys: issued at random from the OS (192 bits), shown once, stored only as their
//! SHA-256; listed, changed and revoked by id. The key itself never leaves this module
//! except in the [`IssuedKey`] returned at creation; everything else names a key by its id.
//! Request bodies of the admin API are checked here field by field ([`KeySpec::from_json`],
//! [`KeyPatch::from_json`]), so a bad one is refused naming its field before anything is
//! stored.

use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::{nano_to_usd, Meter, MeterError, NANO_PER_USD};

/// Every issued key starts with this.
pub const KEY_PREFIX: &str = "sk-kaiyuan-";

const MAX_NAME: usize = 256;
const MAX_MODELS: usize = 256;
/// The largest budget accepted: a billion USD (far below i64 nano-USD's limit).
const MAX_BUDGET_USD: f64 = 1e9;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).expect("the OS random number generator is unavailable");
    hex(&buf)
}

/// A fresh key (`sk-kaiyuan-` + 48 hex digits: 192 random bits).
pub fn generate_key() -> String {
    format!("{KEY_PREFIX}{}", random_hex(24))
}

/// What is stored of a key: its SHA-256, in hex.
pub fn hash_key(key: &str) -> String {
    hex(&Sha256::digest(key.as_bytes()))
}

/// A refused admin request body: which field, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub param: String,
    pub message: String,
}

fn field_err(param: &str, message: impl Into<String>) -> FieldError {
    FieldError {
        param: param.to_string(),
        message: message.into(),
    }
}

/// A new key's settings (`POST /admin/keys`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct KeySpec {
    pub name: String,
    /// Served model names the key may use; `None`: all.
    pub models: Option<Vec<String>>,
    pub budget_nano: Option<i64>,
    pub budget_period_ms: Option<i64>,
    pub rpm: Option<i64>,
    pub tpm: Option<i64>,
    pub max_parallel: Option<i64>,
    /// Unix milliseconds.
    pub expires_ms: Option<i64>,
}

/// A change to a key (`PATCH /admin/keys/{id}`): `None` keeps a field, `Some(None)` clears
/// it (`null` in JSON), `Some(Some(v))` sets it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct KeyPatch {
    pub name: Option<String>,
    pub models: Option<Option<Vec<String>>>,
    pub budget_nano: Option<Option<i64>>,
    pub budget_period_ms: Option<Option<i64>>,
    pub rpm: Option<Option<i64>>,
    pub tpm: Option<Option<i64>>,
    pub max_parallel: Option<Option<i64>>,
    pub expires_ms: Option<Option<i64>>,
}

const FIELDS: [&str; 8] = [
    "name",
    "models",
    "budget_usd",
    "budget_period",
    "rpm",
    "tpm",
    "max_parallel",
    "expires_at",
];

fn object(body: &Value) -> Result<&Map<String, Value>, FieldError> {
    let obj = body
        .as_object()
        .ok_or_else(|| field_err("body", "the body must be a JSON object"))?;
    if let Some(unknown) = obj.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        let shown: String = unknown.chars().take(64).collect();
        return Err(field_err(
            &shown,
            format!("unknown field `{shown}` (known: {})", FIELDS.join(", ")),
        ));
    }
    Ok(obj)
}

/// `Some(None)` for `null`, `Some(Some(_))` for a value, `None` when absent.
type Field<T> = Option<Option<T>>;

fn parse_field<T>(
    obj: &Map<String, Value>,
    name: &str,
    parse: impl FnOnce(&Value) -> Result<T, String>,
) -> Result<Field<T>, FieldError> {
    match obj.get(name) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(v) => parse(v)
            .map(|t| Some(Some(t)))
            .map_err(|m| field_err(name, m)),
    }
}

fn name(v: &Value) -> Result<String, String> {
    let s = v.as_str().ok_or("must be a string")?;
    let n = s.chars().count();
    if n == 0 || n > MAX_NAME {
        return Err(format!("must be 1 to {MAX_NAME} characters, got {n}"));
    }
    if s.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(s.to_string())
}

fn models(v: &Value) -> Result<Vec<String>, String> {
    let list = v.as_array().ok_or("must be an array of model names")?;
    if list.len() > MAX_MODELS {
        return Err(format!("at most {MAX_MODELS} models"));
    }
    list.iter()
        .map(|m| name(m).map_err(|e| format!("each model name {e}")))
        .collect()
}

fn budget(v: &Value) -> Result<i64, String> {
    let usd = v.as_f64().ok_or("must be a number of USD")?;
    if !(0.0..=MAX_BUDGET_USD).contains(&usd) {
        return Err(format!("must be between 0 and {MAX_BUDGET_USD} USD"));
    }
    Ok((usd * NANO_PER_USD as f64).round() as i64)
}

fn positive(v: &Value) -> Result<i64, String> {
    match v.as_i64() {
        Some(n) if (1..=i64::from(i32::MAX)).contains(&n) => Ok(n),
        _ => Err(format!("must be an integer from 1 to {}", i32::MAX)),
    }
}

fn period(v: &Value) -> Result<i64, String> {
    parse_period(
        v.as_str()
            .ok_or("must be a string such as \"1d\" or \"30d\"")?,
    )
}

fn expiry(v: &Value) -> Result<i64, String> {
    match v.as_i64() {
        // Up to the year 9999.
        Some(s) if (1..=253_402_300_799).contains(&s) => Ok(s * 1000),
        _ => Err("must be a Unix time in seconds".into()),
    }
}

/// `"30d"`, `"12h"`, `"1w"`, `"90m"` → milliseconds.
pub fn parse_period(s: &str) -> Result<i64, String> {
    let bad = || format!("`{s}` is not a period (a whole number and m, h, d or w: \"30d\")");
    let (n, unit) = s.split_at(s.len().saturating_sub(1));
    let unit_ms: i64 = match unit {
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 7 * 86_400_000,
        _ => return Err(bad()),
    };
    let n: i64 = n.parse().map_err(|_| bad())?;
    if !(1..=100_000).contains(&n) {
        return Err(bad());
    }
    Ok(n * unit_ms)
}

fn format_period(ms: i64) -> String {
    for (unit, len) in [("w", 7 * 86_400_000), ("d", 86_400_000), ("h", 3_600_000)] {
        if ms % len == 0 {
            return format!("{}{unit}", ms / len);
        }
    }
    format!("{}m", ms / 60_000)
}

impl KeySpec {
    pub fn from_json(body: &Value) -> Result<KeySpec, FieldError> {
        let obj = object(body)?;
        let name = parse_field(obj, "name", name)?
            .flatten()
            .ok_or_else(|| field_err("name", "a key needs a `name`"))?;
        Ok(KeySpec {
            name,
            models: parse_field(obj, "models", models)?.flatten(),
            budget_nano: parse_field(obj, "budget_usd", budget)?.flatten(),
            budget_period_ms: parse_field(obj, "budget_period", period)?.flatten(),
            rpm: parse_field(obj, "rpm", positive)?.flatten(),
            tpm: parse_field(obj, "tpm", positive)?.flatten(),
            max_parallel: parse_field(obj, "max_parallel", positive)?.flatten(),
            expires_ms: parse_field(obj, "expires_at", expiry)?.flatten(),
        })
    }
}

impl KeyPatch {
    pub fn from_json(body: &Value) -> Result<KeyPatch, FieldError> {
        let obj = object(body)?;
        let name = match parse_field(obj, "name", name)? {
            Some(None) => return Err(field_err("name", "a key's name cannot be removed")),
            n => n.flatten(),
        };
        Ok(KeyPatch {
            name,
            models: parse_field(obj, "models", models)?,
            budget_nano: parse_field(obj, "budget_usd", budget)?,
            budget_period_ms: parse_field(obj, "budget_period", period)?,
            rpm: parse_field(obj, "rpm", positive)?,
            tpm: parse_field(obj, "tpm", positive)?,
            max_parallel: parse_field(obj, "max_parallel", positive)?,
            expires_ms: parse_field(obj, "expires_at", expiry)?,
        })
    }
}

/// A key as the admin API shows it (never the key itself, nor its hash).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct KeyInfo {
    pub id: String,
    pub object: &'static str,
    pub name: String,
    /// The key's first characters, to recognise it (`sk-kaiyuan-1a2b…`).
    pub key_hint: String,
    pub models: Option<Vec<String>>,
    pub budget_usd: Option<f64>,
    pub budget_period: Option<String>,
    /// Unix seconds when the current budget period began.
    pub period_start: i64,
    pub spent_usd: f64,
    pub reserved_usd: f64,
    pub remaining_usd: Option<f64>,
    pub rpm: Option<i64>,
    pub tpm: Option<i64>,
    pub max_parallel: Option<i64>,
    pub in_flight: i64,
    pub created: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    #[serde(skip)]
    pub budget_nano: Option<i64>,
    #[serde(skip)]
    pub budget_period_ms: Option<i64>,
    #[serde(skip)]
    pub spent_nano: i64,
    #[serde(skip)]
    pub reserved_nano: i64,
}

/// A newly issued key: the only time the key itself is seen.
#[derive(Clone, Debug, Serialize)]
pub struct IssuedKey {
    pub key: String,
    #[serde(flatten)]
    pub info: KeyInfo,
}

/// An authenticated key: what admission needs to know.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthKey {
    pub id: String,
    pub name: String,
    pub models: Option<Vec<String>>,
}

impl AuthKey {
    pub fn allows(&self, model: &str) -> bool {
        self.models
            .as_ref()
            .is_none_or(|m| m.iter().any(|n| n == model))
    }
}

const COLUMNS: &str = "id, name, key_prefix, models, budget_nano, budget_period_ms, \
    period_start_ms, spent_nano, reserved_nano, rpm, tpm, max_parallel, in_flight, created_ms, \
    expires_ms, revoked_ms";

fn models_column(models: &Option<Vec<String>>) -> Option<String> {
    models
        .as_ref()
        .map(|m| serde_json::to_string(m).expect("invariant: strings serialize"))
}

fn parse_models(text: Option<String>) -> Option<Vec<String>> {
    text.and_then(|t| serde_json::from_str(&t).ok())
}

fn key_info(row: &AnyRow) -> Result<KeyInfo, sqlx::Error> {
    let budget_nano: Option<i64> = row.try_get("budget_nano")?;
    let spent_nano: i64 = row.try_get("spent_nano")?;
    let reserved_nano: i64 = row.try_get("reserved_nano")?;
    let budget_period_ms: Option<i64> = row.try_get("budget_period_ms")?;
    let secs = |ms: i64| ms / 1000;
    Ok(KeyInfo {
        id: row.try_get("id")?,
        object: "api_key",
        name: row.try_get("name")?,
        key_hint: format!("{}…", row.try_get::<String, _>("key_prefix")?),
        models: parse_models(row.try_get("models")?),
        budget_usd: budget_nano.map(nano_to_usd),
        budget_period: budget_period_ms.map(format_period),
        period_start: secs(row.try_get("period_start_ms")?),
        spent_usd: nano_to_usd(spent_nano),
        reserved_usd: nano_to_usd(reserved_nano),
        remaining_usd: budget_nano.map(|b| nano_to_usd((b - spent_nano - reserved_nano).max(0))),
        rpm: row.try_get("rpm")?,
        tpm: row.try_get("tpm")?,
        max_parallel: row.try_get("max_parallel")?,
        in_flight: row.try_get("in_flight")?,
        created: secs(row.try_get("created_ms")?),
        expires_at: row.try_get::<Option<i64>, _>("expires_ms")?.map(secs),
        revoked_at: row.try_get::<Option<i64>, _>("revoked_ms")?.map(secs),
        budget_nano,
        budget_period_ms,
        spent_nano,
        reserved_nano,
    })
}

impl Meter {
    /// Issues a key: the returned [`IssuedKey`] holds the key, which is not stored.
    pub async fn create_key(&self, spec: &KeySpec, now_ms: i64) -> Result<IssuedKey, MeterError> {
        let key = generate_key();
        let id = format!("key_{}", random_hex(8));
        let prefix: String = key.chars().take(KEY_PREFIX.len() + 4).collect();
        sqlx::query(
            "INSERT INTO api_keys (id, name, key_hash, key_prefix, models, budget_nano, \
             budget_period_ms, period_start_ms, rpm, tpm, max_parallel, created_ms, expires_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(&id)
        .bind(&spec.name)
        .bind(hash_key(&key))
        .bind(&prefix)
        .bind(models_column(&spec.models))
        .bind(spec.budget_nano)
        .bind(spec.budget_period_ms)
        .bind(now_ms)
        .bind(spec.rpm)
        .bind(spec.tpm)
        .bind(spec.max_parallel)
        .bind(now_ms)
        .bind(spec.expires_ms)
        .execute(self.pool())
        .await?;
        let info = self
            .get_key(&id)
            .await?
            .ok_or_else(|| MeterError::Config("the new key vanished".into()))?;
        Ok(IssuedKey { key, info })
    }

    /// Every key, newest first (revoked ones included).
    pub async fn list_keys(&self) -> Result<Vec<KeyInfo>, MeterError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM api_keys ORDER BY created_ms DESC, id"
        ))
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(key_info).collect::<Result<_, _>>()?)
    }

    pub async fn get_key(&self, id: &str) -> Result<Option<KeyInfo>, MeterError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM api_keys WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.as_ref().map(key_info).transpose()?)
    }

    /// Applies `patch`; `None` if there is no such key.
    pub async fn patch_key(
        &self,
        id: &str,
        patch: &KeyPatch,
    ) -> Result<Option<KeyInfo>, MeterError> {
        let Some(cur) = self.get_key(id).await? else {
            return Ok(None);
        };
        let pick = |p: &Option<Option<i64>>, cur: Option<i64>| p.unwrap_or(cur);
        let models = patch.models.clone().unwrap_or(cur.models.clone());
        sqlx::query(
            "UPDATE api_keys SET name = $2, models = $3, budget_nano = $4, budget_period_ms = $5, \
             rpm = $6, tpm = $7, max_parallel = $8, expires_ms = $9 WHERE id = $1",
        )
        .bind(id)
        .bind(patch.name.clone().unwrap_or(cur.name))
        .bind(models_column(&models))
        .bind(pick(&patch.budget_nano, cur.budget_nano))
        .bind(pick(&patch.budget_period_ms, cur.budget_period_ms))
        .bind(pick(&patch.rpm, cur.rpm))
        .bind(pick(&patch.tpm, cur.tpm))
        .bind(pick(&patch.max_parallel, cur.max_parallel))
        .bind(pick(&patch.expires_ms, cur.expires_at.map(|s| s * 1000)))
        .execute(self.pool())
        .await?;
        self.get_key(id).await
    }

    /// Revokes a key (from its next request on); `None` if there is no such key. Revoking
    /// twice keeps the first time.
    pub async fn revoke_key(&self, id: &str, now_ms: i64) -> Result<Option<KeyInfo>, MeterError> {
        sqlx::query("UPDATE api_keys SET revoked_ms = $2 WHERE id = $1 AND revoked_ms IS NULL")
            .bind(id)
            .bind(now_ms)
            .execute(self.pool())
            .await?;
        self.get_key(id).await
    }

    /// The key `presented` stands for, if it is issued, not revoked and not expired.
    pub async fn authenticate(
        &self,
        presented: &str,
        now_ms: i64,
    ) -> Result<Option<AuthKey>, MeterError> {
        if !presented.starts_with(KEY_PREFIX) {
            return Ok(None);
        }
        let row = sqlx::query(
            "SELECT id, name, models FROM api_keys WHERE key_hash = $1 AND revoked_ms IS NULL \
             AND (expires_ms IS NULL OR expires_ms > $2)",
        )
        .bind(hash_key(presented))
        .bind(now_ms)
        .fetch_optional(self.pool())
        .await?;
        Ok(match row {
            None => None,
            Some(r) => Some(AuthKey {
                id: r.try_get("id")?,
                name: r.try_get("name")?,
                models: parse_models(r.try_get("models")?),
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_are_random_and_hashed() {
        let a = generate_key();
        let b = generate_key();
        assert_ne!(a, b);
        assert!(a.starts_with(KEY_PREFIX) && a.len() == KEY_PREFIX.len() + 48);
        assert_eq!(hash_key(&a).len(), 64);
        assert_ne!(hash_key(&a), hash_key(&b));
        assert_eq!(
            hash_key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn specs_are_checked_by_field() {
        let s = KeySpec::from_json(
            &json!({"name": "team-a", "models": ["m"], "budget_usd": 1.5,
            "budget_period": "30d", "rpm": 60, "expires_at": 2000000000}),
        )
        .unwrap();
        assert_eq!(s.budget_nano, Some(1_500_000_000));
        assert_eq!(s.budget_period_ms, Some(30 * 86_400_000));
        assert_eq!(s.expires_ms, Some(2_000_000_000_000));
        let bad = [
            (json!({}), "name"),
            (json!([1]), "body"),
            (json!({"name": ""}), "name"),
            (json!({"name": "x".repeat(300)}), "name"),
            (json!({"name": "a", "budget_usd": -1}), "budget_usd"),
            (json!({"name": "a", "budget_usd": "5"}), "budget_usd"),
            (json!({"name": "a", "rpm": 0}), "rpm"),
            (json!({"name": "a", "tpm": 1.5}), "tpm"),
            (json!({"name": "a", "budget_period": "1y"}), "budget_period"),
            (json!({"name": "a", "models": "m"}), "models"),
            (json!({"name": "a", "expires_at": -5}), "expires_at"),
            (json!({"name": "a", "bogus": 1}), "bogus"),
        ];
        for (body, param) in bad {
            let e = KeySpec::from_json(&body).unwrap_err();
            assert_eq!(e.param, param, "{body}: {e:?}");
        }
    }

    #[test]
    fn patches_tell_clearing_from_keeping() {
        let p = KeyPatch::from_json(&json!({"rpm": null, "tpm": 5})).unwrap();
        assert_eq!(p.rpm, Some(None));
        assert_eq!(p.tpm, Some(Some(5)));
        assert_eq!(p.budget_nano, None);
        assert!(KeyPatch::from_json(&json!({"name": null})).is_err());
    }

    #[test]
    fn periods() {
        assert_eq!(parse_period("1d"), Ok(86_400_000));
        assert_eq!(parse_period("90m"), Ok(5_400_000));
        for bad in ["", "d", "0d", "-1d", "1.5d", "1y", "1dd"] {
            assert!(parse_period(bad).is_err(), "{bad}");
        }
        assert_eq!(format_period(30 * 86_400_000), "30d");
        assert_eq!(format_period(14 * 86_400_000), "2w");
    }
}
