//! Core metadata (`METADATA` in wheels, `PKG-INFO` in sdists): RFC 822 style headers.
//!
//! Any Metadata-Version is accepted. Bytes that are not UTF-8 (old sdists were written in
//! Latin-1 or cp1252) are decoded as Latin-1, which maps every byte to a character, so a
//! dependency list is never lost to an author's name.

use std::str::FromStr;

use db_format::types::{Requirement, RequirementError, VersionSpecifier, parse_requirement};
use db_format::{DependencyRecord, MetadataSource};
use uv_pep508::VerbatimUrl;
use uv_pypi_types::LenientRequirement;

use super::unknown;

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

/// The longest part of an unreadable line quoted in a record's detail.
const QUOTE_LIMIT: usize = 200;

/// `text` for a message: at most [`QUOTE_LIMIT`] characters, debug-quoted.
pub fn quote(text: &str) -> String {
    match text.char_indices().nth(QUOTE_LIMIT) {
        Some((end, _)) => format!("{:?}… ({} bytes)", &text[..end], text.len()),
        None => format!("{text:?}"),
    }
}

/// One requirement string as it will be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadRequirement {
    /// A spelling the strict PEP 508 parser reads.
    pub text: String,
    /// Set when a clause had to be dropped to keep the requirement (see [`read_requirement`]).
    pub relaxed: Option<String>,
}

/// Read one requirement string of published metadata as uv reads it: its nesting bounded first
/// ([`db_format::types::check_nesting`]), then strict PEP 508, then uv's lenient fixups
/// (`pytz (>dev)` → `pytz>0.0.0.dev0`, `a (>=1.0<2)` → `a>=1.0,<2`). uv refuses what is left; one
/// more case is kept here rather than lose the dependency: a version clause naming a version
/// that is not PEP 440 (`pytz (>=2011k)`, pandas 0.14–0.24) is dropped, the rest of the
/// requirement kept, and [`ReadRequirement::relaxed`] says so. The error says why a line
/// cannot be read.
pub fn read_requirement(text: &str) -> Result<ReadRequirement, String> {
    let kept = |text: String| ReadRequirement {
        text,
        relaxed: None,
    };
    match parse_requirement(text) {
        Ok(_) => Ok(kept(text.to_string())),
        Err(RequirementError::TooDeep(err)) => Err(err.to_string()),
        Err(RequirementError::Invalid(strict)) => {
            if let Ok(lenient) = LenientRequirement::<VerbatimUrl>::from_str(text) {
                return Ok(kept(Requirement::from(lenient).to_string()));
            }
            relax_legacy_versions(text).ok_or_else(|| strict.message.to_string())
        }
    }
}

/// Drop the version clauses of `text` that are not PEP 440, keeping its name, extras, the
/// readable clauses and its marker; `None` unless that leaves a requirement the strict parser
/// reads.
fn relax_legacy_versions(text: &str) -> Option<ReadRequirement> {
    let (head, marker) = match text.split_once(';') {
        Some((head, marker)) => (head, Some(marker)),
        None => (text, None),
    };
    let head = head.trim();
    let name_end = head
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        .unwrap_or(head.len());
    let (name, rest) = head.split_at(name_end);
    let rest = rest.trim_start();
    let (extras, spec) = match rest.strip_prefix('[') {
        Some(inner) => {
            let (extras, spec) = inner.split_once(']')?;
            (format!("[{extras}]"), spec)
        }
        None => (String::new(), rest),
    };
    let spec = spec.trim();
    let spec = spec
        .strip_prefix('(')
        .and_then(|inner| inner.strip_suffix(')'))
        .unwrap_or(spec);
    let (readable, legacy): (Vec<&str>, Vec<&str>) = spec
        .split(',')
        .map(str::trim)
        .filter(|clause| !clause.is_empty())
        .partition(|clause| VersionSpecifier::from_str(clause).is_ok());
    if legacy.is_empty() || !legacy.iter().all(|clause| is_version_clause(clause)) {
        return None;
    }
    let marker = marker
        .map(|marker| format!("; {}", marker.trim()))
        .unwrap_or_default();
    let relaxed = format!("{name}{extras}{}{marker}", readable.join(","));
    parse_requirement(&relaxed).ok()?;
    Some(ReadRequirement {
        relaxed: Some(format!(
            "{} is not PEP 440: kept as {}",
            legacy.join(","),
            quote(&relaxed)
        )),
        text: relaxed,
    })
}

/// Whether `clause` is an operator and a version-like word (`>=2011k`), PEP 440 or not.
fn is_version_clause(clause: &str) -> bool {
    let version = ["===", "~=", "==", "!=", "<=", ">=", "<", ">"]
        .iter()
        .find_map(|operator| clause.strip_prefix(operator))
        .map(str::trim);
    version.is_some_and(|version| {
        !version.is_empty()
            && version.chars().all(|c| {
                c.is_ascii_alphanumeric() || matches!(c, '.' | '*' | '+' | '-' | '_' | '!')
            })
    })
}

