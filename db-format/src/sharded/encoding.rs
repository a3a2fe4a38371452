//! Byte encoding of format 3's units, pages and manifest (FORMAT.md, "Format 3").

use std::str::FromStr;

use crate::blob::BlobHash;
use crate::codec::{Cursor, put_signed, put_str, put_varint};
use crate::error::{Error, Result};
use crate::model::{CondaRecord, DependencyRecord, File, FileKind, MetadataSource, Release};
use crate::types::Version;
use crate::writer::{pypi_path, pypi_path_digest, split_url};

/// Counts come from the bytes: at most this many items are reserved up front.
const PREALLOCATE_MAX: usize = 1024;

pub(crate) const TAG_PYPI_SHARD: u8 = 0x10;
pub(crate) const TAG_CONDA_SHARD: u8 = 0x11;
pub(crate) const TAG_PYPI_PAGE: u8 = 0x20;
pub(crate) const TAG_CONDA_PAGE: u8 = 0x21;

/// The order releases are stored and returned in: parseable versions by PEP 440, then legacy
/// versions by string.
pub(crate) fn release_order_key(version: &str) -> (bool, Option<Version>, String) {
    let parsed = Version::from_str(version).ok();
    (parsed.is_none(), parsed, version.to_owned())
}

/// One release, encoded: the head (what the version table holds) and the detail (dependency
/// records and files). Equal releases have equal encodings, which is how a publish finds what
/// changed since the previous snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EncodedRelease {
    pub(crate) version: String,
    pub(crate) head: Vec<u8>,
    pub(crate) detail: Vec<u8>,
}

impl EncodedRelease {
    pub(crate) fn len(&self) -> usize {
        self.head.len() + self.detail.len()
    }
}

/// Encode a release; `files` must already be in file-name order.
pub(crate) fn encode_release(release: &Release) -> std::result::Result<EncodedRelease, String> {
    let mut files: Vec<&File> = release.files.iter().collect();
    files.sort_by(|a, b| a.filename.cmp(&b.filename));
    for pair in files.windows(2) {
        if pair[0].filename == pair[1].filename {
            return Err(format!("file {} appears twice", pair[0].filename));
        }
    }
    let mut detail = Vec::new();
    put_varint(&mut detail, release.dependencies.len() as u64);
    for record in &release.dependencies {
        encode_dependencies(&mut detail, record);
    }
    put_varint(&mut detail, files.len() as u64);
    for file in files {
        if let Some(index) = file.dependencies
            && index as usize >= release.dependencies.len()
        {
            return Err(format!(
                "file {} points to dependency record {index} of {}",
                file.filename,
                release.dependencies.len()
            ));
        }
        encode_file(&mut detail, file, release.upload_time.unwrap_or(0));
    }
    let mut head = Vec::new();
    put_str(&mut head, &release.version);
    head.push(
        u8::from(release.yanked.is_some())
            | u8::from(release.requires_python.is_some()) << 1
            | u8::from(release.upload_time.is_some()) << 2,
    );
    for value in [&release.yanked, &release.requires_python]
        .into_iter()
        .flatten()
    {
        put_str(&mut head, value);
    }
    if let Some(time) = release.upload_time {
        put_signed(&mut head, time);
    }
    put_varint(&mut head, detail.len() as u64);
    Ok(EncodedRelease {
        version: release.version.clone(),
        head,
        detail,
    })
}

fn encode_dependencies(out: &mut Vec<u8>, record: &DependencyRecord) {
    out.push(record.source.to_byte());
    out.push(
        u8::from(record.detail.is_some())
            | u8::from(record.requires_python.is_some()) << 1
            | u8::from(record.build_backend.is_some()) << 2,
    );
    for value in [
        &record.detail,
        &record.requires_python,
        &record.build_backend,
    ]
    .into_iter()
    .flatten()
    {
        put_str(out, value);
    }
    for list in [
        &record.requires_dist,
        &record.provides_extra,
        &record.build_requires,
    ] {
        put_strs(out, list);
    }
}

