//! Download progress: an `indicatif` bar (size, speed, ETA) when stderr is a terminal, plain
//! lines (start, every 10 %, end) when it is not, or nothing.

use std::io::IsTerminal;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

use crate::info::human_bytes;

/// How a pull reports progress on stderr.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Progress {
    /// A bar on a terminal, plain lines otherwise.
    #[default]
    Auto,
    /// Plain lines.
    Lines,
    /// Nothing.
    Quiet,
}

/// Progress of one file.
pub(crate) enum FileProgress {
    Bar(ProgressBar),
    Lines {
        name: String,
        total: u64,
        done: u64,
        next_tenth: u64,
        started: Instant,
        start_bytes: u64,
    },
    Quiet,
}

impl FileProgress {
    /// Starts reporting `name` of `total` bytes, `already` of them on disk.
    pub(crate) fn start(mode: Progress, name: &str, total: u64, already: u64) -> FileProgress {
        let bar = match mode {
            Progress::Quiet => return FileProgress::Quiet,
            Progress::Auto => std::io::stderr().is_terminal(),
            Progress::Lines => false,
        };
        if bar {
            let pb = ProgressBar::new(total);
            let style = ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
            )
            .map(|s| s.progress_chars("=> "));
            if let Ok(style) = style {
                pb.set_style(style);
            }
            pb.set_message(short_name(name).to_string());
            pb.set_position(already);
            pb.reset_eta();
            return FileProgress::Bar(pb);
        }
        let resume = if already > 0 {
            format!(", resuming at {}", human_bytes(already))
        } else {
            String::new()
        };
        eprintln!("pulling {name} ({}{resume})", human_bytes(total));
        FileProgress::Lines {
            name: name.to_string(),
            total,
            done: already,
            next_tenth: tenths(already, total) + 1,
            started: Instant::now(),
            start_bytes: already,
        }
    }

    pub(crate) fn inc(&mut self, n: u64) {
        match self {
            FileProgress::Bar(pb) => pb.inc(n),
            FileProgress::Lines {
                name,
                total,
                done,
                next_tenth,
                started,
                start_bytes,
            } => {
                *done += n;
                let t = tenths(*done, *total);
                if t >= *next_tenth && t < 10 {
                    *next_tenth = t + 1;
                    let secs = started.elapsed().as_secs_f64().max(1e-3);
                    let speed = (*done - *start_bytes) as f64 / secs;
                    eprintln!(
                        "{name}: {}% ({} of {}, {}/s)",
                        t * 10,
                        human_bytes(*done),
                        human_bytes(*total),
                        human_bytes(speed as u64)
                    );
                }
            }
            FileProgress::Quiet => {}
        }
    }

    /// The connection broke at `at` bytes; the next try resumes there.
    pub(crate) fn retrying(&mut self, at: u64, why: &str) {
        match self {
            FileProgress::Bar(pb) => {
                pb.set_position(at);
                pb.println(format!("retrying after: {why}"));
            }
            FileProgress::Lines { name, done, .. } => {
                *done = at;
                eprintln!("{name}: retrying at {} after: {why}", human_bytes(at));
            }
            FileProgress::Quiet => {}
        }
    }

    pub(crate) fn finish(self, what: &str) {
        match self {
            FileProgress::Bar(pb) => pb.finish_with_message(what.to_string()),
            FileProgress::Lines { name, .. } => eprintln!("{name}: {what}"),
            FileProgress::Quiet => {}
        }
    }
}

fn tenths(done: u64, total: u64) -> u64 {
    if total == 0 {
        10
    } else {
        (done.min(total) as u128 * 10 / total as u128) as u64
    }
}

fn short_name(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}
