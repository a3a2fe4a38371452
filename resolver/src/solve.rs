//! The pubgrub [`DependencyProvider`] over a snapshot, and [`resolve`], the library entry point
//! the CLI and the tests call.
//!
//! Packages are the root (the user's requirements), a project, a project's extra, or the build
//! of a project's sdist. An extra is a virtual package pinned to its project's version (`a[x] 1.0`
//! depends on `a ==1.0` and on the requirements `a 1.0` declares under `extra == "x"`), so extras
//! of one project always agree.
//!
//! **Build systems.** A release taken from its sdist depends on the virtual package `build(a)`
//! at its own version, which depends on the sdist's build requirements (`[build-system]
//! requires`, or `setup_requires`), markers evaluated for the target. So the build systems join
//! the environment's one package set, as in the original mach-nix, rather than being resolved as
//! a separate set: the Nix output has one attribute per name (`pySelf.flit-core` is both what
//! idna builds with and what the environment would import), so two versions of one name could
//! not both be built; and one set keeps `-c` constraints and `--providers` applying to build
//! tools too. The price is that a build pin (`setuptools<60`) competes with run-time
//! requirements; pubgrub then picks another release or explains the conflict ("building a 1.0
//! from its sdist needs …"). Cycles through builds (an sdist building with a package that
//! depends on it at run time, or `wheel` ↔ `setuptools`) are no problem for pubgrub (one version
//! per name); the Nix output breaks them (see `nix/README.md`). A package that build-requires
//! itself (a self-hosting backend such as `flit-core`) builds with its own tree: that edge is
//! dropped. When the snapshot has no record read from the sdist itself (only a wheel's
//! metadata), its build requirements are unknown and none are resolved; the Nix output then
//! builds it with setuptools, PEP 517's default.
//! Markers are evaluated once, for the target; `-c` constraints narrow every dependency on the
//! constrained project. Candidates come from [`crate::provider`]; which one is tried first:
//! - pre-releases compete with final releases only under `--pre`; otherwise a pre-release is
//!   chosen only when no final release is in the range (a requirement naming a pre-release,
//!   `>=2.0b1`, permits them but a final release in range still wins, as uv does today);
//! - yanked releases only when a user requirement pins exactly that version (PEP 592);
//! - then by [`crate::provider::Mode`].

use std::cell::{Cell, RefCell};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::rc::Rc;

use db_format::types::{ExtraName, PackageName, Requirement, Version};
use db_format::{DependencyRecord, MetadataSource, Project, Snapshot};
use pubgrub::{
    Dependencies, DependencyProvider, PackageResolutionStatistics, PubGrubError, Ranges,
};
use uv_pep508::VersionOrUrl;

use crate::input::{Entry, Input};
use crate::provider::{
    Candidate, Candidates, Mode, NixpkgsIndex, PackageOptions, ProviderConfig, ProviderKind, Supply,
};
use crate::ranges::{
    needs_known_versions, pinned_version, specifiers_to_ranges, specifiers_to_ranges_among,
};
use crate::report::{self, ResolveError};
use crate::resolution::{Provider, Resolution, ResolvedPackage, SnapshotPin, Target};
use crate::target::TargetEnv;

/// A pubgrub package.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Pkg {
    Root,
    Base(PackageName),
    Extra(PackageName, ExtraName),
    /// The build of a project's sdist: pinned to the project's version, its dependencies are the
    /// sdist's build requirements.
    Build(PackageName),
}

impl Pkg {
    /// The project behind the package (`None` for the root).
    pub fn name(&self) -> Option<&PackageName> {
        match self {
            Pkg::Root => None,
            Pkg::Base(name) | Pkg::Extra(name, _) | Pkg::Build(name) => Some(name),
        }
    }
}

impl fmt::Display for Pkg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pkg::Root => f.write_str("the requirements"),
            Pkg::Base(name) => write!(f, "{name}"),
            Pkg::Extra(name, extra) => write!(f, "{name}[{extra}]"),
            Pkg::Build(name) => write!(f, "the build of {name}"),
        }
    }
}

