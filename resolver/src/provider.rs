//! Where a package can come from, and which of its releases are candidates on the target.
//!
//! Three providers, named as in the original mach-nix: `wheel` (a wheel file of the snapshot
//! whose tags fit the target), `sdist` (a source distribution of the snapshot, built by Nix) and
//! `nixpkgs` (nixpkgs' own package at exactly the version `--nixpkgs-json` lists). The user
//! orders them per package: `_default=wheel,sdist,nixpkgs numpy=wheel`, or the same in a TOML
//! file (`_default = "wheel,sdist"`, `numpy = ["wheel"]`). A release is a candidate when one of
//! the package's providers can supply it; the first such provider in the user's order supplies it.
//!
//! Two resolution modes decide which candidate is tried first:
//! - [`Mode::Newest`] (the default): the newest version any enabled provider offers, as pip and
//!   uv choose. Chosen as default because the pins then match what `uv pip compile` gives for the
//!   same snapshot date, which is what users compare against, and because a newer sdist-only
//!   release is usually the one the user expects.
//! - [`Mode::ProviderOrder`]: the original mach-nix rule: versions offered by the first provider
//!   are tried (newest first) before any version only a later provider offers, so
//!   `_default=nixpkgs,wheel` keeps nixpkgs' versions wherever they fit.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::str::FromStr;

use db_format::types::{Version, VersionSpecifiers, WheelFilename};
use db_format::{File, FileKind, Release};

use crate::target::TargetEnv;

/// One of the three providers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProviderKind {
    Wheel,
    Sdist,
    Nixpkgs,
}

impl ProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Wheel => "wheel",
            ProviderKind::Sdist => "sdist",
            ProviderKind::Nixpkgs => "nixpkgs",
        }
    }
}

impl FromStr for ProviderKind {
    type Err = ProviderError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value.trim() {
            "wheel" => Ok(ProviderKind::Wheel),
            "sdist" => Ok(ProviderKind::Sdist),
            "nixpkgs" => Ok(ProviderKind::Nixpkgs),
            other => Err(ProviderError::UnknownProvider(other.to_owned())),
        }
    }
}

/// A provider setting that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("unknown provider {0:?}: expected wheel, sdist or nixpkgs")]
    UnknownProvider(String),
    #[error("--providers entry {0:?}: expected NAME=provider,provider (e.g. _default=wheel,sdist)")]
    BadEntry(String),
    #[error("{path}: {message}")]
    BadFile { path: String, message: String },
    #[error("{path}: {message}")]
    BadNixpkgs { path: String, message: String },
}

/// The ordered providers of every package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderConfig {
    default: Vec<ProviderKind>,
    per_package: HashMap<String, Vec<ProviderKind>>,
}

impl Default for ProviderConfig {
    /// `_default=wheel,sdist,nixpkgs`, as the original mach-nix.
    fn default() -> Self {
        ProviderConfig {
            default: vec![
                ProviderKind::Wheel,
                ProviderKind::Sdist,
                ProviderKind::Nixpkgs,
            ],
            per_package: HashMap::new(),
        }
    }
}

fn parse_list(list: &str) -> Result<Vec<ProviderKind>, ProviderError> {
    list.split(',')
        .filter(|item| !item.trim().is_empty())
        .map(ProviderKind::from_str)
        .collect()
}

impl ProviderConfig {
    /// Parse the `--providers` syntax: space-separated `NAME=p1,p2` entries.
    pub fn parse(spec: &str) -> Result<Self, ProviderError> {
        let mut config = ProviderConfig::default();
        for entry in spec.split_whitespace() {
            let (name, list) = entry
                .split_once('=')
                .ok_or_else(|| ProviderError::BadEntry(entry.to_owned()))?;
            let providers = parse_list(list)?;
            if providers.is_empty() {
                return Err(ProviderError::BadEntry(entry.to_owned()));
            }
            config.set(name, providers);
        }
        Ok(config)
    }

