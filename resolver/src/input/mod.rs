//! What the user asks for: requirements read from a `requirements.txt` (with the workspace's one
//! pip-syntax parser, `mach-nix-requirements`, which the crawler's `--requirements` uses too) or
//! from a `pyproject.toml` `[project]` table, each remembered with the file and line it came from
//! so that every later error can point there. Input files are read by
//! [`mach_nix_requirements::read_text`]: regular files only, at most
//! [`mach_nix_requirements::MAX_FILE_SIZE`] bytes, UTF-8 with an optional byte order mark.

mod pyproject;

use std::path::{Path, PathBuf};

use db_format::types::VersionSpecifiers;

pub use mach_nix_requirements::{Entry, Origin};
pub use pyproject::parse_pyproject;

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
    /// Every file read: the input itself, then its includes (outputs must not overwrite them).
    pub files: Vec<PathBuf>,
}

/// An input file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error(transparent)]
    Requirements(#[from] mach_nix_requirements::Error),
    #[error("{origin}: {message}")]
    Invalid { origin: Origin, message: String },
}

impl From<mach_nix_requirements::RequirementsTxt> for Input {
    fn from(file: mach_nix_requirements::RequirementsTxt) -> Self {
        Input {
            requirements: file.requirements,
            constraints: file.constraints,
            allow_prereleases: file.allow_prereleases,
            requires_python: None,
            files: file.files,
        }
    }
}

/// Parse `text`, the content of the requirements file `path`; includes are read relative to
/// `path`'s directory.
pub fn parse_requirements_txt(text: &str, path: &Path) -> Result<Input, InputError> {
    Ok(mach_nix_requirements::parse_requirements_txt(text, path)?.into())
}

/// Read a requirements file or a `pyproject.toml` (chosen by the file name), with `extras` of
/// the project (pyproject only).
pub fn read_input(path: &Path, extras: &[String]) -> Result<(Input, String), InputError> {
    let text = mach_nix_requirements::read_text(path)?;
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