/// Why a version's dependencies cannot be used (pubgrub's custom incompatibility).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unusable {
    /// The snapshot has no dependency metadata for the chosen file.
    NoMetadata(String),
    /// The metadata has a requirement that does not parse.
    BadMetadata(String),
}

impl fmt::Display for Unusable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unusable::NoMetadata(why) => {
                write!(f, "the snapshot has no dependency metadata for it ({why})")
            }
            Unusable::BadMetadata(why) => write!(f, "its metadata is invalid: {why}"),
        }
    }
}

/// How the resolution is made.
#[derive(Debug, Clone)]
pub struct ResolveOptions {
    pub target: TargetEnv,
    pub providers: ProviderConfig,
    pub mode: Mode,
    pub nixpkgs: Option<NixpkgsIndex>,
    /// Pre-releases allowed for every package (`--pre`).
    pub allow_prereleases: bool,
    /// The most work the resolution may do before it stops with [`ResolveError::TooComplex`]:
    /// pubgrub steps (a decision and its unit propagation) plus conflicts (each package a
    /// conflict involves counts one, as pubgrub's own statistics do). [`DEFAULT_MAX_STEPS`]
    /// unless the user asks for more (`--max-steps`).
    pub max_steps: u64,
}

/// The default bound on a resolution's work. Conflicts count because a search that backtracks
/// makes each later step dearer (every learned incompatibility is checked again): a pigeonhole
/// universe does 24 conflicts a step and its steps grow slower and slower, while a
/// 10,000-package chain that fails at its end takes 30,000 steps and 20,000 conflicts in 0.4 s.
/// Real requirement sets take a few hundred. The bound stops a search designed to run for hours
/// within about two seconds (measured in `resolver/README.md`, "Limits").
pub const DEFAULT_MAX_STEPS: u64 = 200_000;

/// One project's snapshot data and candidates, computed once.
#[derive(Debug)]
pub(crate) struct PackageData {
    pub(crate) project: Option<Project>,
    pub(crate) candidates: Candidates,
}

impl PackageData {
    /// Every release version the snapshot has, candidate or not (those that parse).
    pub(crate) fn known_versions(&self) -> Vec<Version> {
        self.candidates
            .candidates
            .iter()
            .map(|c| c.version.clone())
            .chain(
                self.candidates
                    .rejected
                    .iter()
                    .filter_map(|(v, _)| v.parse().ok()),
            )
            .collect()
    }

    fn candidate(&self, version: &Version) -> Option<&Candidate> {
        self.candidates
            .candidates
            .iter()
            .find(|c| &c.version == version)
    }
}

type Deps = BTreeMap<Pkg, Ranges<Version>>;

/// Which dependencies of a release [`Solver::dependencies_of`] lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part<'e> {
    /// The release's own run-time dependencies (and the build of its sdist, if it comes from one).
    Run,
    /// What the extra adds, plus the release itself.
    Extra(&'e ExtraName),
    /// The sdist's build requirements.
    Build,
}

/// The dependency provider: the snapshot seen from one target.
#[derive(Debug)]
pub(crate) struct Solver<'a> {
    pub(crate) snapshot: &'a Snapshot,
    options: &'a ResolveOptions,
    /// `--pre` on the command line or in the requirements file.
    allow_prereleases: bool,
    root: Deps,
    constraints: HashMap<PackageName, Ranges<Version>>,
    hashes: HashMap<PackageName, Vec<[u8; 32]>>,
    urls: HashMap<PackageName, String>,
    yanked_pins: HashSet<(PackageName, Version)>,
    packages: RefCell<HashMap<PackageName, Rc<PackageData>>>,
    discovered: RefCell<HashMap<Pkg, u32>>,
    /// pubgrub steps taken so far (counted in `should_cancel`, called once per step); with
    /// `conflicts`, the work bounded by [`ResolveOptions::max_steps`].
    steps: Cell<u64>,
    /// Conflicts so far: the sum over packages of pubgrub's conflict counts, as last seen by
    /// `prioritize`, and those last-seen counts.
    conflicts: Cell<u64>,
    conflicts_seen: RefCell<HashMap<Pkg, u32>>,
}

