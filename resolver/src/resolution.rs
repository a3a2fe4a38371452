//! The result of a resolution: the contract between the solver and every output format
//! (Nix, pylock.toml, hashed requirements). Outputs read only this, never the snapshot.

use std::collections::{BTreeMap, BTreeSet};

use db_format::File;

/// Where a resolved package comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provider {
    /// A wheel from the snapshot, compatible with the target.
    Wheel,
    /// An sdist from the snapshot, built from source.
    Sdist,
    /// nixpkgs' own package: `attribute` in `python.pkgs` at exactly this version.
    Nixpkgs { attribute: String },
}

impl Provider {
    /// `wheel`, `sdist` or `nixpkgs`: the names used in `--providers`.
    pub fn name(&self) -> &'static str {
        match self {
            Provider::Wheel => "wheel",
            Provider::Sdist => "sdist",
            Provider::Nixpkgs { .. } => "nixpkgs",
        }
    }
}

/// One package of the resolved environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedPackage {
    /// PEP 503 normalized name.
    pub name: String,
    /// PEP 440 version, normalized spelling.
    pub version: String,
    pub provider: Provider,
    /// The file to fetch (`None` for the nixpkgs provider).
    pub file: Option<File>,
    /// Extras of this package that the resolution activated.
    pub extras: Vec<String>,
    /// Normalized names of the resolved packages this one needs on the target (extras and
    /// markers already applied), sorted.
    pub dependencies: Vec<String>,
    /// For sdists: normalized names of the resolved packages its build needs (build system).
    pub build_dependencies: Vec<String>,
    /// For sdists: the PEP 517 backend, if declared.
    pub build_backend: Option<String>,
}

/// The target a resolution was made for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Interpreter version, e.g. `3.12` (or `3.12.4`).
    pub python: String,
    /// Nix system, e.g. `x86_64-linux`.
    pub system: String,
}

/// The pinned snapshot a resolution was made against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotPin {
    /// sha256 of the snapshot file, hex.
    pub sha256: String,
    /// Header `created` (unix seconds).
    pub created: i64,
    /// Header `as_of` (unix seconds), if any.
    pub as_of: Option<i64>,
}

/// A complete, consistent environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    pub target: Target,
    pub snapshot: SnapshotPin,
    /// Normalized names the user asked for directly (the roots), sorted.
    pub requested: Vec<String>,
    /// Every package, sorted by name.
    pub packages: Vec<ResolvedPackage>,
    /// Dependency cycles found among `packages`, each as a list of names (allowed, reported).
    pub cycles: Vec<Vec<String>>,
}

impl Resolution {
    /// The packages an installer installs: those the requested ones reach through run-time
    /// dependencies, in name order. A package only some sdist's build needs (flit-core for idna)
    /// is left out: installers build sdists in their own build environments (the Nix output,
    /// which builds them itself, uses every package).
    pub fn installed(&self) -> Vec<&ResolvedPackage> {
        let by_name: BTreeMap<&str, &ResolvedPackage> =
            self.packages.iter().map(|p| (p.name.as_str(), p)).collect();
        let mut reached: BTreeSet<&str> = BTreeSet::new();
        let mut stack: Vec<&str> = self.requested.iter().map(String::as_str).collect();
        while let Some(name) = stack.pop() {
            let Some(package) = by_name.get(name) else {
                continue;
            };
            if reached.insert(package.name.as_str()) {
                stack.extend(package.dependencies.iter().map(String::as_str));
            }
        }
        self.packages
            .iter()
            .filter(|p| reached.contains(p.name.as_str()))
            .collect()
    }
}
