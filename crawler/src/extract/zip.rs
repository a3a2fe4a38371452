//! A bounded reader of zip archives that works on byte ranges.
//!
//! The same functions serve a whole file in memory and the few ranges fetched by HTTP range
//! requests: [`locate_central_directory`] reads the end of the archive, [`parse_central_directory`]
//! the directory, [`local_data_offset`] a member's local header, and [`inflate`] its data.
//! ZIP64 is supported; members are decompressed only up to their declared size and a cap.

use std::io::Read;

use super::{ExtractError, Limits};

const EOCD_SIGNATURE: u32 = 0x0605_4b50;
const ZIP64_LOCATOR_SIGNATURE: u32 = 0x0706_4b50;
const ZIP64_EOCD_SIGNATURE: u32 = 0x0606_4b50;
const CENTRAL_SIGNATURE: u32 = 0x0201_4b50;
const LOCAL_SIGNATURE: u32 = 0x0403_4b50;
/// A local file header without its name and extra field.
pub const LOCAL_HEADER_LEN: u64 = 30;
const EOCD_LEN: usize = 22;

/// Where the central directory is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CentralDirectory {
    /// Where the directory really starts (the stated offset plus [`Self::shift`]).
    pub offset: u64,
    pub size: u64,
    pub entries: u64,
    /// Bytes prepended to the archive (a self-extracting stub, a `cat`ed launcher): every
    /// offset the archive states is this much too small, as Python's zipfile computes it.
    pub shift: u64,
}

/// One member, as the central directory describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZipEntry {
    pub name: String,
    pub method: u16,
    pub compressed_size: u64,
    pub uncompressed_size: u64,
    pub local_header_offset: u64,
    /// The CRC-32 of the uncompressed data, checked by [`inflate`] (a corrupted download or
    /// range response must not pass as metadata).
    pub crc32: u32,
    /// Unix mode says symlink (`external attributes >> 16`).
    pub is_symlink: bool,
}

fn corrupt(what: impl Into<String>) -> ExtractError {
    ExtractError::Corrupt(what.into())
}

fn u16_at(bytes: &[u8], at: usize) -> Result<u16, ExtractError> {
    bytes
        .get(at..at + 2)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
        .ok_or_else(|| corrupt("zip record is truncated"))
}

