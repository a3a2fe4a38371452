//! The owned values a snapshot holds. The writer takes them, the reader gives them back equal.

/// Snapshot-wide facts, stored in the header.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SnapshotMeta {
    /// When the snapshot was written (unix seconds). Part of the bytes, so part of the pin: the
    /// publisher derives it from the crawl state, not from the clock, to keep output reproducible.
    pub created: i64,
    /// The highest PyPI event serial the crawl state had seen (its watermark).
    pub pypi_serial: u64,
    /// The `--as-of` cutoff (unix seconds), if the snapshot shows PyPI as it was at that time.
    pub as_of: Option<i64>,
    pub project_count: u64,
    pub release_count: u64,
    pub file_count: u64,
    /// Distinct dependency records stored (after deduplication).
    pub dependency_record_count: u64,
    /// Conda package records (format version 2; always 0 in a version-1 file).
    pub conda_record_count: u64,
}

/// One PyPI project (a normalized name) and all its releases.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Project {
    /// PEP 503 normalized name; the writer refuses anything else.
    pub name: String,
    /// PyPI's `last_serial` of the project when it was crawled.
    pub last_serial: u64,
    /// Releases; the writer stores them sorted by PEP 440 version (unparseable legacy versions
    /// last, by string), so the reader returns them oldest first.
    pub releases: Vec<Release>,
}

/// One release (version) of a project.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Release {
    /// The version as published (normalized by the crawler when it parses as PEP 440).
    pub version: String,
    /// `Some(reason)` if the release is yanked; the reason may be empty.
    pub yanked: Option<String>,
    /// The release's `Requires-Python` (a PEP 440 specifier set), if any.
    pub requires_python: Option<String>,
    /// Upload time of the release's first file (unix seconds).
    pub upload_time: Option<i64>,
    /// The distinct dependency records of this release's files. Wheels of one release may
    /// disagree, so each file points to one of these (see [`File::dependencies`]).
    pub dependencies: Vec<DependencyRecord>,
    /// The files, sorted by file name by the writer.
    pub files: Vec<File>,
}

/// What the snapshot knows about one distribution file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct File {
    pub filename: String,
    pub kind: FileKind,
    pub size: u64,
    /// `None` only where the index gave no sha256 (never on PyPI today).
    pub sha256: Option<[u8; 32]>,
    pub upload_time: Option<i64>,
    /// `Some(reason)` if this file is yanked; the reason may be empty.
    pub yanked: Option<String>,
    /// The file's own `requires-python` from the index (PEP 691 `requires-python`).
    pub requires_python: Option<String>,
    /// The absolute download URL.
    pub url: String,
    /// Index into the release's [`Release::dependencies`], or `None` when this file's metadata
    /// was not examined.
    pub dependencies: Option<u32>,
}

/// What sort of distribution a file is, decided by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub enum FileKind {
    /// A source distribution (`.tar.gz`, `.zip`, `.tar.bz2`, `.tar.xz`, `.tgz`, `.tar`).
    Sdist,
    /// A wheel (`.whl`); its tags are in its name.
    Wheel,
    /// Anything else PyPI serves (eggs, Windows installers, `.rpm`, …): kept, never installed.
    #[default]
    Other,
}

impl FileKind {
    /// Classify a file by its name.
    pub fn of(filename: &str) -> Self {
        let lower = filename.to_ascii_lowercase();
        if lower.ends_with(".whl") {
            FileKind::Wheel
        } else if [".tar.gz", ".zip", ".tar.bz2", ".tar.xz", ".tgz", ".tar"]
            .iter()
            .any(|ext| lower.ends_with(ext))
        {
            FileKind::Sdist
        } else {
            FileKind::Other
        }
    }

    pub(crate) fn to_byte(self) -> u8 {
        match self {
            FileKind::Sdist => 0,
            FileKind::Wheel => 1,
            FileKind::Other => 2,
        }
    }

    pub(crate) fn from_byte(byte: u8) -> Option<Self> {
        Some(match byte {
            0 => FileKind::Sdist,
            1 => FileKind::Wheel,
            2 => FileKind::Other,
            _ => return None,
        })
    }
}

