//! The reader of single-file snapshots (format versions 1 and 2): mmap, cheap checks on open,
//! one project decoded per lookup, full check on demand. [`crate::Snapshot`] wraps it.

use std::path::Path;

use crate::codec::{
    Cursor, HEADER_CRC_OFFSET, HEADER_LEN, TAG_CONDA, TAG_DEPENDENCIES, TAG_PROJECT, TAG_STRING,
};
use crate::error::{Error, Result};
use crate::model::{
    CondaRecord, DependencyRecord, File, FileKind, MetadataSource, Project, Release, SnapshotMeta,
};
use crate::{FORMAT_VERSION, MAGIC, OLDEST_READABLE_VERSION, SINGLE_FILE_VERSION};

/// Counts come from the file: a corrupted one could ask for a huge allocation before the
/// bytes run out, so at most this many items are reserved up front.
const PREALLOCATE_MAX: usize = 1024;

/// The bytes of a snapshot file: mapped, or owned.
#[derive(Debug)]
pub(crate) enum Backing {
    Mapped(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl Backing {
    /// Map a file read-only.
    pub(crate) fn map(path: &Path) -> Result<Self> {
        let io_err = |source| Error::Io {
            path: path.to_owned(),
            source,
        };
        let file = fs_err::File::open(path).map_err(io_err)?;
        // SAFETY: the map is read-only and every access is bounds-checked; snapshots are
        // immutable once published (named by their hash), so no one truncates the file under
        // us. A file modified anyway gives wrong bytes (caught by checksums and hashes), not
        // undefined reads of memory we do not own.
        #[allow(unsafe_code)]
        let map = unsafe { memmap2::Mmap::map(file.file()) }.map_err(io_err)?;
        Ok(Backing::Mapped(map))
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            Backing::Mapped(map) => map,
            Backing::Owned(bytes) => bytes,
        }
    }
}

/// An open single-file snapshot. Cheap to open (header checks only); see [`SingleFile::verify`].
#[derive(Debug)]
pub(crate) struct SingleFile {
    backing: Backing,
    meta: SnapshotMeta,
    body_crc: u32,
    index_offset: u64,
    /// Body offset of the conda index (version 2); the body's end in a version-1 file.
    conda_index_offset: u64,
    version: u32,
}

fn le_u32(bytes: &[u8], at: usize) -> u32 {
    let mut raw = [0; 4];
    raw.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(raw)
}

fn le_u64(bytes: &[u8], at: usize) -> u64 {
    let mut raw = [0; 8];
    raw.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(raw)
}

impl SingleFile {
    /// Check the header of a single-file snapshot. Does not read the body.
    pub(crate) fn from_backing(backing: Backing) -> Result<Self> {
        let bytes = backing.bytes();
        if bytes.len() < 8 || bytes[..8] != MAGIC {
            // A file shorter than the magic that matches its prefix is a truncated snapshot.
            if bytes.len() < 8 && MAGIC.starts_with(bytes) {
                return Err(Error::Truncated {
                    what: "header",
                    needed: HEADER_LEN as u64,
                    available: bytes.len() as u64,
                });
            }
            return Err(Error::BadMagic);
        }
        if bytes.len() < HEADER_LEN {
            return Err(Error::Truncated {
                what: "header",
                needed: HEADER_LEN as u64,
                available: bytes.len() as u64,
            });
        }
        let version = le_u32(bytes, 8);
        if version > FORMAT_VERSION {
            return Err(Error::UnsupportedVersion {
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        if version < OLDEST_READABLE_VERSION {
            return Err(Error::UpgradeRequired {
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        let found = le_u32(bytes, HEADER_CRC_OFFSET);
        let computed = crc32fast::hash(&bytes[..HEADER_CRC_OFFSET]);
        if found != computed {
            return Err(Error::HeaderChecksum { found, computed });
        }
        let malformed = |what: &str| Error::Malformed {
            offset: 0,
            what: format!("header: {what}"),
        };
        if version > SINGLE_FILE_VERSION {
            return Err(malformed(
                "a format-3 file that is not a pack (a manifest is opened from its published tree)",
            ));
        }
        if le_u32(bytes, 12) as usize != HEADER_LEN {
            return Err(malformed("header length field is not 128"));
        }
        let flags = le_u32(bytes, 40);
        // Version 2 uses header bytes 100..116 for the conda index; version 1 reserves them.
        let reserved_from = if version >= 2 { 116 } else { 100 };
        if flags > 1
            || le_u32(bytes, 44) != 0
            || bytes[reserved_from..HEADER_CRC_OFFSET]
                .iter()
                .any(|&b| b != 0)
        {
            return Err(malformed("unknown flags or non-zero reserved bytes"));
        }
        let meta = SnapshotMeta {
            created: le_u64(bytes, 16) as i64,
            pypi_serial: le_u64(bytes, 24),
            as_of: (flags & 1 == 1).then(|| le_u64(bytes, 32) as i64),
            project_count: le_u64(bytes, 48),
            release_count: le_u64(bytes, 56),
            file_count: le_u64(bytes, 64),
            dependency_record_count: le_u64(bytes, 72),
            conda_record_count: le_u64(bytes, 100),
        };
        let body_len = le_u64(bytes, 80);
        let index_offset = le_u64(bytes, 88);
        let body_crc = le_u32(bytes, 96);
        let conda_index_offset = if version >= 2 {
            le_u64(bytes, 108)
        } else {
            body_len
        };
        let available = (bytes.len() - HEADER_LEN) as u64;
        if body_len > available {
            return Err(Error::Truncated {
                what: "body",
                needed: body_len,
                available,
            });
        }
        if body_len < available {
            return Err(malformed("bytes follow the end of the body"));
        }
        let index_len = meta.project_count.checked_mul(8);
        if index_len.and_then(|len| len.checked_add(index_offset)) != Some(conda_index_offset) {
            return Err(Error::OutOfRange {
                what: "project index",
                offset: index_offset,
            });
        }
        let conda_len = meta.conda_record_count.checked_mul(8);
        if conda_len.and_then(|len| len.checked_add(conda_index_offset)) != Some(body_len) {
            return Err(Error::OutOfRange {
                what: "conda index",
                offset: conda_index_offset,
            });
        }
        Ok(SingleFile {
            backing,
            meta,
            body_crc,
            index_offset,
            conda_index_offset,
            version,
        })
    }

    /// The header's facts.
    pub(crate) fn meta(&self) -> &SnapshotMeta {
        &self.meta
    }

    /// The format version of the file (1 or 2; version 1 holds no conda records).
    pub(crate) fn format_version(&self) -> u32 {
        self.version
    }

    fn body(&self) -> &[u8] {
        &self.backing.bytes()[HEADER_LEN..]
    }

    /// The whole file, e.g. to hash it.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.backing.bytes()
    }

    /// Check the body checksum and decode every project, checking the index order.
    pub(crate) fn verify(&self) -> Result<()> {
        let computed = crc32fast::hash(self.body());
        if computed != self.body_crc {
            return Err(Error::BodyChecksum {
                found: self.body_crc,
                computed,
            });
        }
        let mut previous: Option<String> = None;
        let (mut releases, mut files) = (0u64, 0u64);
        for project in self.projects() {
            let project = project?;
            if let Some(previous) = &previous
                && previous.as_str() >= project.name.as_str()
            {
                return Err(Error::Malformed {
                    offset: self.index_offset,
                    what: format!("index out of order: {previous:?} before {:?}", project.name),
                });
            }
            releases += project.releases.len() as u64;
            files += project
                .releases
                .iter()
                .map(|r| r.files.len() as u64)
                .sum::<u64>();
            previous = Some(project.name);
        }
        let mut previous_conda: Option<CondaRecord> = None;
        for record in self.conda_records_all() {
            let record = record?;
            if let Some(previous) = &previous_conda
                && previous.sort_key() >= record.sort_key()
            {
                return Err(Error::Malformed {
                    offset: self.conda_index_offset,
                    what: format!(
                        "conda index out of order: {:?} before {:?}",
                        previous.filename, record.filename
                    ),
                });
            }
            previous_conda = Some(record);
        }
        if releases != self.meta.release_count || files != self.meta.file_count {
            return Err(Error::Malformed {
                offset: 0,
                what: format!(
                    "header counts {} releases and {} files, the body holds {releases} and {files}",
                    self.meta.release_count, self.meta.file_count
                ),
            });
        }
        Ok(())
    }

    fn project_offset(&self, position: u64) -> Result<u64> {
        // In bounds: open() checked index_offset + 8 * project_count == conda_index_offset.
        self.index_entry(self.index_offset + position * 8, "project index entry")
    }

    /// Read an index entry at body offset `at` (checked in bounds by the caller's index
    /// arithmetic, see `open`); records always lie before the project index.
    fn index_entry(&self, at: u64, what: &'static str) -> Result<u64> {
        let offset = le_u64(self.body(), at as usize);
        if offset >= self.index_offset {
            return Err(Error::OutOfRange { what, offset: at });
        }
        Ok(offset)
    }

    fn conda_cursor(&self, position: u64) -> Result<Cursor<'_>> {
        // In bounds: open() checked conda_index_offset + 8 * conda_record_count == body length.
        let at = self.index_entry(self.conda_index_offset + position * 8, "conda index entry")?;
        let mut cursor = Cursor::new(self.body(), at)?;
        if cursor.byte()? != TAG_CONDA {
            return Err(cursor.malformed("conda index entry does not point to a conda record"));
        }
        Ok(cursor)
    }

    /// All conda records of one package name (every channel and subdir), in index order.
    pub(crate) fn conda_records(&self, name: &str) -> Result<Vec<CondaRecord>> {
        let (mut low, mut high) = (0u64, self.meta.conda_record_count);
        while low < high {
            let mid = low + (high - low) / 2;
            if self.conda_cursor(mid)?.str()? < name {
                low = mid + 1;
            } else {
                high = mid;
            }
        }
        let mut found = Vec::new();
        for position in low..self.meta.conda_record_count {
            if self.conda_cursor(position)?.str()? != name {
                break;
            }
            found.push(self.decode_conda(position)?);
        }
        Ok(found)
    }

    /// All conda records in (name, channel, subdir, filename) order.
    pub(crate) fn conda_records_all(&self) -> CondaRecords<'_> {
        CondaRecords {
            snapshot: self,
            next: 0,
        }
    }

    fn decode_conda(&self, position: u64) -> Result<CondaRecord> {
        let mut cursor = self.conda_cursor(position)?;
        let name = cursor.string()?;
        let channel_ref = cursor.varint()?;
        let channel = self.shared_string(channel_ref)?.to_owned();
        let subdir_ref = cursor.varint()?;
        let subdir = self.shared_string(subdir_ref)?.to_owned();
        let filename = cursor.string()?;
        let version = cursor.string()?;
        let build = cursor.string()?;
        let build_number = cursor.varint()?;
        let flags = cursor.byte()?;
        if flags >> 5 != 0 {
            return Err(cursor.malformed(format!("unknown conda record flags {flags:#04x}")));
        }
        let size = cursor.varint()?;
        let sha256 = if flags & 1 != 0 {
            let mut hash = [0; 32];
            hash.copy_from_slice(cursor.take(32)?);
            Some(hash)
        } else {
            None
        };
        let md5 = if flags & 2 != 0 {
            let mut hash = [0; 16];
            hash.copy_from_slice(cursor.take(16)?);
            Some(hash)
        } else {
            None
        };
        let timestamp = (flags & 4 != 0).then(|| cursor.signed()).transpose()?;
        let noarch = self.optional_string(&mut cursor, flags & 8 != 0)?;
        let url_ref = cursor.varint()?;
        let mut url = self.shared_string(url_ref)?.to_owned();
        if flags & 16 != 0 {
            url.push_str(&filename);
        }
        let depends = self.shared_strings(&mut cursor)?;
        let constrains = self.shared_strings(&mut cursor)?;
        Ok(CondaRecord {
            name,
            channel,
            subdir,
            filename,
            version,
            build,
            build_number,
            depends,
            constrains,
            noarch,
            size,
            sha256,
            md5,
            timestamp,
            url,
        })
    }

    fn project_cursor(&self, position: u64) -> Result<Cursor<'_>> {
        let mut cursor = Cursor::new(self.body(), self.project_offset(position)?)?;
        if cursor.byte()? != TAG_PROJECT {
            return Err(cursor.malformed("index entry does not point to a project record"));
        }
        Ok(cursor)
    }

    fn name_at(&self, position: u64) -> Result<&str> {
        self.project_cursor(position)?.str()
    }

    /// Find a project by its normalized name (binary search over the index).
    pub(crate) fn project(&self, normalized_name: &str) -> Result<Option<Project>> {
        let (mut low, mut high) = (0u64, self.meta.project_count);
        while low < high {
            let mid = low + (high - low) / 2;
            match self.name_at(mid)?.cmp(normalized_name) {
                std::cmp::Ordering::Less => low = mid + 1,
                std::cmp::Ordering::Greater => high = mid,
                std::cmp::Ordering::Equal => return self.decode_project(mid).map(Some),
            }
        }
        Ok(None)
    }

    /// All projects in name order.
    pub(crate) fn projects(&self) -> Projects<'_> {
        Projects {
            snapshot: self,
            next: 0,
        }
    }

    /// All project names in order, without decoding the projects.
    pub(crate) fn project_names(&self) -> ProjectNames<'_> {
        ProjectNames {
            snapshot: self,
            next: 0,
        }
    }

