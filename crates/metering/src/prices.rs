//! The price table (`--prices FILE`): USD per million tokens in DeepSeek's three lines
//! (cache-hit input, cache-miss input, output), a `[default]` and per served model
//! (`[models."name"]`). A price with at most three decimals is an exact whole number of
//! nano-USD per token (USD/1M × 10⁹ / 10⁶ = × 1000), so costs are integer sums, exact to the
//! nano-dollar; more precision is refused rather than rounded.

use std::collections::BTreeMap;

use crate::MeterError;

/// Prices of one model, in nano-USD per token.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Price {
    pub input_cache_hit: i64,
    pub input_cache_miss: i64,
    pub output: i64,
}

impl Price {
    /// cached × hit + (prompt − cached) × miss + completion × output, in nano-USD
    /// (saturating: a cost never wraps).
    pub fn cost(&self, prompt: u64, cached: u64, completion: u64) -> i64 {
        let cached = cached.min(prompt);
        let part = |n: u64, p: i64| i64::try_from(n).unwrap_or(i64::MAX).saturating_mul(p);
        part(cached, self.input_cache_hit)
            .saturating_add(part(prompt - cached, self.input_cache_miss))
            .saturating_add(part(completion, self.output))
    }
}

/// Every model's prices; a model without its own section costs `[default]` (zero if the
/// file has none, or without a file).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PriceTable {
    pub default: Price,
    pub models: BTreeMap<String, Price>,
}

impl PriceTable {
    pub fn for_model(&self, model: &str) -> Price {
        self.models.get(model).copied().unwrap_or(self.default)
    }

    /// Reads a price file.
    pub fn load(path: &std::path::Path) -> Result<PriceTable, MeterError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| MeterError::Prices(format!("cannot read {}: {e}", path.display())))?;
        PriceTable::parse(&text).map_err(|e| MeterError::Prices(format!("{}: {e}", path.display())))
    }

    /// Parses the TOML text of a price file; errors name the table and key.
    pub fn parse(text: &str) -> Result<PriceTable, String> {
        let value: toml::Table = text.parse().map_err(|e: toml::de::Error| e.to_string())?;
        let mut table = PriceTable::default();
        for (key, v) in &value {
            match key.as_str() {
                "default" => table.default = price(v, "default")?,
                "models" => {
                    let models = v
                        .as_table()
                        .ok_or("`models` must be a table of [models.\"name\"] sections")?;
                    for (name, v) in models {
                        let p = price(v, &format!("models.\"{name}\""))?;
                        table.models.insert(name.clone(), p);
                    }
                }
                other => {
                    return Err(format!(
                        "unknown section `{other}` (expected [default] and [models.\"name\"])"
                    ))
                }
            }
        }
        Ok(table)
    }
}

fn price(v: &toml::Value, at: &str) -> Result<Price, String> {
    let t = v
        .as_table()
        .ok_or_else(|| format!("`{at}` must be a table"))?;
    let mut p = Price::default();
    let mut seen = [false; 3];
    for (key, v) in t {
        let (slot, i) = match key.as_str() {
            "input_cache_hit" => (&mut p.input_cache_hit, 0),
            "input_cache_miss" => (&mut p.input_cache_miss, 1),
            "output" => (&mut p.output, 2),
            other => {
                return Err(format!(
                    "`{at}.{other}`: unknown price (expected input_cache_hit, input_cache_miss, output)"
                ))
            }
        };
        *slot = nano_per_token(v).map_err(|e| format!("`{at}.{key}`: {e}"))?;
        seen[i] = true;
    }
    if let Some(i) = seen.iter().position(|s| !s) {
        let name = ["input_cache_hit", "input_cache_miss", "output"][i];
        return Err(format!("`{at}.{name}` is missing"));
    }
    Ok(p)
}

