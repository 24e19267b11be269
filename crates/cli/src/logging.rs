//! The process's one `tracing` subscriber: log events (the CLI's own lines such as `serve`'s
//! `listening on` and `ready:`, request lines, shutdown, engine failures, metering errors)
//! to stderr as human text or one JSON object per line (`--log-format`), filtered by
//! `RUST_LOG` (default: info for Kaiyuan's crates, warn for the rest). In text, the CLI's
//! own lines read as plain lines (`error: `/`warning: ` by level, then the message);
//! the libraries' have a timestamp, level and target. What a command prints as its result
//! (progress bars, `run`'s text, the final `error:` of a failed command) is not logging and
//! stays plain `eprintln!`/`println!`.

use std::fmt;
use std::io::IsTerminal;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::{self, FormatEvent, FormatFields, Writer};
use tracing_subscriber::fmt::{FmtContext, MakeWriter};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

/// How log events are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// `2026-… INFO target: message key=value …`, for people.
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `target` and the event's fields at
    /// the top level, for log pipelines.
    Json,
}

/// The filter when `RUST_LOG` is unset or empty. Targets match by prefix, so `kaiyuan`
/// covers `kaiyuan_server`, `kaiyuan_engine`, `kaiyuan_metering`, ….
pub const DEFAULT_FILTER: &str = "warn,kaiyuan=info";

/// The filter `RUST_LOG` asks for, or [`DEFAULT_FILTER`]; an invalid `RUST_LOG` is an error
/// (a typo must not silently turn logging off).
pub fn filter(rust_log: Option<&str>) -> Result<EnvFilter, String> {
    let spec = match rust_log.map(str::trim) {
        Some(s) if !s.is_empty() => s,
        _ => DEFAULT_FILTER,
    };
    EnvFilter::builder()
        .parse(spec)
        .map_err(|e| format!("invalid RUST_LOG {spec:?}: {e}"))
}

/// The subscriber, writing to `writer`.
pub fn subscriber<W>(
    format: LogFormat,
    filter: EnvFilter,
    writer: W,
    ansi: bool,
) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    match format {
        LogFormat::Text => Box::new(
            builder
                .with_ansi(ansi)
                .event_format(TextFormat::default())
                .finish(),
        ),
        LogFormat::Json => Box::new(
            builder
                .json()
                .flatten_event(true)
                .with_current_span(false)
                .with_span_list(false)
                .finish(),
        ),
    }
}

/// Whether an event comes from the binary itself (its modules' targets are `kaiyuan::…`;
/// the libraries' are `kaiyuan_server::…` and the like).
fn is_cli_line(target: &str) -> bool {
    target == "kaiyuan" || target.starts_with("kaiyuan::")
}

/// The text format: the CLI's own events as the plain lines a person reads (`error: ` or
/// `warning: ` by level, then the message; their other fields are for JSON), every other
/// event in `tracing`'s full format.
#[derive(Default)]
struct TextFormat {
    full: format::Format,
}

impl<S, N> FormatEvent<S, N> for TextFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        if !is_cli_line(event.metadata().target()) {
            return self.full.format_event(ctx, writer, event);
        }
        match *event.metadata().level() {
            Level::ERROR => writer.write_str("error: ")?,
            Level::WARN => writer.write_str("warning: ")?,
            _ => {}
        }
        let mut message = Message::default();
        event.record(&mut message);
        // One event, one line: control characters (a newline in an error's text, a terminal
        // escape in a file name) are written escaped.
        for c in message.0.chars() {
            if c.is_control() && c != '\t' {
                write!(writer, "{}", c.escape_default())?;
            } else {
                writer.write_char(c)?;
            }
        }
        writeln!(writer)
    }
}

/// An event's `message` field.
#[derive(Default)]
struct Message(String);

