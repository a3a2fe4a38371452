//! `mach-nix show NAME`: what the snapshot knows of one project — releases (yanked,
//! requires-python, upload time), the dependency records with where they were read, and every
//! file with its tags, size and sha256. For users asking "why is X missing or old", and for
//! checking the database against PyPI.

use std::fmt::Write as _;
use std::str::FromStr;

use db_format::types::WheelFilename;
use db_format::{FileKind, Project, Snapshot};
use serde_json::{Value, json};

use crate::output::utc_datetime;
use crate::report::{MissingProjects, snapshot_date};
use crate::resolution::SnapshotPin;

/// `show` failures.
#[derive(Debug, thiserror::Error)]
pub enum ShowError {
    #[error("{0}")]
    NotInSnapshot(MissingProjects),
    #[error("{0:?} is not a valid project name")]
    BadName(String),
    #[error("cannot read the snapshot: {0}")]
    Snapshot(#[from] db_format::Error),
}

/// The project `name` (any spelling) from `snapshot`.
pub fn lookup(snapshot: &Snapshot, pin: &SnapshotPin, name: &str) -> Result<Project, ShowError> {
    let normalized =
        db_format::types::normalize_name(name).map_err(|_| ShowError::BadName(name.to_owned()))?;
    match snapshot.project(normalized.as_str())? {
        Some(project) => Ok(project),
        None => Err(ShowError::NotInSnapshot(MissingProjects::new(
            snapshot,
            vec![(normalized.to_string(), None)],
            snapshot_date(pin),
        )?)),
    }
}

fn time(seconds: Option<i64>) -> Value {
    seconds.map_or(Value::Null, |s| Value::String(utc_datetime(s)))
}

fn tags(filename: &str) -> Option<String> {
    fn join<T: ToString>(tags: &[T]) -> String {
        tags.iter().map(T::to_string).collect::<Vec<_>>().join(".")
    }
    WheelFilename::from_str(filename).ok().map(|wheel| {
        format!(
            "{}-{}-{}",
            join(wheel.python_tags()),
            join(wheel.abi_tags()),
            join(wheel.platform_tags())
        )
    })
}

/// The project as JSON (stable keys, for scripts).
pub fn to_json(project: &Project, pin: &SnapshotPin) -> Value {
    let releases: Vec<Value> = project
        .releases
        .iter()
        .map(|release| {
            json!({
                "version": release.version,
                "yanked": release.yanked,
                "requires_python": release.requires_python,
                "upload_time": time(release.upload_time),
                "dependencies": release.dependencies.iter().map(|record| json!({
                    "source": record.source.as_str(),
                    "detail": record.detail,
                    "requires_python": record.requires_python,
                    "requires_dist": record.requires_dist,
                    "provides_extra": record.provides_extra,
                    "build_requires": record.build_requires,
                    "build_backend": record.build_backend,
                })).collect::<Vec<_>>(),
                "files": release.files.iter().map(|file| json!({
                    "filename": file.filename,
                    "kind": match file.kind { FileKind::Wheel => "wheel", FileKind::Sdist => "sdist", FileKind::Other => "other" },
                    "tags": tags(&file.filename),
                    "size": file.size,
                    "sha256": file.sha256.map(hex::encode),
                    "upload_time": time(file.upload_time),
                    "yanked": file.yanked,
                    "requires_python": file.requires_python,
                    "url": file.url,
                    "dependencies": file.dependencies,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "name": project.name,
        "last_serial": project.last_serial,
        "snapshot": { "sha256": pin.sha256, "date": snapshot_date(pin) },
        "releases": releases,
    })
}

/// The project for people.
pub fn to_text(project: &Project, pin: &SnapshotPin) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} ({} releases; snapshot sha256:{} of {})",
        project.name,
        project.releases.len(),
        pin.sha256,
        snapshot_date(pin)
    );
    for release in &project.releases {
        let mut facts = Vec::new();
        if let Some(reason) = &release.yanked {
            facts.push(if reason.is_empty() {
                "yanked".to_owned()
            } else {
                format!("yanked: {reason}")
            });
        }
        if let Some(spec) = &release.requires_python {
            facts.push(format!("requires-python {spec}"));
        }
        if let Some(time) = release.upload_time {
            facts.push(format!("uploaded {}", &utc_datetime(time)[..10]));
        }
        let _ = writeln!(
            out,
            "\n{} {}",
            release.version,
            if facts.is_empty() {
                String::new()
            } else {
                format!("({})", facts.join(", "))
            }
        );
        for (index, record) in release.dependencies.iter().enumerate() {
            let detail = record
                .detail
                .as_deref()
                .map(|d| format!(": {d}"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  dependencies #{index} from {}{detail}",
                record.source.as_str()
            );
            for requirement in &record.requires_dist {
                let _ = writeln!(out, "    {requirement}");
            }
            if !record.build_requires.is_empty() {
                let backend = record
                    .build_backend
                    .as_deref()
                    .unwrap_or("(no backend declared)");
                let _ = writeln!(
                    out,
                    "    build: {} via {backend}",
                    record.build_requires.join(", ")
                );
            }
        }
        for file in &release.files {
            let sha = file
                .sha256
                .map(hex::encode)
                .unwrap_or_else(|| "(no sha256)".to_owned());
            let deps = file
                .dependencies
                .map(|i| format!(" deps #{i}"))
                .unwrap_or_else(|| " deps not examined".to_owned());
            let yanked = if file.yanked.is_some() { " yanked" } else { "" };
            let _ = writeln!(
                out,
                "  {} {} bytes sha256:{sha}{deps}{yanked}",
                file.filename, file.size
            );
        }
    }
    out
}
