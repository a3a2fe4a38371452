//! The streaming writer of format 3. Projects and conda records arrive in name order; units
//! are packed into shards and pages as they arrive, and every finished blob goes straight to a
//! [`BlobSink`], so memory holds one open page and one open shard per name space, whatever the
//! snapshot's size.
//!
//! Given the previous snapshot, a project whose releases are unchanged keeps its shards; one
//! that only gained releases gets a *delta* unit holding just the new ones; anything else
//! (a yanked or re-extracted release) is rewritten as one unit. Deltas merge like a binary
//! counter: the new unit absorbs the newest old unit while that one is at most twice its size,
//! so a project has O(log n) units and each byte is rewritten O(log n) times over its life.

use std::collections::HashMap;

use super::encoding::{
    EncodedRelease, Page, PageEntry, encode_conda_unit, encode_page, encode_project_unit,
    encode_release, encode_shard, read_project_unit, release_order_key,
};
use super::{Manifest, PageRef, Section, Sharded, compress, sha256};
use crate::blob::{BlobHash, BlobKind};
use crate::error::{Error, Result};
use crate::model::{CondaRecord, Project, SnapshotMeta};
use crate::writer::{check_conda_record, checked_releases};

/// A unit of at least this many raw bytes gets a shard of its own; smaller ones share.
const OWN_SHARD_BYTES: usize = 16 << 10;
/// A shared shard is closed once its raw units reach this many bytes.
const SHARED_SHARD_BYTES: usize = 32 << 10;
/// A page starts before a name whose sha256 begins with a 16-bit number below this: on
/// average every 512th name (65536 / 128), wherever names are added or removed elsewhere.
const PAGE_CUT_BELOW: u16 = 128;
/// A page never holds more names than this.
const PAGE_MAX_ENTRIES: usize = 4096;

/// Where the blobs of a snapshot being written go.
pub trait BlobSink {
    /// Store a blob named `hash` (the sha256 of `bytes`). Storing a blob that is already there
    /// must leave it as it is.
    fn put(&mut self, kind: BlobKind, hash: &BlobHash, bytes: &[u8]) -> Result<()>;
}

/// Figures about a written sharded snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardedStats {
    pub meta: SnapshotMeta,
    /// The pin: the manifest's sha256.
    pub manifest: BlobHash,
    pub manifest_bytes: u64,
    /// Blobs produced by this writer (pages, shards, the manifest) and their compressed bytes.
    pub blobs_written: u64,
    pub bytes_written: u64,
    /// Raw (uncompressed) bytes of the units written.
    pub unit_bytes_written: u64,
    /// Units written, and units kept from the previous snapshot.
    pub units_written: u64,
    pub units_kept: u64,
}

/// The shards (hash, size) a name keeps from the previous snapshot, and its new unit if any.
type Plan = (Vec<(BlobHash, u64)>, Option<Vec<u8>>);

enum Slot {
    Known(BlobHash, u64),
    Shared(usize),
}

struct PendingEntry {
    name: String,
    last_serial: u64,
    units: Vec<Slot>,
}

struct SectionWriter {
    section: Section,
    pages: Vec<PageRef>,
    entries: Vec<PendingEntry>,
    shared: Vec<Vec<u8>>,
    shared_bytes: usize,
    shared_seq: usize,
    flushed: HashMap<usize, (BlobHash, u64)>,
}

/// Write one blob (compressed) to the sink and count it.
fn emit(
    sink: &mut dyn BlobSink,
    stats: &mut ShardedStats,
    kind: BlobKind,
    raw: &[u8],
) -> Result<(BlobHash, u64)> {
    let bytes = compress(raw)?;
    let hash = sha256(&bytes);
    sink.put(kind, &hash, &bytes)?;
    stats.blobs_written += 1;
    stats.bytes_written += bytes.len() as u64;
    Ok((hash, bytes.len() as u64))
}

fn starts_page(name: &str) -> bool {
    let digest = sha256(name.as_bytes());
    u16::from_be_bytes([digest.0[0], digest.0[1]]) < PAGE_CUT_BELOW
}

impl SectionWriter {
    fn new(section: Section) -> Self {
        SectionWriter {
            section,
            pages: Vec::new(),
            entries: Vec::new(),
            shared: Vec::new(),
            shared_bytes: 0,
            shared_seq: 0,
            flushed: HashMap::new(),
        }
    }