fn add(deps: &mut Deps, package: Pkg, range: Ranges<Version>) {
    match deps.get_mut(&package) {
        Some(existing) => *existing = existing.intersection(&range),
        None => {
            deps.insert(package, range);
        }
    }
}

impl<'a> Solver<'a> {
    pub(crate) fn new(
        snapshot: &'a Snapshot,
        input: &Input,
        options: &'a ResolveOptions,
    ) -> Result<Self, db_format::Error> {
        let env = &options.target.markers;
        let mut solver = Solver {
            snapshot,
            options,
            allow_prereleases: options.allow_prereleases || input.allow_prereleases,
            root: Deps::new(),
            constraints: HashMap::new(),
            hashes: HashMap::new(),
            urls: HashMap::new(),
            yanked_pins: HashSet::new(),
            packages: RefCell::new(HashMap::new()),
            discovered: RefCell::new(HashMap::new()),
            steps: Cell::new(0),
            conflicts: Cell::new(0),
            conflicts_seen: RefCell::new(HashMap::new()),
        };
        let active = |entry: &&Entry| entry.requirement.marker.evaluate(env, &[]);
        // Hashes and URLs first: they decide a package's candidates, which ranges may read.
        for entry in input.requirements.iter().filter(active) {
            let requirement = &entry.requirement;
            if let Some(VersionOrUrl::Url(url)) = &requirement.version_or_url {
                solver
                    .urls
                    .insert(requirement.name.clone(), url.to_string());
            }
            if !entry.hashes.is_empty() {
                solver
                    .hashes
                    .entry(requirement.name.clone())
                    .or_default()
                    .extend(entry.hashes.iter().copied());
            }
        }
        for entry in input.constraints.iter().filter(active) {
            let range = solver.requirement_ranges(&entry.requirement)?;
            solver.note_user_requirement(entry, &range);
            let name = entry.requirement.name.clone();
            let merged = match solver.constraints.remove(&name) {
                Some(existing) => existing.intersection(&range),
                None => range,
            };
            solver.constraints.insert(name, merged);
        }
        for entry in input.requirements.iter().filter(active) {
            let requirement = &entry.requirement;
            let range = solver.requirement_ranges(requirement)?;
            solver.note_user_requirement(entry, &range);
            let range = solver.constrain(&requirement.name, range);
            add(
                &mut solver.root,
                Pkg::Base(requirement.name.clone()),
                range.clone(),
            );
            for extra in &requirement.extras {
                add(
                    &mut solver.root,
                    Pkg::Extra(requirement.name.clone(), extra.clone()),
                    range.clone(),
                );
            }
        }
        Ok(solver)
    }

    /// The versions `requirement` allows, exact on the releases of its project (`===` and `>V`
    /// need them, see [`crate::ranges`]; the project is read only for those).
    fn requirement_ranges(
        &self,
        requirement: &Requirement,
    ) -> Result<Ranges<Version>, db_format::Error> {
        let Some(VersionOrUrl::VersionSpecifier(specifiers)) = &requirement.version_or_url else {
            return Ok(Ranges::full());
        };
        if !specifiers.iter().any(needs_known_versions) {
            return Ok(specifiers_to_ranges(specifiers));
        }
        let data = self.package(&requirement.name)?;
        Ok(specifiers_to_ranges_among(
            specifiers,
            &data.known_versions(),
        ))
    }

    fn note_user_requirement(&mut self, entry: &Entry, range: &Ranges<Version>) {
        let name = &entry.requirement.name;
        if let Some(version) = pinned_version(range) {
            self.yanked_pins.insert((name.clone(), version));
        }
    }

    fn constrain(&self, name: &PackageName, range: Ranges<Version>) -> Ranges<Version> {
        match self.constraints.get(name) {
            Some(constraint) => range.intersection(constraint),
            None => range,
        }
    }

