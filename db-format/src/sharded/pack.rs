//! A pack: a sharded snapshot's manifest and every page and shard in one mmap-able file, for
//! offline use, mirrors and Nix. It is named by the manifest's sha256 (the pin), so
//! `sha256:HASH` is the same snapshot packed or sharded; each blob is checked against its hash
//! when first read, like a blob from any other source.

use std::io::Write;

use super::{KIND_PACK, Sharded, check_version, fetch_checked};
use crate::MAGIC;
use crate::blob::{BlobError, BlobHash, BlobKind, BlobSource};
use crate::error::{Error, Result};

/// Bytes before the manifest: magic, version, kind, blob count, manifest length.
const PACK_HEAD: usize = 32;
/// One table entry: hash, offset, length.
const ENTRY: usize = 48;

/// Write `snapshot` (every blob it names, each checked) as a pack; returns the bytes written.
pub(crate) fn write_pack(snapshot: &Sharded, out: &mut dyn Write) -> Result<u64> {
    let mut blobs = snapshot.blobs()?;
    // The manifest has its own place, before the table.
    blobs.retain(|(kind, _, _)| *kind != BlobKind::Manifest);
    blobs.sort_by_key(|(_, hash, _)| *hash);
    let manifest = &snapshot.manifest_bytes;
    let mut head = Vec::with_capacity(PACK_HEAD + manifest.len() + blobs.len() * ENTRY);
    head.extend_from_slice(&MAGIC);
    head.extend_from_slice(&crate::FORMAT_VERSION.to_le_bytes());
    head.extend_from_slice(&KIND_PACK.to_le_bytes());
    head.extend_from_slice(&(blobs.len() as u64).to_le_bytes());
    head.extend_from_slice(&(manifest.len() as u64).to_le_bytes());
    head.extend_from_slice(manifest);
    let mut offset = (head.len() + blobs.len() * ENTRY) as u64;
    for (_, hash, size) in &blobs {
        head.extend_from_slice(&hash.0);
        head.extend_from_slice(&offset.to_le_bytes());
        head.extend_from_slice(&size.to_le_bytes());
        offset += size;
    }
    out.write_all(&head)?;
    for (kind, hash, size) in &blobs {
        out.write_all(&fetch_checked(
            snapshot.source.as_ref(),
            *kind,
            hash,
            Some(*size),
        )?)?;
    }
    out.flush()?;
    Ok(offset)
}

/// The bytes of a pack as a [`BlobSource`].
pub(crate) struct PackSource {
    backing: crate::reader::Backing,
    count: usize,
    table: usize,
    manifest: std::ops::Range<usize>,
}

fn le_u64(bytes: &[u8], at: usize) -> u64 {
    let mut raw = [0; 8];
    raw.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(raw)
}

impl PackSource {
    /// Check a pack's frame: header, table bounds and order, every blob inside the file.
    pub(crate) fn new(backing: crate::reader::Backing) -> Result<Self> {
        let bytes = backing.bytes();
        let truncated = |needed: u64| Error::Truncated {
            what: "pack",
            needed,
            available: bytes.len() as u64,
        };
        if bytes.len() < PACK_HEAD {
            return Err(truncated(PACK_HEAD as u64));
        }
        if bytes[..8] != MAGIC {
            return Err(Error::BadMagic);
        }
        let mut word = [0; 4];
        word.copy_from_slice(&bytes[8..12]);
        check_version(u32::from_le_bytes(word))?;
        word.copy_from_slice(&bytes[12..16]);
        if u32::from_le_bytes(word) != KIND_PACK {
            return Err(Error::Malformed {
                offset: 12,
                what: "not a pack".into(),
            });
        }
        let count = le_u64(bytes, 16);
        let manifest_len = le_u64(bytes, 24);
        let table = (PACK_HEAD as u64).checked_add(manifest_len);
        let end = count
            .checked_mul(ENTRY as u64)
            .and_then(|len| len.checked_add(table?));
        let (Some(table), Some(end)) = (table, end) else {
            return Err(truncated(u64::MAX));
        };
        if end > bytes.len() as u64 {
            return Err(truncated(end));
        }
        // Fit in usize: at most the file's length.
        let (count, table, end) = (count as usize, table as usize, end as usize);
        let mut previous: Option<&[u8]> = None;
        let mut expected_offset = end as u64;
        for index in 0..count {
            let at = table + index * ENTRY;
            let hash = &bytes[at..at + 32];
            if previous.is_some_and(|previous| previous >= hash) {
                return Err(Error::Malformed {
                    offset: at as u64,
                    what: "pack table out of order".into(),
                });
            }
            previous = Some(hash);
            let offset = le_u64(bytes, at + 32);
            let len = le_u64(bytes, at + 40);
            if offset != expected_offset {
                return Err(Error::OutOfRange {
                    what: "pack blob",
                    offset: at as u64,
                });
            }
            expected_offset = offset.checked_add(len).ok_or(Error::OutOfRange {
                what: "pack blob",
                offset: at as u64,
            })?;
        }
        if expected_offset != bytes.len() as u64 {
            return Err(if expected_offset > bytes.len() as u64 {
                truncated(expected_offset)
            } else {
                Error::Malformed {
                    offset: expected_offset,
                    what: "bytes follow the last blob of the pack".into(),
                }
            });
        }
        Ok(PackSource {
            backing,
            count,
            table,
            manifest: PACK_HEAD..table,
        })
    }

    pub(crate) fn manifest(&self) -> &[u8] {
        &self.backing.bytes()[self.manifest.clone()]
    }
}

impl std::fmt::Debug for PackSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "a pack of {} blobs", self.count)
    }
}

impl BlobSource for PackSource {
    fn get(
        &self,
        kind: BlobKind,
        hash: &BlobHash,
        _size: Option<u64>,
    ) -> std::result::Result<Vec<u8>, BlobError> {
        let bytes = self.backing.bytes();
        if kind == BlobKind::Manifest {
            return Ok(self.manifest().to_vec());
        }
        let (mut low, mut high) = (0, self.count);
        while low < high {
            let mid = low + (high - low) / 2;
            let at = self.table + mid * ENTRY;
            match bytes[at..at + 32].cmp(&hash.0[..]) {
                std::cmp::Ordering::Less => low = mid + 1,
                std::cmp::Ordering::Greater => high = mid,
                std::cmp::Ordering::Equal => {
                    // In bounds: checked by `new`.
                    let offset = le_u64(bytes, at + 32) as usize;
                    let len = le_u64(bytes, at + 40) as usize;
                    return Ok(bytes[offset..offset + len].to_vec());
                }
            }
        }
        Err(BlobError::Missing {
            kind,
            hash: *hash,
            detail: "not in the pack".into(),
        })
    }
}