    /// Read a TOML file whose keys are package names (or `_default`) and whose values are a
    /// comma-separated string or a list of provider names.
    pub fn from_toml(text: &str, path: &Path) -> Result<Self, ProviderError> {
        let bad = |message: String| ProviderError::BadFile {
            path: path.display().to_string(),
            message,
        };
        let table: toml::Table = toml::from_str(text).map_err(|err| bad(err.to_string()))?;
        let mut config = ProviderConfig::default();
        for (name, value) in table {
            let providers = match &value {
                toml::Value::String(list) => parse_list(list),
                toml::Value::Array(items) => items
                    .iter()
                    .map(|item| {
                        item.as_str()
                            .ok_or_else(|| ProviderError::UnknownProvider(item.to_string()))
                            .and_then(ProviderKind::from_str)
                    })
                    .collect(),
                other => Err(ProviderError::UnknownProvider(other.to_string())),
            }
            .map_err(|err| bad(format!("key {name:?}: {err}")))?;
            if providers.is_empty() {
                return Err(bad(format!("key {name:?}: no provider listed")));
            }
            config.set(&name, providers);
        }
        Ok(config)
    }

    /// Set the providers of one package (`_default` for all others).
    pub fn set(&mut self, name: &str, providers: Vec<ProviderKind>) {
        if name == "_default" {
            self.default = providers;
        } else {
            let name = db_format::types::normalize_name(name)
                .map(|name| name.to_string())
                .unwrap_or_else(|_| name.to_owned());
            self.per_package.insert(name, providers);
        }
    }

    /// The ordered providers of `name` (normalized).
    pub fn for_package(&self, name: &str) -> &[ProviderKind] {
        self.per_package.get(name).unwrap_or(&self.default)
    }
}

/// Which candidate to try first; see the module doc.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    #[default]
    Newest,
    ProviderOrder,
}

impl FromStr for Mode {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value {
            "newest" => Ok(Mode::Newest),
            "provider-order" => Ok(Mode::ProviderOrder),
            other => Err(format!(
                "unknown mode {other:?}: expected newest or provider-order"
            )),
        }
    }
}

/// nixpkgs' Python packages: for each normalized pname, its version and attribute.
#[derive(Debug, Clone, Default)]
pub struct NixpkgsIndex {
    packages: HashMap<String, Vec<(Version, String)>>,
}

#[derive(serde::Deserialize)]
struct NixpkgsEntry {
    attribute: String,
    pname: String,
    version: String,
}

impl NixpkgsIndex {
    /// Read `--nixpkgs-json`: a list of `{"attribute", "pname", "version"}`. Entries whose
    /// version is not PEP 440 are skipped (nixpkgs has a few, e.g. `unstable-2023-01-01`).
    pub fn from_json(text: &str, path: &Path) -> Result<Self, ProviderError> {
        let entries: Vec<NixpkgsEntry> =
            serde_json::from_str(text).map_err(|err| ProviderError::BadNixpkgs {
                path: path.display().to_string(),
                message: format!(
                    "{err}; expected a JSON list of {{\"attribute\", \"pname\", \"version\"}}"
                ),
            })?;
        let mut packages: HashMap<String, Vec<(Version, String)>> = HashMap::new();
        for entry in entries {
            let (Ok(name), Ok(version)) = (
                db_format::types::normalize_name(&entry.pname),
                Version::from_str(&entry.version),
            ) else {
                continue;
            };
            packages
                .entry(name.to_string())
                .or_default()
                .push((version, entry.attribute));
        }
        Ok(NixpkgsIndex { packages })
    }

    /// The nixpkgs attribute offering `name` at exactly `version`.
    pub fn attribute(&self, name: &str, version: &Version) -> Option<&str> {
        self.packages
            .get(name)?
            .iter()
            .find(|(offered, _)| offered == version)
            .map(|(_, attribute)| attribute.as_str())
    }

    /// Versions of `name` nixpkgs has that the snapshot does not know.
    fn versions(&self, name: &str) -> impl Iterator<Item = &(Version, String)> {
        self.packages.get(name).into_iter().flatten()
    }
}

/// How a candidate is supplied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Supply {
    /// A file of the snapshot (wheel or sdist), with the index of its release.
    File {
        release: usize,
        file: usize,
        kind: ProviderKind,
    },
    /// nixpkgs' package; `release` is the snapshot's release of that version, if any.
    Nixpkgs {
        release: Option<usize>,
        attribute: String,
    },
}

