//! Format 3 at PyPI's scale: a synthetic PyPI published as a sharded snapshot, then a simulated
//! day of changes published on top of it. Prints bytes per file, the compression ratio, the
//! manifest and page sizes, the day's new bytes as a share of the whole, what a cold fetch of a
//! 50-project closure costs, wall time and peak RSS.
//!
//! Releases, files and wheels per project are drawn from `data/pypi-random-sample-counts.tsv`
//! (392 projects drawn uniformly at random from PyPI's 927,088; see its README in
//! `shared/data/pypi-scale`). File names, hashes (random: they are what does not compress),
//! sizes, upload times, URLs and requirement lists are shaped like PyPI's.
//!
//! `MNX_SCALE_PROJECTS` (default 100,000; 927,088 is PyPI) sets the size;
//! `MNX_SCALE_DIR` keeps the published blobs in that directory (default: a temporary one).
//! Run: `MNX_SCALE_PROJECTS=927088 cargo bench -p db-format --bench sharded_scale`.
//! A benchmark, not a test: it asserts nothing; `publish-db` on a real or generated crawl
//! state reports the same figures (`index.json`: `size`, `manifest_size`, `new_bytes`).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use db_format::blob::{BlobHash, BlobKind, DirSource};
use db_format::{
    BlobSink, DependencyRecord, File, FileKind, MetadataSource, Project, Release, ShardedWriter,
    Snapshot, SnapshotMeta,
};

/// PyPI's project count (root simple index, 2026-11-29).
const PYPI_PROJECTS: usize = 927_088;
/// A simulated day at PyPI's scale: 20,000 new releases across 10,000 projects.
const DAY_PROJECTS: usize = 10_000;
const DAY_RELEASES_EACH: usize = 2;

/// splitmix64: a small deterministic generator (the same data on every run).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn bytes32(&mut self) -> [u8; 32] {
        let mut out = [0u8; 32];
        for chunk in out.chunks_mut(8) {
            chunk.copy_from_slice(&self.next().to_le_bytes());
        }
        out
    }
}

fn counts() -> Vec<(usize, usize, usize)> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/data/pypi-random-sample-counts.tsv");
    let text = std::fs::read_to_string(&path).expect("the sample counts");
    text.lines()
        .skip(1)
        .map(|line| {
            let fields: Vec<usize> = line
                .split('\t')
                .map(|field| field.parse().expect("a count"))
                .collect();
            (fields[0], fields[1], fields[2])
        })
        .collect()
}

const SYLLABLES: [&str; 16] = [
    "py", "data", "flask", "django", "aws", "test", "json", "lib", "net", "ml", "tools", "client",
    "api", "core", "utils", "async",
];
const WHEEL_TAGS: [&str; 8] = [
    "py3-none-any",
    "py2.py3-none-any",
    "cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64",
    "cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64",
    "cp311-cp311-macosx_11_0_arm64",
    "cp312-cp312-win_amd64",
    "cp310-cp310-musllinux_1_1_x86_64",
    "cp39-cp39-manylinux_2_17_aarch64.manylinux2014_aarch64",
];
const REQUIREMENTS: [&str; 12] = [
    "requests>=2.25",
    "numpy>=1.21",
    "typing-extensions>=4.0; python_version < \"3.11\"",
    "click>=8",
    "pydantic<3,>=1.10",
    "urllib3<3,>=1.21.1",
    "attrs>=21.3.0",
    "pytest>=7; extra == \"test\"",
    "importlib-metadata>=4.6; python_version < \"3.10\"",
    "six",
    "packaging>=20",
    "python-dateutil>=2.8.2",
];

fn name(index: usize) -> String {
    let mut rng = Rng(index as u64 * 7919);
    let parts = 1 + rng.below(3);
    let mut name: Vec<&str> = (0..parts).map(|_| SYLLABLES[rng.below(16)]).collect();
    name.dedup();
    format!("{}-{index}", name.join("-"))
}

