//! The streaming snapshot writer.

use std::collections::HashMap;
use std::io::{Seek, SeekFrom, Write};
use std::str::FromStr;

use crate::codec::{
    HEADER_CRC_OFFSET, HEADER_LEN, TAG_CONDA, TAG_DEPENDENCIES, TAG_PROJECT, TAG_STRING,
    put_signed, put_str, put_varint,
};
use crate::error::{Error, Result};
use crate::model::{CondaRecord, DependencyRecord, File, Project, Release, SnapshotMeta};
use crate::types::{PackageName, Version};
use crate::{MAGIC, SINGLE_FILE_VERSION};

/// Bytes of keys the deduplication table may hold. Past this, new strings and dependency
/// records are written without being remembered (the output stays deterministic: what is
/// remembered depends only on the input order), so memory stays bounded however large the
/// snapshot.
const DEDUP_BUDGET_BYTES: usize = 256 << 20;

/// Figures about a finished snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriterStats {
    pub meta: SnapshotMeta,
    /// Total file size in bytes (header included).
    pub total_bytes: u64,
    /// Shared strings and dependency records that were written once and referenced again.
    pub dedup_hits: u64,
}

/// Writes a snapshot in one pass.
///
/// Projects must be added in strictly increasing order of their normalized names (byte order);
/// the writer sorts each project's releases (by PEP 440 version) and each release's files (by
/// name), so equal data always gives identical bytes. Conda records ([`Writer::add_conda_record`])
/// may come before, between or after projects, in strictly increasing
/// (name, channel, subdir, filename) order. Only the two indexes (8 bytes an entry) and the
/// bounded deduplication table are kept in memory.
#[derive(Debug)]
pub struct Writer<W: Write + Seek> {
    out: W,
    meta: SnapshotMeta,
    /// Bytes of body written so far: the offset of the next record.
    body_len: u64,
    crc: crc32fast::Hasher,
    index: Vec<u64>,
    last_name: Option<String>,
    conda_index: Vec<u64>,
    last_conda: Option<[String; 4]>,
    dedup: HashMap<(u8, Vec<u8>), u64>,
    dedup_bytes: usize,
    dedup_hits: u64,
}

impl<W: Write + Seek> Writer<W> {
    /// Start a snapshot. `meta`'s counts are ignored: the writer counts what it is given.
    pub fn new(mut out: W, meta: SnapshotMeta) -> Result<Self> {
        out.write_all(&[0; HEADER_LEN])?;
        Ok(Writer {
            out,
            meta: SnapshotMeta {
                project_count: 0,
                release_count: 0,
                file_count: 0,
                dependency_record_count: 0,
                conda_record_count: 0,
                ..meta
            },
            body_len: 0,
            crc: crc32fast::Hasher::new(),
            index: Vec::new(),
            last_name: None,
            conda_index: Vec::new(),
            last_conda: None,
            dedup: HashMap::new(),
            dedup_bytes: 0,
            dedup_hits: 0,
        })
    }

    fn emit(&mut self, bytes: &[u8]) -> Result<u64> {
        let offset = self.body_len;
        self.out.write_all(bytes)?;
        self.crc.update(bytes);
        self.body_len += bytes.len() as u64;
        Ok(offset)
    }

    /// Write a shared item (tag + content) once and return its body offset.
    fn intern(&mut self, tag: u8, content: Vec<u8>) -> Result<u64> {
        let key = (tag, content);
        if let Some(&offset) = self.dedup.get(&key) {
            self.dedup_hits += 1;
            return Ok(offset);
        }
        let (tag, content) = key;
        let mut item = Vec::with_capacity(content.len() + 1);
        item.push(tag);
        item.extend_from_slice(&content);
        let offset = self.emit(&item)?;
        if tag == TAG_DEPENDENCIES {
            self.meta.dependency_record_count += 1;
        }
        if self.dedup_bytes + content.len() <= DEDUP_BUDGET_BYTES {
            self.dedup_bytes += content.len() + 32;
            self.dedup.insert((tag, content), offset);
        }
        Ok(offset)
    }

