//! The conda provider: resolve conda match specs against the conda records of a
//! snapshot (format version 2), for one target.
//!
//! - **Channels**: a provider `conda/CHANNEL` selects one channel; a bare `conda` means
//!   `conda/main,conda/r`, as `conda` did in the original mach-nix ([`parse_provider`](crate::conda::parse_provider)). Channel
//!   priority is strict, as conda's default: a package name is taken from the first listed
//!   channel that has it.
//! - **Records**: those of the target's subdir (`linux-64`, …) and `noarch`. Records without a
//!   sha256 are skipped unless [`CondaOptions::allow_md5_only`](crate::conda::CondaOptions::allow_md5_only) (a Nix fixed-output fetch wants a
//!   sha256; the intel channel's older records carry only md5).
//! - **Build selection**: candidates of a name are ordered newest version first, then highest
//!   build number, then newest timestamp; the solver takes the first candidate that fits, so the
//!   `python` dependency of each build (`python >=3.9,<3.10.0a0`) picks the build for the target
//!   interpreter, and a rebuilt package (higher build number) wins over its older build.
//! - **Virtual packages** (`__glibc`, `__unix`, `__linux`, `__osx`, `__cuda`, `__archspec`) come
//!   from the target ([`VirtualPackages::for_target`](crate::conda::VirtualPackages::for_target)) and are never installed.
//! - `constrains` are checked on the solution (a violated constraint is an error naming both).
//!
//! The solver is pubgrub over candidate indexes: a package's "versions" are its candidates in
//! preference order (0 = best) and a match spec becomes the set of indexes of the candidates it
//! matches, so pubgrub's conflict-driven search and reports work unchanged on conda's version
//! and build semantics (which `rattler_conda_types` implements: the same crate pixi and
//! rattler-build use, chosen over re-implementing conda's version ordering and match specs).

pub mod mixed;
pub mod names;
pub mod nix;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::str::FromStr;

use db_format::{CondaRecord, Snapshot};
use pubgrub::{
    Dependencies, DependencyConstraints, DependencyProvider, PackageResolutionStatistics,
    PubGrubError, Ranges, Reporter,
};
use rattler_conda_types::{
    MatchSpec, NamelessMatchSpec, PackageNameMatcher, ParseStrictness, Version, VersionSpec,
};

use crate::target::System;

/// What can go wrong resolving conda specs.
#[derive(Debug, thiserror::Error)]
pub enum CondaError {
    #[error("conda provider {0:?}: expected conda or conda/CHANNEL")]
    BadProvider(String),
    #[error("conda spec {spec:?}: {reason}")]
    BadSpec { spec: String, reason: String },
    #[error("snapshot: {0}")]
    Snapshot(#[from] db_format::Error),
    #[error(
        "this snapshot holds no conda records (format version {0}); publish one with `crawl --conda`"
    )]
    NoCondaRecords(u32),
    #[error("no conda solution:\n{0}")]
    NoSolution(String),
    #[error("{package} constrains {spec:?}, but the solution has {found}")]
    Constraint {
        package: String,
        spec: String,
        found: String,
    },
    #[error("conda solver: {0}")]
    Solver(String),
}

/// The channels of a `conda` / `conda/CHANNEL` provider entry; `None` if `text` is not one.
pub fn parse_provider(text: &str) -> Option<Result<Vec<String>, CondaError>> {
    let text = text.trim();
    if text == "conda" {
        return Some(Ok(vec!["main".into(), "r".into()]));
    }
    let channel = text.strip_prefix("conda/")?;
    let valid = !channel.is_empty()
        && channel.split('/').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        });
    Some(if valid {
        Ok(vec![channel.to_string()])
    } else {
        Err(CondaError::BadProvider(text.to_string()))
    })
}

/// The virtual packages a target provides: `(name, version)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualPackages {
    pub packages: Vec<(String, String)>,
}