/// Where a dependency record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub enum MetadataSource {
    /// A wheel's `METADATA` (PEP 658 `.metadata` file, range request or full download).
    WheelMetadata,
    /// An sdist's `PKG-INFO` with Metadata-Version >= 2.2 and static Requires-Dist.
    SdistPkgInfo,
    /// An sdist's `*.egg-info/requires.txt` (with `PKG-INFO` for the rest).
    EggInfo,
    /// A static `[project]` table in an sdist's `pyproject.toml`.
    Pyproject,
    /// `install_requires` / `extras_require` in an sdist's `setup.cfg`.
    SetupCfg,
    /// Running the sdist's metadata build in a sandbox.
    Build,
    /// Nothing could be learned; [`DependencyRecord::detail`] says why.
    #[default]
    Unknown,
}

impl MetadataSource {
    pub const ALL: [MetadataSource; 7] = [
        MetadataSource::WheelMetadata,
        MetadataSource::SdistPkgInfo,
        MetadataSource::EggInfo,
        MetadataSource::Pyproject,
        MetadataSource::SetupCfg,
        MetadataSource::Build,
        MetadataSource::Unknown,
    ];

    /// A stable lowercase name, used in CLIs, JSON and the crawl state.
    pub fn as_str(self) -> &'static str {
        match self {
            MetadataSource::WheelMetadata => "wheel-metadata",
            MetadataSource::SdistPkgInfo => "sdist-pkg-info",
            MetadataSource::EggInfo => "egg-info",
            MetadataSource::Pyproject => "pyproject",
            MetadataSource::SetupCfg => "setup-cfg",
            MetadataSource::Build => "build",
            MetadataSource::Unknown => "unknown",
        }
    }

    /// The inverse of [`MetadataSource::as_str`].
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|source| source.as_str() == name)
    }

    pub(crate) fn to_byte(self) -> u8 {
        match self {
            MetadataSource::WheelMetadata => 0,
            MetadataSource::SdistPkgInfo => 1,
            MetadataSource::EggInfo => 2,
            MetadataSource::Pyproject => 3,
            MetadataSource::SetupCfg => 4,
            MetadataSource::Build => 5,
            MetadataSource::Unknown => 6,
        }
    }

    pub(crate) fn from_byte(byte: u8) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|source| source.to_byte() == byte)
    }
}

/// The dependencies one distribution file declares, and where they were read.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct DependencyRecord {
    pub source: MetadataSource,
    /// For `Unknown`: why nothing could be learned. Otherwise optional provenance (e.g. the
    /// archive member read).
    pub detail: Option<String>,
    /// The metadata's own `Requires-Python`.
    pub requires_python: Option<String>,
    /// `Requires-Dist` entries as PEP 508 strings, in the order published.
    pub requires_dist: Vec<String>,
    /// `Provides-Extra` names.
    pub provides_extra: Vec<String>,
    /// For sdists: the build requirements (`[build-system] requires`, or `setup_requires`).
    pub build_requires: Vec<String>,
    /// For sdists: the PEP 517 build backend (`[build-system] build-backend`), if declared.
    pub build_backend: Option<String>,
}

/// One package file of a conda channel, as its `repodata.json` describes it (format version 2).
///
/// Conda records live beside the PyPI projects, in their own index sorted by
/// (`name`, `channel`, `subdir`, `filename`). Match specs and versions are kept as the channel
/// published them: parsing them is the reader's business, so a spec that does not parse today
/// is still stored (and can be reported) rather than lost.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CondaRecord {
    /// The package name as the channel spells it (conda names are lowercase).
    pub name: String,
    /// The channel name (e.g. `intel`, `conda-forge`).
    pub channel: String,
    /// The platform subdirectory (`linux-64`, `osx-64`, `noarch`, …).
    pub subdir: String,
    /// The archive's file name (`.tar.bz2` or `.conda`).
    pub filename: String,
    pub version: String,
    /// The build string (e.g. `py39h6c91a56_0`).
    pub build: String,
    pub build_number: u64,
    /// `depends`: match spec strings, in published order.
    pub depends: Vec<String>,
    /// `constrains`: match specs that must hold if the named package is installed.
    pub constrains: Vec<String>,
    /// `noarch` (`python` or `generic`), if the package is not platform-specific.
    pub noarch: Option<String>,
    /// Archive size in bytes.
    pub size: u64,
    pub sha256: Option<[u8; 32]>,
    pub md5: Option<[u8; 16]>,
    /// `timestamp` as published: unix milliseconds (old records may carry seconds).
    pub timestamp: Option<i64>,
    /// The absolute download URL.
    pub url: String,
}

impl CondaRecord {
    /// The key the snapshot orders conda records by.
    pub fn sort_key(&self) -> (&str, &str, &str, &str) {
        (&self.name, &self.channel, &self.subdir, &self.filename)
    }
}
