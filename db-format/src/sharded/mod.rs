//! Format 3: a snapshot as a *manifest* (the pin), *pages* (name → shards) and *shards* (the
//! records, zstd-compressed), every piece a blob named by its sha256 (see [`crate::blob`]).
//! `FORMAT.md`, "Format 3", is the byte-level description; this module reads it, `writer`
//! writes it and `pack` puts a snapshot into one file.

mod encoding;
pub(crate) mod pack;
pub(crate) mod writer;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

pub(crate) use encoding::Page;
pub use encoding::VersionEntry;
use encoding::{
    TAG_CONDA_PAGE, TAG_CONDA_SHARD, TAG_PYPI_PAGE, TAG_PYPI_SHARD, decode_conda_unit, decode_page,
    decode_release, read_project_unit, release_order_key, shard_units,
};
use sha2::{Digest, Sha256};

use crate::blob::{BlobError, BlobHash, BlobKind, BlobSource};
use crate::codec::{Cursor, put_signed, put_str, put_varint};
use crate::error::{Error, Result};
use crate::model::{CondaRecord, Project, Release, SnapshotMeta};
use crate::{FORMAT_VERSION, MAGIC};

/// The `kind` word after the version: a manifest.
pub(crate) const KIND_MANIFEST: u32 = 1;
/// The `kind` word after the version: a pack.
pub(crate) const KIND_PACK: u32 = 3;
/// Bytes before a manifest's zstd frame: magic, version, kind, body length.
const MANIFEST_HEAD: usize = 24;
/// No blob of a snapshot decompresses to more than this (a guard against zstd bombs in bytes
/// whose hash was right but whose producer was hostile).
const MAX_DECOMPRESSED: u64 = 1 << 30;
/// zstd level of pages, shards and manifests: level 19 gains ~4 % over this at many times the
/// publish time (measured in `benches/sharded.rs`).
const ZSTD_LEVEL: i32 = 12;

/// The sha256 of `bytes`, as a blob name.
pub fn sha256(bytes: &[u8]) -> BlobHash {
    BlobHash(Sha256::digest(bytes).into())
}

pub(crate) fn compress(raw: &[u8]) -> Result<Vec<u8>> {
    zstd::bulk::compress(raw, ZSTD_LEVEL).map_err(Error::Write)
}

/// Decompress a zstd frame whose header states its content size (every frame this crate
/// writes does), refusing anything larger than `MAX_DECOMPRESSED`.
pub(crate) fn decompress(bytes: &[u8], what: &'static str) -> Result<Vec<u8>> {
    let bad = |detail: String| Error::Decompress { what, detail };
    let size = match zstd::zstd_safe::get_frame_content_size(bytes) {
        Ok(Some(size)) => size,
        Ok(None) => return Err(bad("the frame does not state its size".into())),
        Err(_) => return Err(bad("not a zstd frame".into())),
    };
    if size > MAX_DECOMPRESSED {
        return Err(bad(format!(
            "states {size} bytes, more than any snapshot blob"
        )));
    }
    // Fits: at most MAX_DECOMPRESSED.
    let raw = zstd::bulk::decompress(bytes, size as usize).map_err(|err| bad(err.to_string()))?;
    if raw.len() as u64 != size {
        return Err(bad(format!("{} bytes, the frame states {size}", raw.len())));
    }
    Ok(raw)
}

/// A page as the manifest names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PageRef {
    pub(crate) first: String,
    pub(crate) count: u64,
    pub(crate) hash: BlobHash,
    pub(crate) size: u64,
}

/// A decoded manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Manifest {
    pub(crate) meta: SnapshotMeta,
    pub(crate) pypi: Vec<PageRef>,
    pub(crate) conda: Vec<PageRef>,
}

