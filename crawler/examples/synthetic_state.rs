//! A synthetic crawl state at PyPI's full size, for measuring `publish-db` and the snapshot
//! format where a real crawl of all of PyPI (days at a polite rate) is out of reach.
//!
//! ```sh
//! cargo run --release -p crawler --example synthetic_state -- --state DIR [--scale 0.05] [--seed 1]
//! cargo run --release -p crawler --example synthetic_state -- --state DIR --add-day 1 [--scale 0.05]
//! ```
//!
//! What it is drawn from (`crawler/data/pypi-scale/README.md` says where each file comes from):
//! - **Projects**: 927,088 × `--scale`, spread evenly over the real PyPI names in
//!   `data/pypi-scale/names.txt.zst` (886,323 names); the 40,765 names PyPI has beyond that
//!   list are made by joining two real names with `-`.
//! - **Releases, files and wheels per project**: one row of `random-sample-counts.tsv` (392
//!   projects drawn uniformly from PyPI's root index) per project, drawn uniformly, so the means
//!   and the heavy tail are PyPI's. Wheels and sdists are spread over the releases, newest
//!   first.
//! - **Versions, `Requires-Python`, `Requires-Dist` and pure-Python wheel tags**: the recorded
//!   real PyPI pages and METADATA files under `crawler/tests/data/` (a requirement keeps its
//!   specifier, extra and marker; its name becomes another synthetic project, so the
//!   dependency graph spans the state). Releases older than a project's newest count its
//!   version down. Binary projects (more wheels than releases) take their tags from
//!   [`BINARY_TAGS`], the CPython × platform grid binary projects publish (the fixtures hold
//!   only one binary wheel).
//! - **Hashes, sizes, URLs, upload times**: random (hashes are incompressible, as real ones).
//! - **How dependencies were read**: wheels by PEP 658 or range requests, sdists by the static
//!   readers in the proportions measured in `shared/PYPI-HERE.md` (7.3% need a build).
//!
//! Everything is written through the crawler's own [`State`] API, so the schema stays one.
//! Project `i` is a function of `(--seed, i)` alone: the same seed gives the same state, and a
//! smaller scale is a subset of a larger one.
//!
//! `--add-day N` adds a simulated day of changes to an existing state: `20,000 × scale` new
//! releases across `10,000 × scale` existing projects (each a copy of that project's newest
//! release with the next version, new hashes and an upload a day later), as the daily job sees.

use std::collections::HashSet;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use clap::Parser;
use crawler::extract::{EXTRACTOR_VERSION, Method};
use crawler::state::{Extracted, ProjectCommit, State, StoredFile};
use db_format::{DependencyRecord, FileKind, MetadataSource};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Projects in PyPI's root index on 2026-11-29.
const PYPI_PROJECTS: u64 = 927_088;
/// A simulated day at full scale.
const DAY_RELEASES: u64 = 20_000;
const DAY_PROJECTS: u64 = 10_000;
/// Upload times fall between 2008-01-01 and 2026-11-01.
const FIRST_UPLOAD: i64 = 1_199_145_600;
const LAST_UPLOAD: i64 = 1_793_491_200;
const DAY: i64 = 86_400;

/// The CPython × platform grid of binary wheels, newest Python first; a release with `m`
/// binary wheels takes the first `m` (older releases start at older Pythons).
const BINARY_TAGS: &[&str] = &[
    "manylinux_2_17_x86_64.manylinux2014_x86_64",
    "manylinux_2_17_aarch64.manylinux2014_aarch64",
    "macosx_11_0_arm64",
    "macosx_10_9_x86_64",
    "win_amd64",
    "musllinux_1_2_x86_64",
    "win32",
    "musllinux_1_2_aarch64",
    "manylinux_2_17_i686.manylinux2014_i686",
];
const PYTHONS: &[&str] = &[
    "cp313", "cp312", "cp311", "cp310", "cp39", "cp38", "cp37", "cp36",
];