impl VirtualPackages {
    /// `__unix` everywhere; Linux: `__linux`, `__glibc` (`glibc`, e.g. `2.39`, nixpkgs'
    /// baseline); macOS: `__osx` (`macos`, e.g. `10.12`); `__archspec` from the CPU; `__cuda`
    /// only when a CUDA driver version is given.
    pub fn for_target(system: System, glibc: &str, macos: &str, cuda: Option<&str>) -> Self {
        let mut packages = vec![("__unix".to_string(), "0".to_string())];
        match system {
            System::X86_64Linux | System::Aarch64Linux => {
                packages.push(("__linux".into(), "5.15".into()));
                packages.push(("__glibc".into(), glibc.into()));
            }
            System::X86_64Darwin | System::Aarch64Darwin => {
                packages.push(("__osx".into(), macos.into()));
            }
        }
        packages.push(("__archspec".into(), "1".into()));
        if let Some(cuda) = cuda {
            packages.push(("__cuda".into(), cuda.into()));
        }
        VirtualPackages { packages }
    }

    /// The target also provides `python` (the interpreter comes from nixpkgs, not the channel):
    /// conda packages' `python` dependencies are checked against `version` and nothing of the
    /// channel's python (nor its own dependencies) is installed.
    pub fn with_python(mut self, version: &str) -> Self {
        self.packages.push(("python".into(), version.into()));
        self
    }

    fn version(&self, name: &str) -> Option<&str> {
        self.packages
            .iter()
            .find(|(known, _)| known == name)
            .map(|(_, version)| version.as_str())
    }
}

/// The conda subdir of a Nix system.
pub fn subdir(system: System) -> &'static str {
    match system {
        System::X86_64Linux => "linux-64",
        System::Aarch64Linux => "linux-aarch64",
        System::X86_64Darwin => "osx-64",
        System::Aarch64Darwin => "osx-arm64",
    }
}

/// How to resolve.
#[derive(Debug, Clone)]
pub struct CondaOptions {
    /// Channels in priority order.
    pub channels: Vec<String>,
    pub system: System,
    pub virtual_packages: VirtualPackages,
    /// Accept records that carry only an md5 (no sha256).
    pub allow_md5_only: bool,
}

/// One chosen conda package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CondaPackage {
    pub record: CondaRecord,
    /// The PyPI project this package stands for (see [`names`]), normalized.
    pub pypi_name: String,
    /// Conda names of the chosen packages it depends on (virtual packages left out), sorted.
    pub dependencies: Vec<String>,
}

impl CondaPackage {
    /// A package of a Python project: it depends on `python` or is `noarch: python`. Others are
    /// libraries and runtimes (`mkl`, `libffi`).
    pub fn is_python(&self) -> bool {
        self.record.noarch.as_deref() == Some("python")
            || self.record.depends.iter().any(|depends| {
                parse_spec(depends).is_ok_and(|spec| {
                    spec.name
                        .as_exact()
                        .is_some_and(|name| name.as_normalized() == "python")
                })
            })
    }
}

/// A consistent conda environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CondaResolution {
    /// Sorted by conda name.
    pub packages: Vec<CondaPackage>,
    /// Records left out because they carry no sha256 (when not allowed), by name.
    pub skipped_md5_only: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Pkg {
    Root,
    Name(String),
}

impl fmt::Display for Pkg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pkg::Root => f.write_str("the requested specs"),
            Pkg::Name(name) => f.write_str(name),
        }
    }
}

struct Candidate {
    record: CondaRecord,
    version: Version,
}

/// A candidate as pubgrub sees it: its position in the preference order (what is compared; 0 is
/// the best) and, for reports, its version and build (`1.24.3 py39hed7eef7_0`).
#[derive(Debug, Clone)]
struct Build {
    index: u32,
    label: std::rc::Rc<str>,
}

impl Build {
    fn of(index: usize, candidate: &Candidate) -> Self {
        Build {
            // Candidate counts are far below u32::MAX (a channel has thousands of files).
            index: u32::try_from(index).unwrap_or(u32::MAX),
            label: format!("{} {}", candidate.record.version, candidate.record.build).into(),
        }
    }

    /// A value to look an index up with (labels play no part in comparisons).
    fn probe(index: u32) -> Self {
        Build {
            index,
            label: "".into(),
        }
    }
}

impl PartialEq for Build {
    fn eq(&self, other: &Self) -> bool {
        self.index == other.index
    }
}

impl Eq for Build {}

impl PartialOrd for Build {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Build {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.index.cmp(&other.index)
    }
}

impl fmt::Display for Build {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label)
    }
}