impl Manifest {
    pub(crate) fn encode(&self) -> Result<Vec<u8>> {
        let meta = &self.meta;
        let mut body = Vec::new();
        put_signed(&mut body, meta.created);
        put_varint(&mut body, meta.pypi_serial);
        body.push(u8::from(meta.as_of.is_some()));
        if let Some(as_of) = meta.as_of {
            put_signed(&mut body, as_of);
        }
        for count in [
            meta.project_count,
            meta.release_count,
            meta.file_count,
            meta.dependency_record_count,
            meta.conda_record_count,
        ] {
            put_varint(&mut body, count);
        }
        for pages in [&self.pypi, &self.conda] {
            put_varint(&mut body, pages.len() as u64);
            for page in pages {
                put_str(&mut body, &page.first);
                put_varint(&mut body, page.count);
                body.extend_from_slice(&page.hash.0);
                put_varint(&mut body, page.size);
            }
        }
        let mut out = Vec::with_capacity(MANIFEST_HEAD + body.len() / 2);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&KIND_MANIFEST.to_le_bytes());
        out.extend_from_slice(&(body.len() as u64).to_le_bytes());
        out.extend_from_slice(&compress(&body)?);
        Ok(out)
    }

    /// Decode manifest bytes (whose hash the caller has checked).
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self> {
        let malformed = |what: &str| Error::Malformed {
            offset: 0,
            what: format!("manifest: {what}"),
        };
        if bytes.len() < MANIFEST_HEAD || bytes[..8] != MAGIC {
            return Err(Error::BadMagic);
        }
        let word = |at: usize| {
            let mut raw = [0; 4];
            raw.copy_from_slice(&bytes[at..at + 4]);
            u32::from_le_bytes(raw)
        };
        check_version(word(8))?;
        if word(12) != KIND_MANIFEST {
            return Err(malformed(&format!("kind {} is not a manifest", word(12))));
        }
        let mut raw_len = [0; 8];
        raw_len.copy_from_slice(&bytes[16..24]);
        let body = decompress(&bytes[MANIFEST_HEAD..], "manifest")?;
        if body.len() as u64 != u64::from_le_bytes(raw_len) {
            return Err(malformed("body length differs from the stated one"));
        }
        let mut cursor = Cursor::new(&body, 0)?;
        let created = cursor.signed()?;
        let pypi_serial = cursor.varint()?;
        let flags = cursor.byte()?;
        if flags > 1 {
            return Err(cursor.malformed(format!("unknown manifest flags {flags:#04x}")));
        }
        let as_of = (flags == 1).then(|| cursor.signed()).transpose()?;
        let mut counts = [0u64; 5];
        for count in &mut counts {
            *count = cursor.varint()?;
        }
        let mut sections = [Vec::new(), Vec::new()];
        for pages in &mut sections {
            let count = cursor.count()?;
            for _ in 0..count {
                let page = PageRef {
                    first: cursor.string()?,
                    count: cursor.varint()?,
                    hash: BlobHash(cursor.array::<32>()?),
                    size: cursor.varint()?,
                };
                if pages
                    .last()
                    .is_some_and(|last: &PageRef| last.first >= page.first)
                {
                    return Err(cursor.malformed("pages out of order"));
                }
                pages.push(page);
            }
        }
        if cursor.pos != body.len() {
            return Err(cursor.malformed("bytes follow the last page"));
        }
        let [pypi, conda] = sections;
        let [
            project_count,
            release_count,
            file_count,
            dependency_record_count,
            conda_record_count,
        ] = counts;
        let manifest = Manifest {
            meta: SnapshotMeta {
                created,
                pypi_serial,
                as_of,
                project_count,
                release_count,
                file_count,
                dependency_record_count,
                conda_record_count,
            },
            pypi,
            conda,
        };
        let names = |pages: &[PageRef]| {
            pages
                .iter()
                .try_fold(0u64, |sum, page| sum.checked_add(page.count))
        };
        // Conda pages count names, and a name has at least one record.
        if names(&manifest.pypi) != Some(project_count)
            || names(&manifest.conda).is_none_or(|names| names > conda_record_count)
        {
            return Err(malformed("page counts disagree with the snapshot counts"));
        }
        Ok(manifest)
    }
}

/// Refuse format versions this build cannot read.
pub(crate) fn check_version(found: u32) -> Result<()> {
    if found > FORMAT_VERSION {
        return Err(Error::UnsupportedVersion {
            found,
            supported: FORMAT_VERSION,
        });
    }
    if found < FORMAT_VERSION {
        return Err(Error::Malformed {
            offset: 8,
            what: format!("format version {found} has no manifests or packs"),
        });
    }
    Ok(())
}

/// Which of the two name spaces of a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Section {
    Pypi,
    Conda,
}

impl Section {
    fn page_tag(self) -> u8 {
        match self {
            Section::Pypi => TAG_PYPI_PAGE,
            Section::Conda => TAG_CONDA_PAGE,
        }
    }

    fn shard_tag(self) -> u8 {
        match self {
            Section::Pypi => TAG_PYPI_SHARD,
            Section::Conda => TAG_CONDA_SHARD,
        }
    }
}

/// A unit's bytes: a decompressed shard and the unit's range in it.
pub(crate) type UnitBytes = (Arc<Vec<u8>>, std::ops::Range<usize>);

