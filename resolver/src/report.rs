//! Why a resolution failed, in plain sentences and PEP 440 terms.
//!
//! Three failures are told apart because users act on them differently:
//! - [`ResolveError::NotInSnapshot`]: projects unknown to this snapshot (a typo, a project
//!   newer than the snapshot date, or one the crawl missed): all of them at once, each with the
//!   snapshot's nearest names, and how to get a project in ([`missing`]);
//! - [`ResolveError::NoCompatibleFile`]: releases exist, but none has a file for this system and
//!   interpreter with the enabled providers;
//! - [`ResolveError::Conflict`]: requirements that cannot hold together; pubgrub's derivation tree
//!   is told as a chain of "Because … and …, …" sentences whose ranges read as PEP 440 specifiers
//!   and whose dead ends say why each excluded release was excluded.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::ops::Bound;
use std::str::FromStr as _;
use std::sync::Arc;

use db_format::types::{PackageName, Version};
use pubgrub::{
    DefaultStringReporter, DerivationTree, Derived, External, Map, Ranges, ReportFormatter,
    Reporter, Term,
};

use crate::input::Origin;
use crate::provider::Rejection;
use crate::resolution::SnapshotPin;
use crate::solve::{Pkg, Solver, Unusable};

mod missing;
pub use missing::{Missing, MissingProjects};

/// A resolution that could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("{0}")]
    NotInSnapshot(MissingProjects),
    #[error("no file of {name} fits {target}:{details}")]
    NoCompatibleFile {
        name: String,
        target: String,
        details: String,
    },
    /// `cause`: the root cause in a sentence, when it is one the user can act on directly
    /// (a release with no wheel for the target and an sdist that cannot be built here);
    /// `explanation`: the derivation, its middle left out when long; `full`: then the whole.
    #[error("{}", conflict_text(cause.as_deref(), explanation))]
    Conflict {
        cause: Option<String>,
        explanation: String,
        full: Option<String>,
    },
    #[error("{origin}: the project requires Python {requires}, but the target is Python {python}")]
    PythonMismatch {
        origin: Origin,
        requires: String,
        python: String,
    },
    #[error(
        "{origin}: {url} is not a file of this snapshot; direct URLs resolve only to files the snapshot has"
    )]
    UrlNotInSnapshot { origin: Origin, url: String },
    #[error("{}", too_complex(*steps, *conflicts))]
    TooComplex { steps: u64, conflicts: u64 },
    #[error("cannot read the snapshot: {0}")]
    Snapshot(#[source] db_format::Error),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ResolveError {
    /// The whole derivation of a conflict whose message shows only its ends.
    pub fn full_explanation(&self) -> Option<&str> {
        match self {
            ResolveError::Conflict { full, .. } => full.as_deref(),
            _ => None,
        }
    }
}

fn conflict_text(cause: Option<&str>, explanation: &str) -> String {
    match cause {
        Some(cause) => format!("{cause}\nHow the requirements lead there:\n{explanation}"),
        None => format!("the requirements cannot be resolved together:\n{explanation}"),
    }
}

/// A derivation told step by step longer than this many lines shows only its ends.
const MAX_STORY_LINES: usize = 8;
/// How many lines of a long derivation are shown at each end.
const STORY_ENDS: usize = 3;

/// `story` with its middle left out when it is long, and then the whole story.
fn shorten(story: String) -> (String, Option<String>) {
    let lines: Vec<&str> = story.lines().collect();
    if lines.len() <= MAX_STORY_LINES {
        return (story, None);
    }
    let left_out = lines.len() - 2 * STORY_ENDS;
    let shown = [
        lines[..STORY_ENDS].join("\n"),
        format!("… {left_out} more steps (-v shows the whole derivation)"),
        lines[lines.len() - STORY_ENDS..].join("\n"),
    ]
    .join("\n");
    (shown, Some(story))
}