fn put_strs(out: &mut Vec<u8>, list: &[String]) {
    put_varint(out, list.len() as u64);
    for value in list {
        put_str(out, value);
    }
}

/// `time_base`: the release's upload time (0 if it has none); a file's upload time is stored as
/// its difference from it, a small number where the raw time would cost five bytes.
fn encode_file(out: &mut Vec<u8>, file: &File, time_base: i64) {
    let (base, rest, ends_with_name) = split_url(&file.url, &file.filename);
    let digest = pypi_path_digest(rest);
    put_str(out, &file.filename);
    out.push(file.kind.to_byte());
    out.push(
        u8::from(file.yanked.is_some())
            | u8::from(file.requires_python.is_some()) << 1
            | u8::from(file.upload_time.is_some()) << 2
            | u8::from(file.sha256.is_some()) << 3
            | u8::from(ends_with_name) << 4
            | u8::from(file.dependencies.is_some()) << 5
            | u8::from(digest.is_some()) << 6,
    );
    put_varint(out, file.size);
    if let Some(sha256) = &file.sha256 {
        out.extend_from_slice(sha256);
    }
    if let Some(time) = file.upload_time {
        put_signed(out, time.wrapping_sub(time_base));
    }
    for value in [&file.yanked, &file.requires_python].into_iter().flatten() {
        put_str(out, value);
    }
    put_str(out, base);
    match &digest {
        Some(digest) => out.extend_from_slice(digest),
        None => put_str(out, rest),
    }
    if let Some(index) = file.dependencies {
        put_varint(out, u64::from(index));
    }
}

/// A project unit: the project's name and some of its releases (already in release order).
pub(crate) fn encode_project_unit(name: &str, releases: &[&EncodedRelease]) -> Vec<u8> {
    let mut out = Vec::new();
    put_str(&mut out, name);
    put_varint(&mut out, releases.len() as u64);
    for release in releases {
        out.extend_from_slice(&release.head);
    }
    for release in releases {
        out.extend_from_slice(&release.detail);
    }
    out
}

/// A conda unit: every record of one package name, in (channel, subdir, filename) order.
pub(crate) fn encode_conda_unit(name: &str, records: &[CondaRecord]) -> Vec<u8> {
    let mut out = Vec::new();
    put_str(&mut out, name);
    put_varint(&mut out, records.len() as u64);
    for conda in records {
        let url_prefix = conda
            .url
            .strip_suffix(&conda.filename)
            .filter(|head| head.ends_with('/'));
        for value in [
            &conda.channel,
            &conda.subdir,
            &conda.filename,
            &conda.version,
            &conda.build,
        ] {
            put_str(&mut out, value);
        }
        put_varint(&mut out, conda.build_number);
        out.push(
            u8::from(conda.sha256.is_some())
                | u8::from(conda.md5.is_some()) << 1
                | u8::from(conda.timestamp.is_some()) << 2
                | u8::from(conda.noarch.is_some()) << 3
                | u8::from(url_prefix.is_some()) << 4,
        );
        put_varint(&mut out, conda.size);
        if let Some(sha256) = &conda.sha256 {
            out.extend_from_slice(sha256);
        }
        if let Some(md5) = &conda.md5 {
            out.extend_from_slice(md5);
        }
        if let Some(time) = conda.timestamp {
            put_signed(&mut out, time);
        }
        if let Some(noarch) = &conda.noarch {
            put_str(&mut out, noarch);
        }
        put_str(&mut out, url_prefix.unwrap_or(&conda.url));
        put_strs(&mut out, &conda.depends);
        put_strs(&mut out, &conda.constrains);
    }
    out
}

/// A shard's body: its tag, then its units (each length-prefixed) in name order.
pub(crate) fn encode_shard(tag: u8, units: &[Vec<u8>]) -> Vec<u8> {
    let mut out = vec![tag];
    put_varint(&mut out, units.len() as u64);
    for unit in units {
        put_varint(&mut out, unit.len() as u64);
        out.extend_from_slice(unit);
    }
    out
}