    fn decode_project(&self, position: u64) -> Result<Project> {
        let mut cursor = self.project_cursor(position)?;
        let name = cursor.string()?;
        let last_serial = cursor.varint()?;
        let count = cursor.count()?;
        let mut releases = Vec::with_capacity(count.min(PREALLOCATE_MAX));
        for _ in 0..count {
            releases.push(self.decode_release(&mut cursor)?);
        }
        Ok(Project {
            name,
            last_serial,
            releases,
        })
    }

    fn decode_release(&self, cursor: &mut Cursor<'_>) -> Result<Release> {
        let version = cursor.string()?;
        let flags = cursor.byte()?;
        if flags >> 3 != 0 {
            return Err(cursor.malformed(format!("unknown release flags {flags:#04x}")));
        }
        let yanked = self.optional_string(cursor, flags & 1 != 0)?;
        let requires_python = self.optional_string(cursor, flags & 2 != 0)?;
        let upload_time = (flags & 4 != 0).then(|| cursor.signed()).transpose()?;
        let count = cursor.count()?;
        let mut dependencies = Vec::with_capacity(count.min(PREALLOCATE_MAX));
        for _ in 0..count {
            let target = cursor.varint()?;
            dependencies.push(self.decode_dependencies(target)?);
        }
        let count = cursor.count()?;
        let mut files = Vec::with_capacity(count.min(PREALLOCATE_MAX));
        for _ in 0..count {
            let file = self.decode_file(cursor)?;
            if let Some(index) = file.dependencies
                && index as usize >= dependencies.len()
            {
                return Err(cursor.malformed(format!(
                    "file {} points to dependency record {index} of {}",
                    file.filename,
                    dependencies.len()
                )));
            }
            files.push(file);
        }
        Ok(Release {
            version,
            yanked,
            requires_python,
            upload_time,
            dependencies,
            files,
        })
    }