    /// The snapshot data and candidates of `name`, loaded on first use.
    pub(crate) fn package(&self, name: &PackageName) -> Result<Rc<PackageData>, db_format::Error> {
        if let Some(data) = self.packages.borrow().get(name) {
            return Ok(Rc::clone(data));
        }
        let project = self.snapshot.project(name.as_str())?;
        let providers = self.options.providers.for_package(name.as_str());
        let package_options = PackageOptions {
            providers,
            hashes: self.hashes.get(name).map_or(&[], Vec::as_slice),
            url: self.urls.get(name).map(String::as_str),
        };
        let candidates = crate::provider::candidates(
            name.as_str(),
            project
                .as_ref()
                .map_or(&[], |project| project.releases.as_slice()),
            &self.options.target,
            &package_options,
            self.options.nixpkgs.as_ref(),
            self.options.mode,
        );
        let data = Rc::new(PackageData {
            project,
            candidates,
        });
        self.packages
            .borrow_mut()
            .insert(name.clone(), Rc::clone(&data));
        Ok(data)
    }

    /// The dependency record a candidate's dependencies come from.
    fn record<'d>(
        data: &'d PackageData,
        candidate: &Candidate,
    ) -> Result<Option<&'d DependencyRecord>, Unusable> {
        let Some(project) = &data.project else {
            return Ok(None);
        };
        let (release, file) = match &candidate.supply {
            Supply::File { release, file, .. } => (*release, Some(*file)),
            Supply::Nixpkgs {
                release: Some(release),
                ..
            } => (*release, None),
            Supply::Nixpkgs { release: None, .. } => return Ok(None),
        };
        // In bounds: `provider::candidates` took both indices from this very project.
        let release = &project.releases[release];
        let chosen = file
            .and_then(|file| release.files[file].dependencies)
            .and_then(|index| release.dependencies.get(index as usize));
        // A file whose metadata was not examined: another file of the release speaks for it
        // (the wheels and sdist of one release agree in 99% of releases, see PYPI-HERE.md),
        // wheel metadata first.
        let record = chosen.or_else(|| {
            release
                .dependencies
                .iter()
                .filter(|record| record.source != MetadataSource::Unknown)
                .min_by_key(|record| record.source)
        });
        match record {
            Some(record) if record.source != MetadataSource::Unknown => Ok(Some(record)),
            Some(record) => Err(Unusable::NoMetadata(
                record
                    .detail
                    .clone()
                    .unwrap_or_else(|| "unknown".to_owned()),
            )),
            None if matches!(candidate.supply, Supply::Nixpkgs { .. }) => Ok(None),
            None => Err(Unusable::NoMetadata(
                "its files were not examined".to_owned(),
            )),
        }
    }

    /// The record an sdist candidate's build requirements come from: one read from the sdist
    /// itself (its own first, else another sdist-derived record of the release); `None` when
    /// the snapshot only has wheel metadata for the release.
    fn build_record<'d>(
        data: &'d PackageData,
        candidate: &Candidate,
    ) -> Option<&'d DependencyRecord> {
        let project = data.project.as_ref()?;
        let Supply::File { release, file, .. } = &candidate.supply else {
            return None;
        };
        // In bounds: `provider::candidates` took both indices from this very project.
        let release = &project.releases[*release];
        let from_sdist = |record: &&DependencyRecord| {
            !matches!(
                record.source,
                MetadataSource::WheelMetadata | MetadataSource::Unknown
            )
        };
        release.files[*file]
            .dependencies
            .and_then(|index| release.dependencies.get(index as usize))
            .filter(from_sdist)
            .or_else(|| release.dependencies.iter().find(from_sdist))
    }

    /// The dependencies of one part of `name` at `version`: the release's own run-time
    /// dependencies (plus the build of its sdist when it comes from one), what an extra adds,
    /// or the sdist's build requirements.
    fn dependencies_of(
        &self,
        name: &PackageName,
        part: Part<'_>,
        version: &Version,
    ) -> Result<Result<Deps, Unusable>, db_format::Error> {
        let data = self.package(name)?;
        let Some(candidate) = data.candidate(version) else {
            return Ok(Err(Unusable::NoMetadata("not a candidate".to_owned())));
        };
        let mut deps = Deps::new();
        let specs = if part == Part::Build {
            Self::build_record(&data, candidate)
                .map_or(&[][..], |record| record.build_requires.as_slice())
        } else {
            let record = match Self::record(&data, candidate) {
                Ok(record) => record,
                Err(unusable) => return Ok(Err(unusable)),
            };
            record.map_or(&[][..], |record| record.requires_dist.as_slice())
        };
        match part {
            Part::Extra(_) => add(
                &mut deps,
                Pkg::Base(name.clone()),
                Ranges::singleton(version.clone()),
            ),
            Part::Run if candidate.provider() == ProviderKind::Sdist => add(
                &mut deps,
                Pkg::Build(name.clone()),
                Ranges::singleton(version.clone()),
            ),
            Part::Run | Part::Build => {}
        }
        let env = &self.options.target.markers;
        for spec in specs {
            // Snapshot strings are untrusted too: nesting bounded, echo clipped.
            let requirement = match mach_nix_requirements::parse_pep508(spec) {
                Ok(requirement) => requirement,
                Err(why) => {
                    let spec = mach_nix_requirements::clip(spec);
                    return Ok(Err(Unusable::BadMetadata(format!("{spec:?}: {why}"))));
                }
            };
            let applies = match part {
                Part::Run | Part::Build => requirement.marker.evaluate(env, &[]),
                Part::Extra(extra) => {
                    requirement
                        .marker
                        .evaluate(env, std::slice::from_ref(extra))
                        && !requirement.marker.evaluate(env, &[])
                }
            };
            if !applies {
                continue;
            }
            let dep = requirement.name.clone();
            let range = self.constrain(&dep, self.requirement_ranges(&requirement)?);
            if &dep == name && part == Part::Build {
                // A self-hosting backend (flit-core builds with its own tree).
                continue;
            }
            if &dep == name {
                // A project requiring its own extras (`a[all]` → `a[x]`): same version.
                for other in &requirement.extras {
                    add(
                        &mut deps,
                        Pkg::Extra(dep.clone(), other.clone()),
                        Ranges::singleton(version.clone()),
                    );
                }
                continue;
            }
            add(&mut deps, Pkg::Base(dep.clone()), range.clone());
            for other in &requirement.extras {
                add(
                    &mut deps,
                    Pkg::Extra(dep.clone(), other.clone()),
                    range.clone(),
                );
            }
        }
        Ok(Ok(deps))
    }

    pub(crate) fn target(&self) -> &TargetEnv {
        &self.options.target
    }

    /// Pre-releases compete with final releases only under `--pre`; otherwise a final release
    /// in range always wins, and a pre-release is taken only when none is (also when the user
    /// named a pre-release: that permits pre-releases, it does not prefer them).
    fn allows_prerelease(&self) -> bool {
        self.allow_prereleases
    }
}