/// One usable version of a package.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub version: Version,
    pub supply: Supply,
    /// Yanked (usable only when pinned with `==`).
    pub yanked: bool,
}

impl Candidate {
    pub fn provider(&self) -> ProviderKind {
        match &self.supply {
            Supply::File { kind, .. } => *kind,
            Supply::Nixpkgs { .. } => ProviderKind::Nixpkgs,
        }
    }
}

/// Why a release of the snapshot is not a candidate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// Its `Requires-Python` excludes the target interpreter.
    RequiresPython(String),
    /// No file fits the target with the enabled providers.
    NoCompatibleFile { providers: Vec<ProviderKind> },
    /// `--hash` options were given and no file has one of those digests.
    HashMismatch,
    /// The version is not PEP 440.
    InvalidVersion,
}

/// Everything the solver needs to know of one package's releases.
#[derive(Debug, Clone, Default)]
pub struct Candidates {
    /// In the order to try them (see [`Mode`]).
    pub candidates: Vec<Candidate>,
    /// Releases that are not candidates, and why.
    pub rejected: Vec<(String, Rejection)>,
}

/// What restricts the candidates of one package beyond the target.
#[derive(Debug, Clone, Default)]
pub struct PackageOptions<'a> {
    pub providers: &'a [ProviderKind],
    /// `--hash` digests the user allowed (empty: any file).
    pub hashes: &'a [[u8; 32]],
    /// A direct URL the user required: only the snapshot file with this URL may be used.
    pub url: Option<&'a str>,
}

fn requires_python_of<'a>(file: &'a File, release: &'a Release) -> Option<&'a str> {
    file.requires_python
        .as_deref()
        .or(release.requires_python.as_deref())
}

/// Whether the target interpreter fits a `Requires-Python` string; unparseable strings are
/// ignored, as pip and uv do.
fn python_fits(target: &TargetEnv, requires_python: Option<&str>) -> bool {
    match requires_python.map(VersionSpecifiers::from_str) {
        Some(Ok(spec)) => target.python_satisfies(&spec),
        Some(Err(_)) | None => true,
    }
}

/// The best file of `kind` in `release` for the target, if any: for wheels the highest tag
/// priority, for sdists the first `.tar.gz` (else any sdist). Yanked files come last.
fn best_file(
    release: &Release,
    kind: ProviderKind,
    target: &TargetEnv,
    options: &PackageOptions<'_>,
) -> Option<usize> {
    let mut best: Option<(bool, u8, Option<uv_platform_tags::TagPriority>, usize)> = None;
    for (index, file) in release.files.iter().enumerate() {
        if !options.hashes.is_empty()
            && !file
                .sha256
                .is_some_and(|digest| options.hashes.contains(&digest))
        {
            continue;
        }
        if options.url.is_some_and(|url| url != file.url) {
            continue;
        }
        if !python_fits(target, requires_python_of(file, release)) {
            continue;
        }
        let score = match (kind, file.kind) {
            (ProviderKind::Wheel, FileKind::Wheel) => {
                let Ok(wheel) = WheelFilename::from_str(&file.filename) else {
                    continue;
                };
                let Some(priority) = target.wheel_priority(&wheel) else {
                    continue;
                };
                (0, Some(priority))
            }
            (ProviderKind::Sdist, FileKind::Sdist) => {
                (u8::from(file.filename.ends_with(".tar.gz")), None)
            }
            _ => continue,
        };
        let key = (file.yanked.is_none(), score.0, score.1, index);
        if best
            .as_ref()
            .is_none_or(|current| (key.0, key.1, key.2) > (current.0, current.1, current.2))
        {
            best = Some(key);
        }
    }
    best.map(|(_, _, _, index)| index)
}