struct Provider<'a> {
    snapshot: &'a Snapshot,
    options: &'a CondaOptions,
    roots: Vec<MatchSpec>,
    candidates: std::cell::RefCell<HashMap<String, std::rc::Rc<Vec<Candidate>>>>,
    /// Per name: records left out for lacking a sha256.
    skipped_md5_only: std::cell::RefCell<HashMap<String, usize>>,
}

/// Parse a match spec the way conda reads repodata (lenient).
fn parse_spec(spec: &str) -> Result<MatchSpec, CondaError> {
    MatchSpec::from_str(spec, ParseStrictness::Lenient).map_err(|err| CondaError::BadSpec {
        spec: spec.to_string(),
        reason: err.to_string(),
    })
}

fn spec_name(spec: &MatchSpec, text: &str) -> Result<String, CondaError> {
    match &spec.name {
        PackageNameMatcher::Exact(name) => Ok(name.as_normalized().to_string()),
        _ => Err(CondaError::BadSpec {
            spec: text.to_string(),
            reason: "only exact package names are supported".into(),
        }),
    }
}

fn matches(spec: &NamelessMatchSpec, candidate: &Candidate) -> bool {
    spec.version
        .as_ref()
        .is_none_or(|version: &VersionSpec| version.matches(&candidate.version))
        && spec
            .build
            .as_ref()
            .is_none_or(|build| build.matches(&candidate.record.build))
        && spec
            .build_number
            .as_ref()
            .is_none_or(|number| number.matches(&candidate.record.build_number))
}

/// The pubgrub range of candidates a spec allows.
fn allowed(spec: &NamelessMatchSpec, candidates: &[Candidate]) -> Ranges<Build> {
    let mut range = Ranges::empty();
    for (index, candidate) in candidates.iter().enumerate() {
        if matches(spec, candidate) {
            range = range.union(&Ranges::singleton(Build::of(index, candidate)));
        }
    }
    range
}

impl Provider<'_> {
    fn candidates(&self, name: &str) -> Result<std::rc::Rc<Vec<Candidate>>, CondaError> {
        if let Some(found) = self.candidates.borrow().get(name) {
            return Ok(found.clone());
        }
        let subdirs = [subdir(self.options.system), "noarch"];
        let records = self.snapshot.conda_records(name)?;
        let mut list = Vec::new();
        // Strict channel priority: the first channel that has the name supplies it.
        for channel in &self.options.channels {
            for record in &records {
                if &record.channel != channel || !subdirs.contains(&record.subdir.as_str()) {
                    continue;
                }
                if record.sha256.is_none() && !self.options.allow_md5_only {
                    *self
                        .skipped_md5_only
                        .borrow_mut()
                        .entry(name.to_string())
                        .or_default() += 1;
                    continue;
                }
                let Ok(version) = Version::from_str(&record.version) else {
                    continue;
                };
                list.push(Candidate {
                    record: record.clone(),
                    version,
                });
            }
            if !list.is_empty() {
                break;
            }
        }
        list.sort_by(|a, b| {
            (
                Reverse(&a.version),
                Reverse(a.record.build_number),
                Reverse(a.record.timestamp),
                &a.record.filename,
            )
                .cmp(&(
                    Reverse(&b.version),
                    Reverse(b.record.build_number),
                    Reverse(b.record.timestamp),
                    &b.record.filename,
                ))
        });
        let list = std::rc::Rc::new(list);
        self.candidates
            .borrow_mut()
            .insert(name.to_string(), list.clone());
        Ok(list)
    }

    /// Dependencies from specs; `Err(reason)` for a virtual package the target lacks.
    fn constraints(
        &self,
        specs: &[MatchSpec],
        texts: &[String],
    ) -> Result<Result<DependencyConstraints<Pkg, Ranges<Build>>, String>, CondaError> {
        let mut by_name: BTreeMap<String, Ranges<Build>> = BTreeMap::new();
        for (spec, text) in specs.iter().zip(texts) {
            let name = spec_name(spec, text)?;
            let (_, nameless) = spec.clone().into_nameless();
            if name.starts_with("__") || self.options.virtual_packages.version(&name).is_some() {
                let fits = self
                    .options
                    .virtual_packages
                    .version(&name)
                    .is_some_and(|have| {
                        Version::from_str(have).is_ok_and(|version| {
                            nameless
                                .version
                                .as_ref()
                                .is_none_or(|spec| spec.matches(&version))
                        })
                    });
                if !fits {
                    return Ok(Err(format!(
                        "needs {text:?}, which the target does not provide"
                    )));
                }
                continue;
            }
            let candidates = self.candidates(&name)?;
            if candidates.is_empty() {
                let skipped = self.skipped_md5_only.borrow().get(&name).copied();
                return Ok(Err(match skipped {
                    Some(count) => format!(
                        "needs {text:?}, but all {count} records of {name} lack a sha256 \
                         (allow md5-only records to use them)"
                    ),
                    None => format!(
                        "needs {text:?}, which channels {:?} do not have for {}",
                        self.options.channels,
                        subdir(self.options.system)
                    ),
                }));
            }
            let range = allowed(&nameless, &candidates);
            if range == Ranges::empty() {
                let mut versions: Vec<&str> = Vec::new();
                for candidate in candidates.iter() {
                    if !versions.contains(&candidate.record.version.as_str()) {
                        versions.push(&candidate.record.version);
                    }
                }
                let shown = versions.len().min(12);
                return Ok(Err(format!(
                    "needs {text:?}, but no build of {name} in {:?} for {} matches it (newest versions there: {}{})",
                    self.options.channels,
                    subdir(self.options.system),
                    versions[..shown].join(", "),
                    if versions.len() > shown { ", …" } else { "" }
                )));
            }
            let entry = by_name.entry(name).or_insert_with(Ranges::full);
            *entry = entry.intersection(&range);
        }
        Ok(Ok(by_name
            .into_iter()
            .map(|(name, range)| (Pkg::Name(name), range))
            .collect()))
    }
}