    fn string_ref(&mut self, value: &str) -> Result<u64> {
        let mut content = Vec::with_capacity(value.len() + 2);
        put_str(&mut content, value);
        self.intern(TAG_STRING, content)
    }

    fn dependencies_ref(&mut self, record: &DependencyRecord) -> Result<u64> {
        let mut content = vec![
            record.source.to_byte(),
            u8::from(record.detail.is_some())
                | u8::from(record.requires_python.is_some()) << 1
                | u8::from(record.build_backend.is_some()) << 2,
        ];
        for value in [
            &record.detail,
            &record.requires_python,
            &record.build_backend,
        ]
        .into_iter()
        .flatten()
        {
            put_varint(&mut content, self.string_ref(value)?);
        }
        for list in [
            &record.requires_dist,
            &record.provides_extra,
            &record.build_requires,
        ] {
            put_varint(&mut content, list.len() as u64);
            for value in list {
                put_varint(&mut content, self.string_ref(value)?);
            }
        }
        self.intern(TAG_DEPENDENCIES, content)
    }

    /// Append one project. Its name must be PEP 503 normalized and sort after the previous one.
    pub fn add_project(&mut self, project: &Project) -> Result<()> {
        let invalid = |reason: String| Error::InvalidProject {
            name: project.name.clone(),
            reason,
        };
        let releases = checked_releases(project, self.last_name.as_deref())?;
        let mut record = vec![TAG_PROJECT];
        put_str(&mut record, &project.name);
        put_varint(&mut record, project.last_serial);
        put_varint(&mut record, releases.len() as u64);
        for release in releases {
            self.encode_release(&mut record, release)
                .map_err(|err| match err {
                    Error::InvalidProject { reason, .. } => invalid(reason),
                    other => other,
                })?;
        }
        let offset = self.emit(&record)?;
        self.index.push(offset);
        self.meta.project_count += 1;
        self.last_name = Some(project.name.clone());
        Ok(())
    }

    fn encode_release(&mut self, record: &mut Vec<u8>, release: &Release) -> Result<()> {
        put_str(record, &release.version);
        record.push(
            u8::from(release.yanked.is_some())
                | u8::from(release.requires_python.is_some()) << 1
                | u8::from(release.upload_time.is_some()) << 2,
        );
        for value in [&release.yanked, &release.requires_python]
            .into_iter()
            .flatten()
        {
            put_varint(record, self.string_ref(value)?);
        }
        if let Some(time) = release.upload_time {
            put_signed(record, time);
        }
        put_varint(record, release.dependencies.len() as u64);
        for dependencies in &release.dependencies {
            put_varint(record, self.dependencies_ref(dependencies)?);
        }
        let mut files: Vec<&File> = release.files.iter().collect();
        files.sort_by(|a, b| a.filename.cmp(&b.filename));
        for pair in files.windows(2) {
            if pair[0].filename == pair[1].filename {
                return Err(Error::InvalidProject {
                    name: String::new(),
                    reason: format!("file {} appears twice", pair[0].filename),
                });
            }
        }
        put_varint(record, files.len() as u64);
        for file in files {
            if let Some(index) = file.dependencies
                && index as usize >= release.dependencies.len()
            {
                return Err(Error::InvalidProject {
                    name: String::new(),
                    reason: format!(
                        "file {} points to dependency record {index} of {}",
                        file.filename,
                        release.dependencies.len()
                    ),
                });
            }
            self.encode_file(record, file)?;
        }
        self.meta.release_count += 1;
        Ok(())
    }

