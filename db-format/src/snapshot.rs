//! [`Snapshot`]: one way to read every kind of snapshot — a single file (format 1 or 2), a pack,
//! or a manifest with a [`BlobSource`] for its pages and shards (format 3) — so that readers
//! do not care which they were given.

use std::path::Path;
use std::sync::Arc;

use crate::blob::{BlobHash, BlobKind, BlobSource};
use crate::error::{Error, Result};
use crate::model::{CondaRecord, Project, SnapshotMeta};
use crate::reader::{self, Backing, SingleFile};
use crate::sharded::Page;
use crate::sharded::pack::{PackSource, write_pack};
use crate::sharded::{Located, Section, Sharded, VersionEntry};
use crate::{FORMAT_VERSION, MAGIC};

#[derive(Debug)]
enum Inner {
    Single(SingleFile),
    Sharded(Sharded),
}

/// An open snapshot.
///
/// Opening is cheap: a single file's header is checked, a sharded snapshot's manifest is
/// checked against its hash. Projects are decoded one at a time, when asked for; a shard's
/// sha256 is checked against the page that names it (and a page's against the manifest)
/// before a byte of it is decoded, and decoded shards are kept for the life of the value.
/// [`Snapshot::verify`] checks everything.
#[derive(Debug)]
pub struct Snapshot {
    inner: Inner,
}

impl Snapshot {
    /// Open a snapshot file: a single-file snapshot (format 1 or 2) or a pack (format 3).
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::from_backing(Backing::map(path.as_ref())?)
    }

    /// Use snapshot file bytes already in memory (a single file or a pack).
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self> {
        Self::from_backing(Backing::Owned(bytes))
    }

    fn from_backing(backing: Backing) -> Result<Self> {
        let bytes = backing.bytes();
        if bytes.len() >= 16 && bytes[..8] == MAGIC {
            let mut version = [0; 4];
            version.copy_from_slice(&bytes[8..12]);
            let mut kind = [0; 4];
            kind.copy_from_slice(&bytes[12..16]);
            if u32::from_le_bytes(version) == FORMAT_VERSION
                && u32::from_le_bytes(kind) == crate::sharded::KIND_PACK
            {
                let source = PackSource::new(backing)?;
                let manifest = source.manifest().to_vec();
                let pin = crate::sharded::sha256(&manifest);
                let sharded = Sharded::from_manifest(&manifest, &pin, Box::new(source))?;
                return Ok(Snapshot {
                    inner: Inner::Sharded(sharded),
                });
            }
        }
        Ok(Snapshot {
            inner: Inner::Single(SingleFile::from_backing(backing)?),
        })
    }

    /// The sharded snapshot pinned by `pin`: its manifest and then, as needed, its pages and
    /// shards come from `source`, each checked against its hash.
    pub fn from_source(pin: &BlobHash, source: Box<dyn BlobSource>) -> Result<Self> {
        Ok(Snapshot {
            inner: Inner::Sharded(Sharded::open(pin, source)?),
        })
    }

    pub(crate) fn sharded(&self) -> Option<&Sharded> {
        match &self.inner {
            Inner::Sharded(sharded) => Some(sharded),
            Inner::Single(_) => None,
        }
    }

    /// The snapshot-wide facts.
    pub fn meta(&self) -> &SnapshotMeta {
        match &self.inner {
            Inner::Single(single) => single.meta(),
            Inner::Sharded(sharded) => &sharded.manifest.meta,
        }
    }

    /// The format version (1 and 2: single file; 3: sharded or packed).
    pub fn format_version(&self) -> u32 {
        match &self.inner {
            Inner::Single(single) => single.format_version(),
            Inner::Sharded(_) => FORMAT_VERSION,
        }
    }

    /// The pin of a sharded snapshot (its manifest's sha256); `None` for a single file, whose
    /// pin is the sha256 of the whole file.
    pub fn manifest_hash(&self) -> Option<BlobHash> {
        self.sharded().map(|sharded| sharded.hash)
    }

    /// The bytes the pin hashes: the whole file of a single-file snapshot, the manifest of a
    /// sharded one.
    pub fn as_bytes(&self) -> &[u8] {
        match &self.inner {
            Inner::Single(single) => single.as_bytes(),
            Inner::Sharded(sharded) => &sharded.manifest_bytes,
        }
    }

    /// Shards fetched and decompressed so far (0 for a single file).
    pub fn decoded_shards(&self) -> u64 {
        self.sharded().map_or(0, Sharded::decoded_shards)
    }

    /// Every blob of a sharded snapshot (manifest, pages, shards), each once; fetches and
    /// checks every page. Empty for a single file.
    pub fn blobs(&self) -> Result<Vec<(BlobKind, BlobHash, u64)>> {
        self.sharded().map_or(Ok(Vec::new()), Sharded::blobs)
    }

    /// Write a sharded snapshot as a pack (every blob checked on the way); returns its size.
    pub fn write_pack(&self, out: &mut dyn std::io::Write) -> Result<u64> {
        match &self.inner {
            Inner::Sharded(sharded) => write_pack(sharded, out),
            Inner::Single(_) => Err(Error::Malformed {
                offset: 0,
                what: "a single-file snapshot cannot be packed; publish it again".into(),
            }),
        }
    }

    /// Check everything: a single file's body checksum and every record; every page and
    /// shard of a sharded one (hash, decoding); the counts.
    pub fn verify(&self) -> Result<()> {
        match &self.inner {
            Inner::Single(single) => single.verify(),
            Inner::Sharded(sharded) => sharded.verify(),
        }
    }

    /// A project by its normalized name.
    pub fn project(&self, normalized_name: &str) -> Result<Option<Project>> {
        match &self.inner {
            Inner::Single(single) => single.project(normalized_name),
            Inner::Sharded(sharded) => sharded.project(normalized_name),
        }
    }

    /// A project's version table (versions, yanked, requires-python, upload time) in release
    /// order, without decoding its files or dependency records where the format allows it.
    pub fn versions(&self, normalized_name: &str) -> Result<Option<Vec<VersionEntry>>> {
        match &self.inner {
            Inner::Single(single) => Ok(single.project(normalized_name)?.map(|project| {
                project
                    .releases
                    .into_iter()
                    .map(|release| VersionEntry {
                        version: release.version,
                        yanked: release.yanked,
                        requires_python: release.requires_python,
                        upload_time: release.upload_time,
                    })
                    .collect()
            })),
            Inner::Sharded(sharded) => sharded.versions(normalized_name),
        }
    }

    /// All conda records of one package name, in (channel, subdir, filename) order.
    pub fn conda_records(&self, name: &str) -> Result<Vec<CondaRecord>> {
        match &self.inner {
            Inner::Single(single) => single.conda_records(name),
            Inner::Sharded(sharded) => sharded.conda_records(name),
        }
    }

    /// All projects in name order, decoded one at a time.
    pub fn projects(&self) -> Projects<'_> {
        Projects {
            walk: Walk::new(self, Section::Pypi),
        }
    }

    /// All project names in order.
    pub fn project_names(&self) -> ProjectNames<'_> {
        ProjectNames {
            walk: Walk::new(self, Section::Pypi),
        }
    }

    /// All conda records in (name, channel, subdir, filename) order.
    pub fn conda_records_all(&self) -> CondaRecords<'_> {
        CondaRecords {
            walk: Walk::new(self, Section::Conda),
            pending: Vec::new().into_iter(),
        }
    }
}