/// USD per million tokens → nano-USD per token, exactly (at most three decimals).
pub fn nano_per_token(v: &toml::Value) -> Result<i64, String> {
    // The shortest decimal that reads back as the same float is what the file said.
    let text = match v {
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) if f.is_finite() => format!("{f}"),
        toml::Value::String(s) => s.trim().to_string(),
        _ => return Err("a price must be a number of USD per million tokens".into()),
    };
    usd_per_million_to_nano(&text)
}

/// `"0.27"` → 270 (nano-USD per token).
pub fn usd_per_million_to_nano(text: &str) -> Result<i64, String> {
    if text.starts_with('-') {
        return Err(format!("{text} is negative"));
    }
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    let frac = frac.trim_end_matches('0');
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(int) || !(frac.is_empty() || digits(frac)) {
        return Err(format!("`{text}` is not a decimal number"));
    }
    if frac.len() > 3 {
        return Err(format!(
            "{text} has more than three decimals: a price per million tokens must be a whole number of nano-USD per token (0.001)"
        ));
    }
    let int: i64 = int.parse().map_err(|_| format!("{text} is too large"))?;
    let frac_val: i64 = format!("{frac:0<3}").parse().unwrap_or(0);
    int.checked_mul(1000)
        .and_then(|v| v.checked_add(frac_val))
        .filter(|v| *v <= 1_000_000_000_000)
        .ok_or_else(|| format!("{text} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEEPSEEK: &str = r#"
[default]
input_cache_hit = 0.07
input_cache_miss = 0.27
output = 1.10
[models."deepseek-r1"]
input_cache_hit = 0.14
input_cache_miss = 0.55
output = 2.19
"#;

    #[test]
    fn deepseek_prices_are_exact_nanos() {
        let t = PriceTable::parse(DEEPSEEK).unwrap();
        assert_eq!(
            t.default,
            Price {
                input_cache_hit: 70,
                input_cache_miss: 270,
                output: 1100
            }
        );
        assert_eq!(t.for_model("deepseek-r1").output, 2190);
        assert_eq!(t.for_model("other").input_cache_miss, 270);
        // 1000 prompt tokens, 600 cached, 100 generated at R1's prices:
        // 600×140 + 400×550 + 100×2190 = 84000 + 220000 + 219000.
        assert_eq!(t.for_model("deepseek-r1").cost(1000, 600, 100), 523_000);
    }

    #[test]
    fn conversions() {
        for (s, n) in [
            ("0", 0),
            ("1", 1000),
            ("0.001", 1),
            ("2.19", 2190),
            ("15", 15000),
            ("0.100", 100),
        ] {
            assert_eq!(usd_per_million_to_nano(s), Ok(n), "{s}");
        }
        for bad in [
            "0.0001",
            "-1",
            "abc",
            "1e3",
            "",
            ".5",
            "99999999999999999999",
        ] {
            assert!(usd_per_million_to_nano(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn refusals_name_the_key() {
        let e = PriceTable::parse(
            "[default]\ninput_cache_hit = 0.0701\ninput_cache_miss = 1\noutput = 1\n",
        )
        .unwrap_err();
        assert!(
            e.contains("default.input_cache_hit") && e.contains("three decimals"),
            "{e}"
        );
        let e = PriceTable::parse("[default]\ninput_cache_hit = 1\noutput = 1\n").unwrap_err();
        assert!(e.contains("input_cache_miss` is missing"), "{e}");
        let e = PriceTable::parse("[defualt]\n").unwrap_err();
        assert!(e.contains("defualt"), "{e}");
        let e = PriceTable::parse(
            "[default]\ninput_cache_hit = -1\ninput_cache_miss = 1\noutput = 1\n",
        )
        .unwrap_err();
        assert!(e.contains("negative"), "{e}");
        assert!(PriceTable::parse("[default]\ninput_cache_hit = true").is_err());
    }

    #[test]
    fn cost_never_wraps_and_caps_cached() {
        let p = Price {
            input_cache_hit: 1,
            input_cache_miss: 2,
            output: 3,
        };
        assert_eq!(p.cost(10, 20, 0), 10);
        assert_eq!(p.cost(u64::MAX, 0, u64::MAX), i64::MAX);
    }
}
