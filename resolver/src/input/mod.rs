//! What the user asks for: requirements read from a `requirements.txt` (as pip reads it) or from
//! a `pyproject.toml` `[project]` table, each remembered with the file and line it came from so
//! that every later error can point there.

mod pyproject;
mod requirements_txt;

use std::fmt;
use std::path::{Path, PathBuf};

use db_format::types::{Requirement, VersionSpecifiers};

pub use pyproject::parse_pyproject;
pub use requirements_txt::parse_requirements_txt;

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

/// Everything one input file (and the files it includes) asks for.
#[derive(Debug, Clone, Default)]
pub struct Input {
    /// What must be installed.
    pub requirements: Vec<Entry>,
    /// `-c` constraints: they only narrow versions of packages something else requires.
    pub constraints: Vec<Entry>,
    /// `--pre` was given: pre-releases are allowed everywhere.
    pub allow_prereleases: bool,
    /// A pyproject's `requires-python`, checked against the target.
    pub requires_python: Option<(VersionSpecifiers, Origin)>,
}

/// An input file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{origin}: {message}")]
    Invalid { origin: Origin, message: String },
    #[error("{origin}: {what} is not supported: {hint}")]
    Unsupported {
        origin: Origin,
        what: String,
        hint: &'static str,
    },
    #[error("{origin}: {} includes itself (through {})", file.display(), chain)]
    IncludeCycle {
        origin: Origin,
        file: PathBuf,
        chain: String,
    },
}

/// Read a requirements file or a `pyproject.toml` (chosen by the file name), with `extras` of
/// the project (pyproject only).
pub fn read_input(path: &Path, extras: &[String]) -> Result<(Input, String), InputError> {
    let text = read_file(path)?;
    let input = if path
        .file_name()
        .is_some_and(|name| name == "pyproject.toml")
    {
        parse_pyproject(&text, path, extras)?
    } else {
        parse_requirements_txt(&text, path)?
    };
    Ok((input, text))
}

fn read_file(path: &Path) -> Result<String, InputError> {
    std::fs::read_to_string(path).map_err(|source| InputError::Io {
        path: path.to_owned(),
        source,
    })
}