/// The solver gave up after `steps` (the `--max-steps` bound), `conflicts` of which were
/// conflicts: a search that met none was only long, not contradictory.
fn too_complex(steps: u64, conflicts: u64) -> String {
    let more = steps.saturating_mul(4);
    if conflicts == 0 {
        format!(
            "the solver gave up after {steps} steps (the --max-steps bound) before it finished; \
             it met no conflict, the requirements are only large: allow more steps, e.g. \
             --max-steps {more}"
        )
    } else {
        format!(
            "the solver gave up after {steps} steps (the --max-steps bound), {conflicts} of \
             them conflicts between versions it had to back out of: pin the versions of the \
             packages involved, or allow more steps, e.g. --max-steps {more}"
        )
    }
}

/// `YYYY-MM-DD` of the snapshot's `as_of` (else its creation time), in UTC.
pub fn snapshot_date(pin: &SnapshotPin) -> String {
    let mut date = crate::output::utc_datetime(pin.as_of.unwrap_or(pin.created));
    date.truncate(10);
    date
}

/// A bound for people: internal sentinels folded back. `Version`'s `Display` hides the `min`/`max`
/// markers, so a bound that sorts above (below) its own printed form is a `max` (`min`) sentinel.
fn bound_text(version: &Version, upper: bool, included: bool) -> String {
    let text = version.to_string();
    if let Some(base) = text.strip_suffix(".post0.dev0") {
        // The least version above every `base+local`.
        return if upper {
            format!("<={base}")
        } else {
            format!(">{base}")
        };
    }
    let shown = text.parse::<Version>().ok();
    if shown.as_ref().is_some_and(|shown| version > shown) {
        return if upper {
            format!("<={text}")
        } else {
            format!(">{text}")
        };
    }
    if shown.as_ref().is_some_and(|shown| version < shown) {
        return if upper {
            format!("<{text}")
        } else {
            format!(">={text}")
        };
    }
    // `X.dev0` is the first version of X: `==1.*` and `~=` bounds read as `>=1, <2`.
    if let Some(base) = text.strip_suffix(".dev0") {
        match (upper, included) {
            (true, false) => return format!("<{base}"),
            (false, true) => return format!(">={base}"),
            _ => {}
        }
    }
    match (upper, included) {
        (true, true) => format!("<={text}"),
        (true, false) => format!("<{text}"),
        (false, true) => format!(">={text}"),
        (false, false) => format!(">{text}"),
    }
}

/// A version set as PEP 440 specifiers: `>=1.0, <2.0`, alternatives joined by ` or `.
pub fn range_text(range: &Ranges<Version>) -> String {
    if range == &Ranges::full() {
        return "(any version)".to_owned();
    }
    if range.is_empty() {
        return "(no version)".to_owned();
    }
    if let Some(version) = crate::ranges::pinned_version(range) {
        return format!("=={version}");
    }
    let parts: Vec<String> = range
        .iter()
        .map(|(lower, upper)| match (lower, upper) {
            (Bound::Included(low), Bound::Included(high)) if low == high => format!("=={low}"),
            _ => {
                let mut pieces = Vec::new();
                match lower {
                    Bound::Included(v) => pieces.push(bound_text(v, false, true)),
                    Bound::Excluded(v) => pieces.push(bound_text(v, false, false)),
                    Bound::Unbounded => {}
                }
                match upper {
                    Bound::Included(v) => pieces.push(bound_text(v, true, true)),
                    Bound::Excluded(v) => pieces.push(bound_text(v, true, false)),
                    Bound::Unbounded => {}
                }
                pieces.join(", ")
            }
        })
        .collect();
    parts.join(" or ")
}

/// `range` said through the releases `known` that it holds: runs of consecutive releases become
/// `>=first, <=last` (open-ended at either end of the known list), one release `==v`, all of them
/// the empty string. `None` when the range holds no release.
fn releases_text(mut known: Vec<Version>, range: &Ranges<Version>) -> Option<String> {
    known.sort();
    known.dedup();
    let inside: Vec<bool> = known.iter().map(|v| range.contains(v)).collect();
    if !inside.contains(&true) {
        return None;
    }
    if !inside.contains(&false) {
        return Some(String::new());
    }
    let mut runs = Vec::new();
    let mut start = None;
    for (index, &held) in inside.iter().chain([&false]).enumerate() {
        match (held, start) {
            (true, None) => start = Some(index),
            (false, Some(first)) => {
                let last = index - 1;
                runs.push(match (first == 0, last + 1 == known.len()) {
                    _ if first == last => format!("=={}", known[first]),
                    (true, false) => format!("<={}", known[last]),
                    (false, true) => format!(">={}", known[first]),
                    _ => format!(">={}, <={}", known[first], known[last]),
                });
                start = None;
            }
            _ => {}
        }
    }
    Some(runs.join(" or "))
}

