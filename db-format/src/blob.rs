//! Content-addressed blobs and the published tree: the one contract between `publish-db`, which
//! writes a snapshot's pieces, and the resolver, which reads them from a local directory, a
//! cache or a mirror.
//!
//! Every piece of a published snapshot is a *blob* named by the sha256 of its bytes. Where a blob
//! lives inside a published tree (a directory, or the same layout under an HTTP base URL) is
//! decided here, by [`BlobKind::path`], and nowhere else:
//!
//! ```text
//! manifests/<sha256>           a snapshot's manifest; its sha256 is the snapshot's pin
//! shards/<aa>/<sha256>.zst     a shard (aa: the first two hex digits of the hash)
//! dicts/<sha256>.zdict         a compression dictionary shared by shards
//! packs/<sha256>.mnxpack       a pack: manifest and shards in one file, named by the manifest's hash
//! index.json                   every published snapshot, oldest first
//! latest                       the hash of the newest snapshot, and a newline
//! ```
//!
//! Nothing published is ever rewritten or deleted, so every pin stays resolvable.

use std::fmt;

/// The sha256 of a blob's bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlobHash(pub [u8; 32]);

impl BlobHash {
    /// Parse 64 hex digits (either case).
    pub fn from_hex(text: &str) -> Option<Self> {
        if text.len() != 64 {
            return None;
        }
        let mut bytes = [0u8; 32];
        for (byte, pair) in bytes.iter_mut().zip(text.as_bytes().chunks_exact(2)) {
            let high = (pair[0] as char).to_digit(16)?;
            let low = (pair[1] as char).to_digit(16)?;
            *byte = u8::try_from(high << 4 | low).ok()?;
        }
        Some(BlobHash(bytes))
    }

    /// The lowercase hex spelling, as used in paths and pins.
    pub fn to_hex(&self) -> String {
        use fmt::Write as _;
        let mut text = String::with_capacity(64);
        for byte in self.0 {
            // Writing into a String cannot fail.
            let _ = write!(text, "{byte:02x}");
        }
        text
    }
}

impl fmt::Display for BlobHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for BlobHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.to_hex())
    }
}

/// What a blob is; decides its path in a published tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BlobKind {
    Manifest,
    Shard,
    Dictionary,
    Pack,
}

impl BlobKind {
    /// The blob's path relative to the root of a published tree (`/`-separated, no leading `/`).
    pub fn path(self, hash: &BlobHash) -> String {
        let hex = hash.to_hex();
        match self {
            BlobKind::Manifest => format!("manifests/{hex}"),
            BlobKind::Shard => format!("shards/{}/{hex}.zst", &hex[..2]),
            BlobKind::Dictionary => format!("dicts/{hex}.zdict"),
            BlobKind::Pack => format!("packs/{hex}.mnxpack"),
        }
    }

    /// A word for messages ("shard", "manifest", …).
    pub fn as_str(self) -> &'static str {
        match self {
            BlobKind::Manifest => "manifest",
            BlobKind::Shard => "shard",
            BlobKind::Dictionary => "dictionary",
            BlobKind::Pack => "pack",
        }
    }
}

/// `index.json` at the root of a published tree.
pub const INDEX_JSON: &str = "index.json";
/// `latest` at the root of a published tree.
pub const LATEST: &str = "latest";

/// Why a blob could not be had.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// No source has it (every mirror answered "not found", or the cache is offline and lacks it).
    #[error("{kind} sha256:{hash} is not available: {detail}", kind = kind.as_str(), hash = hash.to_hex())]
    Missing {
        kind: BlobKind,
        hash: BlobHash,
        detail: String,
    },
    /// Bytes arrived whose sha256 is not the one asked for.
    #[error(
        "{kind} sha256:{hash} from {from} has sha256:{actual}: damaged or forged, refused",
        kind = kind.as_str(), hash = hash.to_hex(), actual = actual.to_hex()
    )]
    HashMismatch {
        kind: BlobKind,
        hash: BlobHash,
        actual: BlobHash,
        /// Where the bytes came from (a mirror URL or a local path), credentials removed.
        from: String,
    },
    /// Any other failure (I/O, network), already worded for people.
    #[error("{0}")]
    Other(String),
}

/// Where the blobs of a sharded snapshot come from: a local tree, a cache backed by mirrors, a
/// pack. Implementations must return only bytes whose sha256 equals `hash` (a reader checks
/// again before use, so a faulty source is caught either way).
pub trait BlobSource: fmt::Debug + Send + Sync {
    /// The blob's bytes. `size` is the length the manifest states, when it states one.
    fn get(&self, kind: BlobKind, hash: &BlobHash, size: Option<u64>)
    -> Result<Vec<u8>, BlobError>;

    /// Ask for blobs that will probably be needed soon (the next level of a resolution's
    /// dependencies). A source that can fetch in parallel starts them here; the default does
    /// nothing. Errors surface later, from [`BlobSource::get`].
    fn prefetch(&self, _blobs: &[(BlobKind, BlobHash, Option<u64>)]) {}
}

/// A published tree (or a cache with the same layout) in a local directory, as a
/// [`BlobSource`]. Bytes are returned as they are on disk; readers check their hash.
#[derive(Debug, Clone)]
pub struct DirSource {
    root: std::path::PathBuf,
}

impl DirSource {
    pub fn new(root: impl Into<std::path::PathBuf>) -> Self {
        DirSource { root: root.into() }
    }

    /// Where `hash` of `kind` lives in this tree.
    pub fn path(&self, kind: BlobKind, hash: &BlobHash) -> std::path::PathBuf {
        self.root.join(kind.path(hash))
    }
}

impl BlobSource for DirSource {
    fn get(
        &self,
        kind: BlobKind,
        hash: &BlobHash,
        _size: Option<u64>,
    ) -> Result<Vec<u8>, BlobError> {
        let path = self.path(kind, hash);
        std::fs::read(&path).map_err(|err| match err.kind() {
            std::io::ErrorKind::NotFound => BlobError::Missing {
                kind,
                hash: *hash,
                detail: format!("no {}", path.display()),
            },
            _ => BlobError::Other(format!("{}: {err}", path.display())),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_round_trip_through_hex_and_paths_follow_the_layout() {
        let hex = "ab".repeat(32);
        let hash = BlobHash::from_hex(&hex).expect("hex");
        assert_eq!(hash.to_hex(), hex);
        assert_eq!(
            BlobHash::from_hex(&hex.to_ascii_uppercase()),
            Some(hash),
            "either case"
        );
        assert_eq!(BlobHash::from_hex("abc"), None);
        assert_eq!(BlobHash::from_hex(&"zz".repeat(32)), None);
        assert_eq!(BlobKind::Shard.path(&hash), format!("shards/ab/{hex}.zst"));
        assert_eq!(BlobKind::Manifest.path(&hash), format!("manifests/{hex}"));
        assert_eq!(BlobKind::Pack.path(&hash), format!("packs/{hex}.mnxpack"));
    }
}