    fn encode_file(&mut self, record: &mut Vec<u8>, file: &File) -> Result<()> {
        let (base, rest, ends_with_name) = split_url(&file.url, &file.filename);
        let pypi_path = pypi_path_digest(rest);
        put_str(record, &file.filename);
        record.push(file.kind.to_byte());
        record.push(
            u8::from(file.yanked.is_some())
                | u8::from(file.requires_python.is_some()) << 1
                | u8::from(file.upload_time.is_some()) << 2
                | u8::from(file.sha256.is_some()) << 3
                | u8::from(ends_with_name) << 4
                | u8::from(file.dependencies.is_some()) << 5
                | u8::from(pypi_path.is_some()) << 6,
        );
        put_varint(record, file.size);
        if let Some(sha256) = &file.sha256 {
            record.extend_from_slice(sha256);
        }
        if let Some(time) = file.upload_time {
            put_signed(record, time);
        }
        for value in [&file.yanked, &file.requires_python].into_iter().flatten() {
            put_varint(record, self.string_ref(value)?);
        }
        put_varint(record, self.string_ref(base)?);
        match &pypi_path {
            Some(digest) => record.extend_from_slice(digest),
            None => put_str(record, rest),
        }
        if let Some(index) = file.dependencies {
            put_varint(record, u64::from(index));
        }
        self.meta.file_count += 1;
        Ok(())
    }

    /// Append one conda package record. Records must come in strictly increasing
    /// (name, channel, subdir, filename) order; they may be interleaved with projects.
    pub fn add_conda_record(&mut self, conda: &CondaRecord) -> Result<()> {
        check_conda_record(conda, self.last_conda.as_ref())?;
        let key = conda.sort_key();
        let url_prefix = conda
            .url
            .strip_suffix(&conda.filename)
            .filter(|head| head.ends_with('/'));
        let mut record = vec![TAG_CONDA];
        put_str(&mut record, &conda.name);
        let channel = self.string_ref(&conda.channel)?;
        put_varint(&mut record, channel);
        let subdir = self.string_ref(&conda.subdir)?;
        put_varint(&mut record, subdir);
        put_str(&mut record, &conda.filename);
        put_str(&mut record, &conda.version);
        put_str(&mut record, &conda.build);
        put_varint(&mut record, conda.build_number);
        record.push(
            u8::from(conda.sha256.is_some())
                | u8::from(conda.md5.is_some()) << 1
                | u8::from(conda.timestamp.is_some()) << 2
                | u8::from(conda.noarch.is_some()) << 3
                | u8::from(url_prefix.is_some()) << 4,
        );
        put_varint(&mut record, conda.size);
        if let Some(sha256) = &conda.sha256 {
            record.extend_from_slice(sha256);
        }
        if let Some(md5) = &conda.md5 {
            record.extend_from_slice(md5);
        }
        if let Some(time) = conda.timestamp {
            put_signed(&mut record, time);
        }
        if let Some(noarch) = &conda.noarch {
            let noarch = self.string_ref(noarch)?;
            put_varint(&mut record, noarch);
        }
        let url = self.string_ref(url_prefix.unwrap_or(&conda.url))?;
        put_varint(&mut record, url);
        for list in [&conda.depends, &conda.constrains] {
            put_varint(&mut record, list.len() as u64);
            for value in list {
                put_varint(&mut record, self.string_ref(value)?);
            }
        }
        let offset = self.emit(&record)?;
        self.conda_index.push(offset);
        self.meta.conda_record_count += 1;
        self.last_conda = Some([key.0, key.1, key.2, key.3].map(str::to_owned));
        Ok(())
    }

    /// Write the two indexes and the header; returns the output and the snapshot's figures.
    pub fn finish(mut self) -> Result<(W, WriterStats)> {
        let index_offset = self.body_len;
        for index in [
            std::mem::take(&mut self.index),
            std::mem::take(&mut self.conda_index),
        ] {
            let mut bytes = Vec::with_capacity(index.len() * 8);
            for offset in &index {
                bytes.extend_from_slice(&offset.to_le_bytes());
            }
            self.emit(&bytes)?;
        }
        let header = encode_header(&self.meta, self.body_len, index_offset, self.crc.finalize());
        self.out.seek(SeekFrom::Start(0))?;
        self.out.write_all(&header)?;
        self.out.seek(SeekFrom::End(0))?;
        self.out.flush()?;
        let stats = WriterStats {
            meta: self.meta,
            total_bytes: HEADER_LEN as u64 + self.body_len,
            dedup_hits: self.dedup_hits,
        };
        Ok((self.out, stats))
    }
}