    fn decode_file(&self, cursor: &mut Cursor<'_>) -> Result<File> {
        let filename = cursor.string()?;
        let kind_byte = cursor.byte()?;
        let kind = FileKind::from_byte(kind_byte)
            .ok_or_else(|| cursor.malformed(format!("unknown file kind {kind_byte}")))?;
        let flags = cursor.byte()?;
        if flags >> 7 != 0 {
            return Err(cursor.malformed(format!("unknown file flags {flags:#04x}")));
        }
        let size = cursor.varint()?;
        let sha256 = if flags & 8 != 0 {
            let mut hash = [0; 32];
            hash.copy_from_slice(cursor.take(32)?);
            Some(hash)
        } else {
            None
        };
        let upload_time = (flags & 4 != 0).then(|| cursor.signed()).transpose()?;
        let yanked = self.optional_string(cursor, flags & 1 != 0)?;
        let requires_python = self.optional_string(cursor, flags & 2 != 0)?;
        let base = cursor.varint()?;
        let mut url = self.shared_string(base)?.to_owned();
        if flags & 64 != 0 {
            url.push_str(&crate::writer::pypi_path(cursor.take(32)?));
        } else {
            url.push_str(cursor.str()?);
        }
        if flags & 16 != 0 {
            url.push_str(&filename);
        }
        let dependencies = if flags & 32 != 0 {
            let index = cursor.varint()?;
            Some(u32::try_from(index).map_err(|_| cursor.malformed("dependency index too large"))?)
        } else {
            None
        };
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

    fn optional_string(&self, cursor: &mut Cursor<'_>, present: bool) -> Result<Option<String>> {
        if !present {
            return Ok(None);
        }
        let target = cursor.varint()?;
        self.shared_string(target).map(|s| Some(s.to_owned()))
    }

    /// Open a shared item. Shared items always precede the project index.
    fn shared_item(&self, offset: u64, tag: u8) -> Result<Cursor<'_>> {
        if offset >= self.index_offset {
            return Err(Error::OutOfRange {
                what: "shared record reference",
                offset,
            });
        }
        let mut cursor = Cursor::new(self.body(), offset)?;
        let found = cursor.byte()?;
        if found != tag {
            return Err(cursor.malformed(format!("expected record tag {tag}, found {found}")));
        }
        Ok(cursor)
    }

