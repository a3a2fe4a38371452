//! Progress: an indicatif bar on a terminal, plain periodic log lines otherwise (CI logs).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::pypi::Counters;

/// How far a crawl has come.
#[derive(Debug)]
pub struct Progress {
    bar: Option<ProgressBar>,
    started: Instant,
    last_line: Instant,
    every: Duration,
}

impl Progress {
    /// A bar when stderr is a terminal, else a log line every `every`.
    pub fn new(every: Duration) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(0);
            bar.set_style(
                ProgressStyle::with_template(
                    "{elapsed_precise} [{bar:30}] {pos}/{len} projects ({per_sec}, ETA {eta}) {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar
        });
        let now = Instant::now();
        Progress {
            bar,
            started: now,
            last_line: now,
            every,
        }
    }

    fn message(releases: u64, counters: &Counters) -> String {
        format!(
            "{releases} releases, {} requests, {:.1} MB",
            counters.total_requests(),
            counters.total_bytes() as f64 / 1e6
        )
    }

    /// Whether [`Progress::update`] would show anything now (a bar redraws at most 10 times a
    /// second; log lines come every `every`).
    pub fn due(&self) -> bool {
        match &self.bar {
            Some(_) => self.last_line.elapsed() >= Duration::from_millis(100),
            None => self.last_line.elapsed() >= self.every,
        }
    }

    /// Report `done` of `total` projects.
    pub fn update(&mut self, done: u64, total: u64, releases: u64, counters: &Counters) {
        let message = Self::message(releases, counters);
        if let Some(bar) = &self.bar {
            self.last_line = Instant::now();
            bar.set_length(total);
            bar.set_position(done);
            bar.set_message(message);
        } else if self.last_line.elapsed() >= self.every {
            self.last_line = Instant::now();
            let elapsed = self.started.elapsed().as_secs_f64();
            let rate = done as f64 / elapsed.max(0.001);
            let eta = (total.saturating_sub(done)) as f64 / rate.max(1e-9);
            tracing::info!(
                "{done}/{total} projects, {message}, {rate:.1} projects/s, ETA {eta:.0}s"
            );
        }
    }

    /// The last report: the bar is cleared, or a final line is logged.
    pub fn finish(&mut self, done: u64, total: u64, releases: u64, counters: &Counters) {
        match &self.bar {
            Some(bar) => bar.finish_and_clear(),
            None => {
                self.last_line = self.started;
                self.every = Duration::ZERO;
                self.update(done, total, releases, counters);
            }
        }
    }
}