/// Errors the provider itself raises: reading the snapshot, or the work bound.
#[derive(Debug, thiserror::Error)]
pub enum ProviderFailure {
    #[error(transparent)]
    Snapshot(#[from] db_format::Error),
    #[error("the resolution took more than {steps} steps ({conflicts} conflicts)")]
    TooManySteps { steps: u64, conflicts: u64 },
}

impl From<ProviderFailure> for ResolveError {
    fn from(failure: ProviderFailure) -> Self {
        match failure {
            ProviderFailure::Snapshot(source) => ResolveError::Snapshot(source),
            ProviderFailure::TooManySteps { steps, conflicts } => {
                ResolveError::TooComplex { steps, conflicts }
            }
        }
    }
}

impl DependencyProvider for Solver<'_> {
    type P = Pkg;
    type V = Version;
    type VS = Ranges<Version>;
    type M = Unusable;
    type Err = ProviderFailure;
    type Priority = (u8, u32, Reverse<u32>);

    fn prioritize(
        &self,
        package: &Pkg,
        range: &Ranges<Version>,
        stats: &PackageResolutionStatistics,
    ) -> Self::Priority {
        let count = stats.conflict_count();
        let seen = self
            .conflicts_seen
            .borrow_mut()
            .insert(package.clone(), count)
            .unwrap_or(0);
        self.conflicts
            .set(self.conflicts.get() + u64::from(count.saturating_sub(seen)));
        let mut discovered = self.discovered.borrow_mut();
        let next = u32::try_from(discovered.len()).unwrap_or(u32::MAX);
        let order = *discovered.entry(package.clone()).or_insert(next);
        let class = match package {
            Pkg::Root => 4,
            _ if pinned_version(range).is_some() => 3,
            _ if stats.conflict_count() >= 5 => 2,
            _ => 1,
        };
        (class, stats.conflict_count(), Reverse(order))
    }