fn package_range(package: &Pkg, range: &Ranges<Version>) -> String {
    match package {
        Pkg::Root => package.to_string(),
        _ if range.is_empty() => format!(
            "{package} with specifiers no release satisfies (they contradict each other, or `===` \
             names a spelling no release has: it compares strings, `===1.0` is not `1.0.0`)"
        ),
        _ if range == &Ranges::full() => package.to_string(),
        _ => format!("{package}{}", range_text(range)),
    }
}

/// The formatter: knows the snapshot's candidates to say why versions are missing.
struct Formatter<'s, 'a> {
    solver: &'s Solver<'a>,
    date: String,
}

impl Formatter<'_, '_> {
    /// Whether the snapshot has no release of `package` at all in `range` (so a "no versions"
    /// fact about it is noise: nothing was excluded there).
    fn no_release_in(&self, package: &Pkg, range: &Ranges<Version>) -> bool {
        let Some(name) = package.name() else {
            return false;
        };
        let Ok(data) = self.solver.package(name) else {
            return false;
        };
        data.project.is_some()
            && !data
                .candidates
                .candidates
                .iter()
                .any(|c| range.contains(&c.version))
            && !data
                .candidates
                .rejected
                .iter()
                .any(|(v, _)| v.parse::<Version>().is_ok_and(|v| range.contains(&v)))
    }

    /// The tree with "no versions of P in R" facts folded into the dependency fact they are
    /// paired with, where R holds no release of P (pubgrub's `collapse_no_versions`, limited to
    /// the noise so that real dead ends, e.g. a missing package, stay in the explanation).
    fn simplify(&self, tree: &Tree) -> Tree {
        self.simplify_shared(tree, &mut HashMap::new())
    }

    /// [`Self::simplify`] with each shared subtree simplified once (a tree shares subtrees
    /// through `Arc`s; walking every path could take exponential time).
    fn simplify_shared(&self, tree: &Tree, done: &mut HashMap<*const Tree, Arc<Tree>>) -> Tree {
        let DerivationTree::Derived(derived) = tree else {
            return tree.clone();
        };
        let mut cause = |child: &Arc<Tree>| -> Arc<Tree> {
            let key = Arc::as_ptr(child);
            if let Some(simplified) = done.get(&key) {
                return Arc::clone(simplified);
            }
            let simplified = Arc::new(self.simplify_shared(child, done));
            done.insert(key, Arc::clone(&simplified));
            simplified
        };
        let cause1 = cause(&derived.cause1);
        let cause2 = cause(&derived.cause2);
        let merged = match (&*cause1, &*cause2) {
            (
                DerivationTree::External(External::NoVersions(p, r)),
                DerivationTree::External(External::FromDependencyOf(p1, r1, d, rd)),
            )
            | (
                DerivationTree::External(External::FromDependencyOf(p1, r1, d, rd)),
                DerivationTree::External(External::NoVersions(p, r)),
            ) if p == p1 && self.no_release_in(p, r) => Some(DerivationTree::External(
                External::FromDependencyOf(p1.clone(), r1.union(r), d.clone(), rd.clone()),
            )),
            // Two dead ends of one package are one.
            (
                DerivationTree::External(External::NoVersions(p1, r1)),
                DerivationTree::External(External::NoVersions(p2, r2)),
            ) if p1 == p2 => Some(DerivationTree::External(External::NoVersions(
                p1.clone(),
                r1.union(r2),
            ))),
            _ => None,
        };
        merged.unwrap_or_else(|| {
            DerivationTree::Derived(Derived {
                terms: derived.terms.clone(),
                shared_id: derived.shared_id,
                cause1,
                cause2,
            })
        })
    }