/// A walk over the names of one section, in order.
#[derive(Debug)]
enum Walk<'a> {
    Single {
        projects: reader::Projects<'a>,
        names: reader::ProjectNames<'a>,
        conda: reader::CondaRecords<'a>,
    },
    Sharded {
        sharded: &'a Sharded,
        section: Section,
        page_index: usize,
        page: Option<Arc<Page>>,
        entry: usize,
    },
}

impl<'a> Walk<'a> {
    fn new(snapshot: &'a Snapshot, section: Section) -> Self {
        match &snapshot.inner {
            Inner::Single(single) => Walk::Single {
                projects: single.projects(),
                names: single.project_names(),
                conda: single.conda_records_all(),
            },
            Inner::Sharded(sharded) => Walk::Sharded {
                sharded,
                section,
                page_index: 0,
                page: None,
                entry: 0,
            },
        }
    }

    /// The next name's page entry (sharded snapshots only).
    fn next_located(&mut self) -> Option<Result<(&'a Sharded, Located)>> {
        let Walk::Sharded {
            sharded,
            section,
            page_index,
            page,
            entry,
        } = self
        else {
            return None;
        };
        loop {
            if let Some(current) = page {
                if *entry < current.entries.len() {
                    *entry += 1;
                    let located = Located {
                        page: current.clone(),
                        entry: *entry - 1,
                    };
                    return Some(Ok((sharded, located)));
                }
                *page = None;
            }
            if *page_index >= sharded.page_count(*section) {
                return None;
            }
            match sharded.page(*section, *page_index) {
                Ok(next) => *page = Some(next),
                Err(err) => {
                    // Stop after reporting the failure: the rest is unreachable.
                    *page_index = usize::MAX;
                    return Some(Err(err));
                }
            }
            *page_index += 1;
            *entry = 0;
        }
    }
}

/// Iterator over all projects, decoded one at a time.
#[derive(Debug)]
pub struct Projects<'a> {
    walk: Walk<'a>,
}

impl Iterator for Projects<'_> {
    type Item = Result<Project>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Walk::Single { projects, .. } = &mut self.walk {
            return projects.next();
        }
        Some(
            self.walk
                .next_located()?
                .and_then(|(sharded, located)| sharded.project_at(&located)),
        )
    }
}

/// Iterator over all project names, in order.
#[derive(Debug)]
pub struct ProjectNames<'a> {
    walk: Walk<'a>,
}

impl Iterator for ProjectNames<'_> {
    type Item = Result<String>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Walk::Single { names, .. } = &mut self.walk {
            return names.next().map(|name| name.map(str::to_owned));
        }
        Some(
            self.walk
                .next_located()?
                .map(|(_, located)| located.page.entries[located.entry].name.clone()),
        )
    }
}

/// Iterator over all conda records, in (name, channel, subdir, filename) order.
#[derive(Debug)]
pub struct CondaRecords<'a> {
    walk: Walk<'a>,
    pending: std::vec::IntoIter<CondaRecord>,
}

impl Iterator for CondaRecords<'_> {
    type Item = Result<CondaRecord>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Walk::Single { conda, .. } = &mut self.walk {
            return conda.next();
        }
        loop {
            if let Some(record) = self.pending.next() {
                return Some(Ok(record));
            }
            match self.walk.next_located()? {
                Ok((sharded, located)) => match sharded.conda_at(&located) {
                    Ok(records) => self.pending = records.into_iter(),
                    Err(err) => return Some(Err(err)),
                },
                Err(err) => return Some(Err(err)),
            }
        }
    }
}