/// Build requirements and backends of sdists (those of the recorded sdists and the build
/// wheels under `crawler/tests/data/build`).
const BUILD_SYSTEMS: &[(&[&str], Option<&str>)] = &[
    (&["setuptools>=40.8.0", "wheel"], None),
    (&["setuptools>=61.0"], Some("setuptools.build_meta")),
    (&["hatchling"], Some("hatchling.build")),
    (&["flit_core >=3.2,<4"], Some("flit_core.buildapi")),
    (
        &["hatchling", "hatch-requirements-txt"],
        Some("hatchling.build"),
    ),
];

#[derive(Debug, Parser)]
struct Args {
    /// The crawl state directory (created if missing).
    #[arg(long)]
    state: PathBuf,
    /// Fraction of PyPI's 927,088 projects to generate.
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Add simulated day N of changes to the existing state instead of generating it.
    #[arg(long)]
    add_day: Option<u64>,
}

/// Real data the synthetic projects are drawn from.
#[derive(Debug)]
struct Pools {
    /// (releases, files, wheels) per sampled project.
    counts: Vec<(u64, u64, u64)>,
    versions: Vec<String>,
    requires_python: Vec<Option<String>>,
    /// `Requires-Dist` values with the name cut off (specifier, extras, marker), and the extra
    /// the marker names, if any.
    requirement_tails: Vec<(String, Option<String>)>,
    /// Requirement counts per recorded METADATA file.
    requirement_counts: Vec<usize>,
    pure_tags: Vec<String>,
}

type BoxError = Box<dyn std::error::Error>;