/// Read every requirement of a list; the first that cannot be read is the error, naming the
/// field and the line. The notes say which were relaxed.
pub fn read_requirements(
    field: &str,
    texts: &[String],
) -> Result<(Vec<String>, Vec<String>), String> {
    let mut read = Vec::with_capacity(texts.len());
    let mut notes = Vec::new();
    for text in texts {
        let requirement = read_requirement(text)
            .map_err(|err| format!("{field} {} cannot be read: {err}", quote(text)))?;
        if let Some(relaxed) = requirement.relaxed {
            notes.push(format!("{field} {}: {relaxed}", quote(text)));
        }
        read.push(requirement.text);
    }
    Ok((read, notes))
}

/// `detail` followed by `notes`, `; `-separated.
pub fn with_notes(detail: Option<String>, notes: Vec<String>) -> Option<String> {
    let parts: Vec<String> = detail.into_iter().chain(notes).collect();
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// Build a record from the fields a source states. Every requirement is read as uv reads PyPI
/// metadata ([`read_requirement`]) and stored in a spelling the strict parser accepts; when one
/// still cannot be read the whole record is `unknown`, its detail naming the line, so the
/// resolver refuses the file instead of building an environment that lacks a dependency.
pub fn requirements_record(
    source: MetadataSource,
    detail: Option<String>,
    requires_python: Option<String>,
    requires_dist: Vec<String>,
    provides_extra: Vec<String>,
) -> DependencyRecord {
    match read_requirements("Requires-Dist", &requires_dist) {
        Ok((requires_dist, notes)) => DependencyRecord {
            source,
            detail: with_notes(detail, notes),
            requires_python,
            requires_dist,
            provides_extra,
            build_requires: Vec::new(),
            build_backend: None,
        },
        Err(reason) => DependencyRecord {
            requires_python,
            ..unknown(reason)
        },
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

    /// celery 3.1–5.2 publish `pytz (>dev)`: read strictly it was dropped and environments
    /// lacked pytz; uv keeps it.
    #[test]
    fn regression_lenient_requirements_keep_the_dependency() {
        let text = |line: &str| read_requirement(line).map(|read| read.text);
        assert_eq!(text("pytz (>dev)"), Ok("pytz>0.0.0.dev0".into()));
        assert_eq!(
            text("elasticsearch-dsl (>=7.2.0<8.0.0)"),
            Ok("elasticsearch-dsl>=7.2.0,<8.0.0".into())
        );
        assert_eq!(
            read_requirement("six>=1.5"),
            Ok(ReadRequirement {
                text: "six>=1.5".into(),
                relaxed: None
            })
        );
    }

    /// pandas 0.14–0.24 publish `pytz (>=2011k)`, which neither PEP 440 nor uv's fixups read:
    /// the dependency was dropped; it is kept without the unreadable clause, and said so.
    #[test]
    fn regression_a_legacy_version_clause_is_dropped_not_the_dependency() {
        let read = read_requirement("pytz (>=2011k)").expect("kept");
        assert_eq!(read.text, "pytz");
        assert!(read.relaxed.expect("noted").contains(">=2011k"));
        let read = read_requirement("a[x] (>=1.0, <2011k) ; python_version < '3'").expect("kept");
        assert_eq!(read.text, "a[x]>=1.0; python_version < '3'");
        let record = requirements_record(
            MetadataSource::WheelMetadata,
            None,
            None,
            vec!["pytz (>=2011k)".into(), "numpy>=1.12".into()],
            vec![],
        );
        assert_eq!(record.source, MetadataSource::WheelMetadata);
        assert_eq!(record.requires_dist, ["pytz", "numpy>=1.12"]);
        assert!(record.detail.expect("noted").contains("2011k"));
        assert!(read_requirement("a (>=1.0) @ junk").is_err());
    }

    #[test]
    fn an_unreadable_requirement_makes_the_record_unknown_naming_the_line() {
        let record = requirements_record(
            MetadataSource::WheelMetadata,
            None,
            Some(">=3.8".into()),
            vec!["ok>=1".into(), "bad (((".into()],
            vec![],
        );
        assert_eq!(record.source, MetadataSource::Unknown);
        assert!(record.requires_dist.is_empty());
        assert_eq!(record.requires_python.as_deref(), Some(">=3.8"));
        let detail = record.detail.expect("detail");
        assert!(detail.contains("Requires-Dist \"bad (((\""), "{detail}");
    }

    /// ~5,000 nested parentheses in a marker overflowed the stack of a tokio worker and
    /// aborted the crawler on every resume.
    #[test]
    fn regression_deep_nesting_is_refused_before_parsing() {
        let deep = format!(
            "foo; {}python_version > '3'{}",
            "(".repeat(5000),
            ")".repeat(5000)
        );
        let error = read_requirement(&deep).expect_err("refused");
        assert!(error.contains("nested"), "{error}");
        let long = quote(&deep);
        assert!(long.len() < 300, "{long}");
    }
}
