//! `requirements.txt` as pip reads it, in one place for both binaries: the crawler's
//! `--requirements` (which projects to crawl) and the resolver's `-r` (what to resolve) read a
//! file with exactly this code, so a file the crawler accepted is one the resolver accepts, and
//! every project the resolver will ask for was crawled.
//!
//! What is understood: `#` comments, `\` continuations, a UTF-8 byte order mark (as pip),
//! `-r`/`-c` includes in every pip spelling (`-r F`, `-rF`, `--requirement F`,
//! `--requirement=F`, read relative to the including file, at most [`MAX_INCLUDE_DEPTH`] deep,
//! a cycle refused with its chain, a file included twice read once), PEP 508 lines with extras, markers and `name @ url`, and
//! per-requirement `--hash` options. Index options (`-i`, `--extra-index-url`, …) are accepted
//! and ignored: the snapshot is the index. `--pre` allows pre-releases. Everything else pip
//! accepts (`-e`, VCS and local paths, `--no-binary`, unknown options) is refused with file and
//! line, never skipped: a skipped line would be a project the crawler never fetched.
//!
//! Inputs are untrusted: only regular files of at most [`MAX_FILE_SIZE`] bytes are read (no
//! FIFO, device or directory), every requirement string goes through
//! [`db_format::types::parse_requirement`] (bounded parenthesis nesting before uv's recursive
//! parser), and what an error echoes of a line is cut to [`MAX_ECHO`] characters.
//!
//! Dependencies: `db-format` (the workspace's typed PEP 508 values and the nesting bound),
//! `uv-pep508` (its error and URL types), `hex` (`--hash` digests), `thiserror`.

mod parse;
mod read;

use std::fmt;
use std::path::PathBuf;

use db_format::types::Requirement;

pub use parse::{parse_pep508, parse_requirements_txt, read_requirements_txt};
pub use read::{MAX_FILE_SIZE, read_text};

/// How deep `-r`/`-c` includes may nest (each level is a stack frame of the parser).
pub const MAX_INCLUDE_DEPTH: usize = 64;

/// How many characters of an input line an error message repeats.
pub const MAX_ECHO: usize = 120;

/// Where a requirement was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: PathBuf,
    /// 1-based; for a continued line, the line it starts on.
    pub line: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// One requirement with its origin and the hashes pip's `--hash` allowed for it.
#[derive(Debug, Clone)]
pub struct Entry {
    pub requirement: Requirement,
    /// sha256 digests from `--hash=sha256:…`; when present, only files with one of them may be
    /// chosen (pip's hash-checking mode).
    pub hashes: Vec<[u8; 32]>,
    pub origin: Origin,
}

/// Everything one requirements file (and the files it includes) asks for.
#[derive(Debug, Clone, Default)]
pub struct RequirementsTxt {
    /// What must be installed.
    pub requirements: Vec<Entry>,
    /// `-c` constraints: they only narrow versions of packages something else requires.
    pub constraints: Vec<Entry>,
    /// `--pre` was given: pre-releases are allowed everywhere.
    pub allow_prereleases: bool,
    /// Every file read: the file itself, then its includes in the order they were read.
    pub files: Vec<PathBuf>,
}

/// A requirements file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {kind}, not a regular file (input files must be regular files)", path.display())]
    NotRegular { path: PathBuf, kind: &'static str },
    #[error(
        "{}: {size} bytes, more than the {limit} bytes an input file may have",
        path.display()
    )]
    TooLarge {
        path: PathBuf,
        size: u64,
        limit: u64,
    },
    #[error("{origin}: {message}")]
    Invalid { origin: Origin, message: String },
    #[error("{origin}: {what} is not supported: {hint}")]
    Unsupported {
        origin: Origin,
        what: String,
        hint: &'static str,
    },
    #[error("{origin}: {} includes itself (through {chain})", file.display())]
    IncludeCycle {
        origin: Origin,
        file: PathBuf,
        chain: String,
    },
}

/// `text` as an error message may repeat it: at most [`MAX_ECHO`] characters, with how much
/// was left out.
pub fn clip(text: &str) -> String {
    match text.char_indices().nth(MAX_ECHO) {
        None => text.to_owned(),
        Some((end, _)) => format!("{}… ({} bytes in all)", &text[..end], text.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clipping_keeps_short_text_and_cuts_long_text_on_a_character() {
        assert_eq!(clip("six"), "six");
        let long = "é".repeat(1_000_000);
        let clipped = clip(&long);
        assert!(clipped.len() < 300, "{}", clipped.len());
        assert!(clipped.ends_with("… (2000000 bytes in all)"), "{clipped}");
    }
}