fn release(
    rng: &mut Rng,
    name: &str,
    number: usize,
    files: usize,
    wheels: usize,
    deps: &[String],
) -> Release {
    let version = format!("{}.{}.{}", number / 20, (number / 4) % 5, number % 4);
    let time = 1_300_000_000 + number as i64 * 2_000_000 + rng.below(1_000_000) as i64;
    let stem = name.replace('-', "_");
    let mut out_files = Vec::with_capacity(files);
    for index in 0..files {
        let filename = if index < wheels.min(files) {
            let tag = WHEEL_TAGS[index % WHEEL_TAGS.len()];
            match index / WHEEL_TAGS.len() {
                0 => format!("{stem}-{version}-{tag}.whl"),
                build => format!("{stem}-{version}-{build}-{tag}.whl"),
            }
        } else if index == wheels {
            format!("{stem}-{version}.tar.gz")
        } else {
            format!("{stem}-{version}-{index}.zip")
        };
        let digest = rng.bytes32();
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        out_files.push(File {
            url: format!(
                "https://files.pythonhosted.org/packages/{}/{}/{}/{filename}",
                &hex[..2],
                &hex[2..4],
                &hex[4..]
            ),
            kind: FileKind::of(&filename),
            filename,
            size: 10_000 + rng.below(5_000_000) as u64,
            sha256: Some(rng.bytes32()),
            upload_time: Some(time + index as i64),
            dependencies: Some(0),
            ..File::default()
        });
    }
    Release {
        version,
        requires_python: Some(">=3.8".into()),
        upload_time: Some(time),
        dependencies: vec![DependencyRecord {
            source: MetadataSource::WheelMetadata,
            requires_python: Some(">=3.8".into()),
            requires_dist: deps.to_vec(),
            ..DependencyRecord::default()
        }],
        files: out_files,
        ..Release::default()
    }
}

/// Project `index` with its first `releases` releases (of the sampled count, plus `extra`).
fn project(index: usize, counts: &[(usize, usize, usize)], extra: usize) -> Project {
    let mut rng = Rng(index as u64);
    let (releases, files, wheels) = counts[rng.below(counts.len())];
    let name = name(index);
    let deps: Vec<String> = (0..rng.below(6))
        .map(|_| REQUIREMENTS[rng.below(REQUIREMENTS.len())].to_string())
        .collect();
    let per_release = files.div_ceil(releases.max(1)).max(1);
    let wheels_each = wheels.div_ceil(releases.max(1));
    let total = releases + extra;
    let releases = (0..total)
        .map(|number| {
            let mut release_rng = Rng((index as u64) << 20 | number as u64);
            release(
                &mut release_rng,
                &name,
                number,
                per_release,
                wheels_each,
                &deps,
            )
        })
        .collect();
    Project {
        name,
        last_serial: index as u64,
        releases,
    }
}

/// Writes blobs into a directory (no fsync: a benchmark, not a publish) and counts them.
struct Tree {
    root: PathBuf,
    written: u64,
    bytes: u64,
}

impl BlobSink for Tree {
    fn put(&mut self, kind: BlobKind, hash: &BlobHash, bytes: &[u8]) -> db_format::Result<()> {
        let path = self.root.join(kind.path(hash));
        if path.exists() {
            return Ok(());
        }
        std::fs::create_dir_all(path.parent().expect("a parent"))
            .map_err(db_format::Error::Write)?;
        std::fs::write(&path, bytes).map_err(db_format::Error::Write)?;
        self.written += 1;
        self.bytes += bytes.len() as u64;
        Ok(())
    }
}

fn peak_rss_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|kb| kb.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb / 1024)
}

fn publish(
    root: &Path,
    names: &[(String, usize)],
    counts: &[(usize, usize, usize)],
    grown: &HashSet<usize>,
    previous: Option<&Snapshot>,
) -> (db_format::ShardedStats, u64, u64) {
    let mut tree = Tree {
        root: root.to_owned(),
        written: 0,
        bytes: 0,
    };
    let mut writer = ShardedWriter::new(&mut tree, SnapshotMeta::default(), previous);
    for (_, index) in names {
        let extra = if grown.contains(index) {
            DAY_RELEASES_EACH
        } else {
            0
        };
        writer
            .add_project(&project(*index, counts, extra))
            .expect("a valid project");
    }
    let (_, stats) = writer.finish().expect("finishes");
    (stats, tree.written, tree.bytes)
}

