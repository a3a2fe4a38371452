//! The shared vocabulary of mach-nix: the typed values that the crawler and the resolver both
//! speak (normalized project names, PEP 440 versions and specifiers, PEP 508 requirements and
//! markers, wheel and sdist file names) and the on-disk **snapshot** of PyPI that the crawler
//! publishes and the resolver reads.
//!
//! A snapshot (format 3, [`FORMAT_VERSION`]) is a *manifest* — its sha256 is the pin — naming
//! *pages* (sorted name ranges) that name zstd-compressed *shards* holding the projects' records,
//! every piece a blob named by the sha256 of its bytes ([`blob`] places them in a published
//! tree); or all of it in one *pack* file. [`ShardedWriter`] writes one in a streaming pass into
//! a [`BlobSink`], keeping the shards of projects that did not change since a previous snapshot.
//! [`Snapshot`] reads every kind — a pack, a manifest with a [`blob::BlobSource`] for its blobs,
//! or a single file of format 1 or 2 (a header, a body of records and a sorted index, written by
//! [`Writer`]) — decoding one project at a time, checking each blob's sha256 before decoding it.
//! The byte layout is specified in `FORMAT.md` next to this crate. Since version 2 a snapshot
//! also holds conda channel records ([`CondaRecord`]).
//!
//! This crate knows nothing of HTTP, SQL or Nix: it must never depend on tokio, reqwest,
//! rusqlite or the resolver. Decoding never panics and never reads out of bounds, whatever the
//! bytes: every failure is a typed [`Error`].
//!
//! Dependencies: PEP 440/508, names and file names come from Astral's published `uv-*` crates
//! (the code uv itself runs) rather than the older standalone `pep440_rs`/`pep508_rs`, so that
//! version and marker semantics match uv exactly; `crc32fast` for checksums (all single-byte
//! errors detected, fast enough to verify a full snapshot in one pass); `memmap2` for reading;
//! `zstd` (the reference C library, as conda's sharded repodata uses) for format 3's blobs and
//! `sha2` for their names.

pub mod atomic;
pub mod blob;
mod codec;
mod error;
mod model;
mod reader;
mod sharded;
mod snapshot;
pub mod types;
mod writer;

pub use error::{Error, Result};
pub use model::{
    CondaRecord, DependencyRecord, File, FileKind, MetadataSource, Project, Release, SnapshotMeta,
};
pub use sharded::VersionEntry;
pub use sharded::sha256;
pub use sharded::writer::{BlobSink, MemorySink, ShardedStats, ShardedWriter};
pub use snapshot::{CondaRecords, ProjectNames, Projects, Snapshot};
pub use writer::{Writer, WriterStats};

/// The format version `publish-db` writes: 3, a manifest with pages and shards (or all of them
/// in one pack). See `FORMAT.md`, "Version changes".
pub const FORMAT_VERSION: u32 = 3;

/// The newest single-file format version, which [`Writer`] writes (tests, tools, old pins).
pub const SINGLE_FILE_VERSION: u32 = 2;

/// The oldest format version this crate still reads (version 1 has no conda records).
pub const OLDEST_READABLE_VERSION: u32 = 1;

/// The first eight bytes of every snapshot. `0x89` is not valid UTF-8, so a snapshot is never
/// mistaken for text; the CR-LF / Ctrl-Z / LF tail detects line-ending conversions (as PNG does).
pub const MAGIC: [u8; 8] = *b"\x89MNX\r\n\x1a\n";
