use std::path::PathBuf;

/// Everything that can go wrong reading or writing a snapshot.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("I/O error while writing the snapshot: {0}")]
    Write(#[from] std::io::Error),
    #[error("not a mach-nix snapshot (wrong magic bytes); is this the right file?")]
    BadMagic,
    #[error(
        "snapshot format version {found} is newer than this build supports (version {supported}); \
         upgrade mach-nix to read it"
    )]
    UnsupportedVersion { found: u32, supported: u32 },
    #[error(
        "snapshot format version {found} is older than this build supports (version {supported}); \
         upgrade required: fetch a snapshot published by a current crawler"
    )]
    UpgradeRequired { found: u32, supported: u32 },
    #[error("snapshot is truncated: {what} needs {needed} bytes but only {available} are there")]
    Truncated {
        what: &'static str,
        needed: u64,
        available: u64,
    },
    #[error(
        "snapshot header is corrupted (header checksum {found:#010x}, computed {computed:#010x}); download it again"
    )]
    HeaderChecksum { found: u32, computed: u32 },
    #[error(
        "snapshot body is corrupted (checksum {found:#010x}, computed {computed:#010x}); download it again"
    )]
    BodyChecksum { found: u32, computed: u32 },
    #[error("snapshot is corrupted: {what} at offset {offset} points outside its bounds")]
    OutOfRange { what: &'static str, offset: u64 },
    #[error("snapshot is corrupted at body offset {offset}: {what}")]
    Malformed { offset: u64, what: String },
    #[error("cannot write project {name:?}: {reason}")]
    InvalidProject { name: String, reason: String },
    #[error(
        "projects must be written in strictly increasing name order: {previous:?} then {next:?}"
    )]
    OutOfOrder { previous: String, next: String },
    #[error(
        "conda records must be written in strictly increasing (name, channel, subdir, filename) \
         order: {previous} then {next}"
    )]
    CondaOutOfOrder { previous: String, next: String },
    #[error("snapshot {what} does not decompress: {detail}")]
    Decompress { what: &'static str, detail: String },
    /// A blob could not be had or was not the one asked for (boxed: it is large and rare).
    #[error(transparent)]
    Blob(Box<crate::blob::BlobError>),
    #[error("cannot write conda record {filename:?}: {reason}")]
    InvalidCondaRecord { filename: String, reason: String },
}

impl From<crate::blob::BlobError> for Error {
    fn from(err: crate::blob::BlobError) -> Self {
        Error::Blob(Box::new(err))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