impl Visit for Message {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0 = value.to_string();
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

/// Installs the subscriber for the whole process (stderr, `RUST_LOG` from the environment),
/// and routes the `log` crate's records of dependencies through it.
pub fn init(format: LogFormat) -> Result<(), String> {
    let rust_log = std::env::var("RUST_LOG").ok();
    let filter = filter(rust_log.as_deref())?;
    let ansi = std::io::stderr().is_terminal();
    subscriber(format, filter, std::io::stderr, ansi)
        .try_init()
        .map_err(|e| format!("cannot install the log subscriber: {e}"))
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A writer into a shared buffer.
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'w> MakeWriter<'w> for Buf {
        type Writer = Buf;
        fn make_writer(&'w self) -> Buf {
            self.clone()
        }
    }

    fn capture(format: LogFormat, rust_log: Option<&str>, f: impl FnOnce()) -> String {
        let buf = Buf::default();
        let sub = subscriber(format, filter(rust_log).unwrap(), buf.clone(), false);
        tracing::subscriber::with_default(sub, f);
        let bytes = buf.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    fn events() {
        tracing::info!(target: "kaiyuan_server::request", req = %"r-1", prompt = 3u64, user = "a\"b");
        tracing::debug!(target: "kaiyuan_engine::x", "debug detail");
        tracing::info!(target: "sqlx::query", "a dependency's info");
        tracing::warn!(target: "sqlx::query", "a dependency's warning");
    }

    #[test]
    fn default_filter_is_info_for_kaiyuan_and_warn_for_the_rest() {
        let text = capture(LogFormat::Text, None, events);
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(
            text.contains("INFO kaiyuan_server::request: req=r-1 prompt=3 user=\"a\\\"b\""),
            "{text}"
        );
        assert!(
            text.contains("WARN sqlx::query: a dependency's warning"),
            "{text}"
        );
    }

    #[test]
    fn rust_log_filters() {
        let text = capture(
            LogFormat::Text,
            Some("kaiyuan_server::request=off,kaiyuan=debug"),
            events,
        );
        assert!(!text.contains("req=r-1"), "{text}");
        assert!(text.contains("debug detail"), "{text}");
        assert!(!text.contains("sqlx"), "{text}");
        assert_eq!(capture(LogFormat::Text, Some("off"), events), "");
    }

    #[test]
    fn an_invalid_rust_log_is_an_error() {
        assert!(filter(Some("kaiyuan=loud")).is_err());
    }

    #[test]
    fn json_is_one_flat_object_per_event() {
        let text = capture(LogFormat::Json, None, events);
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        assert_eq!(lines.len(), 2, "{text}");
        let r = &lines[0];
        assert_eq!(r["level"], "INFO");
        assert_eq!(r["target"], "kaiyuan_server::request");
        assert_eq!(r["req"], "r-1");
        assert_eq!(r["prompt"], 3);
        assert_eq!(r["user"], "a\"b");
        assert!(r["timestamp"].is_string(), "{r}");
    }

    fn cli_events() {
        tracing::info!(target: "kaiyuan::cmd::serve", addr = "127.0.0.1:8080", "listening on http://127.0.0.1:8080");
        tracing::warn!(target: "kaiyuan::cmd::serve", model = "m", "m: no chat template");
        tracing::error!(target: "kaiyuan", "two\nlines and an \x1b[31mescape");
        tracing::debug!(target: "kaiyuan::cmd::serve", "not shown by default");
    }

    #[test]
    fn the_clis_own_lines_stay_plain_text() {
        let text = capture(LogFormat::Text, None, || {
            cli_events();
            events();
        });
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[..3],
            [
                "listening on http://127.0.0.1:8080",
                "warning: m: no chat template",
                "error: two\\nlines and an \\u{1b}[31mescape",
            ],
            "{text}"
        );
        // The libraries' events keep the full format.
        assert!(
            lines[3].contains(" INFO kaiyuan_server::request: req=r-1"),
            "{text}"
        );
        assert_eq!(lines.len(), 5, "{text}");
    }

    #[test]
    fn the_clis_own_lines_are_json_objects_with_their_fields() {
        let text = capture(LogFormat::Json, None, cli_events);
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(lines[0]["level"], "INFO");
        assert_eq!(lines[0]["target"], "kaiyuan::cmd::serve");
        assert_eq!(lines[0]["message"], "listening on http://127.0.0.1:8080");
        assert_eq!(lines[0]["addr"], "127.0.0.1:8080");
        assert_eq!(lines[1]["level"], "WARN");
        assert_eq!(lines[1]["message"], "m: no chat template");
        assert_eq!(lines[1]["model"], "m");
        assert_eq!(lines[2]["level"], "ERROR");
        assert_eq!(lines[2]["message"], "two\nlines and an \x1b[31mescape");
    }
}