    fn choose_version(
        &self,
        package: &Pkg,
        range: &Ranges<Version>,
    ) -> Result<Option<Version>, ProviderFailure> {
        let Some(name) = package.name() else {
            return Ok(Some(Version::new([0])));
        };
        let data = self.package(name)?;
        let allow_pre = self.allows_prerelease();
        let mut prerelease = None;
        for candidate in &data.candidates.candidates {
            if !range.contains(&candidate.version) {
                continue;
            }
            if candidate.yanked
                && !self
                    .yanked_pins
                    .contains(&(name.clone(), candidate.version.clone()))
            {
                continue;
            }
            if candidate.version.any_prerelease() && !allow_pre {
                prerelease.get_or_insert_with(|| candidate.version.clone());
                continue;
            }
            return Ok(Some(candidate.version.clone()));
        }
        Ok(prerelease)
    }

    fn should_cancel(&self) -> Result<(), ProviderFailure> {
        let steps = self.steps.get() + 1;
        self.steps.set(steps);
        if steps + self.conflicts.get() > self.options.max_steps {
            return Err(ProviderFailure::TooManySteps {
                steps: self.options.max_steps,
                conflicts: self.conflicts.get(),
            });
        }
        Ok(())
    }

    fn get_dependencies(
        &self,
        package: &Pkg,
        version: &Version,
    ) -> Result<Dependencies<Pkg, Ranges<Version>, Unusable>, ProviderFailure> {
        tracing::debug!("decision: {package} {version}");
        let deps = match package {
            Pkg::Root => Ok(self.root.clone()),
            Pkg::Base(name) => self.dependencies_of(name, Part::Run, version)?,
            Pkg::Extra(name, extra) => self.dependencies_of(name, Part::Extra(extra), version)?,
            Pkg::Build(name) => self.dependencies_of(name, Part::Build, version)?,
        };
        Ok(match deps {
            Ok(deps) => Dependencies::Available(deps.into_iter().collect()),
            Err(unusable) => Dependencies::Unavailable(unusable),
        })
    }
}

/// Resolve `input` against `snapshot` for `options.target`: the library entry point.
pub fn resolve(
    snapshot: &Snapshot,
    pin: SnapshotPin,
    input: &Input,
    options: &ResolveOptions,
) -> Result<Resolution, ResolveError> {
    if let Some((requires, origin)) = &input.requires_python
        && !options.target.python_satisfies(requires)
    {
        return Err(ResolveError::PythonMismatch {
            origin: origin.clone(),
            requires: requires.to_string(),
            python: options.target.python.clone(),
        });
    }
    let solver = Solver::new(snapshot, input, options).map_err(ResolveError::Snapshot)?;
    check_roots(&solver, input, &pin)?;
    let started = std::time::Instant::now();
    let outcome = pubgrub::resolve(&solver, Pkg::Root, Version::new([0]));
    tracing::info!(
        "solver: {} steps, {} conflicts, {} projects read from the snapshot, {:.2?}",
        solver.steps.get(),
        solver.conflicts.get(),
        solver.packages.borrow().len(),
        started.elapsed()
    );
    let selected = match outcome {
        Ok(selected) => selected,
        Err(PubGrubError::NoSolution(tree)) => {
            let error = report::explain(&tree, &solver, &pin);
            report::dismantle(tree);
            return Err(error);
        }
        Err(PubGrubError::ErrorChoosingVersion { source, .. })
        | Err(PubGrubError::ErrorRetrievingDependencies { source, .. })
        | Err(PubGrubError::ErrorInShouldCancel(source)) => return Err(source.into()),
    };
    let selected: BTreeMap<Pkg, Version> = selected.into_iter().collect();
    build_resolution(&solver, &selected, input, pin)
}