/// The candidates of one project, newest first (or in provider order), and the releases that
/// are not candidates with the reason.
pub fn candidates(
    name: &str,
    releases: &[Release],
    target: &TargetEnv,
    options: &PackageOptions<'_>,
    nixpkgs: Option<&NixpkgsIndex>,
    mode: Mode,
) -> Candidates {
    let mut out = Candidates::default();
    for (index, release) in releases.iter().enumerate() {
        let Ok(version) = Version::from_str(&release.version) else {
            out.rejected
                .push((release.version.clone(), Rejection::InvalidVersion));
            continue;
        };
        let mut supply = None;
        for &kind in options.providers {
            supply = match kind {
                ProviderKind::Nixpkgs => nixpkgs
                    .and_then(|nix| nix.attribute(name, &version))
                    .filter(|_| options.url.is_none())
                    .map(|attribute| Supply::Nixpkgs {
                        release: Some(index),
                        attribute: attribute.to_owned(),
                    }),
                _ => best_file(release, kind, target, options).map(|file| Supply::File {
                    release: index,
                    file,
                    kind,
                }),
            };
            if supply.is_some() {
                break;
            }
        }
        match supply {
            Some(supply) => {
                let file_yanked = match &supply {
                    // In bounds: `best_file` returned an index of `release.files`.
                    Supply::File { file, .. } => release.files[*file].yanked.is_some(),
                    Supply::Nixpkgs { .. } => false,
                };
                out.candidates.push(Candidate {
                    version,
                    supply,
                    yanked: release.yanked.is_some() || file_yanked,
                });
            }
            None => out
                .rejected
                .push((release.version.clone(), reject(release, target, options))),
        }
    }
    // nixpkgs versions that the snapshot does not have at all.
    if options.providers.contains(&ProviderKind::Nixpkgs) && options.url.is_none() {
        for (version, attribute) in nixpkgs.into_iter().flat_map(|nix| nix.versions(name)) {
            if !out.candidates.iter().any(|c| &c.version == version) {
                out.candidates.push(Candidate {
                    version: version.clone(),
                    supply: Supply::Nixpkgs {
                        release: None,
                        attribute: attribute.clone(),
                    },
                    yanked: false,
                });
            }
        }
    }
    let rank = |candidate: &Candidate| {
        options
            .providers
            .iter()
            .position(|kind| *kind == candidate.provider())
            .unwrap_or(usize::MAX)
    };
    match mode {
        Mode::Newest => out.candidates.sort_by(|a, b| b.version.cmp(&a.version)),
        Mode::ProviderOrder => out.candidates.sort_by(|a, b| {
            rank(a)
                .cmp(&rank(b))
                .then_with(|| b.version.cmp(&a.version))
        }),
    }
    out
}