/// Check a project's name (normalized, after `last`) and return its releases in stored order:
/// parseable versions first in PEP 440 order, then legacy ones by string; a version twice is
/// refused. Both writers store releases in this order.
pub(crate) fn checked_releases<'p>(
    project: &'p Project,
    last: Option<&str>,
) -> Result<Vec<&'p Release>> {
    let invalid = |reason: String| Error::InvalidProject {
        name: project.name.clone(),
        reason,
    };
    match PackageName::from_str(&project.name) {
        Ok(normalized) if normalized.as_str() == project.name => {}
        Ok(normalized) => {
            return Err(invalid(format!(
                "name is not normalized (expected \"{normalized}\")"
            )));
        }
        Err(err) => return Err(invalid(err.to_string())),
    }
    if let Some(previous) = last
        && previous >= project.name.as_str()
    {
        return Err(Error::OutOfOrder {
            previous: previous.to_owned(),
            next: project.name.clone(),
        });
    }
    let mut keyed: Vec<(Option<Version>, &Release)> = project
        .releases
        .iter()
        .map(|release| (Version::from_str(&release.version).ok(), release))
        .collect();
    keyed.sort_by(|(ka, a), (kb, b)| {
        (ka.is_none(), ka, &a.version).cmp(&(kb.is_none(), kb, &b.version))
    });
    let releases: Vec<&Release> = keyed.into_iter().map(|(_, release)| release).collect();
    for pair in releases.windows(2) {
        if pair[0].version == pair[1].version {
            return Err(invalid(format!(
                "release {} appears twice",
                pair[0].version
            )));
        }
    }
    Ok(releases)
}

/// Check a conda record's key fields and that it sorts after `last` (name, channel, subdir,
/// filename). Both writers take conda records in this order.
pub(crate) fn check_conda_record(conda: &CondaRecord, last: Option<&[String; 4]>) -> Result<()> {
    let invalid = |reason: &str| Error::InvalidCondaRecord {
        filename: conda.filename.clone(),
        reason: reason.to_string(),
    };
    for (field, value) in [
        ("name", &conda.name),
        ("channel", &conda.channel),
        ("subdir", &conda.subdir),
        ("filename", &conda.filename),
    ] {
        if value.is_empty() {
            return Err(invalid(&format!("{field} is empty")));
        }
    }
    let key = conda.sort_key();
    if let Some(previous) = last
        && (
            previous[0].as_str(),
            previous[1].as_str(),
            previous[2].as_str(),
            previous[3].as_str(),
        ) >= key
    {
        return Err(Error::CondaOutOfOrder {
            previous: previous.join("/"),
            next: [key.0, key.1, key.2, key.3].join("/"),
        });
    }
    Ok(())
}

/// Split a download URL into a shared base (`scheme://host/`), the part that follows, and
/// whether the URL ends with `/` + the file name (then the name is not stored twice).
pub(crate) fn split_url<'a>(url: &'a str, filename: &str) -> (&'a str, &'a str, bool) {
    let (url, ends_with_name) = match url.strip_suffix(filename) {
        Some(head) if !filename.is_empty() && head.ends_with('/') => (head, true),
        _ => (url, false),
    };
    let base_end = url
        .find("://")
        .and_then(|scheme| {
            url[scheme + 3..]
                .find('/')
                .map(|slash| scheme + 3 + slash + 1)
        })
        .unwrap_or(0);
    (&url[..base_end], &url[base_end..], ends_with_name)
}

