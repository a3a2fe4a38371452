//! Progress: an indicatif bar on a terminal, plain periodic log lines otherwise (CI logs).
//!
//! Log lines go through [`LogWriter`], which prints them above a drawn bar (never into it).
//! With `--with-deps` the number of projects grows as the closure is discovered: the total is
//! shown as "≥ known, discovering" (a spinner, no ETA) instead of a bar that moves backwards.
//! A heartbeat ([`Progress::tick`], every second from the crawl loop) keeps requests, bytes/s
//! and the projects in flight current while one large project runs.

use std::collections::HashSet;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::pypi::Counters;

/// The bar being drawn, if any: [`LogWriter`] prints above it.
static BAR: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// The `tracing` writer: stderr, with the bar (if one is drawn) hidden while a line is printed.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogWriter;

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;
    fn make_writer(&'a self) -> LogWriter {
        LogWriter
    }
}

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }

    // The fmt layer writes each event with one `write_all`.
    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        let bar = BAR.lock().ok().and_then(|bar| bar.clone());
        match bar {
            Some(bar) => bar.suspend(|| std::io::stderr().write_all(buf)),
            None => std::io::stderr().write_all(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// What one progress report says.
#[derive(Debug, Clone, PartialEq)]
pub struct Status<'a> {
    pub done: u64,
    pub total: u64,
    /// The total may still grow (`--with-deps`).
    pub discovering: bool,
    pub releases: u64,
    pub requests: u64,
    pub bytes: u64,
    pub bytes_per_second: f64,
    /// Projects in flight, sorted.
    pub current: &'a [String],
    /// Seconds left at the rate so far, when the total is known.
    pub eta: Option<f64>,
}

impl std::fmt::Display for Status<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.discovering {
            write!(f, "{} done, ≥{} known, discovering", self.done, self.total)?;
        } else {
            write!(f, "{}/{} projects", self.done, self.total)?;
        }
        write!(
            f,
            ", {} releases, {} requests, {:.1} MB ({:.2} MB/s)",
            self.releases,
            self.requests,
            self.bytes as f64 / 1e6,
            self.bytes_per_second / 1e6
        )?;
        if let Some(eta) = self.eta {
            write!(f, ", ETA {eta:.0}s")?;
        }
        const SHOWN: usize = 3;
        if let Some((first, rest)) = self.current.split_first() {
            write!(f, ", now: {first}")?;
            for name in rest.iter().take(SHOWN - 1) {
                write!(f, ", {name}")?;
            }
            if self.current.len() > SHOWN {
                write!(f, " (+{})", self.current.len() - SHOWN)?;
            }
        }
        Ok(())
    }
}

/// How far a crawl has come.
#[derive(Debug)]
pub struct Progress {
    bar: Option<ProgressBar>,
    discovering: bool,
    started: Instant,
    last_line: Instant,
    every: Duration,
    done: u64,
    total: u64,
    /// The bytes counted at the previous report, and when.
    last_bytes: (Instant, u64),
    bytes_per_second: f64,
}

