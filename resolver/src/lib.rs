//! The resolver side of mach-nix: reads a pinned snapshot, resolves requirements with pubgrub
//! offline, and writes lock files and Nix expressions.
//!
//! Slim on purpose: no async runtime (never tokio/reqwest; [`fetch`] uses the blocking `ureq`
//! with rustls to fetch snapshot blobs by hash), and never the crawler; it depends on
//! `db-format` for every PyPI value.
//!
//! Modules: [`input`] (requirements.txt and pyproject.toml as pip reads them), [`target`]
//! (marker environment and wheel tags of a Nix system × CPython version), [`provider`]
//! (candidates per package from the snapshot's wheels and sdists and from nixpkgs), [`ranges`]
//! (PEP 440 specifiers as pubgrub ranges), [`solve`] (the pubgrub `DependencyProvider`),
//! [`report`] (failures in plain sentences), [`output`] (pylock.toml, hashed requirements, Nix),
//! [`db`] (finding and pinning the snapshot), [`show`] (`mach-nix show`), [`cli`] (the
//! `mach-nix` command line).
//!
//! Library entry point: [`solve::resolve`]`(&snapshot, pin, &input, &options)` with
//! [`db::open`] for the snapshot and [`input::read_input`] for the requirements; the CLI is a
//! thin layer over exactly these calls.
//!
//! Dependencies chosen: `pubgrub` 0.4 (the solver uv and cargo's experiments build on; its
//! derivation trees give explainable conflicts), Astral's `uv-*` crates through `db-format` for
//! PEP 440/508 and wheel tags (so our semantics are uv's), `clap` for the CLI, `toml`/`serde_json`
//! for pylock.toml, pyproject.toml and `--nixpkgs-json`, `sha2` to verify pinned snapshots.
//! [`conda`] (`conda/CHANNEL` providers) uses `rattler_conda_types` for conda versions and
//! match specs, the implementation pixi and rattler-build rely on, rather than re-implementing
//! conda's version ordering; it compiles with rustc 1.95 in about two minutes on one core.

pub mod cli;
/// Conda channels: resolving conda match specs against a snapshot's conda records.
pub mod conda;
pub mod db;
pub mod fetch;
pub mod input;
pub mod output;
pub mod provider;
pub mod ranges;
pub mod report;
pub mod resolution;
pub mod show;
pub mod solve;
pub mod target;