    /// `package` restricted to `range`, said in terms of the releases that exist: all of them
    /// read as the bare name, exactly one as `name==version`; otherwise the range itself.
    fn versions(&self, package: &Pkg, range: &Ranges<Version>) -> String {
        if let Some(name) = package.name()
            && let Ok(data) = self.solver.package(name)
        {
            if let Some(text) = releases_text(data.known_versions(), range) {
                return format!("{package}{text}");
            }
            if range == &Ranges::full() {
                return package.to_string();
            }
        }
        package_range(package, range)
    }

    fn no_versions(&self, package: &Pkg, range: &Ranges<Version>) -> String {
        let Some(name) = package.name() else {
            return "the requirements cannot be met".to_owned();
        };
        let Ok(data) = self.solver.package(name) else {
            return format!("{name} cannot be read from the snapshot");
        };
        if data.project.is_none() && data.candidates.candidates.is_empty() {
            return format!(
                "{name} is not in this snapshot (snapshot date {})",
                self.date
            );
        }
        if self.no_release_in(package, range) {
            // A range with holes is what is left around versions already ruled out.
            let text = range_text(range);
            if text.contains(" or ") {
                return format!("no other version of {name} exists");
            }
            let newest = data.candidates.candidates.iter().map(|c| &c.version).max();
            return match newest {
                Some(newest) => {
                    format!("no version of {name} matches {text} (the newest usable is {newest})")
                }
                None => format!("no version of {name} matches {text}"),
            };
        }
        let mut reasons: Vec<String> = Vec::new();
        for (version, rejection) in &data.candidates.rejected {
            if version.parse::<Version>().is_ok_and(|v| range.contains(&v)) {
                reasons.push(format!("{name} {version} {}", self.rejection(rejection)));
            }
        }
        for candidate in &data.candidates.candidates {
            if range.contains(&candidate.version) && candidate.yanked {
                reasons.push(format!(
                    "{name} {} is yanked (pin it with == to use it)",
                    candidate.version
                ));
            }
        }
        let what = if range == &Ranges::full() {
            format!("no version of {name} can be used")
        } else {
            format!("no version of {name} matches {}", range_text(range))
        };
        match reasons.len() {
            0 => what,
            n if n <= 3 => format!("{what} ({})", reasons.join("; ")),
            n => format!("{what} ({}; and {} more)", reasons[..3].join("; "), n - 3),
        }
    }

    fn rejection(&self, rejection: &Rejection) -> String {
        let target = &self.solver_target();
        match rejection {
            Rejection::RequiresPython(spec) => format!(
                "requires Python {spec}, the target is Python {}",
                self.solver.target().python
            ),
            Rejection::NoCompatibleFile { providers } => {
                let names: Vec<&str> = providers.iter().map(|p| p.as_str()).collect();
                format!("has no file for {target} usable by {}", names.join(","))
            }
            other => other.to_string(),
        }
    }

    fn solver_target(&self) -> String {
        let target = self.solver.target();
        format!("{}/{}", target.system, target.python_tag())
    }

    fn terms(&self, terms: &Map<Pkg, Term<Ranges<Version>>>) -> String {
        let listed: Vec<_> = terms.iter().collect();
        match listed.as_slice() {
            [] => "the requirements cannot be met".to_owned(),
            [(Pkg::Root, _)] => "the requirements cannot be met".to_owned(),
            [(package, Term::Positive(range))] => {
                format!("{} cannot be used", self.versions(package, range))
            }
            [(package, Term::Negative(range))] => {
                format!("{} is required", self.versions(package, range))
            }
            [(p1, Term::Positive(r1)), (p2, Term::Negative(r2))]
            | [(p2, Term::Negative(r2)), (p1, Term::Positive(r1))] => self.external(
                &External::FromDependencyOf((*p1).clone(), r1.clone(), (*p2).clone(), r2.clone()),
            ),
            many => {
                let parts: Vec<String> = many
                    .iter()
                    .map(|(package, term)| match term {
                        Term::Positive(range) => self.versions(package, range),
                        Term::Negative(range) => format!("not {}", self.versions(package, range)),
                    })
                    .collect();
                format!("{} cannot be used together", parts.join(" and "))
            }
        }
    }

