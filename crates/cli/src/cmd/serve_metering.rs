//! `kaiyuan serve`'s metering flags: the admin key (`--admin-key`, `--admin-key-file`, or
//! `KAIYUAN_ADMIN_KEY`) turns metering on; `--db` names the database (default: a SQLite file
//! `kaiyuan.db` in the data directory, created); `--prices` the price table.

use std::path::PathBuf;

use anyhow::{bail, Context};
use kaiyuan_metering::{redact, Meter, PriceTable};
use kaiyuan_server::MeteringConfig;

/// The metering flags.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct MeteringArgs {
    /// Turns on issued keys, usage, budgets and limits: the key of the admin API
    /// (/admin/*). Also from --admin-key-file or $KAIYUAN_ADMIN_KEY.
    #[arg(long, value_name = "KEY", conflicts_with = "admin_key_file")]
    pub admin_key: Option<String>,
    /// Like --admin-key, read from a file (its first line).
    #[arg(long, value_name = "FILE")]
    pub admin_key_file: Option<PathBuf>,
    /// Metering database: sqlite://PATH or postgres://USER@HOST/DB (several servers share
    /// one Postgres). Default: sqlite://DATA/kaiyuan.db, DATA being $KAIYUAN_DATA_DIR,
    /// else $XDG_DATA_HOME/kaiyuan, else ~/.local/share/kaiyuan.
    #[arg(long, value_name = "URL")]
    pub db: Option<String>,
    /// Price table (TOML, USD per 1M tokens: input_cache_hit, input_cache_miss, output;
    /// [default] and [models."NAME"]). Default: everything costs 0.
    #[arg(long, value_name = "FILE")]
    pub prices: Option<PathBuf>,
}

/// Metering settled before serving: the admin key, the database URL and the prices.
pub struct Plan {
    admin_key: String,
    url: String,
    prices: PriceTable,
}

fn admin_key(args: &MeteringArgs) -> anyhow::Result<Option<String>> {
    let key = if let Some(k) = &args.admin_key {
        Some(k.clone())
    } else if let Some(file) = &args.admin_key_file {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read the admin key file {}", file.display()))?;
        Some(text.lines().next().unwrap_or("").to_string())
    } else {
        std::env::var("KAIYUAN_ADMIN_KEY")
            .ok()
            .filter(|k| !k.is_empty())
    };
    let Some(key) = key.map(|k| k.trim().to_string()) else {
        return Ok(None);
    };
    if key.len() < 16 || key.chars().any(|c| c.is_whitespace() || c.is_control()) {
        bail!("the admin key must be at least 16 characters, without spaces");
    }
    Ok(Some(key))
}

fn default_db() -> String {
    let dir = std::env::var_os("KAIYUAN_DATA_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_DATA_HOME").map(|d| PathBuf::from(d).join("kaiyuan")))
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share/kaiyuan")))
        .unwrap_or_else(|| PathBuf::from("data"));
    format!("sqlite://{}", dir.join("kaiyuan.db").display())
}

/// Checks the flags (before anything loads): `None` when metering is off.
pub fn plan(args: &MeteringArgs) -> anyhow::Result<Option<Plan>> {
    let Some(admin_key) = admin_key(args)? else {
        if args.db.is_some() || args.prices.is_some() {
            bail!("--db and --prices need an admin key (--admin-key, --admin-key-file or $KAIYUAN_ADMIN_KEY)");
        }
        return Ok(None);
    };
    let prices = match &args.prices {
        Some(path) => PriceTable::load(path)?,
        None => PriceTable::default(),
    };
    let url = args.db.clone().unwrap_or_else(default_db);
    kaiyuan_metering::Backend::of_url(&url)?;
    Ok(Some(Plan {
        admin_key,
        url,
        prices,
    }))
}

/// Opens the database (on the server's runtime) and applies its migrations.
pub async fn open(plan: Plan) -> anyhow::Result<MeteringConfig> {
    let meter = Meter::open(&plan.url, plan.prices)
        .await
        .with_context(|| format!("cannot open the metering database {}", redact(&plan.url)))?;
    tracing::info!(
        db = %redact(&plan.url),
        "metering: {} (keys, usage, budgets and limits on)",
        redact(&plan.url)
    );
    Ok(MeteringConfig {
        meter,
        admin_key: plan.admin_key,
    })
}