/// Where a name's units are: its page's entry.
#[derive(Debug, Clone)]
pub(crate) struct Located {
    pub(crate) page: Arc<Page>,
    pub(crate) entry: usize,
}

impl Located {
    pub(crate) fn last_serial(&self) -> u64 {
        self.page.entries[self.entry].last_serial
    }

    /// The shards holding the entry's units, oldest first.
    pub(crate) fn shards(&self) -> impl Iterator<Item = (BlobHash, u64)> + '_ {
        self.page.entries[self.entry]
            .units
            .iter()
            .map(|&unit| self.page.shards[unit as usize])
    }
}

/// A sharded snapshot being read: the manifest, a source of blobs, and per-run caches of the
/// pages and shards already fetched, checked and decompressed.
#[derive(Debug)]
pub(crate) struct Sharded {
    pub(crate) hash: BlobHash,
    pub(crate) manifest: Manifest,
    pub(crate) manifest_bytes: Vec<u8>,
    pub(crate) source: Box<dyn BlobSource>,
    pages: Mutex<HashMap<BlobHash, Arc<Page>>>,
    shards: Mutex<ShardCache>,
    decoded_shards: AtomicU64,
}

/// Decompressed shards kept for reuse, up to [`CACHE_BYTES`]: a resolution touches a few
/// megabytes, a publish walking a whole previous snapshot must not keep all of it.
#[derive(Debug, Default)]
struct ShardCache {
    shards: HashMap<BlobHash, Arc<Vec<u8>>>,
    bytes: usize,
}

/// Bytes of decompressed shards kept in memory.
const CACHE_BYTES: usize = 128 << 20;
/// Decoded pages kept in memory (a page holds at most 4,096 names: tens of kilobytes).
const CACHED_PAGES: usize = 1024;

impl Sharded {
    /// Fetch the manifest `pin` names and check it.
    pub(crate) fn open(pin: &BlobHash, source: Box<dyn BlobSource>) -> Result<Self> {
        let bytes = fetch_checked(source.as_ref(), BlobKind::Manifest, pin, None)?;
        Self::from_manifest(bytes.as_slice(), pin, source)
    }

    /// Use manifest bytes already in hand; their sha256 must be `pin`.
    pub(crate) fn from_manifest(
        bytes: &[u8],
        pin: &BlobHash,
        source: Box<dyn BlobSource>,
    ) -> Result<Self> {
        check_hash(BlobKind::Manifest, pin, bytes, "the manifest bytes given")?;
        Ok(Sharded {
            hash: *pin,
            manifest: Manifest::decode(bytes)?,
            manifest_bytes: bytes.to_vec(),
            source,
            pages: Mutex::default(),
            shards: Mutex::default(),
            decoded_shards: AtomicU64::new(0),
        })
    }

    /// Every blob of the snapshot (manifest, pages, shards), each once, in no particular order.
    pub(crate) fn blobs(&self) -> Result<Vec<(BlobKind, BlobHash, u64)>> {
        let mut seen = std::collections::HashSet::new();
        let mut blobs = vec![(
            BlobKind::Manifest,
            self.hash,
            self.manifest_bytes.len() as u64,
        )];
        for section in [Section::Pypi, Section::Conda] {
            for index in 0..self.page_count(section) {
                let page_ref = &self.pages_of(section)[index];
                if seen.insert(page_ref.hash) {
                    blobs.push((BlobKind::Shard, page_ref.hash, page_ref.size));
                }
                for &(hash, size) in &self.page(section, index)?.shards {
                    if seen.insert(hash) {
                        blobs.push((BlobKind::Shard, hash, size));
                    }
                }
            }
        }
        Ok(blobs)
    }

    pub(crate) fn decoded_shards(&self) -> u64 {
        self.decoded_shards.load(Ordering::Relaxed)
    }

    fn pages_of(&self, section: Section) -> &[PageRef] {
        match section {
            Section::Pypi => &self.manifest.pypi,
            Section::Conda => &self.manifest.conda,
        }
    }

    pub(crate) fn page_count(&self, section: Section) -> usize {
        self.pages_of(section).len()
    }