/// PyPI stores files under `packages/<h[0..2]>/<h[2..4]>/<h[4..]>/` where `h` is the
/// 64-digit lowercase hex of a 32-byte digest; such a path is stored as the 32 raw bytes.
pub(crate) fn pypi_path_digest(rest: &str) -> Option<[u8; 32]> {
    let path = rest.strip_prefix("packages/")?.strip_suffix('/')?;
    let bytes = path.as_bytes();
    if bytes.len() != 66 || bytes[2] != b'/' || bytes[5] != b'/' {
        return None;
    }
    let hex: Vec<u8> = bytes
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != 2 && i != 5)
        .map(|(_, &b)| b)
        .collect();
    let mut digest = [0u8; 32];
    for (out, pair) in digest.iter_mut().zip(hex.chunks_exact(2)) {
        let digit = |b: u8| match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            _ => None,
        };
        *out = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(digest)
}

/// The inverse of [`pypi_path_digest`].
pub(crate) fn pypi_path(digest: &[u8]) -> String {
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("packages/{}/{}/{}/", &hex[..2], &hex[2..4], &hex[4..])
}

pub(crate) fn encode_header(
    meta: &SnapshotMeta,
    body_len: u64,
    index_offset: u64,
    body_crc: u32,
) -> [u8; HEADER_LEN] {
    let mut header = [0u8; HEADER_LEN];
    header[0..8].copy_from_slice(&MAGIC);
    header[8..12].copy_from_slice(&SINGLE_FILE_VERSION.to_le_bytes());
    header[12..16].copy_from_slice(&(HEADER_LEN as u32).to_le_bytes());
    header[16..24].copy_from_slice(&meta.created.to_le_bytes());
    header[24..32].copy_from_slice(&meta.pypi_serial.to_le_bytes());
    header[32..40].copy_from_slice(&meta.as_of.unwrap_or(0).to_le_bytes());
    header[40..44].copy_from_slice(&u32::from(meta.as_of.is_some()).to_le_bytes());
    header[48..56].copy_from_slice(&meta.project_count.to_le_bytes());
    header[56..64].copy_from_slice(&meta.release_count.to_le_bytes());
    header[64..72].copy_from_slice(&meta.file_count.to_le_bytes());
    header[72..80].copy_from_slice(&meta.dependency_record_count.to_le_bytes());
    header[80..88].copy_from_slice(&body_len.to_le_bytes());
    header[88..96].copy_from_slice(&index_offset.to_le_bytes());
    header[96..100].copy_from_slice(&body_crc.to_le_bytes());
    let conda_index_offset = index_offset + 8 * meta.project_count;
    header[100..108].copy_from_slice(&meta.conda_record_count.to_le_bytes());
    header[108..116].copy_from_slice(&conda_index_offset.to_le_bytes());
    let crc = crc32fast::hash(&header[..HEADER_CRC_OFFSET]);
    header[HEADER_CRC_OFFSET..].copy_from_slice(&crc.to_le_bytes());
    header
}

#[cfg(test)]
mod tests {
    use super::split_url;

    #[test]
    fn urls_split_into_host_and_path_without_the_file_name() {
        assert_eq!(
            split_url(
                "https://files.pythonhosted.org/packages/fc/29/abc/a-1.0.tar.gz",
                "a-1.0.tar.gz"
            ),
            (
                "https://files.pythonhosted.org/",
                "packages/fc/29/abc/",
                true
            )
        );
        assert_eq!(
            split_url("relative/a.whl", "b.whl"),
            ("", "relative/a.whl", false)
        );
        assert_eq!(split_url("https://host", "x"), ("", "https://host", false));
    }

    #[test]
    fn pypi_paths_are_stored_as_digests_and_come_back_equal() {
        let rest = "packages/fc/29/0123456789abcdef0123456789abcdef0123456789abcdef0123456789ab/";
        let digest = super::pypi_path_digest(rest).expect("a PyPI path");
        assert_eq!(super::pypi_path(&digest), rest);
        for other in [
            "packages/fc/29/0123/",
            "packages/FC/29/0123456789abcdef0123456789abcdef0123456789abcdef0123456789ab/",
            "packages/fc/29/0123456789abcdef0123456789abcdef0123456789abcdef0123456789ab",
            "simple/fc/29/0123456789abcdef0123456789abcdef0123456789abcdef0123456789ab/",
        ] {
            assert_eq!(super::pypi_path_digest(other), None, "{other}");
        }
    }
}