fn main() {
    let projects: usize = std::env::var("MNX_SCALE_PROJECTS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(100_000);
    let temp = tempfile::tempdir().expect("temp dir");
    let root =
        std::env::var_os("MNX_SCALE_DIR").map_or_else(|| temp.path().to_owned(), PathBuf::from);
    let counts = counts();
    let mut names: Vec<(String, usize)> = (0..projects).map(|index| (name(index), index)).collect();
    names.sort();

    let started = Instant::now();
    let (base, _, _) = publish(&root, &names, &counts, &HashSet::new(), None);
    let base_time = started.elapsed();
    let snapshot =
        Snapshot::from_source(&base.manifest, Box::new(DirSource::new(&root))).expect("opens");
    let blobs = snapshot.blobs().expect("every page");
    let total: u64 = blobs.iter().map(|(_, _, size)| size).sum();
    let pages: u64 = blobs.len() as u64;
    let meta = &base.meta;
    println!(
        "synthetic PyPI: {} projects, {} releases, {} files",
        meta.project_count, meta.release_count, meta.file_count
    );
    println!(
        "publish: {:.1} s, peak RSS {} MiB; {} blobs, {} bytes in all ({:.1} B/file); units {} raw bytes, compressed {:.2}x",
        base_time.as_secs_f64(),
        peak_rss_mib(),
        pages,
        total,
        total as f64 / meta.file_count as f64,
        base.unit_bytes_written,
        base.unit_bytes_written as f64 / (total - base.manifest_bytes) as f64,
    );
    println!("manifest: {} bytes", base.manifest_bytes);

    // A day: 20,000 new releases across 10,000 projects at PyPI's scale (scaled to this size),
    // the projects drawn with weight by size (busy projects release more often).
    let day = (DAY_PROJECTS * projects).div_ceil(PYPI_PROJECTS).max(1);
    let mut rng = Rng(42);
    let mut grown = HashSet::new();
    while grown.len() < day {
        let a = rng.below(projects);
        let b = rng.below(projects);
        let size = |index: usize| counts[Rng(index as u64).below(counts.len())].1;
        grown.insert(if size(a) >= size(b) { a } else { b });
    }
    let started = Instant::now();
    let (next, written, bytes) = publish(&root, &names, &counts, &grown, Some(&snapshot));
    println!(
        "day of changes ({} projects, {} new releases): {:.1} s, {} new blobs, {} new bytes = {:.3} % of the snapshot ({} units written, {} kept; new manifest {} bytes)",
        day,
        day * DAY_RELEASES_EACH,
        started.elapsed().as_secs_f64(),
        written,
        bytes,
        bytes as f64 * 100.0 / total as f64,
        next.units_written,
        next.units_kept,
        next.manifest_bytes,
    );

    // A cold fetch of a 50-project closure: the manifest, the pages and shards the 50 need.
    let next_snapshot =
        Snapshot::from_source(&next.manifest, Box::new(DirSource::new(&root))).expect("opens");
    let mut closure = HashSet::new();
    while closure.len() < 50.min(projects) {
        let a = rng.below(projects);
        let b = rng.below(projects);
        let size = |index: usize| counts[Rng(index as u64).below(counts.len())].1;
        closure.insert(if size(a) >= size(b) { a } else { b });
    }
    let counting = Counting::new(&root);
    let fetched = counting.bytes.clone();
    let cold = Snapshot::from_source(&next.manifest, Box::new(counting)).expect("opens");
    for index in &closure {
        cold.project(&name(*index))
            .expect("decodes")
            .expect("present");
    }
    println!(
        "cold fetch of a 50-project closure (drawn by size): {} bytes in {} requests",
        fetched.0.load(std::sync::atomic::Ordering::Relaxed),
        fetched.1.load(std::sync::atomic::Ordering::Relaxed),
    );
    drop(next_snapshot);
}

#[derive(Debug)]
struct Counting {
    inner: DirSource,
    bytes: std::sync::Arc<(std::sync::atomic::AtomicU64, std::sync::atomic::AtomicU64)>,
}

impl Counting {
    fn new(root: &Path) -> Self {
        Counting {
            inner: DirSource::new(root),
            bytes: Default::default(),
        }
    }
}

impl db_format::blob::BlobSource for Counting {
    fn get(
        &self,
        kind: BlobKind,
        hash: &BlobHash,
        size: Option<u64>,
    ) -> Result<Vec<u8>, db_format::blob::BlobError> {
        let bytes = self.inner.get(kind, hash, size)?;
        self.bytes
            .0
            .fetch_add(bytes.len() as u64, std::sync::atomic::Ordering::Relaxed);
        self.bytes
            .1
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(bytes)
    }
}
