//! The typed values every crate speaks, taken from Astral's `uv-*` crates and re-exported here so
//! that the crawler and the resolver agree on one set of types:
//!
//! - [`PackageName`]: a PEP 503 normalized project name, only constructible through validation;
//! - [`Version`], [`VersionSpecifiers`]: PEP 440;
//! - [`Requirement`], [`MarkerTree`], [`MarkerEnvironment`]: PEP 508;
//! - [`WheelFilename`], [`SourceDistFilename`]: distribution file names and wheel tags.

use std::str::FromStr;

pub use uv_distribution_filename::{SourceDistExtension, SourceDistFilename, WheelFilename};
pub use uv_normalize::{ExtraName, InvalidNameError, PackageName};
pub use uv_pep440::{Operator, Version, VersionSpecifier, VersionSpecifiers};
pub use uv_pep508::{MarkerEnvironment, MarkerTree, Requirement};
pub use uv_platform_tags;

/// Normalize a project name per PEP 503 (`Foo.Bar_baz` → `foo-bar-baz`).
pub fn normalize_name(name: &str) -> Result<PackageName, InvalidNameError> {
    PackageName::from_str(name)
}

/// Parse a PEP 440 version, returning it in its normalized spelling (`1.0-RC1` → `1.0rc1`).
pub fn normalize_version(version: &str) -> Option<String> {
    Version::from_str(version).ok().map(|v| v.to_string())
}

/// The deepest parenthesis nesting accepted in a PEP 508 string. uv's marker parser recurses
/// once per parenthesis, so an unbounded depth from a hostile index or input file would overflow
/// the stack; real metadata nests two or three levels.
pub const MAX_NESTING: usize = 64;

/// A PEP 508 string nested deeper than [`MAX_NESTING`] parentheses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("parentheses nested {depth} deep at byte {offset} (at most {MAX_NESTING} are accepted)")]
pub struct TooDeep {
    /// The depth reached when the bound was passed (`MAX_NESTING + 1`).
    pub depth: usize,
    /// Byte offset of the parenthesis that passed the bound.
    pub offset: usize,
}

/// Check that `text` nests parentheses at most [`MAX_NESTING`] deep, without parsing it.
/// Parentheses inside quoted marker values (`'…'`, `"…"`) do not count. Call this before handing
/// any untrusted string to a PEP 508 parser; [`parse_requirement`] does.
pub fn check_nesting(text: &str) -> Result<(), TooDeep> {
    let mut depth = 0usize;
    let mut quote = None;
    for (offset, byte) in text.bytes().enumerate() {
        match (quote, byte) {
            (Some(open), _) if byte == open => quote = None,
            (Some(_), _) => {}
            (None, b'\'' | b'"') => quote = Some(byte),
            (None, b'(') => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(TooDeep { depth, offset });
                }
            }
            (None, b')') => depth = depth.saturating_sub(1),
            (None, _) => {}
        }
    }
    Ok(())
}

/// Why a PEP 508 requirement string was refused.
#[derive(Debug, thiserror::Error)]
pub enum RequirementError {
    #[error(transparent)]
    TooDeep(#[from] TooDeep),
    #[error(transparent)]
    Invalid(#[from] Box<uv_pep508::Pep508Error>),
}

/// Parse a PEP 508 requirement after bounding its nesting ([`check_nesting`]): the one entry
/// point for requirement strings that come from outside (metadata, input files, snapshots).
pub fn parse_requirement(text: &str) -> Result<Requirement, RequirementError> {
    check_nesting(text)?;
    Requirement::from_str(text).map_err(|err| RequirementError::Invalid(Box::new(err)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_normalize_per_pep_503() {
        assert_eq!(
            normalize_name("Zope.Interface").expect("valid").as_str(),
            "zope-interface"
        );
        assert_eq!(
            normalize_name("pdfminer.six").expect("valid").as_str(),
            "pdfminer-six"
        );
        assert!(normalize_name("-bad").is_err());
    }

    // Regression: ~5,000 nested parentheses in a marker overflowed the stack of uv's parser.
    #[test]
    fn deep_nesting_is_refused_before_parsing() {
        let deep = format!(
            "foo; {}python_version > '3'{}",
            "(".repeat(20_000),
            ")".repeat(20_000)
        );
        let err = parse_requirement(&deep).expect_err("too deep");
        assert!(
            matches!(err, RequirementError::TooDeep(TooDeep { depth: 65, .. })),
            "{err}"
        );
        let fine = format!(
            "foo; {}python_version > '3'{}",
            "(".repeat(MAX_NESTING),
            ")".repeat(MAX_NESTING)
        );
        assert!(parse_requirement(&fine).is_ok());
        // Parentheses inside quoted values are data, not nesting.
        let quoted = format!("foo; platform_release == '{}'", "(".repeat(500));
        assert!(check_nesting(&quoted).is_ok());
    }

    #[test]
    fn versions_normalize_per_pep_440() {
        assert_eq!(normalize_version("1.0-RC1").as_deref(), Some("1.0rc1"));
        assert_eq!(normalize_version("not a version"), None);
    }
}
