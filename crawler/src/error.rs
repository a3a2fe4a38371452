use std::path::PathBuf;

use crate::extract::ExtractError;

/// Everything the crawler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{url}: {}", chain(.source))]
    Http {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{url}: HTTP {status} after {attempts} attempt(s)")]
    Status {
        url: String,
        status: u16,
        attempts: u32,
    },
    #[error("{url}: invalid response: {reason}")]
    InvalidResponse { url: String, reason: String },
    #[error("invalid URL {url:?}: {reason}")]
    Url { url: String, reason: String },
    #[error("crawl state {}: {source}", path.display())]
    State {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    /// A state that is missing, empty, not SQLite, of a newer schema, or fails SQLite's
    /// integrity check: only `crawl` creates a state.
    #[error("crawl state {}: {reason}", path.display())]
    NoState { path: PathBuf, reason: String },
    /// A row of the state that cannot be what the crawler wrote (a damaged byte on disk).
    #[error(
        "crawl state {}: damaged row ({row}), column {column}: {reason}; restore the state \
         from a copy or crawl into a new one",
        path.display()
    )]
    Damaged {
        path: PathBuf,
        row: String,
        column: &'static str,
        reason: String,
    },
    /// Another process holds the lock (one crawl or publish per state at a time).
    #[error(
        "{what} is in use by {holder}; only one crawl, publish-db or merge-state may use it at \
         a time: wait for that process to finish (a killed one releases it at once)"
    )]
    Locked { what: String, holder: String },
    /// A published snapshot whose bytes do not match its name: never overwritten.
    #[error(
        "{}: a published snapshot whose bytes hash to {found}, not to its name; refusing to \
         overwrite it (move it away after finding out how it changed)",
        path.display()
    )]
    Published { path: PathBuf, found: String },
    /// The new snapshot is much smaller than the one `latest` names.
    #[error(
        "the new snapshot has {after} {what}, the previous latest (sha256:{previous}) {before}: \
         refusing to move latest to a snapshot this much smaller (a damaged or wrong state?); \
         pass --allow-shrink if it is meant"
    )]
    Shrink {
        what: &'static str,
        before: u64,
        after: u64,
        previous: String,
    },
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// A file (the `--report`) could not be replaced as a whole.
    #[error("cannot write {0}")]
    Write(#[from] db_format::atomic::AtomicWriteError),
    #[error("snapshot: {0}")]
    Snapshot(#[from] db_format::Error),
    #[error("{file}:{line}: {message}")]
    Input {
        file: PathBuf,
        line: usize,
        message: String,
    },
    #[error(transparent)]
    Requirements(#[from] mach_nix_requirements::Error),
    #[error("{0}")]
    Usage(String),
    /// Projects the command named that the index does not have (exit code 3): each with the
    /// closest known name, if one is close enough to be a typo.
    #[error("{}", not_on_index(.0))]
    NotOnIndex(Vec<(String, Option<String>)>),
    #[error("{project}: {source}")]
    Extract {
        project: String,
        #[source]
        source: ExtractError,
    },
    #[error("change feed: {0}")]
    ChangeFeed(String),
    /// A task of the crawler itself died (a bug, or the runtime shutting down).
    #[error("internal error: {0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An HTTP error with its causes (reqwest's own message is often only "error sending request"
/// or "error following redirect"), with the userinfo of any URL in them masked.
fn chain(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    crate::pypi::client::redact_text(&text)
}

/// "N requested projects are not on the index:", one name a line, with "did you mean" and what to do.
fn not_on_index(missing: &[(String, Option<String>)]) -> String {
    let mut text = if missing.len() == 1 {
        "1 requested project is not on the index:".to_string()
    } else {
        format!("{} requested projects are not on the index:", missing.len())
    };
    for (name, suggestion) in missing {
        text.push_str(&format!("\n  {name}"));
        if let Some(suggestion) = suggestion {
            text.push_str(&format!(" (did you mean {suggestion}?)"));
        }
    }
    text.push_str(
        "\nfix the spelling, or point --index-url at the index that has them; \
         the other projects were crawled",
    );
    text
}