    fn external(&self, external: &External<Pkg, Ranges<Version>, Unusable>) -> String {
        match external {
            External::NotRoot(package, _) => format!("we resolve {package}"),
            External::NoVersions(package, range) => self.no_versions(package, range),
            External::Custom(package, range, reason) => {
                format!("{} cannot be used: {reason}", self.versions(package, range))
            }
            External::FromDependencyOf(package, range, dep, dep_range) => match package {
                Pkg::Root => format!("you require {}", package_range(dep, dep_range)),
                Pkg::Build(name) => format!(
                    "building {} from its sdist needs {}",
                    self.versions(&Pkg::Base(name.clone()), range),
                    package_range(dep, dep_range)
                ),
                Pkg::Base(_) if matches!(dep, Pkg::Build(_)) => format!(
                    "{} is taken from its sdist, which must be built",
                    self.versions(package, range)
                ),
                Pkg::Extra(name, _) if Some(name) == dep.name() => {
                    format!(
                        "{} belongs to {}",
                        self.versions(package, range),
                        package_range(dep, dep_range)
                    )
                }
                _ => format!(
                    "{} depends on {}",
                    self.versions(package, range),
                    package_range(dep, dep_range)
                ),
            },
        }
    }
}

type Tree = DerivationTree<Pkg, Ranges<Version>, Unusable>;
type Ext = External<Pkg, Ranges<Version>, Unusable>;
type Terms = Map<Pkg, Term<Ranges<Version>>>;
type Der = Derived<Pkg, Ranges<Version>, Unusable>;

impl ReportFormatter<Pkg, Ranges<Version>, Unusable> for Formatter<'_, '_> {
    type Output = String;

    fn format_external(&self, external: &Ext) -> String {
        self.external(external)
    }

    fn format_terms(&self, terms: &Terms) -> String {
        self.terms(terms)
    }

    fn explain_both_external(&self, e1: &Ext, e2: &Ext, current: &Terms) -> String {
        format!(
            "Because {} and {}, {}.",
            self.external(e1),
            self.external(e2),
            self.terms(current)
        )
    }

    fn explain_both_ref(
        &self,
        id1: usize,
        d1: &Der,
        id2: usize,
        d2: &Der,
        current: &Terms,
    ) -> String {
        format!(
            "Because {} ({id1}) and {} ({id2}), {}.",
            self.terms(&d1.terms),
            self.terms(&d2.terms),
            self.terms(current)
        )
    }

    fn explain_ref_and_external(
        &self,
        id: usize,
        derived: &Der,
        external: &Ext,
        current: &Terms,
    ) -> String {
        format!(
            "Because {} ({id}) and {}, {}.",
            self.terms(&derived.terms),
            self.external(external),
            self.terms(current)
        )
    }

    fn and_explain_external(&self, external: &Ext, current: &Terms) -> String {
        format!(
            "And because {}, {}.",
            self.external(external),
            self.terms(current)
        )
    }

    fn and_explain_ref(&self, id: usize, derived: &Der, current: &Terms) -> String {
        format!(
            "And because {} ({id}), {}.",
            self.terms(&derived.terms),
            self.terms(current)
        )
    }

    fn and_explain_prior_and_external(
        &self,
        prior: &Ext,
        external: &Ext,
        current: &Terms,
    ) -> String {
        format!(
            "And because {} and {}, {}.",
            self.external(prior),
            self.external(external),
            self.terms(current)
        )
    }
}

/// A derivation tree larger than this (distinct nodes) is not told step by step: pubgrub's
/// reporter recurses once per level (a 10,000-package chain would overflow the stack) and the
/// story would be thousands of sentences. Real conflicts have tens of nodes.
const MAX_EXPLAINED_NODES: usize = 2_000;
/// How many facts a summary of a larger tree lists at each end.
const SUMMARY_FACTS: usize = 12;

/// The distinct nodes of the tree (shared subtrees once), depth first, cause1 before cause2;
/// iterative, so any depth is safe.
fn nodes(tree: &Tree) -> Vec<&Tree> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    let mut stack = vec![tree];
    while let Some(node) = stack.pop() {
        if !seen.insert(std::ptr::from_ref(node)) {
            continue;
        }
        out.push(node);
        if let DerivationTree::Derived(derived) = node {
            stack.push(&derived.cause2);
            stack.push(&derived.cause1);
        }
    }
    out
}

