//! Core metadata (`METADATA` in wheels, `PKG-INFO` in sdists): RFC 822 style headers.
//!
//! Any Metadata-Version is accepted. Bytes that are not UTF-8 (old sdists were written in
//! Latin-1 or cp1252) are decoded as Latin-1, which maps every byte to a character, so a
//! dependency list is never lost to an author's name.

use std::str::FromStr;

type ParsedRequirement = uv_pep508::Requirement<uv_pep508::VerbatimUrl>;
use db_format::{DependencyRecord, MetadataSource};

/// The fields of core metadata the crawler uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CoreMetadata {
    pub metadata_version: Option<String>,
    pub name: Option<String>,
    pub version: Option<String>,
    pub requires_python: Option<String>,
    pub requires_dist: Vec<String>,
    pub provides_extra: Vec<String>,
    /// Fields declared `Dynamic` (lowercased), Metadata-Version >= 2.2.
    pub dynamic: Vec<String>,
}

impl CoreMetadata {
    /// Parse core metadata bytes.
    pub fn parse(bytes: &[u8]) -> CoreMetadata {
        let text = match std::str::from_utf8(bytes) {
            Ok(text) => text.to_string(),
            Err(_) => bytes.iter().map(|&byte| char::from(byte)).collect(),
        };
        let mut meta = CoreMetadata::default();
        let mut current: Option<(String, String)> = None;
        let finish = |meta: &mut CoreMetadata, field: Option<(String, String)>| {
            if let Some((key, value)) = field {
                meta.set(&key, value.trim());
            }
        };
        for line in text.lines() {
            // Only an empty line ends the headers: a line of blanks is a continuation (multi-line
            // License fields have them).
            if line.is_empty() {
                break;
            }
            if line.starts_with([' ', '\t']) {
                if let Some((_, value)) = current.as_mut() {
                    value.push(' ');
                    value.push_str(line.trim());
                }
                continue;
            }
            finish(&mut meta, current.take());
            if let Some((key, value)) = line.split_once(':') {
                current = Some((key.trim().to_ascii_lowercase(), value.to_string()));
            }
        }
        finish(&mut meta, current);
        meta
    }

    fn set(&mut self, key: &str, value: &str) {
        let value = value.to_string();
        match key {
            "metadata-version" => self.metadata_version = Some(value),
            "name" => self.name = Some(value),
            "version" => self.version = Some(value),
            "requires-python" if !value.is_empty() => self.requires_python = Some(value),
            "requires-dist" if !value.is_empty() => self.requires_dist.push(value),
            "provides-extra" if !value.is_empty() => self.provides_extra.push(value),
            "dynamic" => self.dynamic.push(value.to_ascii_lowercase()),
            _ => {}
        }
    }

    /// Whether the Metadata-Version is at least `major.minor`.
    pub fn version_at_least(&self, major: u64, minor: u64) -> bool {
        let Some(version) = &self.metadata_version else {
            return false;
        };
        let mut parts = version.trim().split('.').map(|part| part.parse::<u64>());
        match (parts.next(), parts.next()) {
            (Some(Ok(got_major)), Some(Ok(got_minor))) => (got_major, got_minor) >= (major, minor),
            (Some(Ok(got_major)), None) => got_major > major,
            _ => false,
        }
    }

    /// Whether `field` (e.g. `requires-dist`) is declared dynamic.
    pub fn is_dynamic(&self, field: &str) -> bool {
        self.dynamic.iter().any(|dynamic| dynamic == field)
    }

    /// The dependency record these fields state.
    pub fn into_record(self, source: MetadataSource, detail: Option<String>) -> DependencyRecord {
        requirements_record(
            source,
            detail,
            self.requires_python,
            self.requires_dist,
            self.provides_extra,
        )
    }
}

/// Build a record, keeping only requirements that parse as PEP 508 and saying in `detail` which
/// were dropped (so a broken string never reaches the resolver, and is never silently lost).
pub fn requirements_record(
    source: MetadataSource,
    detail: Option<String>,
    requires_python: Option<String>,
    requires_dist: Vec<String>,
    provides_extra: Vec<String>,
) -> DependencyRecord {
    let (valid, invalid): (Vec<String>, Vec<String>) = requires_dist
        .into_iter()
        .partition(|requirement| ParsedRequirement::from_str(requirement).is_ok());
    let detail = if invalid.is_empty() {
        detail
    } else {
        let dropped = format!("dropped unparseable requirements: {}", invalid.join(" | "));
        Some(match detail {
            Some(detail) => format!("{detail}; {dropped}"),
            None => dropped,
        })
    };
    DependencyRecord {
        source,
        detail,
        requires_python,
        requires_dist: valid,
        provides_extra,
        build_requires: Vec::new(),
        build_backend: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// pandas' wheels have a License field whose continuation lines include lines of only
    /// blanks; ending the headers there lost all 85 of its Requires-Dist.
    #[test]
    fn regression_blank_continuation_lines_do_not_end_the_headers() {
        let meta = CoreMetadata::parse(
            b"Metadata-Version: 2.1\nName: pandas\nLicense: BSD 3-Clause\n        \n        Copyright (c)\n\t\nRequires-Dist: numpy>=1.22.4\nRequires-Dist: pytz>=2020.1\n\nlong description\nRequires-Dist: not-a-header\n",
        );
        assert_eq!(meta.requires_dist, ["numpy>=1.22.4", "pytz>=2020.1"]);
    }

    #[test]
    fn headers_continuations_and_body_are_told_apart() {
        let meta = CoreMetadata::parse(
            b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\nRequires-Dist: a>=1\n\
              Requires-Dist: b ; extra == 'x'\nProvides-Extra: x\nRequires-Python: >=3.8\n\
              Summary: a\n  long summary\n\nRequires-Dist: not-a-header\n",
        );
        assert_eq!(meta.metadata_version.as_deref(), Some("2.1"));
        assert_eq!(meta.requires_dist, ["a>=1", "b ; extra == 'x'"]);
        assert_eq!(meta.provides_extra, ["x"]);
        assert_eq!(meta.requires_python.as_deref(), Some(">=3.8"));
        assert!(!meta.version_at_least(2, 2));
        assert!(meta.version_at_least(2, 1));
    }

    #[test]
    fn latin1_metadata_is_decoded_not_dropped() {
        let meta =
            CoreMetadata::parse(b"Metadata-Version: 1.2\nAuthor: J\xfcrgen\nRequires-Dist: six\n");
        assert_eq!(meta.requires_dist, ["six"]);
    }

    #[test]
    fn dynamic_fields_are_case_insensitive() {
        let meta = CoreMetadata::parse(b"Metadata-Version: 2.2\nDynamic: Requires-Dist\n");
        assert!(meta.version_at_least(2, 2));
        assert!(meta.is_dynamic("requires-dist"));
    }

    #[test]
    fn unparseable_requirements_are_dropped_and_named() {
        let record = requirements_record(
            MetadataSource::WheelMetadata,
            None,
            None,
            vec!["ok>=1".into(), "bad (((".into()],
            vec![],
        );
        assert_eq!(record.requires_dist, ["ok>=1"]);
        assert!(record.detail.expect("detail").contains("bad ((("));
    }
}