    pub(crate) fn page(&self, section: Section, index: usize) -> Result<Arc<Page>> {
        let page_ref = &self.pages_of(section)[index];
        if let Some(page) = lock(&self.pages).get(&page_ref.hash) {
            return Ok(page.clone());
        }
        let bytes = fetch_checked(
            self.source.as_ref(),
            BlobKind::Shard,
            &page_ref.hash,
            Some(page_ref.size),
        )?;
        let page = decode_page(&decompress(&bytes, "page")?, section.page_tag())?;
        let first = page.entries.first().map(|entry| entry.name.as_str());
        if first != Some(page_ref.first.as_str()) || page.entries.len() as u64 != page_ref.count {
            return Err(Error::Malformed {
                offset: 0,
                what: format!(
                    "page sha256:{} does not hold what the manifest says",
                    page_ref.hash
                ),
            });
        }
        let page = Arc::new(page);
        let mut pages = lock(&self.pages);
        if pages.len() >= CACHED_PAGES {
            pages.clear();
        }
        pages.insert(page_ref.hash, page.clone());
        Ok(page)
    }

    pub(crate) fn shard(&self, hash: &BlobHash, size: u64) -> Result<Arc<Vec<u8>>> {
        if let Some(shard) = lock(&self.shards).shards.get(hash) {
            return Ok(shard.clone());
        }
        let bytes = fetch_checked(self.source.as_ref(), BlobKind::Shard, hash, Some(size))?;
        let shard = Arc::new(decompress(&bytes, "shard")?);
        self.decoded_shards.fetch_add(1, Ordering::Relaxed);
        let mut cache = lock(&self.shards);
        if cache.bytes + shard.len() > CACHE_BYTES {
            cache.shards.clear();
            cache.bytes = 0;
        }
        cache.bytes += shard.len();
        cache.shards.insert(*hash, shard.clone());
        Ok(shard)
    }

    /// Find a name's page entry (binary search over the pages, then within the page).
    pub(crate) fn locate(&self, section: Section, name: &str) -> Result<Option<Located>> {
        let pages = self.pages_of(section);
        let after = pages.partition_point(|page| page.first.as_str() <= name);
        let Some(index) = after.checked_sub(1) else {
            return Ok(None);
        };
        let page = self.page(section, index)?;
        Ok(page
            .entries
            .binary_search_by(|entry| entry.name.as_str().cmp(name))
            .ok()
            .map(|entry| Located { page, entry }))
    }

    /// The raw bytes of `name`'s unit in each of `located`'s shards, oldest first.
    pub(crate) fn units(&self, section: Section, located: &Located) -> Result<Vec<UnitBytes>> {
        let name = &located.page.entries[located.entry].name;
        // A project in several units: a source that fetches in parallel gets them all at once.
        let missing: Vec<(BlobKind, BlobHash, Option<u64>)> = {
            let cache = lock(&self.shards);
            located
                .shards()
                .filter(|(hash, _)| !cache.shards.contains_key(hash))
                .map(|(hash, size)| (BlobKind::Shard, hash, Some(size)))
                .collect()
        };
        if missing.len() > 1 {
            self.source.prefetch(&missing);
        }
        let mut units = Vec::new();
        for (hash, size) in located.shards() {
            let shard = self.shard(&hash, size)?;
            let range = shard_units(&shard, section.shard_tag())?
                .into_iter()
                .find(|(unit_name, _)| unit_name == name)
                .map(|(_, unit)| {
                    let start = unit.as_ptr() as usize - shard.as_ptr() as usize;
                    start..start + unit.len()
                })
                .ok_or_else(|| Error::Malformed {
                    offset: 0,
                    what: format!("shard sha256:{hash} holds no unit of {name:?}"),
                })?;
            units.push((shard, range));
        }
        Ok(units)
    }

    /// The version table of a project, without decoding files or dependency records.
    pub(crate) fn versions(&self, name: &str) -> Result<Option<Vec<VersionEntry>>> {
        let Some(located) = self.locate(Section::Pypi, name)? else {
            return Ok(None);
        };
        let mut versions = Vec::new();
        for (shard, range) in self.units(Section::Pypi, &located)? {
            let view = read_project_unit(&shard[range])?;
            versions.extend(view.heads.into_iter().map(|(entry, _, _)| entry));
        }
        versions.sort_by_cached_key(|entry| release_order_key(&entry.version));
        Ok(Some(versions))
    }

    pub(crate) fn project(&self, name: &str) -> Result<Option<Project>> {
        match self.locate(Section::Pypi, name)? {
            Some(located) => self.project_at(&located).map(Some),
            None => Ok(None),
        }
    }