    fn add(
        &mut self,
        sink: &mut dyn BlobSink,
        stats: &mut ShardedStats,
        entry: (String, u64),
        kept: Vec<(BlobHash, u64)>,
        unit: Option<Vec<u8>>,
    ) -> Result<()> {
        let (name, last_serial) = entry;
        if !self.entries.is_empty()
            && (starts_page(&name) || self.entries.len() >= PAGE_MAX_ENTRIES)
        {
            self.close_page(sink, stats)?;
        }
        stats.units_kept += kept.len() as u64;
        let mut units: Vec<Slot> = kept
            .into_iter()
            .map(|(hash, size)| Slot::Known(hash, size))
            .collect();
        if let Some(unit) = unit {
            stats.units_written += 1;
            stats.unit_bytes_written += unit.len() as u64;
            if unit.len() >= OWN_SHARD_BYTES {
                let raw = encode_shard(self.section.shard_tag(), &[unit]);
                let (hash, size) = emit(sink, stats, BlobKind::Shard, &raw)?;
                units.push(Slot::Known(hash, size));
            } else {
                self.shared_bytes += unit.len();
                self.shared.push(unit);
                units.push(Slot::Shared(self.shared_seq));
                if self.shared_bytes >= SHARED_SHARD_BYTES {
                    self.flush_shared(sink, stats)?;
                }
            }
        }
        self.entries.push(PendingEntry {
            name,
            last_serial,
            units,
        });
        Ok(())
    }

    fn flush_shared(&mut self, sink: &mut dyn BlobSink, stats: &mut ShardedStats) -> Result<()> {
        if self.shared.is_empty() {
            return Ok(());
        }
        let raw = encode_shard(self.section.shard_tag(), &std::mem::take(&mut self.shared));
        let blob = emit(sink, stats, BlobKind::Shard, &raw)?;
        self.flushed.insert(self.shared_seq, blob);
        self.shared_seq += 1;
        self.shared_bytes = 0;
        Ok(())
    }

    fn close_page(&mut self, sink: &mut dyn BlobSink, stats: &mut ShardedStats) -> Result<()> {
        if self.entries.is_empty() {
            return Ok(());
        }
        self.flush_shared(sink, stats)?;
        let mut page = Page {
            shards: Vec::new(),
            entries: Vec::with_capacity(self.entries.len()),
        };
        let mut positions: HashMap<BlobHash, u32> = HashMap::new();
        for entry in std::mem::take(&mut self.entries) {
            let mut units = Vec::with_capacity(entry.units.len());
            for slot in entry.units {
                let (hash, size) = match slot {
                    Slot::Known(hash, size) => (hash, size),
                    Slot::Shared(seq) => {
                        *self.flushed.get(&seq).ok_or_else(|| Error::Malformed {
                            offset: 0,
                            what: "a shared shard was not written before its page".into(),
                        })?
                    }
                };
                let next = page.shards.len() as u32;
                let position = *positions.entry(hash).or_insert(next);
                if position == next {
                    page.shards.push((hash, size));
                }
                units.push(position);
            }
            page.entries.push(PageEntry {
                name: entry.name,
                last_serial: entry.last_serial,
                units,
            });
        }
        self.flushed.clear();
        let raw = encode_page(self.section.page_tag(), &page);
        let (hash, size) = emit(sink, stats, BlobKind::Shard, &raw)?;
        self.pages.push(PageRef {
            first: page.entries[0].name.clone(),
            count: page.entries.len() as u64,
            hash,
            size,
        });
        Ok(())
    }
}

/// Writes a format-3 snapshot into a [`BlobSink`].
///
/// Projects come in strictly increasing name order and conda records in strictly increasing
/// (name, channel, subdir, filename) order, the two interleaved in any way. With the same
/// input (and the same previous snapshot) the output is the same, byte for byte.
pub struct ShardedWriter<'a> {
    sink: &'a mut dyn BlobSink,
    previous: Option<&'a Sharded>,
    stats: ShardedStats,
    pypi: SectionWriter,
    conda: SectionWriter,
    last_name: Option<String>,
    last_conda: Option<[String; 4]>,
    conda_pending: Vec<CondaRecord>,
}

