//! Reading dependencies out of distribution files without running any of their code.
//!
//! - [`metadata`]: core metadata (`METADATA`/`PKG-INFO`, RFC 822 style, any version);
//! - [`zip`]: a bounded central-directory reader that works on byte ranges and whole files;
//! - [`remote`]: fetching what extraction needs: a wheel's `METADATA` via PEP 658, else range
//!   requests, else a download; a tar sdist read in growing parts until its first members
//!   decide the record, else downloaded whole (capped); read in a blocking task;
//! - [`sdist`]: an sdist's static metadata, walking the archive as a stream;
//! - [`static_metadata`]: the formats an sdist may state its dependencies in.
//!
//! Archives are untrusted: every read is capped (member size, member count, total bytes), every
//! member path is checked, links are refused where they matter, and nothing is ever written to
//! disk.

pub mod metadata;
pub mod remote;
pub mod sdist;
pub mod static_metadata;
pub mod zip;

use db_format::{DependencyRecord, MetadataSource};

/// The version of the extraction rules. Bump it when a change could turn an "unknown" into a
/// known record: the next crawl reads such files again (known records are kept).
/// 2: sdists that need a build are built in the sandbox when `--build-sdists` is on.
/// 3: requirements read as uv reads them (lenient, nesting bounded; an unreadable one makes
///    the record unknown instead of being dropped); `.tar.bz2`/`.tar.xz` sdists and egg-info
///    below the top directory; zips with data around them.
pub const EXTRACTOR_VERSION: u32 = 3;

/// What extractors before version 3 wrote into a known record's detail when they dropped
/// requirements they could not parse.
const DROPPED_BEFORE_3: &str = "dropped unparseable requirements";

/// Whether a stored record, read by extractor version `extractor`, must be read again: an
/// unknown from another extractor version (this one may know more), or a known record from
/// before version 3 that dropped requirements (they are read leniently now).
pub fn read_again(record: &DependencyRecord, extractor: u32) -> bool {
    match record.source {
        MetadataSource::Unknown => extractor != EXTRACTOR_VERSION,
        _ => {
            extractor < 3
                && record
                    .detail
                    .as_deref()
                    .is_some_and(|detail| detail.contains(DROPPED_BEFORE_3))
        }
    }
}

/// Why an archive or a metadata file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtractError {
    #[error("archive member {path:?} escapes the archive (absolute path or `..`)")]
    UnsafePath { path: String },
    #[error("archive member {path:?} is a link to {target:?}")]
    Link { path: String, target: String },
    #[error("archive member {path:?} is {size} bytes, over the limit of {limit}")]
    MemberTooLarge { path: String, size: u64, limit: u64 },
    #[error("archive member {path:?} expands past its declared size of {declared} bytes")]
    SizeMismatch { path: String, declared: u64 },
    #[error("archive has more than {limit} members")]
    TooManyMembers { limit: u64 },
    #[error("archive expands past {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("corrupt archive: {0}")]
    Corrupt(String),
    #[error("unsupported archive: {0}")]
    Unsupported(String),
    #[error("wheel has no *.dist-info/METADATA")]
    NoMetadata,
}

/// Caps on what reading one archive may cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest member read into memory (`METADATA`, `PKG-INFO`, `pyproject.toml`, …).
    pub max_member_bytes: u64,
    /// Most members an archive may have.
    pub max_members: u64,
    /// Most bytes an archive may expand to while it is walked.
    pub max_total_bytes: u64,
    /// Largest file downloaded whole (sdists, and wheels as the last resort).
    pub max_download_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_member_bytes: 8 << 20,
            max_members: 100_000,
            max_total_bytes: 1 << 30,
            max_download_bytes: 256 << 20,
        }
    }
}

/// How a file's dependency record was obtained (kept in the state for the measurements).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// The PEP 658 `.metadata` file.
    Pep658,
    /// HTTP range requests into the wheel.
    Range,
    /// The whole wheel.
    WheelDownload,
    /// The whole sdist, read statically.
    Sdist,
    /// The whole sdist, read statically, which says only a build could tell (builds were off).
    SdistNeedsBuild,
    /// The sdist's metadata build in the sandbox, successful.
    Build,
    /// The sdist's metadata build failed; the record's detail holds the normalized error.
    BuildFailed,
    /// Nothing was fetched: the file could not be read (see the record's detail).
    Failed,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Pep658 => "pep658",
            Method::Range => "range",
            Method::WheelDownload => "wheel-download",
            Method::Sdist => "sdist",
            Method::SdistNeedsBuild => "sdist-needs-build",
            Method::Build => "build",
            Method::BuildFailed => "build-failed",
            Method::Failed => "failed",
        }
    }
}

/// The dependency record of one file and how it was obtained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileOutcome {
    pub record: DependencyRecord,
    pub method: Method,
}

/// A record saying nothing could be learned, and why.
pub fn unknown(reason: impl Into<String>) -> DependencyRecord {
    DependencyRecord {
        source: MetadataSource::Unknown,
        detail: Some(reason.into()),
        ..DependencyRecord::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records of celery and pandas written before version 3 lack `pytz`: they are read again.
    #[test]
    fn regression_records_that_dropped_requirements_are_read_again() {
        let dropped = DependencyRecord {
            source: MetadataSource::WheelMetadata,
            detail: Some(format!("{DROPPED_BEFORE_3}: pytz (>dev)")),
            ..DependencyRecord::default()
        };
        assert!(read_again(&dropped, 2));
        assert!(!read_again(&dropped, EXTRACTOR_VERSION));
        let clean = DependencyRecord {
            source: MetadataSource::WheelMetadata,
            ..DependencyRecord::default()
        };
        assert!(!read_again(&clean, 1));
        assert!(read_again(&unknown("x"), 2));
        assert!(!read_again(&unknown("x"), EXTRACTOR_VERSION));
    }
}