fn u32_at(bytes: &[u8], at: usize) -> Result<u32, ExtractError> {
    bytes
        .get(at..at + 4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or_else(|| corrupt("zip record is truncated"))
}

fn u64_at(bytes: &[u8], at: usize) -> Result<u64, ExtractError> {
    let slice = bytes
        .get(at..at + 8)
        .ok_or_else(|| corrupt("zip record is truncated"))?;
    let mut array = [0u8; 8];
    array.copy_from_slice(slice);
    Ok(u64::from_le_bytes(array))
}

/// How far from its end an archive's end record can start: the record and the longest comment.
/// Python's zipfile searches as far, and no further.
pub const MAX_END_RECORD_DISTANCE: u64 = EOCD_LEN as u64 + 0xFFFF;

/// Find the central directory from the last bytes of an archive: `tail` holds the archive's
/// bytes from `tail_start` to its end.
///
/// As tolerant as Python's zipfile (which pip uses) and no more: the end record is the last one
/// whose comment runs exactly to the end of the file, else the last one within
/// [`MAX_END_RECORD_DISTANCE`] of the end whose comment fits (bytes after it are ignored: the
/// lxml 4.6.3 win32 wheels end in three stray bytes). Bytes prepended to the archive shift every
/// stated offset; the shift is measured from where the directory really ends (right before the
/// end record) and returned in [`CentralDirectory::shift`].
pub fn locate_central_directory(
    tail: &[u8],
    tail_start: u64,
) -> Result<CentralDirectory, ExtractError> {
    if tail.len() < EOCD_LEN {
        return Err(corrupt("too short to be a zip archive"));
    }
    let window = tail
        .len()
        .saturating_sub(usize::try_from(MAX_END_RECORD_DISTANCE).unwrap_or(usize::MAX));
    let comment_len = |at: usize| u16_at(tail, at + 20).ok().map(usize::from);
    let candidates = || {
        (window..=tail.len() - EOCD_LEN)
            .rev()
            .filter(|&at| u32_at(tail, at).ok() == Some(EOCD_SIGNATURE))
    };
    let eocd = candidates()
        .find(|&at| comment_len(at) == Some(tail.len() - at - EOCD_LEN))
        .or_else(|| {
            candidates()
                .find(|&at| comment_len(at).is_some_and(|len| at + EOCD_LEN + len <= tail.len()))
        })
        .ok_or_else(|| corrupt("no end of central directory record"))?;
    let entries = u64::from(u16_at(tail, eocd + 10)?);
    let size = u64::from(u32_at(tail, eocd + 12)?);
    let offset = u64::from(u32_at(tail, eocd + 16)?);
    let absolute = |at: usize| tail_start.saturating_add(at as u64);
    let (entries, size, offset, directory_end) =
        if entries != 0xFFFF && size != 0xFFFF_FFFF && offset != 0xFFFF_FFFF {
            (entries, size, offset, absolute(eocd))
        } else {
            // ZIP64: a locator right before the end record points to the ZIP64 end record, which
            // lies right before the locator unless bytes were prepended to the archive.
            let locator = eocd
                .checked_sub(20)
                .filter(|&at| u32_at(tail, at).ok() == Some(ZIP64_LOCATOR_SIGNATURE))
                .ok_or_else(|| corrupt("ZIP64 locator missing"))?;
            let stated = u64_at(tail, locator + 8)?
                .checked_sub(tail_start)
                .and_then(|at| usize::try_from(at).ok());
            let is_record = |at: &usize| u32_at(tail, *at).ok() == Some(ZIP64_EOCD_SIGNATURE);
            let record = stated
                .filter(is_record)
                .or_else(|| locator.checked_sub(56).filter(is_record))
                .ok_or_else(|| corrupt("ZIP64 end record is not where its locator says"))?;
            (
                u64_at(tail, record + 32)?,
                u64_at(tail, record + 40)?,
                u64_at(tail, record + 48)?,
                absolute(record),
            )
        };
    let stated_end = offset
        .checked_add(size)
        .ok_or_else(|| corrupt("central directory size overflows"))?;
    let shift = directory_end
        .checked_sub(stated_end)
        .ok_or_else(|| corrupt("central directory overlaps its end record"))?;
    Ok(CentralDirectory {
        offset: offset + shift,
        size,
        entries,
        shift,
    })
}

/// Parse the central directory bytes into entries, refusing more than `limits.max_members`;
/// `shift` ([`CentralDirectory::shift`]) is added to every member's stated offset.
pub fn parse_central_directory(
    directory: &[u8],
    shift: u64,
    limits: &Limits,
) -> Result<Vec<ZipEntry>, ExtractError> {
    let mut entries = Vec::new();
    let mut at = 0usize;
    while at + 4 <= directory.len() && u32_at(directory, at)? == CENTRAL_SIGNATURE {
        if entries.len() as u64 >= limits.max_members {
            return Err(ExtractError::TooManyMembers {
                limit: limits.max_members,
            });
        }
        let method = u16_at(directory, at + 10)?;
        let crc32 = u32_at(directory, at + 16)?;
        let mut compressed_size = u64::from(u32_at(directory, at + 20)?);
        let mut uncompressed_size = u64::from(u32_at(directory, at + 24)?);
        let name_len = usize::from(u16_at(directory, at + 28)?);
        let extra_len = usize::from(u16_at(directory, at + 30)?);
        let comment_len = usize::from(u16_at(directory, at + 32)?);
        let external = u32_at(directory, at + 38)?;
        let mut local_header_offset = u64::from(u32_at(directory, at + 42)?);
        let name_start = at + 46;
        let name_bytes = directory
            .get(name_start..name_start + name_len)
            .ok_or_else(|| corrupt("central directory entry name is truncated"))?;
        let extra = directory
            .get(name_start + name_len..name_start + name_len + extra_len)
            .ok_or_else(|| corrupt("central directory extra field is truncated"))?;
        // ZIP64 extended information: the 0xFFFFFFFF fields, in this order.
        let mut field = 0usize;
        while field + 4 <= extra.len() {
            let id = u16_at(extra, field)?;
            let len = usize::from(u16_at(extra, field + 2)?);
            if id == 0x0001 {
                let mut value = field + 4;
                for slot in [
                    &mut uncompressed_size,
                    &mut compressed_size,
                    &mut local_header_offset,
                ] {
                    if *slot == 0xFFFF_FFFF && value + 8 <= field + 4 + len {
                        *slot = u64_at(extra, value)?;
                        value += 8;
                    }
                }
            }
            field += 4 + len;
        }
        entries.push(ZipEntry {
            name: String::from_utf8_lossy(name_bytes).into_owned(),
            method,
            compressed_size,
            uncompressed_size,
            local_header_offset: local_header_offset
                .checked_add(shift)
                .ok_or_else(|| corrupt("member offset overflows"))?,
            crc32,
            is_symlink: (external >> 16) & 0o170_000 == 0o120_000,
        });
        at = name_start + name_len + extra_len + comment_len;
    }
    Ok(entries)
}

/// The offset of a member's data from its local header (which starts at `header[0]`).
pub fn local_data_offset(header: &[u8]) -> Result<u64, ExtractError> {
    if u32_at(header, 0)? != LOCAL_SIGNATURE {
        return Err(corrupt("local file header signature missing"));
    }
    let name_len = u64::from(u16_at(header, 26)?);
    let extra_len = u64::from(u16_at(header, 28)?);
    Ok(LOCAL_HEADER_LEN + name_len + extra_len)
}

/// Decompress a member's data, refusing members over `limit`, data that expands past the
/// declared size (a zip bomb lies about it) and data whose CRC-32 is not the declared one.
pub fn inflate(entry: &ZipEntry, data: &[u8], limit: u64) -> Result<Vec<u8>, ExtractError> {
    if entry.uncompressed_size > limit {
        return Err(ExtractError::MemberTooLarge {
            path: entry.name.clone(),
            size: entry.uncompressed_size,
            limit,
        });
    }
    let compressed = usize::try_from(entry.compressed_size)
        .ok()
        .and_then(|len| data.get(..len))
        .ok_or_else(|| corrupt(format!("data of {} is truncated", entry.name)))?;
    let declared = entry.uncompressed_size;
    let mut out = Vec::new();
    match entry.method {
        0 => out.extend_from_slice(compressed),
        8 => {
            flate2::read::DeflateDecoder::new(compressed)
                .take(declared + 1)
                .read_to_end(&mut out)
                .map_err(|err| corrupt(format!("{}: {err}", entry.name)))?;
        }
        method => {
            return Err(ExtractError::Unsupported(format!(
                "{} uses zip compression method {method}",
                entry.name
            )));
        }
    }
    if out.len() as u64 != declared {
        return Err(if out.len() as u64 > declared {
            ExtractError::SizeMismatch {
                path: entry.name.clone(),
                declared,
            }
        } else {
            corrupt(format!("{} is shorter than declared", entry.name))
        });
    }
    let mut crc = flate2::Crc::new();
    crc.update(&out);
    if crc.sum() != entry.crc32 {
        return Err(corrupt(format!(
            "{}: CRC-32 is {:08x}, the archive says {:08x}",
            entry.name,
            crc.sum(),
            entry.crc32
        )));
    }
    Ok(out)
}

/// The entries of a whole archive in memory.
pub fn entries_of(archive: &[u8], limits: &Limits) -> Result<Vec<ZipEntry>, ExtractError> {
    let directory = locate_central_directory(archive, 0)?;
    let start = usize::try_from(directory.offset).ok();
    let end = usize::try_from(directory.offset.saturating_add(directory.size)).ok();
    let bytes = match (start, end) {
        (Some(start), Some(end)) => archive.get(start..end),
        _ => None,
    }
    .ok_or_else(|| corrupt("central directory lies outside the archive"))?;
    parse_central_directory(bytes, directory.shift, limits)
}

/// Read one member of a whole archive in memory.
pub fn read_member(archive: &[u8], entry: &ZipEntry, limit: u64) -> Result<Vec<u8>, ExtractError> {
    let header = usize::try_from(entry.local_header_offset)
        .ok()
        .and_then(|at| archive.get(at..))
        .ok_or_else(|| corrupt(format!("{} lies outside the archive", entry.name)))?;
    let data_offset = usize::try_from(local_data_offset(header)?)
        .map_err(|_| corrupt("local header offset overflows"))?;
    let data = header
        .get(data_offset..)
        .ok_or_else(|| corrupt(format!("data of {} is truncated", entry.name)))?;
    inflate(entry, data, limit)
}

/// Reject member paths that are absolute or climb out of the archive.
pub fn check_path(path: &str) -> Result<(), ExtractError> {
    let unsafe_path = path.starts_with('/')
        || path.starts_with('\\')
        || path.as_bytes().get(1) == Some(&b':')
        || path.split(['/', '\\']).any(|part| part == "..");
    if unsafe_path {
        return Err(ExtractError::UnsafePath {
            path: path.to_string(),
        });
    }
    Ok(())
}

/// Whether a link at `path` pointing to `target` leaves the archive's tree.
pub fn link_escapes(path: &str, target: &str) -> bool {
    if target.starts_with('/')
        || target.starts_with('\\')
        || target.as_bytes().get(1) == Some(&b':')
    {
        return true;
    }
    let mut parts: Vec<&str> = path.split('/').collect();
    parts.pop();
    for part in target.split(['/', '\\']) {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return true;
                }
            }
            other => parts.push(other),
        }
    }
    false
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Write;

    /// A minimal zip writer for tests: stored or deflated members, optional declared sizes.
    pub(crate) struct TestMember<'a> {
        pub name: &'a str,
        pub data: &'a [u8],
        pub deflate: bool,
        pub declared_size: Option<u32>,
        pub symlink: bool,
    }

    pub(crate) fn build_zip(members: &[TestMember<'_>]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut central = Vec::new();
        for member in members {
            let data = if member.deflate {
                let mut encoder =
                    flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
                encoder.write_all(member.data).expect("in memory");
                encoder.finish().expect("in memory")
            } else {
                member.data.to_vec()
            };
            let size = member.declared_size.unwrap_or(member.data.len() as u32);
            let method: u16 = if member.deflate { 8 } else { 0 };
            let mut crc = flate2::Crc::new();
            crc.update(member.data);
            let crc = crc.sum().to_le_bytes();
            let offset = out.len() as u32;
            out.extend_from_slice(&LOCAL_SIGNATURE.to_le_bytes());
            out.extend_from_slice(&[20, 0, 0, 0]);
            out.extend_from_slice(&method.to_le_bytes());
            out.extend_from_slice(&[0; 4]);
            out.extend_from_slice(&crc);
            out.extend_from_slice(&(data.len() as u32).to_le_bytes());
            out.extend_from_slice(&size.to_le_bytes());
            out.extend_from_slice(&(member.name.len() as u16).to_le_bytes());
            out.extend_from_slice(&0u16.to_le_bytes());
            out.extend_from_slice(member.name.as_bytes());
            out.extend_from_slice(&data);
            central.extend_from_slice(&CENTRAL_SIGNATURE.to_le_bytes());
            central.extend_from_slice(&[20, 3, 20, 0, 0, 0]);
            central.extend_from_slice(&method.to_le_bytes());
            central.extend_from_slice(&[0; 4]);
            central.extend_from_slice(&crc);
            central.extend_from_slice(&(data.len() as u32).to_le_bytes());
            central.extend_from_slice(&size.to_le_bytes());
            central.extend_from_slice(&(member.name.len() as u16).to_le_bytes());
            central.extend_from_slice(&[0; 8]);
            let mode: u32 = if member.symlink { 0o120_777 } else { 0o100_644 };
            central.extend_from_slice(&(mode << 16).to_le_bytes());
            central.extend_from_slice(&offset.to_le_bytes());
            central.extend_from_slice(member.name.as_bytes());
        }
        let central_offset = out.len() as u32;
        out.extend_from_slice(&central);
        out.extend_from_slice(&EOCD_SIGNATURE.to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&(members.len() as u16).to_le_bytes());
        out.extend_from_slice(&(members.len() as u16).to_le_bytes());
        out.extend_from_slice(&(central.len() as u32).to_le_bytes());
        out.extend_from_slice(&central_offset.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out
    }

    fn member<'a>(name: &'a str, data: &'a [u8]) -> TestMember<'a> {
        TestMember {
            name,
            data,
            deflate: true,
            declared_size: None,
            symlink: false,
        }
    }

    #[test]
    fn members_round_trip_from_whole_archives_and_from_a_tail() {
        let archive = build_zip(&[member("a.txt", b"hello hello hello"), member("b/c", b"x")]);
        let limits = Limits::default();
        let entries = entries_of(&archive, &limits).expect("reads");
        assert_eq!(entries.len(), 2);
        assert_eq!(
            read_member(&archive, &entries[0], 100).expect("inflates"),
            b"hello hello hello"
        );
        // From only the last 40 bytes, as a range request would fetch them.
        let tail_start = archive.len() - 40;
        let directory =
            locate_central_directory(&archive[tail_start..], tail_start as u64).expect("finds");
        assert_eq!(directory.entries, 2);
    }

    /// `lxml-4.6.3-cp39-cp39-win32.whl` ends in three bytes after its end record; Python's
    /// zipfile, unzip and pip read it, the crawler called it corrupt.
    #[test]
    fn regression_trailing_bytes_after_the_end_record_are_ignored() {
        let mut archive = build_zip(&[member("a.txt", b"hello"), member("b", b"bb")]);
        archive.extend_from_slice(&[0, 0, 0]);
        let entries = entries_of(&archive, &Limits::default()).expect("reads");
        assert_eq!(
            read_member(&archive, &entries[1], 100).expect("inflates"),
            b"bb"
        );
        // Trailing data longer than any comment leaves the end record out of reach, as in Python.
        archive.extend_from_slice(&vec![0; MAX_END_RECORD_DISTANCE as usize]);
        assert!(entries_of(&archive, &Limits::default()).is_err());
    }

    #[test]
    fn prepended_bytes_shift_every_offset() {
        let mut archive = b"#!/bin/sh\nexec python3 \"$0\"\n".to_vec();
        let stub = archive.len() as u64;
        archive.extend(build_zip(&[member("a.txt", b"hello"), member("b", b"bb")]));
        let directory = locate_central_directory(&archive, 0).expect("finds");
        assert_eq!(directory.shift, stub);
        let entries = entries_of(&archive, &Limits::default()).expect("reads");
        assert_eq!(
            read_member(&archive, &entries[0], 100).expect("inflates"),
            b"hello"
        );
        // The same from a tail, as range requests see it.
        let tail_start = archive.len() - 60;
        let directory =
            locate_central_directory(&archive[tail_start..], tail_start as u64).expect("finds");
        assert_eq!(directory.shift, stub);
    }

    #[test]
    fn a_directory_stated_past_its_end_record_is_corrupt() {
        let mut archive = build_zip(&[member("a", b"1")]);
        let eocd = archive.len() - EOCD_LEN;
        // State the directory one byte later than it is: it would overlap the end record.
        let offset = u32_at(&archive, eocd + 16).expect("offset") + 1;
        archive[eocd + 16..eocd + 20].copy_from_slice(&offset.to_le_bytes());
        assert!(locate_central_directory(&archive, 0).is_err());
    }

    #[test]
    fn bombs_and_oversized_members_are_refused() {
        let zeros = vec![0u8; 1 << 20];
        let archive = build_zip(&[TestMember {
            declared_size: Some(100),
            ..member("bomb", &zeros)
        }]);
        let entries = entries_of(&archive, &Limits::default()).expect("reads");
        assert!(matches!(
            read_member(&archive, &entries[0], 1 << 30),
            Err(ExtractError::SizeMismatch { .. })
        ));
        let honest = build_zip(&[member("big", &zeros)]);
        let entries = entries_of(&honest, &Limits::default()).expect("reads");
        assert!(matches!(
            read_member(&honest, &entries[0], 1000),
            Err(ExtractError::MemberTooLarge { .. })
        ));
    }

    #[test]
    fn a_member_whose_crc_does_not_match_is_corrupt() {
        let mut archive = build_zip(&[TestMember {
            deflate: false,
            ..member("METADATA", b"Requires-Dist: six")
        }]);
        let entries = entries_of(&archive, &Limits::default()).expect("reads");
        // A flipped byte in the stored data (a corrupted download or range response).
        let at = archive
            .windows(3)
            .position(|window| window == b"six")
            .expect("stored");
        archive[at] ^= 0x20;
        let error = read_member(&archive, &entries[0], 100).expect_err("caught");
        assert!(error.to_string().contains("CRC-32"), "{error}");
    }

    #[test]
    fn member_count_is_capped() {
        let archive = build_zip(&[member("a", b"1"), member("b", b"2"), member("c", b"3")]);
        let limits = Limits {
            max_members: 2,
            ..Limits::default()
        };
        assert_eq!(
            entries_of(&archive, &limits),
            Err(ExtractError::TooManyMembers { limit: 2 })
        );
    }

    #[test]
    fn garbage_is_corrupt_not_a_panic() {
        assert!(entries_of(b"not a zip at all, not at all", &Limits::default()).is_err());
        assert!(entries_of(b"", &Limits::default()).is_err());
    }

    #[test]
    fn links_are_resolved_relative_to_their_directory() {
        assert!(!link_escapes("x-1.0/docs/README", "../README"));
        assert!(!link_escapes("x-1.0/a/b", "c/./d"));
        assert!(link_escapes("x-1.0/docs/link", "../../../root"));
        assert!(link_escapes("x-1.0/link", "/etc/passwd"));
    }

    #[test]
    fn escaping_paths_are_refused() {
        assert!(check_path("pkg-1.0/PKG-INFO").is_ok());
        for path in ["/etc/passwd", "../x", "a/../../x", "C:/x", "a\\..\\b"] {
            assert!(check_path(path).is_err(), "{path}");
        }
    }
}