fn reject(release: &Release, target: &TargetEnv, options: &PackageOptions<'_>) -> Rejection {
    let all_files_exclude_python = !release.files.is_empty()
        && release
            .files
            .iter()
            .all(|file| !python_fits(target, requires_python_of(file, release)));
    if all_files_exclude_python
        || (release.files.is_empty() && !python_fits(target, release.requires_python.as_deref()))
    {
        let spec = release
            .files
            .iter()
            .find_map(|file| requires_python_of(file, release))
            .or(release.requires_python.as_deref())
            .unwrap_or_default();
        return Rejection::RequiresPython(spec.to_owned());
    }
    if !options.hashes.is_empty()
        && !release.files.iter().any(|file| {
            file.sha256
                .is_some_and(|digest| options.hashes.contains(&digest))
        })
    {
        return Rejection::HashMismatch;
    }
    Rejection::NoCompatibleFile {
        providers: options.providers.to_vec(),
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::RequiresPython(spec) => write!(f, "requires Python {spec}"),
            Rejection::NoCompatibleFile { providers } => {
                let names: Vec<&str> = providers.iter().map(|p| p.as_str()).collect();
                write!(f, "has no file usable by the providers {}", names.join(","))
            }
            Rejection::HashMismatch => f.write_str("has no file with one of the --hash digests"),
            Rejection::InvalidVersion => f.write_str("has a version that is not PEP 440"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::System;

    fn file(name: &str) -> File {
        File {
            filename: name.to_owned(),
            kind: FileKind::of(name),
            url: format!("https://files.example/{name}"),
            sha256: Some([7; 32]),
            ..File::default()
        }
    }

    fn release(version: &str, files: &[&str]) -> Release {
        Release {
            version: version.to_owned(),
            files: files.iter().map(|name| file(name)).collect(),
            ..Release::default()
        }
    }

    fn versions(found: &Candidates) -> Vec<String> {
        found
            .candidates
            .iter()
            .map(|c| format!("{}:{}", c.version, c.provider().as_str()))
            .collect()
    }

    #[test]
    fn provider_syntax_and_toml() {
        let config = ProviderConfig::parse("_default=sdist numpy=wheel,nixpkgs").expect("valid");
        assert_eq!(
            config.for_package("numpy"),
            [ProviderKind::Wheel, ProviderKind::Nixpkgs]
        );
        assert_eq!(config.for_package("six"), [ProviderKind::Sdist]);
        assert!(ProviderConfig::parse("numpy=conda").is_err());
        assert!(ProviderConfig::parse("numpy").is_err());
        let config = ProviderConfig::from_toml(
            "_default = \"wheel\"\nScikit_Learn = [\"sdist\", \"wheel\"]\n",
            Path::new("p.toml"),
        )
        .expect("valid");
        assert_eq!(
            config.for_package("scikit-learn"),
            [ProviderKind::Sdist, ProviderKind::Wheel]
        );
        assert!(ProviderConfig::from_toml("a = 3\n", Path::new("p.toml")).is_err());
    }

    #[test]
    fn modes_order_candidates() {
        let target = TargetEnv::new("3.12", System::X86_64Linux).expect("target");
        let releases = [
            release("1.0", &["a-1.0-py3-none-any.whl", "a-1.0.tar.gz"]),
            release("2.0", &["a-2.0.tar.gz"]),
            release("3.0", &["a-3.0-cp311-cp311-manylinux_2_17_x86_64.whl"]),
        ];
        let providers = [ProviderKind::Wheel, ProviderKind::Sdist];
        let options = PackageOptions {
            providers: &providers,
            ..PackageOptions::default()
        };
        let newest = candidates("a", &releases, &target, &options, None, Mode::Newest);
        assert_eq!(versions(&newest), ["2.0:sdist", "1.0:wheel"]);
        assert_eq!(
            newest.rejected,
            [(
                "3.0".to_owned(),
                Rejection::NoCompatibleFile {
                    providers: providers.to_vec()
                }
            )]
        );
        let ordered = candidates("a", &releases, &target, &options, None, Mode::ProviderOrder);
        assert_eq!(versions(&ordered), ["1.0:wheel", "2.0:sdist"]);
    }

    #[test]
    fn nixpkgs_offers_exactly_its_versions() {
        let target = TargetEnv::new("3.12", System::X86_64Linux).expect("target");
        let nix = NixpkgsIndex::from_json(
            r#"[{"attribute": "requests", "pname": "Requests", "version": "2.31.0"},
                {"attribute": "requests_old", "pname": "requests", "version": "2.0"}]"#,
            Path::new("nix.json"),
        )
        .expect("valid");
        let releases = [
            release("2.31.0", &["requests-2.31.0.tar.gz"]),
            release("2.32.0", &[]),
        ];
        let providers = [ProviderKind::Nixpkgs];
        let options = PackageOptions {
            providers: &providers,
            ..PackageOptions::default()
        };
        let found = candidates(
            "requests",
            &releases,
            &target,
            &options,
            Some(&nix),
            Mode::Newest,
        );
        assert_eq!(versions(&found), ["2.31.0:nixpkgs", "2.0:nixpkgs"]);
        assert!(NixpkgsIndex::from_json("{}", Path::new("nix.json")).is_err());
    }

    #[test]
    fn hashes_and_requires_python_filter_files() {
        let target = TargetEnv::new("3.9", System::X86_64Linux).expect("target");
        let mut old_python = release("1.0", &["a-1.0.tar.gz"]);
        old_python.requires_python = Some(">=3.10".to_owned());
        let providers = [ProviderKind::Sdist];
        let options = PackageOptions {
            providers: &providers,
            hashes: &[[9; 32]],
            url: None,
        };
        let found = candidates(
            "a",
            &[old_python, release("2.0", &["a-2.0.tar.gz"])],
            &target,
            &options,
            None,
            Mode::Newest,
        );
        assert_eq!(
            found.rejected,
            [
                (
                    "1.0".to_owned(),
                    Rejection::RequiresPython(">=3.10".to_owned())
                ),
                ("2.0".to_owned(), Rejection::HashMismatch)
            ]
        );
    }
}