impl DependencyProvider for Provider<'_> {
    type P = Pkg;
    type V = Build;
    type VS = Ranges<Build>;
    type M = String;
    type Priority = (u8, Reverse<usize>);
    type Err = CondaError;

    fn prioritize(
        &self,
        package: &Pkg,
        range: &Ranges<Build>,
        stats: &PackageResolutionStatistics,
    ) -> Self::Priority {
        let class = match package {
            Pkg::Root => 3,
            _ if range.as_singleton().is_some() => 2,
            _ if stats.conflict_count() >= 3 => 1,
            _ => 0,
        };
        let count = match package {
            Pkg::Name(name) => self.candidates(name).map_or(0, |list| list.len()),
            Pkg::Root => 0,
        };
        (class, Reverse(count))
    }

    fn choose_version(
        &self,
        package: &Pkg,
        range: &Ranges<Build>,
    ) -> Result<Option<Build>, CondaError> {
        Ok(match package {
            Pkg::Root => range.contains(&Build::probe(0)).then(|| Build::probe(0)),
            Pkg::Name(name) => self
                .candidates(name)?
                .iter()
                .enumerate()
                .map(|(index, candidate)| Build::of(index, candidate))
                .find(|build| range.contains(build)),
        })
    }

    fn get_dependencies(
        &self,
        package: &Pkg,
        version: &Build,
    ) -> Result<Dependencies<Pkg, Ranges<Build>, String>, CondaError> {
        let (specs, texts) = match package {
            Pkg::Root => (
                self.roots.clone(),
                self.roots.iter().map(|spec| spec.to_string()).collect(),
            ),
            Pkg::Name(name) => {
                let list = self.candidates(name)?;
                let Some(candidate) = list.get(version.index as usize) else {
                    return Ok(Dependencies::Unavailable("no such candidate".into()));
                };
                let mut specs = Vec::new();
                for text in &candidate.record.depends {
                    match parse_spec(text) {
                        Ok(spec) => specs.push(spec),
                        Err(err) => return Ok(Dependencies::Unavailable(err.to_string())),
                    }
                }
                (specs, candidate.record.depends.clone())
            }
        };
        Ok(match self.constraints(&specs, &texts)? {
            Ok(constraints) => Dependencies::Available(constraints),
            Err(reason) => Dependencies::Unavailable(reason),
        })
    }
}