    pub(crate) fn project_at(&self, located: &Located) -> Result<Project> {
        let mut releases: Vec<Release> = Vec::new();
        let units = self.units(Section::Pypi, located)?;
        let several = units.len() > 1;
        for (shard, range) in units {
            let view = read_project_unit(&shard[range])?;
            for (entry, _, detail) in view.heads {
                releases.push(decode_release(entry, detail)?);
            }
        }
        if several {
            releases.sort_by_cached_key(|release| release_order_key(&release.version));
            if let Some(pair) = releases.windows(2).find(|p| p[0].version == p[1].version) {
                return Err(Error::Malformed {
                    offset: 0,
                    what: format!("release {} is in two units", pair[0].version),
                });
            }
        }
        Ok(Project {
            name: located.page.entries[located.entry].name.clone(),
            last_serial: located.last_serial(),
            releases,
        })
    }

    pub(crate) fn conda_records(&self, name: &str) -> Result<Vec<CondaRecord>> {
        match self.locate(Section::Conda, name)? {
            Some(located) => self.conda_at(&located),
            None => Ok(Vec::new()),
        }
    }

    pub(crate) fn conda_at(&self, located: &Located) -> Result<Vec<CondaRecord>> {
        let mut records = Vec::new();
        for (shard, range) in self.units(Section::Conda, located)? {
            records.extend(decode_conda_unit(&shard[range])?);
        }
        Ok(records)
    }

    /// Fetch, check and decode every page and shard; the counts must equal the manifest's.
    pub(crate) fn verify(&self) -> Result<()> {
        let (mut projects, mut releases, mut files, mut records) = (0u64, 0u64, 0u64, 0u64);
        let mut previous: Option<String> = None;
        for index in 0..self.page_count(Section::Pypi) {
            let page = self.page(Section::Pypi, index)?;
            for entry in 0..page.entries.len() {
                let name = &page.entries[entry].name;
                if previous.as_ref().is_some_and(|previous| previous >= name) {
                    return Err(Error::Malformed {
                        offset: 0,
                        what: format!("pages out of order at {name:?}"),
                    });
                }
                let located = Located {
                    page: page.clone(),
                    entry,
                };
                let project = self.project_at(&located)?;
                projects += 1;
                releases += project.releases.len() as u64;
                for release in &project.releases {
                    files += release.files.len() as u64;
                    records += release.dependencies.len() as u64;
                }
                previous = Some(name.clone());
            }
        }
        let mut conda = 0u64;
        let mut previous: Option<String> = None;
        for index in 0..self.page_count(Section::Conda) {
            let page = self.page(Section::Conda, index)?;
            for entry in 0..page.entries.len() {
                let name = &page.entries[entry].name;
                if previous.as_ref().is_some_and(|previous| previous >= name) {
                    return Err(Error::Malformed {
                        offset: 0,
                        what: format!("conda pages out of order at {name:?}"),
                    });
                }
                conda += self
                    .conda_at(&Located {
                        page: page.clone(),
                        entry,
                    })?
                    .len() as u64;
                previous = Some(name.clone());
            }
        }
        let meta = &self.manifest.meta;
        let found = [projects, releases, files, records, conda];
        let stated = [
            meta.project_count,
            meta.release_count,
            meta.file_count,
            meta.dependency_record_count,
            meta.conda_record_count,
        ];
        if found != stated {
            return Err(Error::Malformed {
                offset: 0,
                what: format!(
                    "manifest counts (projects, releases, files, records, conda) {stated:?}, \
                     the shards hold {found:?}"
                ),
            });
        }
        Ok(())
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock leaves only a cache behind: keep using it.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `bytes` must hash to `hash`.
pub(crate) fn check_hash(kind: BlobKind, hash: &BlobHash, bytes: &[u8], from: &str) -> Result<()> {
    let actual = sha256(bytes);
    if actual != *hash {
        return Err(BlobError::HashMismatch {
            kind,
            hash: *hash,
            actual,
            from: from.to_owned(),
        }
        .into());
    }
    Ok(())
}

/// Get a blob from `source` and check its hash (and size, when known) before anything reads it.
pub(crate) fn fetch_checked(
    source: &dyn BlobSource,
    kind: BlobKind,
    hash: &BlobHash,
    size: Option<u64>,
) -> Result<Vec<u8>> {
    let bytes = source.get(kind, hash, size)?;
    check_hash(kind, hash, &bytes, &format!("{source:?}"))?;
    if let Some(size) = size
        && bytes.len() as u64 != size
    {
        return Err(Error::Malformed {
            offset: 0,
            what: format!(
                "{} sha256:{hash} is {} bytes, the snapshot says {size}",
                kind.as_str(),
                bytes.len()
            ),
        });
    }
    Ok(bytes)
}