    fn shared_string(&self, offset: u64) -> Result<&str> {
        self.shared_item(offset, TAG_STRING)?.str()
    }

    fn shared_strings(&self, cursor: &mut Cursor<'_>) -> Result<Vec<String>> {
        let count = cursor.count()?;
        let mut values = Vec::with_capacity(count.min(PREALLOCATE_MAX));
        for _ in 0..count {
            let target = cursor.varint()?;
            values.push(self.shared_string(target)?.to_owned());
        }
        Ok(values)
    }

    fn decode_dependencies(&self, offset: u64) -> Result<DependencyRecord> {
        let mut cursor = self.shared_item(offset, TAG_DEPENDENCIES)?;
        let source_byte = cursor.byte()?;
        let source = MetadataSource::from_byte(source_byte)
            .ok_or_else(|| cursor.malformed(format!("unknown metadata source {source_byte}")))?;
        let flags = cursor.byte()?;
        if flags >> 3 != 0 {
            return Err(cursor.malformed(format!("unknown dependency flags {flags:#04x}")));
        }
        let detail = self.optional_string(&mut cursor, flags & 1 != 0)?;
        let requires_python = self.optional_string(&mut cursor, flags & 2 != 0)?;
        let build_backend = self.optional_string(&mut cursor, flags & 4 != 0)?;
        let requires_dist = self.shared_strings(&mut cursor)?;
        let provides_extra = self.shared_strings(&mut cursor)?;
        let build_requires = self.shared_strings(&mut cursor)?;
        Ok(DependencyRecord {
            source,
            detail,
            requires_python,
            requires_dist,
            provides_extra,
            build_requires,
            build_backend,
        })
    }
}

/// Iterator over all projects, decoded one at a time.
#[derive(Debug)]
pub(crate) struct Projects<'a> {
    snapshot: &'a SingleFile,
    next: u64,
}

impl Iterator for Projects<'_> {
    type Item = Result<Project>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.snapshot.meta.project_count {
            return None;
        }
        self.next += 1;
        Some(self.snapshot.decode_project(self.next - 1))
    }
}

/// Iterator over all project names.
#[derive(Debug)]
pub(crate) struct ProjectNames<'a> {
    snapshot: &'a SingleFile,
    next: u64,
}

impl<'a> Iterator for ProjectNames<'a> {
    type Item = Result<&'a str>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.snapshot.meta.project_count {
            return None;
        }
        self.next += 1;
        Some(self.snapshot.name_at(self.next - 1))
    }
}

/// Iterator over all conda records, decoded one at a time.
#[derive(Debug)]
pub(crate) struct CondaRecords<'a> {
    snapshot: &'a SingleFile,
    next: u64,
}

impl Iterator for CondaRecords<'_> {
    type Item = Result<CondaRecord>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.snapshot.meta.conda_record_count {
            return None;
        }
        self.next += 1;
        Some(self.snapshot.decode_conda(self.next - 1))
    }
}
