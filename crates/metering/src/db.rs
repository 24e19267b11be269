//! The database behind the meter: connecting (SQLite file or Postgres URL, through sqlx's Any
//! driver so that every query is written once) and the migrations of each backend, applied
//! at start.

use std::borrow::Cow;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AnyPool, Executor};

use crate::MeterError;

/// Which database a URL names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn of_url(url: &str) -> Result<Backend, MeterError> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            Err(MeterError::Config(format!(
                "unsupported database URL (want sqlite://PATH or postgres://…): {}",
                redact(url)
            )))
        }
    }
}

/// The URL without a password (for error messages).
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

fn migrations(backend: Backend) -> Migrator {
    let files: [(&'static str, &'static str); 2] = match backend {
        Backend::Sqlite => [
            (
                "metering",
                include_str!("../migrations/sqlite/0001_metering.sql"),
            ),
            (
                "reservations",
                include_str!("../migrations/sqlite/0002_reservations.sql"),
            ),
        ],
        Backend::Postgres => [
            (
                "metering",
                include_str!("../migrations/postgres/0001_metering.sql"),
            ),
            (
                "reservations",
                include_str!("../migrations/postgres/0002_reservations.sql"),
            ),
        ],
    };
    let migrations = files
        .iter()
        .zip(1..)
        .map(|(&(name, sql), version)| {
            Migration::new(
                version,
                Cow::Borrowed(name),
                MigrationType::Simple,
                Cow::Borrowed(sql),
                false,
            )
        })
        .collect::<Vec<_>>();
    Migrator {
        migrations: Cow::Owned(migrations),
        ..Migrator::DEFAULT
    }
}

/// Opens (creating a SQLite file and its directory if needed) and migrates.
pub async fn connect(url: &str) -> Result<(AnyPool, Backend), MeterError> {
    sqlx::any::install_default_drivers();
    let backend = Backend::of_url(url)?;
    let mut url = url.to_string();
    if backend == Backend::Sqlite {
        let path = url
            .trim_start_matches("sqlite://")
            .trim_start_matches("sqlite:");
        let path = path.split('?').next().unwrap_or_default().to_string();
        if let Some(dir) = Path::new(&path)
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir)
                .map_err(|e| MeterError::Config(format!("cannot create {}: {e}", dir.display())))?;
        }
        if !url.contains("mode=") {
            url.push_str(if url.contains('?') { "&" } else { "?" });
            url.push_str("mode=rwc");
        }
    }
    let options = AnyConnectOptions::from_str(&url)?;
    let pool = AnyPoolOptions::new()
        .max_connections(match backend {
            // One writer at a time anyway; a few readers beside it (WAL).
            Backend::Sqlite => 4,
            Backend::Postgres => 16,
        })
        .acquire_timeout(Duration::from_secs(10))
        .after_connect(move |conn, _| {
            Box::pin(async move {
                if backend == Backend::Sqlite {
                    // WAL: readers never wait for the writer; NORMAL: a commit survives a
                    // killed process (only a power loss can lose the last ones).
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    conn.execute("PRAGMA synchronous = NORMAL").await?;
                    conn.execute("PRAGMA busy_timeout = 10000").await?;
                }
                Ok(())
            })
        })
        .connect_with(options)
        .await?;
    migrations(backend).run(&pool).await?;
    Ok((pool, backend))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(Backend::of_url("sqlite://a.db").unwrap(), Backend::Sqlite);
        assert_eq!(
            Backend::of_url("postgres://u@h/db").unwrap(),
            Backend::Postgres
        );
        assert!(Backend::of_url("mysql://h/db").is_err());
        assert_eq!(
            redact("postgres://u:secret@h/db"),
            "postgres://u:***@h/db".to_string()
        );
    }
}