/// Fail early, with the user's file and line, on a requirement the snapshot cannot meet at all.
fn check_roots(solver: &Solver<'_>, input: &Input, pin: &SnapshotPin) -> Result<(), ResolveError> {
    let env = &solver.options.target.markers;
    let mut missing = Vec::new();
    for entry in input
        .requirements
        .iter()
        .filter(|e| e.requirement.marker.evaluate(env, &[]))
    {
        let name = &entry.requirement.name;
        let data = solver.package(name).map_err(ResolveError::Snapshot)?;
        if data.project.is_none() && data.candidates.candidates.is_empty() {
            missing.push((name.to_string(), Some(entry.origin.clone())));
            continue;
        }
        if let Some(url) = solver.urls.get(name)
            && data.candidates.candidates.is_empty()
        {
            return Err(ResolveError::UrlNotInSnapshot {
                origin: entry.origin.clone(),
                url: url.clone(),
            });
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let missing =
        report::MissingProjects::new(solver.snapshot, missing, report::snapshot_date(pin))
            .map_err(ResolveError::Snapshot)?;
    Err(ResolveError::NotInSnapshot(missing))
}

fn build_resolution(
    solver: &Solver<'_>,
    selected: &BTreeMap<Pkg, Version>,
    input: &Input,
    snapshot: SnapshotPin,
) -> Result<Resolution, ResolveError> {
    let mut extras: BTreeMap<&PackageName, Vec<String>> = BTreeMap::new();
    for package in selected.keys() {
        if let Pkg::Extra(name, extra) = package {
            extras.entry(name).or_default().push(extra.to_string());
        }
    }
    let mut packages = Vec::new();
    for (package, version) in selected {
        let Pkg::Base(name) = package else { continue };
        let data = solver.package(name).map_err(ResolveError::Snapshot)?;
        let candidate = data.candidate(version).ok_or_else(|| {
            ResolveError::Internal(format!(
                "{name} {version} was chosen but is not a candidate"
            ))
        })?;
        let mut names = BTreeSet::new();
        let mut activated: Vec<String> = extras.get(name).cloned().unwrap_or_default();
        activated.sort();
        let mut parts = vec![Part::Run];
        parts.extend(selected.keys().filter_map(|p| match p {
            Pkg::Extra(n, e) if n == name => Some(Part::Extra(e)),
            _ => None,
        }));
        let names_of = |part: Part<'_>| -> Result<BTreeSet<String>, ResolveError> {
            Ok(solver
                .dependencies_of(name, part, version)
                .map_err(ResolveError::Snapshot)?
                .map(|deps| {
                    deps.keys()
                        .filter_map(Pkg::name)
                        .filter(|dep| *dep != name)
                        .map(|dep| dep.to_string())
                        .collect()
                })
                .unwrap_or_default())
        };
        for part in parts {
            names.extend(names_of(part)?);
        }
        let (provider, file) = match &candidate.supply {
            Supply::File {
                release,
                file,
                kind,
            } => {
                let file = data
                    .project
                    .as_ref()
                    // In bounds: the indices were taken from this very project.
                    .map(|project| project.releases[*release].files[*file].clone());
                (
                    if *kind == ProviderKind::Wheel {
                        Provider::Wheel
                    } else {
                        Provider::Sdist
                    },
                    file,
                )
            }
            Supply::Nixpkgs { attribute, .. } => (
                Provider::Nixpkgs {
                    attribute: attribute.clone(),
                },
                None,
            ),
        };
        let is_sdist = provider == Provider::Sdist;
        // Every build requirement of a chosen sdist is in the resolution: `build(name)` was
        // resolved with the rest.
        let build_dependencies = if selected.contains_key(&Pkg::Build(name.clone())) {
            names_of(Part::Build)?.into_iter().collect()
        } else {
            Vec::new()
        };
        packages.push(ResolvedPackage {
            name: name.to_string(),
            version: version.to_string(),
            provider,
            file,
            extras: activated,
            dependencies: names.into_iter().collect(),
            build_dependencies,
            build_backend: if is_sdist {
                Solver::build_record(&data, candidate).and_then(|r| r.build_backend.clone())
            } else {
                None
            },
        });
    }
    packages.sort_by(|a, b| a.name.cmp(&b.name));
    let env = &solver.options.target.markers;
    let requested: BTreeSet<String> = input
        .requirements
        .iter()
        .filter(|e| e.requirement.marker.evaluate(env, &[]))
        .map(|e| e.requirement.name.to_string())
        .collect();
    let cycles = find_cycles(&packages);
    Ok(Resolution {
        target: Target {
            python: solver.options.target.python.clone(),
            system: solver.options.target.system.to_string(),
        },
        snapshot,
        requested: requested.into_iter().collect(),
        packages,
        cycles,
    })
}

/// Strongly connected components of more than one package (Tarjan), each sorted, in name order.
/// Iterative (an explicit stack of frames), so a dependency chain of any depth is no stack overflow.
fn find_cycles(packages: &[ResolvedPackage]) -> Vec<Vec<String>> {
    let position: HashMap<&str, usize> = packages
        .iter()
        .enumerate()
        .map(|(at, p)| (p.name.as_str(), at))
        .collect();
    // Edges by position; a dependency outside the resolution (none is) is skipped.
    let graph: Vec<Vec<usize>> = packages
        .iter()
        .map(|p| {
            p.dependencies
                .iter()
                .filter_map(|d| position.get(d.as_str()).copied())
                .collect()
        })
        .collect();
    let mut index: Vec<Option<usize>> = vec![None; packages.len()];
    let mut low: Vec<usize> = vec![0; packages.len()];
    let mut on_stack = vec![false; packages.len()];
    let mut stack: Vec<usize> = Vec::new();
    let mut next = 0;
    let mut out = Vec::new();
    for start in 0..packages.len() {
        if index[start].is_some() {
            continue;
        }
        // Frames: a node and how many of its edges were followed.
        let mut frames: Vec<(usize, usize)> = vec![(start, 0)];
        index[start] = Some(next);
        low[start] = next;
        next += 1;
        stack.push(start);
        on_stack[start] = true;
        while let Some(frame) = frames.last_mut() {
            let (node, followed) = *frame;
            if let Some(&to) = graph[node].get(followed) {
                frame.1 += 1;
                match index[to] {
                    None => {
                        index[to] = Some(next);
                        low[to] = next;
                        next += 1;
                        stack.push(to);
                        on_stack[to] = true;
                        frames.push((to, 0));
                    }
                    Some(to_index) if on_stack[to] => low[node] = low[node].min(to_index),
                    Some(_) => {}
                }
                continue;
            }
            frames.pop();
            if let Some(&(parent, _)) = frames.last() {
                low[parent] = low[parent].min(low[node]);
            }
            if Some(low[node]) == index[node] {
                let mut component = Vec::new();
                while let Some(member) = stack.pop() {
                    on_stack[member] = false;
                    component.push(packages[member].name.clone());
                    if member == node {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    out.push(component);
                }
            }
        }
    }
    out.sort();
    out
}
