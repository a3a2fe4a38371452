//! The result of a resolution: the contract between the solver and every output format
//! (Nix, pylock.toml, hashed requirements). Outputs read only this, never the snapshot.

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