fn main() -> Result<(), BoxError> {
    let args = Args::parse();
    if !(args.scale > 0.0 && args.scale <= 1.0) {
        return Err(format!("--scale must be in (0, 1], not {}", args.scale).into());
    }
    let data = Path::new(env!("CARGO_MANIFEST_DIR"));
    let pools = Pools::read(data)?;
    let names = names(&data.join("data/pypi-scale/names.txt.zst"), args.seed)?;
    let mut state = State::open(&args.state)?;
    let started = std::time::Instant::now();
    let (projects, files) = match args.add_day {
        None => generate(&mut state, &pools, &names, &args)?,
        Some(day) => add_day(&mut state, day, &args)?,
    };
    eprintln!(
        "{} projects, {files} files written to {} in {:.1}s",
        projects,
        args.state.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// A deterministic generator for item `index` of stream `stream`.
fn rng_for(seed: u64, stream: u64, index: u64) -> StdRng {
    let mut x = seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ index.rotate_left(32);
    // splitmix64: neighbouring indexes get unrelated seeds.
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    StdRng::seed_from_u64(x ^ (x >> 31))
}

fn scaled(full: u64, scale: f64) -> u64 {
    ((full as f64 * scale).round() as u64).max(1)
}

/// All 927,088 names, sorted: the real list and joined names for the rest.
fn names(path: &Path, seed: u64) -> Result<Vec<String>, BoxError> {
    let file = fs_err::File::open(path)?;
    let mut text = String::new();
    ruzstd::decoding::StreamingDecoder::new(file)
        .map_err(|err| format!("{}: {err}", path.display()))?
        .read_to_string(&mut text)?;
    let mut names: Vec<String> = text.lines().map(str::to_owned).collect();
    let real = names.len();
    let mut known: HashSet<String> = names.iter().cloned().collect();
    let mut rng = rng_for(seed, 1, 0);
    while (names.len() as u64) < PYPI_PROJECTS {
        let a = &names[rng.random_range(0..real)];
        let b = &names[rng.random_range(0..real)];
        let joined = format!("{a}-{b}");
        if joined.len() <= 60 && known.insert(joined.clone()) {
            names.push(joined);
        }
    }
    names.sort_unstable();
    Ok(names)
}

impl Pools {
    fn read(crate_dir: &Path) -> Result<Pools, BoxError> {
        let counts_path = crate_dir.join("data/pypi-scale/random-sample-counts.tsv");
        let mut counts = Vec::new();
        for (number, line) in fs_err::read_to_string(&counts_path)?
            .lines()
            .enumerate()
            .skip(1)
        {
            let fields: Vec<u64> = line
                .split('\t')
                .map(str::parse)
                .collect::<Result<_, _>>()
                .map_err(|err| format!("{}:{}: {err}", counts_path.display(), number + 1))?;
            match fields.as_slice() {
                [releases, files, wheels] => counts.push((*releases, *files, *wheels)),
                _ => {
                    return Err(format!(
                        "{}:{}: expected releases, files, wheels",
                        counts_path.display(),
                        number + 1
                    )
                    .into());
                }
            }
        }
        let fixtures = crate_dir.join("tests/data");
        let mut versions = HashSet::new();
        let mut requires_python = HashSet::new();
        let mut pure_tags = HashSet::new();
        for entry in fs_err::read_dir(fixtures.join("simple"))? {
            let path = entry?.path();
            let page: serde_json::Value = serde_json::from_slice(&fs_err::read(&path)?)?;
            for version in page["versions"].as_array().into_iter().flatten() {
                versions.extend(version.as_str().map(str::to_owned));
            }
            for file in page["files"].as_array().into_iter().flatten() {
                requires_python.insert(file["requires-python"].as_str().map(str::to_owned));
                let filename = file["filename"].as_str().unwrap_or_default();
                if let Some(stem) = filename.strip_suffix(".whl") {
                    let tag: Vec<&str> = stem.rsplitn(4, '-').take(3).collect();
                    if let [platform, abi, python] = tag.as_slice()
                        && *platform == "any"
                    {
                        pure_tags.insert(format!("{python}-{abi}-{platform}"));
                    }
                }
            }
        }
        let mut tails = HashSet::new();
        let mut requirement_counts = Vec::new();
        for entry in fs_err::read_dir(fixtures.join("files"))? {
            let path = entry?.path();
            if path.extension().is_none_or(|ext| ext != "metadata") {
                continue;
            }
            let text = fs_err::read_to_string(&path)?;
            let mut count = 0;
            for value in text
                .lines()
                .filter_map(|line| line.strip_prefix("Requires-Dist:"))
            {
                count += 1;
                let value = value.trim();
                let cut = value
                    .find(|c: char| !(c.is_ascii_alphanumeric() || "-_.".contains(c)))
                    .unwrap_or(value.len());
                let tail = value[cut..].to_owned();
                let extra = tail.split_once("extra ==").map(|(_, rest)| {
                    rest.trim()
                        .trim_matches(|c| c == '"' || c == '\'')
                        .to_owned()
                });
                tails.insert((tail, extra));
            }
            requirement_counts.push(count);
        }
        let sorted = |set: HashSet<String>| {
            let mut list: Vec<String> = set.into_iter().collect();
            list.sort();
            list
        };
        let mut requires_python: Vec<Option<String>> = requires_python.into_iter().collect();
        requires_python.sort();
        let mut requirement_tails: Vec<(String, Option<String>)> = tails.into_iter().collect();
        requirement_tails.sort();
        requirement_counts.sort_unstable();
        let pools = Pools {
            counts,
            versions: sorted(versions),
            requires_python,
            requirement_tails,
            requirement_counts,
            pure_tags: sorted(pure_tags),
        };
        if pools.counts.is_empty()
            || pools.versions.is_empty()
            || pools.requirement_tails.is_empty()
            || pools.pure_tags.is_empty()
        {
            return Err(format!("{}: the real data pools are empty", fixtures.display()).into());
        }
        Ok(pools)
    }
}

fn generate(
    state: &mut State,
    pools: &Pools,
    names: &[String],
    args: &Args,
) -> Result<(u64, u64), BoxError> {
    let count = scaled(PYPI_PROJECTS, args.scale);
    let mut files = 0;
    for j in 0..count {
        let index = j * PYPI_PROJECTS / count;
        let mut rng = rng_for(args.seed, 2, index);
        let name = &names[usize::try_from(index)?];
        let project_files = project(&mut rng, pools, names, name);
        files += project_files.len() as u64;
        state.commit_project(
            None,
            &ProjectCommit {
                name: name.clone(),
                last_serial: index + 1,
                etag: None,
                files: project_files,
                enqueue: Vec::new(),
            },
        )?;
        if (j + 1) % 50_000 == 0 {
            eprintln!("{} of {count} projects", j + 1);
        }
    }
    Ok((count, files))
}

/// One project's files.
fn project(rng: &mut StdRng, pools: &Pools, names: &[String], name: &str) -> Vec<StoredFile> {
    let (releases, files, wheels) = pools.counts[rng.random_range(0..pools.counts.len())];
    let releases = releases.max(1);
    let sdists = files.saturating_sub(wheels);
    let versions = versions(rng, &pools.versions, releases);
    let binary = wheels > releases;
    let stem = name.replace('-', "_");
    let mut time = rng.random_range(FIRST_UPLOAD..LAST_UPLOAD);
    let mut requires_python =
        pools.requires_python[rng.random_range(0..pools.requires_python.len())].clone();
    let mut requirements = requirements(rng, pools, names);
    let build = BUILD_SYSTEMS[rng.random_range(0..BUILD_SYSTEMS.len())];
    let mut out = Vec::new();
    // Oldest first; the newest releases get the remainders of wheels and sdists.
    for (age, version) in versions.iter().enumerate().rev() {
        let age = age as u64;
        let share = |total: u64| total / releases + u64::from(age < total % releases);
        if rng.random_bool(0.2) {
            requires_python =
                pools.requires_python[rng.random_range(0..pools.requires_python.len())].clone();
        }
        if rng.random_bool(0.3) {
            requirements = requirements_changed(rng, pools, names, requirements);
        }
        let extras = extras_of(pools, &requirements);
        let wheel_record = DependencyRecord {
            source: MetadataSource::WheelMetadata,
            detail: None,
            requires_python: requires_python.clone(),
            requires_dist: requirements.clone(),
            provides_extra: extras.clone(),
            build_requires: Vec::new(),
            build_backend: None,
        };
        for n in 0..share(wheels) {
            let tag = if binary {
                let python =
                    PYTHONS[(age as usize / 4 + n as usize / BINARY_TAGS.len()) % PYTHONS.len()];
                format!(
                    "{python}-{python}-{}",
                    BINARY_TAGS[n as usize % BINARY_TAGS.len()]
                )
            } else {
                pools.pure_tags[n as usize % pools.pure_tags.len()].clone()
            };
            let method = if rng.random_bool(0.23) {
                Method::Pep658
            } else {
                Method::Range
            };
            out.push(file(
                rng,
                format!("{stem}-{version}-{tag}.whl"),
                version,
                FileKind::Wheel,
                time,
                &requires_python,
                Extracted {
                    record: wheel_record.clone(),
                    method: method.as_str().to_owned(),
                    extractor: EXTRACTOR_VERSION,
                },
            ));
        }
        for n in 0..share(sdists) {
            let suffix = if n == 0 {
                "tar.gz".to_owned()
            } else {
                format!("{n}.zip")
            };
            let record = sdist_record(rng, &wheel_record, build);
            let method = if record.source == MetadataSource::Unknown {
                Method::SdistNeedsBuild
            } else {
                Method::Sdist
            };
            out.push(file(
                rng,
                format!("{stem}-{version}.{suffix}"),
                version,
                FileKind::Sdist,
                time,
                &requires_python,
                Extracted {
                    record,
                    method: method.as_str().to_owned(),
                    extractor: EXTRACTOR_VERSION,
                },
            ));
        }
        time = (time + rng.random_range(DAY..120 * DAY)).min(LAST_UPLOAD);
    }
    out
}

/// `count` versions, newest first: a real version, then counting down from it.
fn versions(rng: &mut StdRng, real: &[String], count: u64) -> Vec<String> {
    let newest = &real[rng.random_range(0..real.len())];
    let mut parts: Vec<u64> = newest
        .split(|c: char| !c.is_ascii_digit())
        .take_while(|part| !part.is_empty())
        .filter_map(|part| part.parse().ok())
        .collect();
    if parts.is_empty() {
        parts.push(1);
    }
    let mut out = vec![newest.clone()];
    let mut seen: HashSet<String> = out.iter().cloned().collect();
    let mut fallback = 0;
    while (out.len() as u64) < count {
        // Count the last part down; borrow from the one before when it reaches zero.
        let mut at = parts.len() - 1;
        while at > 0 && parts[at] == 0 {
            parts[at] = rng.random_range(0..10);
            at -= 1;
        }
        let version = if parts[at] > 0 {
            parts[at] -= 1;
            parts
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(".")
        } else {
            fallback += 1;
            format!("0.0.0.dev{fallback}")
        };
        if seen.insert(version.clone()) {
            out.push(version);
        }
    }
    out
}

fn requirements(rng: &mut StdRng, pools: &Pools, names: &[String]) -> Vec<String> {
    let count = pools.requirement_counts[rng.random_range(0..pools.requirement_counts.len())];
    (0..count).map(|_| requirement(rng, pools, names)).collect()
}

/// A real requirement's specifier and marker on another synthetic project; dependencies lean
/// towards a few popular names, as on PyPI.
fn requirement(rng: &mut StdRng, pools: &Pools, names: &[String]) -> String {
    let (tail, _) = &pools.requirement_tails[rng.random_range(0..pools.requirement_tails.len())];
    let rank = ((names.len() - 1) as f64 * rng.random::<f64>().powi(4)) as u64;
    // Ranks are scattered over the alphabet by a multiplicative permutation.
    let target = &names[(rank.wrapping_mul(2_654_435_761) % names.len() as u64) as usize];
    format!("{target}{tail}")
}

fn requirements_changed(
    rng: &mut StdRng,
    pools: &Pools,
    names: &[String],
    mut requirements: Vec<String>,
) -> Vec<String> {
    if !requirements.is_empty() && rng.random_bool(0.5) {
        let at = rng.random_range(0..requirements.len());
        requirements.remove(at);
    } else {
        requirements.push(requirement(rng, pools, names));
    }
    requirements
}

fn extras_of(pools: &Pools, requirements: &[String]) -> Vec<String> {
    let mut extras: Vec<String> = pools
        .requirement_tails
        .iter()
        .filter(|(tail, _)| requirements.iter().any(|req| req.ends_with(tail.as_str())))
        .filter_map(|(_, extra)| extra.clone())
        .collect();
    extras.sort();
    extras.dedup();
    extras
}

/// An sdist's record: static readers in the measured proportions, else "needs a build".
fn sdist_record(
    rng: &mut StdRng,
    wheel: &DependencyRecord,
    (build_requires, backend): (&[&str], Option<&str>),
) -> DependencyRecord {
    let roll = rng.random::<f64>();
    let source = match roll {
        r if r < 0.46 => MetadataSource::EggInfo,
        r if r < 0.89 => MetadataSource::SdistPkgInfo,
        r if r < 0.91 => MetadataSource::Pyproject,
        r if r < 0.927 => MetadataSource::SetupCfg,
        _ => MetadataSource::Unknown,
    };
    let build_requires = build_requires.iter().map(|req| (*req).to_owned()).collect();
    let build_backend = backend.map(str::to_owned);
    if source == MetadataSource::Unknown {
        return DependencyRecord {
            source,
            detail: Some("setup.py only: the dependencies are known only after a build".to_owned()),
            build_requires,
            build_backend,
            ..DependencyRecord::default()
        };
    }
    DependencyRecord {
        source,
        build_requires,
        build_backend,
        ..wheel.clone()
    }
}

fn file(
    rng: &mut StdRng,
    filename: String,
    version: &str,
    kind: FileKind,
    time: i64,
    requires_python: &Option<String>,
    dependencies: Extracted,
) -> StoredFile {
    let sha256: [u8; 32] = rng.random();
    let blake: [u8; 32] = rng.random();
    let blake = hex::encode(blake);
    let url = format!(
        "https://files.pythonhosted.org/packages/{}/{}/{}/{filename}",
        &blake[..2],
        &blake[2..4],
        &blake[4..]
    );
    // Sizes spread log-uniformly from 2 KB to 50 MB.
    let size = (2_000f64 * 25_000f64.powf(rng.random::<f64>())) as u64;
    StoredFile {
        filename,
        version: version.to_owned(),
        kind,
        size,
        sha256: Some(sha256),
        upload_time: Some(time + rng.random_range(0..600)),
        yanked: None,
        requires_python: requires_python.clone(),
        url,
        dependencies: Some(dependencies),
    }
}

/// Day `day`: new releases for existing projects, copies of their newest release.
fn add_day(state: &mut State, day: u64, args: &Args) -> Result<(u64, u64), BoxError> {
    let names = state.project_names()?;
    if names.is_empty() {
        return Err(format!("{}: no projects to add a day to", args.state.display()).into());
    }
    let newest = state.newest_upload()?.unwrap_or(LAST_UPLOAD);
    let serial = state.serial()?;
    let projects = scaled(DAY_PROJECTS, args.scale).min(names.len() as u64);
    let releases = scaled(DAY_RELEASES, args.scale);
    let mut rng = rng_for(args.seed, 3, day);
    let mut chosen: Vec<usize> =
        rand::seq::index::sample(&mut rng, names.len(), usize::try_from(projects)?).into_vec();
    chosen.sort_unstable();
    let mut added = 0;
    for (n, at) in chosen.iter().enumerate() {
        let name = &names[*at];
        let count = releases / projects + u64::from((n as u64) < releases % projects);
        let mut files = state.files(name)?;
        let Some(last) = files
            .iter()
            .max_by_key(|file| (file.upload_time, file.filename.clone()))
            .cloned()
        else {
            continue;
        };
        let template: Vec<StoredFile> = files
            .iter()
            .filter(|file| file.version == last.version)
            .cloned()
            .collect();
        let mut version = last.version.clone();
        for k in 0..count {
            // Upload times cap at the generator's last day, so the newest upload need not be the
            // highest version: skip versions the project already has.
            let mut next = next_version(&version);
            while files.iter().any(|file| file.version == next) {
                next = next_version(&next);
            }
            let time = newest + i64::try_from(day)? * DAY + i64::try_from(k)?;
            for old in &template {
                let mut new = file(
                    &mut rng,
                    old.filename
                        .replacen(&format!("-{}", last.version), &format!("-{next}"), 1),
                    &next,
                    old.kind,
                    time,
                    &old.requires_python,
                    old.dependencies
                        .clone()
                        .ok_or("a generated file without a record")?,
                );
                new.upload_time = Some(time);
                files.push(new);
                added += 1;
            }
            version = next;
        }
        state.commit_project(
            None,
            &ProjectCommit {
                name: name.clone(),
                last_serial: serial + n as u64 + 1,
                etag: None,
                files,
                enqueue: Vec::new(),
            },
        )?;
    }
    Ok((projects, added))
}

/// The version after `version`: its last number plus one (a pre-release suffix dropped).
fn next_version(version: &str) -> String {
    let mut parts: Vec<u64> = version
        .split(|c: char| !c.is_ascii_digit())
        .take_while(|part| !part.is_empty())
        .filter_map(|part| part.parse().ok())
        .collect();
    match parts.last_mut() {
        Some(last) => *last += 1,
        None => parts.push(1),
    }
    parts
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(".")
}