/// The packages whose versions ran out in the tree (its `NoVersions` leaves).
fn exhausted(nodes: &[&Tree]) -> Vec<(Pkg, Ranges<Version>)> {
    nodes
        .iter()
        .filter_map(|node| match node {
            DerivationTree::External(External::NoVersions(package, range)) => {
                Some((package.clone(), range.clone()))
            }
            _ => None,
        })
        .collect()
}

/// Drop a derivation tree without recursing once per level (the derived `Drop` would, and a
/// deep tree would overflow the stack): subtrees this tree holds alone are taken apart in a loop.
pub(crate) fn dismantle(tree: Tree) {
    let mut stack = vec![tree];
    while let Some(node) = stack.pop() {
        if let DerivationTree::Derived(Derived { cause1, cause2, .. }) = node {
            // A cause still shared elsewhere only loses one reference here.
            stack.extend(Arc::into_inner(cause1));
            stack.extend(Arc::into_inner(cause2));
        }
    }
}

/// A tree too large to tell step by step: its facts (the external incompatibilities), what the
/// user requires and the dead ends first, then the first and last of the dependency facts.
fn summary(formatter: &Formatter<'_, '_>, nodes: &[&Tree]) -> String {
    let mut seen = std::collections::HashSet::new();
    // 0: the user's requirements, 1: dead ends, 2: dependencies between packages.
    let mut groups: [Vec<String>; 3] = Default::default();
    let dependers: std::collections::HashSet<&Pkg> = nodes
        .iter()
        .filter_map(|node| match node {
            DerivationTree::External(External::FromDependencyOf(package, ..)) => Some(package),
            _ => None,
        })
        .collect();
    for node in nodes {
        let DerivationTree::External(external) = node else {
            continue;
        };
        let group = match external {
            // A range of a depender that holds no release is what is left around its ruled-out
            // versions: noise (`simplify`'s rule, without pairing facts up).
            External::NoVersions(package, range)
                if dependers.contains(package) && formatter.no_release_in(package, range) =>
            {
                continue;
            }
            External::FromDependencyOf(Pkg::Root, ..) => 0,
            External::FromDependencyOf(..) => 2,
            External::NoVersions(..) | External::Custom(..) | External::NotRoot(..) => 1,
        };
        let fact = formatter.external(external);
        if seen.insert(fact.clone()) {
            groups[group].push(fact);
        }
    }
    let total: usize = groups.iter().map(Vec::len).sum();
    let mut text = format!(
        "The conflict is derived from {total} facts, too many to explain step by step; among them:"
    );
    for (at, facts) in groups.iter().enumerate() {
        let ends = if at == 2 {
            SUMMARY_FACTS
        } else {
            SUMMARY_FACTS / 2
        };
        if facts.len() <= 2 * ends {
            for fact in facts {
                let _ = write!(text, "\n  {fact}");
            }
            continue;
        }
        for fact in &facts[..ends] {
            let _ = write!(text, "\n  {fact}");
        }
        let _ = write!(text, "\n  … ({} more)", facts.len() - 2 * ends);
        for fact in &facts[facts.len() - ends..] {
            let _ = write!(text, "\n  {fact}");
        }
    }
    text
}