/// The units of a decompressed shard, each with its name.
pub(crate) fn shard_units(bytes: &[u8], tag: u8) -> Result<Vec<(&str, &[u8])>> {
    let mut cursor = Cursor::new(bytes, 0)?;
    let found = cursor.byte()?;
    if found != tag {
        return Err(cursor.malformed(format!("expected shard tag {tag:#04x}, found {found:#04x}")));
    }
    let count = cursor.count()?;
    let mut units = Vec::with_capacity(count.min(PREALLOCATE_MAX));
    for _ in 0..count {
        let len = cursor.count()?;
        let unit = cursor.take(len)?;
        let name = Cursor::new(unit, 0)?.str()?;
        units.push((name, unit));
    }
    if cursor.pos != bytes.len() {
        return Err(cursor.malformed("bytes follow the last unit of the shard"));
    }
    Ok(units)
}

/// One entry of a release's version table, read without touching its files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionEntry {
    pub version: String,
    pub yanked: Option<String>,
    pub requires_python: Option<String>,
    pub upload_time: Option<i64>,
}

/// A decoded project unit: its version table and the raw detail bytes of every release.
pub(crate) struct UnitView<'a> {
    pub(crate) heads: Vec<(VersionEntry, &'a [u8], &'a [u8])>,
}

/// Read a project unit's version table; details are sliced, not decoded.
pub(crate) fn read_project_unit(unit: &[u8]) -> Result<UnitView<'_>> {
    let mut cursor = Cursor::new(unit, 0)?;
    cursor.str()?;
    let count = cursor.count()?;
    let mut heads = Vec::with_capacity(count.min(PREALLOCATE_MAX));
    let mut lens = Vec::with_capacity(count.min(PREALLOCATE_MAX));
    for _ in 0..count {
        let start = cursor.pos;
        let version = cursor.string()?;
        let flags = cursor.byte()?;
        if flags >> 3 != 0 {
            return Err(cursor.malformed(format!("unknown release flags {flags:#04x}")));
        }
        let yanked = (flags & 1 != 0).then(|| cursor.string()).transpose()?;
        let requires_python = (flags & 2 != 0).then(|| cursor.string()).transpose()?;
        let upload_time = (flags & 4 != 0).then(|| cursor.signed()).transpose()?;
        let len = cursor.count()?;
        heads.push((
            VersionEntry {
                version,
                yanked,
                requires_python,
                upload_time,
            },
            &unit[start..cursor.pos],
        ));
        lens.push(len);
    }
    let mut out = Vec::with_capacity(heads.len());
    for ((entry, head), len) in heads.into_iter().zip(lens) {
        out.push((entry, head, cursor.take(len)?));
    }
    if cursor.pos != unit.len() {
        return Err(cursor.malformed("bytes follow the last release of the unit"));
    }
    Ok(UnitView { heads: out })
}

/// Decode one release's detail (dependency records and files).
pub(crate) fn decode_release(entry: VersionEntry, detail: &[u8]) -> Result<Release> {
    let mut release = Release {
        version: entry.version,
        yanked: entry.yanked,
        requires_python: entry.requires_python,
        upload_time: entry.upload_time,
        dependencies: Vec::new(),
        files: Vec::new(),
    };
    if detail.is_empty() {
        return Err(Error::Malformed {
            offset: 0,
            what: format!("release {} has an empty detail", release.version),
        });
    }
    let mut cursor = Cursor::new(detail, 0)?;
    let count = cursor.count()?;
    release.dependencies.reserve(count.min(PREALLOCATE_MAX));
    for _ in 0..count {
        release.dependencies.push(decode_dependencies(&mut cursor)?);
    }
    let count = cursor.count()?;
    release.files.reserve(count.min(PREALLOCATE_MAX));
    let time_base = release.upload_time.unwrap_or(0);
    for _ in 0..count {
        let file = decode_file(&mut cursor, time_base)?;
        if let Some(index) = file.dependencies
            && index as usize >= release.dependencies.len()
        {
            return Err(cursor.malformed(format!(
                "file {} points to dependency record {index} of {}",
                file.filename,
                release.dependencies.len()
            )));
        }
        release.files.push(file);
    }
    if cursor.pos != detail.len() {
        return Err(cursor.malformed("bytes follow the last file of the release"));
    }
    Ok(release)
}