impl std::fmt::Debug for ShardedWriter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardedWriter")
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl<'a> ShardedWriter<'a> {
    /// Start a snapshot. `meta`'s counts are ignored: the writer counts what it is given.
    /// `previous`, a sharded snapshot published before into the same place, lets unchanged
    /// projects keep their shards (see the module doc).
    pub fn new(
        sink: &'a mut dyn BlobSink,
        meta: SnapshotMeta,
        previous: Option<&'a crate::Snapshot>,
    ) -> Self {
        ShardedWriter {
            sink,
            previous: previous.and_then(crate::Snapshot::sharded),
            stats: ShardedStats {
                meta: SnapshotMeta {
                    project_count: 0,
                    release_count: 0,
                    file_count: 0,
                    dependency_record_count: 0,
                    conda_record_count: 0,
                    ..meta
                },
                manifest: BlobHash([0; 32]),
                manifest_bytes: 0,
                blobs_written: 0,
                bytes_written: 0,
                unit_bytes_written: 0,
                units_written: 0,
                units_kept: 0,
            },
            pypi: SectionWriter::new(Section::Pypi),
            conda: SectionWriter::new(Section::Conda),
            last_name: None,
            last_conda: None,
            conda_pending: Vec::new(),
        }
    }

    /// Append one project (see [`crate::Writer::add_project`] for what is checked).
    pub fn add_project(&mut self, project: &Project) -> Result<()> {
        let releases = checked_releases(project, self.last_name.as_deref())?;
        let mut encoded = Vec::with_capacity(releases.len());
        for release in &releases {
            encoded.push(
                encode_release(release).map_err(|reason| Error::InvalidProject {
                    name: project.name.clone(),
                    reason,
                })?,
            );
            let meta = &mut self.stats.meta;
            meta.release_count += 1;
            meta.file_count += release.files.len() as u64;
            meta.dependency_record_count += release.dependencies.len() as u64;
        }
        self.stats.meta.project_count += 1;
        let (kept, unit) = self.plan_units(&project.name, encoded)?;
        self.pypi.add(
            self.sink,
            &mut self.stats,
            (project.name.clone(), project.last_serial),
            kept,
            unit,
        )?;
        self.last_name = Some(project.name.clone());
        Ok(())
    }

    /// Which earlier shards a project keeps, and the unit (if any) to write now.
    fn plan_units(&self, name: &str, encoded: Vec<EncodedRelease>) -> Result<Plan> {
        let whole = |encoded: &[EncodedRelease]| {
            let all: Vec<&EncodedRelease> = encoded.iter().collect();
            Some(encode_project_unit(name, &all))
        };
        let Some(previous) = self.previous else {
            return Ok((Vec::new(), whole(&encoded)));
        };
        let Some(located) = previous.locate(Section::Pypi, name)? else {
            return Ok((Vec::new(), whole(&encoded)));
        };
        // The previous units, each as its releases (encoded exactly as this writer would).
        let shards: Vec<(BlobHash, u64)> = located.shards().collect();
        let mut old_units: Vec<Vec<EncodedRelease>> = Vec::with_capacity(shards.len());
        for (shard, range) in previous.units(Section::Pypi, &located)? {
            let view = read_project_unit(&shard[range])?;
            old_units.push(
                view.heads
                    .into_iter()
                    .map(|(entry, head, detail)| EncodedRelease {
                        version: entry.version,
                        head: head.to_vec(),
                        detail: detail.to_vec(),
                    })
                    .collect(),
            );
        }
        let by_version: HashMap<&str, &EncodedRelease> = encoded
            .iter()
            .map(|release| (release.version.as_str(), release))
            .collect();
        let old_count: usize = old_units.iter().map(Vec::len).sum();
        let all_kept = old_units.iter().flatten().all(|old| {
            by_version
                .get(old.version.as_str())
                .is_some_and(|new| **new == *old)
        });
        if !all_kept {
            return Ok((Vec::new(), whole(&encoded)));
        }
        if old_count == encoded.len() {
            return Ok((shards, None));
        }
        let old_versions: std::collections::HashSet<&str> = old_units
            .iter()
            .flatten()
            .map(|old| old.version.as_str())
            .collect();
        let mut fresh: Vec<EncodedRelease> = encoded
            .iter()
            .filter(|release| !old_versions.contains(release.version.as_str()))
            .cloned()
            .collect();
        let mut fresh_bytes: usize = fresh.iter().map(EncodedRelease::len).sum();
        let mut kept = shards;
        while let Some(last) = old_units.last() {
            let last_bytes: usize = last.iter().map(EncodedRelease::len).sum();
            if last_bytes > 2 * fresh_bytes {
                break;
            }
            fresh_bytes += last_bytes;
            fresh.extend(old_units.pop().into_iter().flatten());
            kept.pop();
        }
        fresh.sort_by_cached_key(|release| release_order_key(&release.version));
        let refs: Vec<&EncodedRelease> = fresh.iter().collect();
        Ok((kept, Some(encode_project_unit(name, &refs))))
    }

    /// Append one conda record (see [`crate::Writer::add_conda_record`] for what is checked).
    pub fn add_conda_record(&mut self, conda: &CondaRecord) -> Result<()> {
        check_conda_record(conda, self.last_conda.as_ref())?;
        if self
            .conda_pending
            .first()
            .is_some_and(|first| first.name != conda.name)
        {
            self.finish_conda_unit()?;
        }
        self.conda_pending.push(conda.clone());
        self.stats.meta.conda_record_count += 1;
        let key = conda.sort_key();
        self.last_conda = Some([key.0, key.1, key.2, key.3].map(str::to_owned));
        Ok(())
    }

    fn finish_conda_unit(&mut self) -> Result<()> {
        let records = std::mem::take(&mut self.conda_pending);
        let Some(name) = records.first().map(|record| record.name.clone()) else {
            return Ok(());
        };
        let unit = encode_conda_unit(&name, &records);
        let mut kept = Vec::new();
        if let Some(previous) = self.previous
            && let Some(located) = previous.locate(Section::Conda, &name)?
        {
            let old = previous.units(Section::Conda, &located)?;
            if let [(shard, range)] = old.as_slice()
                && shard[range.clone()] == unit[..]
            {
                kept = located.shards().collect();
            }
        }
        let unit = kept.is_empty().then_some(unit);
        self.conda
            .add(self.sink, &mut self.stats, (name, 0), kept, unit)
    }

    /// Close the open shards and pages, write the manifest, and return its bytes and figures.
    pub fn finish(mut self) -> Result<(Vec<u8>, ShardedStats)> {
        self.finish_conda_unit()?;
        self.pypi.close_page(self.sink, &mut self.stats)?;
        self.conda.close_page(self.sink, &mut self.stats)?;
        let manifest = Manifest {
            meta: self.stats.meta.clone(),
            pypi: std::mem::take(&mut self.pypi.pages),
            conda: std::mem::take(&mut self.conda.pages),
        }
        .encode()?;
        let hash = sha256(&manifest);
        self.sink.put(BlobKind::Manifest, &hash, &manifest)?;
        self.stats.manifest = hash;
        self.stats.manifest_bytes = manifest.len() as u64;
        self.stats.blobs_written += 1;
        self.stats.bytes_written += manifest.len() as u64;
        Ok((manifest, self.stats))
    }
}

/// A sink that keeps blobs in memory, by hash (tests and small tools); it is also a source.
#[derive(Default, Clone)]
pub struct MemorySink {
    pub blobs: HashMap<BlobHash, (BlobKind, Vec<u8>)>,
}

impl std::fmt::Debug for MemorySink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} blobs in memory", self.blobs.len())
    }
}

impl BlobSink for MemorySink {
    fn put(&mut self, kind: BlobKind, hash: &BlobHash, bytes: &[u8]) -> Result<()> {
        self.blobs
            .entry(*hash)
            .or_insert_with(|| (kind, bytes.to_vec()));
        Ok(())
    }
}

impl crate::blob::BlobSource for MemorySink {
    fn get(
        &self,
        kind: BlobKind,
        hash: &BlobHash,
        _size: Option<u64>,
    ) -> std::result::Result<Vec<u8>, crate::blob::BlobError> {
        self.blobs
            .get(hash)
            .map(|(_, bytes)| bytes.clone())
            .ok_or_else(|| crate::blob::BlobError::Missing {
                kind,
                hash: *hash,
                detail: "not in memory".into(),
            })
    }
}