/// Resolve `specs` (conda match specs, e.g. `python=3.9`, `numpy`) against the snapshot's conda
/// records.
pub fn resolve(
    snapshot: &Snapshot,
    specs: &[String],
    options: &CondaOptions,
) -> Result<CondaResolution, CondaError> {
    if snapshot.meta().conda_record_count == 0 {
        return Err(CondaError::NoCondaRecords(snapshot.format_version()));
    }
    let roots = specs
        .iter()
        .map(|text| parse_spec(text))
        .collect::<Result<Vec<_>, _>>()?;
    let provider = Provider {
        snapshot,
        options,
        roots,
        candidates: Default::default(),
        skipped_md5_only: Default::default(),
    };
    let solution =
        pubgrub::resolve(&provider, Pkg::Root, Build::probe(0)).map_err(|err| match err {
            PubGrubError::NoSolution(mut tree) => {
                tree.collapse_no_versions();
                CondaError::NoSolution(pubgrub::DefaultStringReporter::report(&tree).to_string())
            }
            PubGrubError::ErrorRetrievingDependencies { source, .. }
            | PubGrubError::ErrorChoosingVersion { source, .. } => source,
            other => CondaError::Solver(other.to_string()),
        })?;
    let mut chosen: BTreeMap<String, CondaRecord> = BTreeMap::new();
    for (package, build) in solution {
        if let Pkg::Name(name) = package {
            let list = provider.candidates(&name)?;
            if let Some(candidate) = list.get(build.index as usize) {
                chosen.insert(name, candidate.record.clone());
            }
        }
    }
    check_constrains(&chosen)?;
    let names: BTreeSet<&String> = chosen.keys().collect();
    let packages = chosen
        .iter()
        .map(|(name, record)| {
            let mut dependencies: Vec<String> = record
                .depends
                .iter()
                .filter_map(|text| parse_spec(text).ok())
                .filter_map(|spec| spec_name(&spec, "").ok())
                .filter(|dep| names.contains(dep))
                .collect();
            dependencies.sort();
            dependencies.dedup();
            CondaPackage {
                pypi_name: names::pypi_name(name),
                record: record.clone(),
                dependencies,
            }
        })
        .collect();
    Ok(CondaResolution {
        packages,
        skipped_md5_only: provider.skipped_md5_only.borrow().values().sum(),
    })
}

fn check_constrains(chosen: &BTreeMap<String, CondaRecord>) -> Result<(), CondaError> {
    for (package, record) in chosen {
        for text in &record.constrains {
            let Ok(spec) = parse_spec(text) else { continue };
            let Ok(name) = spec_name(&spec, text) else {
                continue;
            };
            let Some(other) = chosen.get(&name) else {
                continue;
            };
            let (_, nameless) = spec.into_nameless();
            let fits = Version::from_str(&other.version).is_ok_and(|version| {
                matches(
                    &nameless,
                    &Candidate {
                        record: other.clone(),
                        version,
                    },
                )
            });
            if !fits {
                return Err(CondaError::Constraint {
                    package: package.clone(),
                    spec: text.clone(),
                    found: format!("{} {} {}", other.name, other.version, other.build),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn providers_name_channels() {
        assert_eq!(
            parse_provider("conda").map(Result::ok),
            Some(Some(vec!["main".into(), "r".into()]))
        );
        assert_eq!(
            parse_provider("conda/intel").map(Result::ok),
            Some(Some(vec!["intel".into()]))
        );
        assert!(parse_provider("wheel").is_none());
        assert!(matches!(parse_provider("conda/"), Some(Err(_))));
        assert!(matches!(parse_provider("conda/a b"), Some(Err(_))));
    }

    #[test]
    fn virtual_packages_follow_the_target() {
        let linux = VirtualPackages::for_target(System::X86_64Linux, "2.39", "10.12", None);
        assert_eq!(linux.version("__glibc"), Some("2.39"));
        assert_eq!(linux.version("__osx"), None);
        assert_eq!(linux.version("__cuda"), None);
        let mac = VirtualPackages::for_target(System::Aarch64Darwin, "2.39", "11.0", Some("12.2"));
        assert_eq!(mac.version("__osx"), Some("11.0"));
        assert_eq!(mac.version("__linux"), None);
        assert_eq!(mac.version("__cuda"), Some("12.2"));
        assert_eq!(mac.version("__unix"), Some("0"));
    }
}
