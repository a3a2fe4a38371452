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

    #[test]
    fn versions_normalize_per_pep_440() {
        assert_eq!(normalize_version("1.0-RC1").as_deref(), Some("1.0rc1"));
        assert_eq!(normalize_version("not a version"), None);
    }
}