fn strings(cursor: &mut Cursor<'_>) -> Result<Vec<String>> {
    let count = cursor.count()?;
    let mut values = Vec::with_capacity(count.min(PREALLOCATE_MAX));
    for _ in 0..count {
        values.push(cursor.string()?);
    }
    Ok(values)
}

fn decode_dependencies(cursor: &mut Cursor<'_>) -> Result<DependencyRecord> {
    let source_byte = cursor.byte()?;
    let source = MetadataSource::from_byte(source_byte)
        .ok_or_else(|| cursor.malformed(format!("unknown metadata source {source_byte}")))?;
    let flags = cursor.byte()?;
    if flags >> 3 != 0 {
        return Err(cursor.malformed(format!("unknown dependency flags {flags:#04x}")));
    }
    let detail = (flags & 1 != 0).then(|| cursor.string()).transpose()?;
    let requires_python = (flags & 2 != 0).then(|| cursor.string()).transpose()?;
    let build_backend = (flags & 4 != 0).then(|| cursor.string()).transpose()?;
    Ok(DependencyRecord {
        source,
        detail,
        requires_python,
        requires_dist: strings(cursor)?,
        provides_extra: strings(cursor)?,
        build_requires: strings(cursor)?,
        build_backend,
    })
}

fn decode_file(cursor: &mut Cursor<'_>, time_base: i64) -> Result<File> {
    let filename = cursor.string()?;
    let kind_byte = cursor.byte()?;
    let kind = FileKind::from_byte(kind_byte)
        .ok_or_else(|| cursor.malformed(format!("unknown file kind {kind_byte}")))?;
    let flags = cursor.byte()?;
    if flags >> 7 != 0 {
        return Err(cursor.malformed(format!("unknown file flags {flags:#04x}")));
    }
    let size = cursor.varint()?;
    let sha256 = (flags & 8 != 0).then(|| cursor.array::<32>()).transpose()?;
    let upload_time = (flags & 4 != 0)
        .then(|| cursor.signed().map(|delta| delta.wrapping_add(time_base)))
        .transpose()?;
    let yanked = (flags & 1 != 0).then(|| cursor.string()).transpose()?;
    let requires_python = (flags & 2 != 0).then(|| cursor.string()).transpose()?;
    let mut url = cursor.string()?;
    if flags & 64 != 0 {
        url.push_str(&pypi_path(cursor.take(32)?));
    } else {
        url.push_str(cursor.str()?);
    }
    if flags & 16 != 0 {
        url.push_str(&filename);
    }
    let dependencies = (flags & 32 != 0)
        .then(|| {
            let index = cursor.varint()?;
            u32::try_from(index).map_err(|_| cursor.malformed("dependency index too large"))
        })
        .transpose()?;
    Ok(File {
        filename,
        kind,
        size,
        sha256,
        upload_time,
        yanked,
        requires_python,
        url,
        dependencies,
    })
}