impl Progress {
    /// A bar when stderr is a terminal, else a log line every `every` (neither with `-q`). `discovering`: the
    /// total grows while the crawl runs.
    pub fn new(every: Duration, discovering: bool) -> Progress {
        // `-q` hides the bar as it hides the progress lines.
        let shown = std::io::stderr().is_terminal() && tracing::enabled!(tracing::Level::INFO);
        let bar = shown.then(|| {
            let template = if discovering {
                "{spinner} {elapsed_precise} {wide_msg}"
            } else {
                "{elapsed_precise} [{bar:30}] {pos}/{len} projects, ETA {eta}, {wide_msg}"
            };
            let bar = ProgressBar::new(0);
            bar.set_style(
                ProgressStyle::with_template(template)
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        if let Ok(mut shown) = BAR.lock() {
            shown.clone_from(&bar);
        }
        let now = Instant::now();
        Progress {
            bar,
            discovering,
            started: now,
            last_line: now,
            every,
            done: 0,
            total: 0,
            last_bytes: (now, 0),
            bytes_per_second: 0.0,
        }
    }

    /// Whether the counts are worth refreshing ([`Progress::update`]): a bar redraws at most 10
    /// times a second; log lines come every `every`.
    pub fn due(&self) -> bool {
        match &self.bar {
            Some(_) => self.last_line.elapsed() >= Duration::from_millis(100),
            None => self.last_line.elapsed() >= self.every,
        }
    }

    /// Record `done` of `total` projects and report.
    pub fn update(
        &mut self,
        done: u64,
        total: u64,
        releases: u64,
        counters: &Counters,
        in_flight: &HashSet<String>,
    ) {
        self.done = done;
        self.total = total;
        self.tick(releases, counters, in_flight);
    }

    /// The heartbeat: report the last counts with the current requests, bytes/s and projects
    /// in flight, if a report is due.
    pub fn tick(&mut self, releases: u64, counters: &Counters, in_flight: &HashSet<String>) {
        if !self.due() {
            return;
        }
        let now = Instant::now();
        let bytes = counters.total_bytes();
        let (then, before) = self.last_bytes;
        let seconds = now.duration_since(then).as_secs_f64();
        if seconds >= 1.0 {
            self.bytes_per_second = bytes.saturating_sub(before) as f64 / seconds;
            self.last_bytes = (now, bytes);
        }
        self.last_line = now;
        let mut current: Vec<String> = in_flight.iter().cloned().collect();
        current.sort();
        let eta = (!self.discovering && self.done > 0 && self.done < self.total).then(|| {
            let rate = self.done as f64 / self.started.elapsed().as_secs_f64().max(0.001);
            self.total.saturating_sub(self.done) as f64 / rate
        });
        let status = Status {
            done: self.done,
            total: self.total,
            discovering: self.discovering,
            releases,
            requests: counters.total_requests(),
            bytes,
            bytes_per_second: self.bytes_per_second,
            current: &current,
            // The bar shows its own ETA.
            eta: eta.filter(|_| self.bar.is_none()),
        };
        match &self.bar {
            Some(bar) => {
                if !self.discovering {
                    bar.set_length(self.total);
                    bar.set_position(self.done);
                }
                let text = status.to_string();
                // The bar's own counts precede the message.
                let text = match text.split_once(", ") {
                    Some((_, rest)) if !self.discovering => rest.to_string(),
                    _ => text,
                };
                bar.set_message(text);
            }
            None => tracing::info!("{status}"),
        }
    }

    /// The end: the bar is cleared (the caller logs the one summary line).
    pub fn finish(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        if let Ok(mut shown) = BAR.lock() {
            *shown = None;
        }
    }
}

impl Drop for Progress {
    /// A crawl that fails half-way leaves no bar for log lines to hide behind.
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(discovering: bool, eta: Option<f64>, current: &[String]) -> String {
        Status {
            done: 131,
            total: 132,
            discovering,
            releases: 900,
            requests: 2000,
            bytes: 12_500_000,
            bytes_per_second: 1_250_000.0,
            current,
            eta,
        }
        .to_string()
    }

    #[test]
    fn a_growing_total_says_so_and_has_no_eta() {
        let current = ["tensorflow".to_string()];
        assert_eq!(
            status(true, None, &current),
            "131 done, ≥132 known, discovering, 900 releases, 2000 requests, 12.5 MB (1.25 MB/s), now: tensorflow"
        );
        assert_eq!(
            status(false, Some(4.0), &[]),
            "131/132 projects, 900 releases, 2000 requests, 12.5 MB (1.25 MB/s), ETA 4s"
        );
        let many: Vec<String> = ["a", "b", "c", "d", "e"].map(String::from).to_vec();
        assert!(
            status(true, None, &many).ends_with("now: a, b, c (+2)"),
            "{}",
            status(true, None, &many)
        );
    }
}
