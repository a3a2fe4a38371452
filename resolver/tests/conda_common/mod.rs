//! The real conda repodata of `tests/data/conda` (intel linux-64/noarch/osx-64, free noarch) as a version-2
//! snapshot, for the conda tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use db_format::{CondaRecord, Project, Snapshot, SnapshotMeta, Writer};

pub fn conda_data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/conda")
}

/// The records of one repodata file (only the fields the resolver reads are checked for
/// shape here; the crawler's reader is tested in `crawler/tests/conda.rs`).
pub fn records(channel: &str, subdir: &str) -> Vec<CondaRecord> {
    let path = conda_data()
        .join(channel)
        .join(format!("{subdir}.repodata.json"));
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).expect("readable")).expect("JSON");
    let mut out = Vec::new();
    for key in ["packages", "packages.conda"] {
        let Some(packages) = json.get(key).and_then(|p| p.as_object()) else {
            continue;
        };
        for (filename, record) in packages {
            let text = |field: &str| {
                record
                    .get(field)
                    .and_then(|v| v.as_str())
                    .map(str::to_owned)
            };
            let list = |field: &str| -> Vec<String> {
                record
                    .get(field)
                    .and_then(|v| v.as_array())
                    .map(|items| {
                        items
                            .iter()
                            .filter_map(|i| i.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let sha256 = text("sha256").map(|hex_text| {
                let mut out = [0u8; 32];
                out.copy_from_slice(&hex::decode(hex_text).expect("hex"));
                out
            });
            out.push(CondaRecord {
                name: text("name").expect("name"),
                channel: channel.into(),
                subdir: subdir.into(),
                filename: filename.clone(),
                version: text("version").expect("version"),
                build: text("build").expect("build"),
                build_number: record
                    .get("build_number")
                    .and_then(|v| v.as_u64())
                    .unwrap_or(0),
                depends: list("depends"),
                constrains: list("constrains"),
                noarch: text("noarch"),
                size: record.get("size").and_then(|v| v.as_u64()).unwrap_or(0),
                sha256,
                md5: text("md5").map(|hex_text| {
                    let mut out = [0u8; 16];
                    out.copy_from_slice(&hex::decode(hex_text).expect("hex"));
                    out
                }),
                timestamp: record.get("timestamp").and_then(|v| v.as_i64()),
                url: format!("https://conda.anaconda.org/{channel}/{subdir}/{filename}"),
            });
        }
    }
    out
}

pub fn snapshot() -> Snapshot {
    snapshot_with(&[])
}

/// The conda records and `projects` (PyPI, in name order) in one snapshot.
pub fn snapshot_with(projects: &[Project]) -> Snapshot {
    let mut all: Vec<CondaRecord> = [
        ("free", "noarch"),
        ("intel", "linux-64"),
        ("intel", "noarch"),
        ("intel", "osx-64"),
    ]
    .into_iter()
    .flat_map(|(channel, subdir)| records(channel, subdir))
    .collect();
    all.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    let mut writer =
        Writer::new(std::io::Cursor::new(Vec::new()), SnapshotMeta::default()).expect("writer");
    for project in projects {
        writer.add_project(project).expect("valid project");
    }
    for record in &all {
        writer.add_conda_record(record).expect("valid record");
    }
    let bytes = writer.finish().expect("finish").0.into_inner();
    Snapshot::from_bytes(bytes).expect("opens")
}