/// Decode a conda unit: its records, in stored order.
pub(crate) fn decode_conda_unit(unit: &[u8]) -> Result<Vec<CondaRecord>> {
    let mut cursor = Cursor::new(unit, 0)?;
    let name = cursor.string()?;
    let count = cursor.count()?;
    let mut records = Vec::with_capacity(count.min(PREALLOCATE_MAX));
    for _ in 0..count {
        let channel = cursor.string()?;
        let subdir = cursor.string()?;
        let filename = cursor.string()?;
        let version = cursor.string()?;
        let build = cursor.string()?;
        let build_number = cursor.varint()?;
        let flags = cursor.byte()?;
        if flags >> 5 != 0 {
            return Err(cursor.malformed(format!("unknown conda record flags {flags:#04x}")));
        }
        let size = cursor.varint()?;
        let sha256 = (flags & 1 != 0).then(|| cursor.array::<32>()).transpose()?;
        let md5 = (flags & 2 != 0).then(|| cursor.array::<16>()).transpose()?;
        let timestamp = (flags & 4 != 0).then(|| cursor.signed()).transpose()?;
        let noarch = (flags & 8 != 0).then(|| cursor.string()).transpose()?;
        let mut url = cursor.string()?;
        if flags & 16 != 0 {
            url.push_str(&filename);
        }
        records.push(CondaRecord {
            name: name.clone(),
            channel,
            subdir,
            filename,
            version,
            build,
            build_number,
            depends: strings(&mut cursor)?,
            constrains: strings(&mut cursor)?,
            noarch,
            size,
            sha256,
            md5,
            timestamp,
            url,
        });
    }
    if cursor.pos != unit.len() {
        return Err(cursor.malformed("bytes follow the last conda record of the unit"));
    }
    Ok(records)
}

/// One entry of a page: a name, PyPI's `last_serial` (0 for conda), and the shards (indexes
/// into the page's shard table) holding its units, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PageEntry {
    pub(crate) name: String,
    pub(crate) last_serial: u64,
    pub(crate) units: Vec<u32>,
}

/// A decoded page.
#[derive(Debug)]
pub(crate) struct Page {
    pub(crate) shards: Vec<(BlobHash, u64)>,
    pub(crate) entries: Vec<PageEntry>,
}

pub(crate) fn encode_page(tag: u8, page: &Page) -> Vec<u8> {
    let mut out = vec![tag];
    put_varint(&mut out, page.shards.len() as u64);
    for (hash, size) in &page.shards {
        out.extend_from_slice(&hash.0);
        put_varint(&mut out, *size);
    }
    put_varint(&mut out, page.entries.len() as u64);
    for entry in &page.entries {
        put_str(&mut out, &entry.name);
        put_varint(&mut out, entry.last_serial);
        put_varint(&mut out, entry.units.len() as u64);
        for unit in &entry.units {
            put_varint(&mut out, u64::from(*unit));
        }
    }
    out
}

pub(crate) fn decode_page(bytes: &[u8], tag: u8) -> Result<Page> {
    let mut cursor = Cursor::new(bytes, 0)?;
    let found = cursor.byte()?;
    if found != tag {
        return Err(cursor.malformed(format!("expected page tag {tag:#04x}, found {found:#04x}")));
    }
    let count = cursor.count()?;
    let mut shards = Vec::with_capacity(count.min(PREALLOCATE_MAX));
    for _ in 0..count {
        shards.push((BlobHash(cursor.array::<32>()?), cursor.varint()?));
    }
    let count = cursor.count()?;
    let mut entries: Vec<PageEntry> = Vec::with_capacity(count.min(PREALLOCATE_MAX));
    for _ in 0..count {
        let name = cursor.string()?;
        if entries.last().is_some_and(|last| last.name >= name) {
            return Err(cursor.malformed(format!("page entries out of order at {name:?}")));
        }
        let last_serial = cursor.varint()?;
        let units_len = cursor.count()?;
        if units_len == 0 {
            return Err(cursor.malformed(format!("{name:?} has no units")));
        }
        let mut units = Vec::with_capacity(units_len.min(PREALLOCATE_MAX));
        for _ in 0..units_len {
            let unit = cursor.varint()?;
            if unit >= shards.len() as u64 {
                return Err(
                    cursor.malformed(format!("{name:?} names shard {unit} of {}", shards.len()))
                );
            }
            // Fits: below the shard count, itself bounded by the page's size.
            units.push(unit as u32);
        }
        entries.push(PageEntry {
            name,
            last_serial,
            units,
        });
    }
    if cursor.pos != bytes.len() {
        return Err(cursor.malformed("bytes follow the last page entry"));
    }
    Ok(Page { shards, entries })
}