/// Turn pubgrub's failure into the most specific [`ResolveError`].
pub(crate) fn explain(tree: &Tree, solver: &Solver<'_>, pin: &SnapshotPin) -> ResolveError {
    let formatter = Formatter {
        solver,
        date: snapshot_date(pin),
    };
    let nodes = nodes(tree);
    let explanation = if nodes.len() > MAX_EXPLAINED_NODES {
        summary(&formatter, &nodes)
    } else {
        DefaultStringReporter::report_with_formatter(&formatter.simplify(tree), &formatter)
    };
    let mut leaves = exhausted(&nodes);
    // Ranges that hold no release are what is left around ruled-out versions, not dead ends.
    leaves.retain(|(package, range)| !formatter.no_release_in(package, range));
    // Every dead end is a package whose releases in range exist but have no usable file: the
    // failure is about files for this target, not about versions. The first such package is
    // named; when other packages are involved, the chain of reasons follows.
    let no_file: Vec<(&PackageName, Vec<(String, Rejection)>)> = leaves
        .iter()
        .filter_map(|(package, range)| {
            let name = package.name()?;
            let data = solver.package(name).ok()?;
            let in_range: Vec<(String, Rejection)> = data
                .candidates
                .rejected
                .iter()
                .filter(|(v, _)| v.parse::<Version>().is_ok_and(|v| range.contains(&v)))
                .cloned()
                .collect();
            let only_files = !in_range.is_empty()
                && in_range
                    .iter()
                    .all(|(_, r)| matches!(r, Rejection::NoCompatibleFile { .. }))
                && !data
                    .candidates
                    .candidates
                    .iter()
                    .any(|c| range.contains(&c.version));
            only_files.then_some((name, in_range))
        })
        .collect();
    if !leaves.is_empty()
        && no_file.len() == leaves.len()
        && let Some((name, in_range)) = no_file.first()
        && let Ok(data) = solver.package(name)
    {
        let mut details = String::new();
        for (version, rejection) in in_range.iter().rev().take(5) {
            let names: Vec<&str> = data
                .project
                .as_ref()
                .and_then(|p| p.releases.iter().find(|r| &r.version == version))
                .map(|r| r.files.iter().map(|f| f.filename.as_str()).collect())
                .unwrap_or_default();
            let mut files = names.iter().take(6).copied().collect::<Vec<_>>().join(", ");
            if names.len() > 6 {
                let _ = write!(files, " and {} more files", names.len() - 6);
            }
            if files.is_empty() {
                files = "no files".to_owned();
            }
            let _ = write!(details, "\n  {name} {version} {rejection}: {files}");
        }
        if in_range.len() > 5 {
            let _ = write!(details, "\n  … and {} older releases", in_range.len() - 5);
        }
        let mut involved: Vec<&Pkg> = nodes
            .iter()
            .flat_map(|node| match node {
                DerivationTree::External(External::FromDependencyOf(p, _, d, _)) => vec![p, d],
                DerivationTree::External(
                    External::NoVersions(p, _)
                    | External::NotRoot(p, _)
                    | External::Custom(p, _, _),
                ) => vec![p],
                DerivationTree::Derived(derived) => derived.terms.keys().collect(),
            })
            .collect();
        involved.sort();
        involved.dedup();
        if involved.len() > 2 {
            let _ = write!(details, "\n{explanation}");
        }
        return ResolveError::NoCompatibleFile {
            name: name.to_string(),
            target: formatter.solver_target(),
            details,
        };
    }
    let (explanation, full) = if nodes.len() > MAX_EXPLAINED_NODES {
        (explanation, None)
    } else {
        shorten(explanation)
    };
    ResolveError::Conflict {
        cause: unbuildable(&formatter, &nodes).or_else(|| missing(&formatter, &nodes)),
        explanation,
        full,
    }
}

/// The projects the tree needs that the snapshot does not have, with the nearest names and how
/// to get them in; `None` when there are none.
fn missing(formatter: &Formatter<'_, '_>, nodes: &[&Tree]) -> Option<String> {
    let mut names: Vec<(String, Option<Origin>)> = Vec::new();
    for (package, _) in exhausted(nodes) {
        let Some(name) = package.name() else { continue };
        let Ok(data) = formatter.solver.package(name) else {
            continue;
        };
        if data.project.is_none()
            && data.candidates.candidates.is_empty()
            && !names.iter().any(|(known, _)| known == name.as_ref())
        {
            names.push((name.to_string(), None));
        }
    }
    if names.is_empty() {
        return None;
    }
    MissingProjects::new(formatter.solver.snapshot, names, formatter.date.clone())
        .ok()
        .map(|missing| missing.to_string())
}

