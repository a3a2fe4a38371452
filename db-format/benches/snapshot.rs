//! Snapshot benchmarks: writer throughput, `open` + one lookup, and lookup alone, on a
//! synthetic snapshot of 1.2 M releases (100,000 projects × 12 releases × 3 files), shaped like
//! PyPI (an sdist and two wheels per release, dependency lists shared between releases).
//! Run with `cargo bench -p db-format`; sizes per release and per file are printed first.

use std::hint::black_box;
use std::io::BufWriter;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use db_format::{
    DependencyRecord, File, FileKind, MetadataSource, Project, Release, Snapshot, SnapshotMeta,
    Writer,
};

const PROJECTS: u32 = 100_000;
const RELEASES: u32 = 12;

fn project(index: u32) -> Project {
    let name = format!("project-{index:06}");
    let releases = (0..RELEASES)
        .map(|minor| {
            let version = format!("1.{minor}.0");
            let record = DependencyRecord {
                source: MetadataSource::WheelMetadata,
                requires_python: Some(">=3.8".into()),
                requires_dist: vec![
                    format!("project-{:06}>=1.{}", (index * 7 + 1) % PROJECTS, minor / 4),
                    format!("project-{:06}", (index * 13 + 5) % PROJECTS),
                    "typing-extensions>=4; python_version < \"3.11\"".into(),
                ],
                ..DependencyRecord::default()
            };
            let file = |filename: String, n: u32| {
                let mut sha256 = [0u8; 32];
                for (i, byte) in sha256.iter_mut().enumerate() {
                    *byte =
                        (index.wrapping_mul(2654435761) ^ (minor * 31 + n * 7 + i as u32)) as u8;
                }
                File {
                    kind: FileKind::of(&filename),
                    url: format!(
                        "https://files.pythonhosted.org/packages/{:02x}/{:02x}/{}/{filename}",
                        sha256[0],
                        sha256[1],
                        "0123456789abcdef".repeat(4).get(4..).unwrap_or_default()
                    ),
                    filename,
                    size: 40_000 + u64::from(n) * 1000,
                    sha256: Some(sha256),
                    upload_time: Some(1_600_000_000 + i64::from(minor) * 86_400),
                    yanked: None,
                    requires_python: Some(">=3.8".into()),
                    dependencies: Some(0),
                }
            };
            let stem = format!("project_{index:06}-{version}");
            Release {
                version: version.clone(),
                yanked: None,
                requires_python: Some(">=3.8".into()),
                upload_time: Some(1_600_000_000 + i64::from(minor) * 86_400),
                dependencies: vec![record],
                files: vec![
                    file(
                        format!(
                            "{stem}-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
                        ),
                        0,
                    ),
                    file(format!("{stem}-py3-none-any.whl"), 1),
                    file(format!("{stem}.tar.gz"), 2),
                ],
            }
        })
        .collect();
    Project {
        name,
        last_serial: u64::from(index),
        releases,
    }
}

fn write_snapshot(path: &std::path::Path) -> db_format::WriterStats {
    let out = BufWriter::new(std::fs::File::create(path).expect("create"));
    let mut writer = Writer::new(out, SnapshotMeta::default()).expect("header");
    for index in 0..PROJECTS {
        writer.add_project(&project(index)).expect("add");
    }
    writer.finish().expect("finish").1
}

fn benches(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bench.mnxdb");
    let started = Instant::now();
    let stats = write_snapshot(&path);
    let elapsed = started.elapsed().as_secs_f64();
    let releases = stats.meta.release_count as f64;
    let files = stats.meta.file_count as f64;
    println!(
        "synthetic snapshot: {} projects, {releases} releases, {files} files, {} bytes; \
         {:.1} bytes/release, {:.1} bytes/file; writer {:.0} releases/s ({:.1} MB/s) incl. data generation",
        stats.meta.project_count,
        stats.total_bytes,
        stats.total_bytes as f64 / releases,
        stats.total_bytes as f64 / files,
        releases / elapsed,
        stats.total_bytes as f64 / elapsed / 1e6,
    );

    let names: Vec<String> = (0..1000)
        .map(|i| format!("project-{:06}", i * 97 % PROJECTS))
        .collect();
    c.bench_function("open + lookup one project (1.2M releases)", |b| {
        let mut i = 0;
        b.iter(|| {
            let snapshot = Snapshot::open(&path).expect("open");
            i = (i + 1) % names.len();
            black_box(
                snapshot
                    .project(&names[i])
                    .expect("lookup")
                    .expect("present"),
            )
        })
    });
    let snapshot = Snapshot::open(&path).expect("open");
    c.bench_function("lookup one project (1.2M releases)", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % names.len();
            black_box(
                snapshot
                    .project(&names[i])
                    .expect("lookup")
                    .expect("present"),
            )
        })
    });
    c.bench_function("lookup a missing project", |b| {
        b.iter(|| black_box(snapshot.project("zzz-not-there").expect("lookup")))
    });
    let mut group = c.benchmark_group("write");
    group.sample_size(10);
    group.bench_function("encode 1,000 projects (12,000 releases) in memory", |b| {
        let projects: Vec<Project> = (0..1000).map(project).collect();
        b.iter(|| {
            let mut writer = Writer::new(std::io::Cursor::new(Vec::new()), SnapshotMeta::default())
                .expect("header");
            for project in &projects {
                writer.add_project(project).expect("add");
            }
            black_box(writer.finish().expect("finish").1)
        })
    });
    group.finish();
    c.bench_function("verify full snapshot (1.2M releases)", |b| {
        b.iter(|| snapshot.verify().expect("valid"))
    });
}

criterion_group! {
    name = snapshot;
    config = Criterion::default().sample_size(20);
    targets = benches
}
criterion_main!(snapshot);