/// The wheels' Python tags of `project` (`cp312`, `py3`), sorted, each once.
fn wheel_python_tags(project: &db_format::Project) -> Vec<String> {
    let mut tags: Vec<String> = project
        .releases
        .iter()
        .flat_map(|release| &release.files)
        .filter_map(|file| db_format::types::WheelFilename::from_str(&file.filename).ok())
        .flat_map(|wheel| {
            wheel
                .python_tags()
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    tags.sort();
    tags.dedup();
    tags
}

/// The root cause "no wheel for this Python, and the sdist cannot be built here (a build
/// requirement is not in the snapshot)", said directly, with what to do; `None` when the tree
/// holds no such dead end.
fn unbuildable(formatter: &Formatter<'_, '_>, nodes: &[&Tree]) -> Option<String> {
    nodes.iter().find_map(|node| {
        let DerivationTree::External(External::FromDependencyOf(
            Pkg::Build(name),
            _,
            dep,
            dep_range,
        )) = node
        else {
            return None;
        };
        let dep_name = dep.name()?;
        let dep_data = formatter.solver.package(dep_name).ok()?;
        if dep_data.project.is_some() || !dep_data.candidates.candidates.is_empty() {
            return None;
        }
        let data = formatter.solver.package(name).ok()?;
        if data
            .candidates
            .candidates
            .iter()
            .any(|c| c.provider() == crate::provider::ProviderKind::Wheel)
        {
            return None;
        }
        let tags = data
            .project
            .as_ref()
            .map(wheel_python_tags)
            .unwrap_or_default();
        let wheels = if tags.is_empty() {
            "it publishes no wheels".to_owned()
        } else {
            format!("its wheels are for {}", tags.join(", "))
        };
        let python = tags
            .iter()
            .filter_map(|tag| tag.strip_prefix("cp3")?.parse::<u32>().ok())
            .max()
            .map(|minor| format!(" (-p 3.{minor})"))
            .unwrap_or_default();
        Some(format!(
            "{name} has no wheel for {target} ({wheels}), and its sdist cannot be built here: \
             building it needs {needs}, which is not in this snapshot (snapshot date {date}).\n\
             hint: target a Python {name} has wheels for{python}, take {name} from nixpkgs \
             (--providers {name}=nixpkgs with --nixpkgs-json), or get {dep_name} into the \
             snapshot (`mach-nix-crawler crawl --state STATE --packages {dep_name}`, then \
             `mach-nix-crawler publish-db`)",
            target = formatter.solver_target(),
            needs = package_range(dep, dep_range),
            date = formatter.date,
        ))
    })
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use db_format::types::VersionSpecifiers;

    use super::*;

    fn text(spec: &str) -> String {
        range_text(&crate::ranges::specifiers_to_ranges(
            &VersionSpecifiers::from_str(spec).expect("valid"),
        ))
    }

    #[test]
    fn ranges_read_as_pep440() {
        assert_eq!(text(">=1.0,<2.0"), ">=1.0, <2.0");
        assert_eq!(text("==1.0"), "==1.0");
        assert_eq!(text("<=1.0"), "<=1.0");
        assert_eq!(text(">1.0"), ">1.0");
        assert_eq!(text("~=1.4.2"), ">=1.4.2, <1.5.0");
        assert_eq!(text("!=1.5"), "<1.5 or >1.5");
        assert_eq!(text("==1.*"), ">=1, <2");
        assert_eq!(text(""), "(any version)");
    }

    #[test]
    fn ranges_read_through_existing_releases() {
        let known: Vec<Version> = ["1.0", "2.0", "2.1", "3.0", "4.0"]
            .iter()
            .map(|v| Version::from_str(v).expect("valid"))
            .collect();
        let releases = |spec: &str| {
            releases_text(
                known.clone(),
                &crate::ranges::specifiers_to_ranges(
                    &VersionSpecifiers::from_str(spec).expect("valid"),
                ),
            )
        };
        assert_eq!(releases(">=2,<3").as_deref(), Some(">=2.0, <=2.1"));
        assert_eq!(releases("!=3.0").as_deref(), Some("<=2.1 or ==4.0"));
        assert_eq!(releases(">=3").as_deref(), Some(">=3.0"));
        assert_eq!(releases("").as_deref(), Some(""));
        assert_eq!(releases(">5").as_deref(), None);
    }

    #[test]
    fn snapshot_dates_are_utc_days() {
        let pin = SnapshotPin {
            sha256: String::new(),
            created: 1_700_000_000,
            as_of: None,
        };
        assert_eq!(snapshot_date(&pin), "2023-11-14");
        let pin = SnapshotPin {
            as_of: Some(0),
            ..pin
        };
        assert_eq!(snapshot_date(&pin), "1970-01-01");
    }
}
